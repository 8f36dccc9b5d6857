"""BROKEN ON PURPOSE: the reference adapter with the canonical re-encoding check skipped.

msgpack that decodes strictly but is not in canonical form (unsorted keys, wide integers,
float32, long length prefixes) is accepted. The malformed-*non-canonical* cases must catch it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

TARGETS = (
    "malformed-non-canonical-*",
    "malformed-multi-non-canonical-*",
    "malformed-signature-block-non-canonical",
)


def main() -> int:
    import msgpack

    from conformance_tests.adapters import mindvec_ref
    from mindvec import canonical
    from mindvec.errors import MalformedError

    strict_decode = canonical.decode

    def lenient_decode(data: bytes) -> Any:
        try:
            return strict_decode(data)
        except MalformedError as exc:
            if exc.code != "non-canonical":
                raise
            return msgpack.unpackb(bytes(data), raw=False)

    canonical.decode = lenient_decode
    return mindvec_ref.main()


if __name__ == "__main__":
    sys.exit(main())
