"""The mindvec 1.0 conformance suite: cases as data and a runner that drives any implementation.

See README.md in this folder for the harness protocol. The runner (``python -m
conformance_tests``) uses only the Python standard library.
"""

from __future__ import annotations

SUITE_VERSION = "1.0"
