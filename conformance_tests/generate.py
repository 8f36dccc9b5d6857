"""Generate the mindvec 1.0 conformance cases, deterministically.

    python -m conformance_tests.generate [--out DIR]

Valid packages come from the project's writer (``mindvec.write``), signed with the fixed
test keys in ``keys/``; hostile cases are byte surgery on those files (or raw bytes for
structural cases). No randomness, no wall clock: running this twice gives the same bytes,
which ``tests/test_conformance.py`` checks.

The expected summary of a valid case is computed here by an independent minimal parser
(struct, msgpack, json), not by the reader under test.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

from conformance_tests import casebook
from conformance_tests.craft.constants import SUITE_DIR
from conformance_tests.craft.keys import write_keys
from conformance_tests.suite import Suite


def generate(out: Path) -> int:
    """Write keys/ and cases/ under ``out`` (both replaced); returns the number of cases."""
    for name in ("cases", "keys"):
        if (out / name).exists():
            shutil.rmtree(out / name)
    write_keys(out / "keys")
    suite = Suite(out)
    for build in casebook.GROUPS:
        build(suite)
    return suite.count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance_tests.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=SUITE_DIR, help="folder for cases/ and keys/")
    args = parser.parse_args(argv)
    count = generate(args.out)
    print(f"wrote {count} cases to {args.out / 'cases'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
