"""Building blocks of the cases: constants, test keys, byte surgery, manifests, an independent summary."""

from __future__ import annotations
