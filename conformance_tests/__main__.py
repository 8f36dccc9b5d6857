"""``python -m conformance_tests``: see runner.py."""

from __future__ import annotations

import sys

from conformance_tests.runner import main

sys.exit(main())
