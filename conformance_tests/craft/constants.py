"""Fixed values every case shares: the suite folder, the magics, the clock."""

from __future__ import annotations

from pathlib import Path

SUITE_DIR = Path(__file__).resolve().parent.parent  # conformance_tests/
MAGIC = b"\x89MVEC\r\n\n"
END_MAGIC = b"MVECEND\n"
NOW = "2026-06-01T00:00:00Z"
CREATED = "2026-01-01T00:00:00Z"
PACKAGE_FILE = "package.mindvec"
