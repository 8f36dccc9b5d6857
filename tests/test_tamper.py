"""Exhaustive tamper test: every single-bit flip of a small signed package fails verify.

"No free bytes": every byte is signed or fixed by a structural rule, so flipping any
one bit must turn the verdict from ``verified`` into a typed error (spec section 15:
[R-1] [R-2] [R-4] [R-9] [R-10] [R-12] [R-42] [R-53] [R-62] [R-63] [R-64] [R-65] [R-69]).
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

from factories import vector_manifest

from mindvec import package
from mindvec.errors import MindvecError
from mindvec.keys import SecretKey
from mindvec.policy import Policy
from mindvec.trust import TrustEntry, TrustStore
from mindvec.verification import verify


def test_every_bit_flip_fails_verification(tmp_path: Path) -> None:
    key = SecretKey.from_seed(b"\x07" * 32)
    manifest, tensors = vector_manifest()
    path = package.write(tmp_path / "tiny.mindvec", manifest, tensors, signers=[key])
    store = TrustStore([TrustEntry("tester", key.public_key)])
    assert verify(path, policy=Policy(trust=store)).verdict == "verified"
    original = path.read_bytes()
    assert 300 <= len(original) <= 2048, len(original)

    codes: collections.Counter[str] = collections.Counter()
    tried = 0
    fd = os.open(path, os.O_RDWR)
    try:
        for offset, byte in enumerate(original):
            for bit in range(8):
                os.pwrite(fd, bytes([byte ^ (1 << bit)]), offset)
                report = verify(path, detached=False, policy=Policy(trust=store))
                assert report.verdict != "verified", f"flip of bit {bit} at byte {offset} was accepted"
                assert isinstance(report.error, MindvecError), (offset, bit, report.error)
                codes[report.error.code] += 1
                tried += 1
            os.pwrite(fd, bytes([byte]), offset)
    finally:
        os.close(fd)
    assert path.read_bytes() == original
    assert verify(path, policy=Policy(trust=store)).verdict == "verified"
    assert tried == 8 * len(original)
    summary = ", ".join(f"{code}={n}" for code, n in codes.most_common())
    print(f"\ntamper: {tried} single-bit flips of a {len(original)}-byte package, all rejected: {summary}")
