"""BROKEN ON PURPOSE: the reference adapter with signature verification skipped.

Every signature by a known key is taken as valid, so bad, copied, undomain-separated and
mislabelled signatures all pass. The unverified-*bad-signature* cases must catch it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

TARGETS = ("unverified-bad-signature-*", "unverified-multi-bad-signature-*")


def main() -> int:
    from conformance_tests.adapters import mindvec_ref
    from mindvec.keys import PublicKey

    def accept_anything(self: PublicKey, manifest_bytes: bytes, entry: object) -> bool:
        return True

    PublicKey.verify_manifest = accept_anything  # type: ignore[method-assign]
    return mindvec_ref.main()


if __name__ == "__main__":
    sys.exit(main())
