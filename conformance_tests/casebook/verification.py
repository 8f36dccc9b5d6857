"""Conformance cases: signatures and trust (verify)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import msgpack

from conformance_tests.craft.keys import KEYS, entry, state_text, trust_text
from conformance_tests.craft.manifests import minimal
from conformance_tests.craft.summary import identity_of
from conformance_tests.craft.surgery import flip, packb_sorted, split
from conformance_tests.suite import Suite
from mindvec.keys import PublicKey
from mindvec.signing import keyid, pae
from mindvec.trust import TrustEntry

L_ED25519 = 2**252 + 27742317777372353535851937790883648493


def _scalar(n: int) -> bytes:
    return (n % L_ED25519).to_bytes(32, "little")


def strict_one_at_a_time(rej: Any, parts: Any, manifest_bytes: bytes) -> None:
    """R-66 checks one at a time: each signature satisfies the cofactorless equation
    [S]B = R + [k]A, so only the strict check named in its id can refuse it."""
    from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp as base_mult

    message = pae(manifest_bytes)
    identity = bytes([1]) + bytes(31)

    def entry_block(sig: bytes, key_id: bytes) -> bytes:
        return packb_sorted([{"alg": "ed25519", "keyid": key_id, "sig": sig}])

    def k_of(r: bytes, a: bytes) -> int:
        return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L_ED25519

    # a small-order key (the neutral point) with an ordinary R: [S]B = R holds for S = r
    r = 0x1234567
    big_r = base_mult(_scalar(r))
    weak = TrustEntry("weak", PublicKey(identity), comment="small-order key")
    rej(
        "unverified-bad-signature-small-order-key-ordinary-r",
        "bad-signature",
        ["strict"],
        "A trusted small-order public key (the neutral point) with an ordinary R = [r]B and S = r, which"
        " satisfies the verification equation: only the small-order check on the key refuses it.",
        ["Signature", "Trust"],
        replace(parts, sigblock=entry_block(big_r + _scalar(r), keyid(identity))).build(),
        trust=trust_text(weak),
    )
    # an ordinary key A = [a]B with R the neutral point: the equation holds for S = k·a
    a = 0x7654321
    big_a = base_mult(_scalar(a))
    plain = TrustEntry("plain", PublicKey(big_a), comment="ordinary key")
    rej(
        "unverified-bad-signature-small-order-r-ordinary-key",
        "bad-signature",
        ["strict"],
        "An ordinary trusted key A = [a]B and a signature with R = the neutral point and S = k·a mod L,"
        " which satisfies the verification equation: only the small-order check on R refuses it.",
        ["Signature", "Trust"],
        replace(
            parts, sigblock=entry_block(identity + _scalar(k_of(identity, big_a) * a), keyid(big_a))
        ).build(),
        trust=trust_text(plain),
    )


def verification(s: Suite) -> None:
    alice = minimal(signers=["alice"])
    trust_alice = trust_text("alice")

    s.verified(
        "valid-verify-one-signature",
        ["pae", "keyid", "strict", "now"],
        "Signed by alice, whom the trust store trusts for anything.",
        ["Signature", "Trust"],
        alice,
        ["alice"],
        trust_alice,
    )
    three = minimal(signers=["alice", "bob", "carol"])
    s.verified(
        "valid-verify-threshold-2-of-3",
        ["pae", "sig-sort"],
        "Signed by alice, bob and carol, all trusted; threshold 2.",
        ["Signature", "Trust"],
        three,
        ["alice", "bob", "carol"],
        trust_text("alice", "bob", "carol"),
        threshold=2,
    )
    sixteen = minimal(signers=list(KEYS))
    s.verified(
        "valid-verify-sixteen-signatures",
        ["pae", "sig-block"],
        "16 signatures, all trusted; threshold 16.",
        ["Signature", "Trust", "Limits"],
        sixteen,
        list(KEYS),
        trust_text(*KEYS),
        threshold=16,
    )
    s.verified(
        "valid-verify-unknown-cosigner",
        ["pae", "policy"],
        "Signed by alice (trusted) and mallory (unknown): mallory's entry cannot be checked and does not "
        "count.",
        ["Signature", "Trust"],
        minimal(signers=["alice", "mallory"]),
        ["alice"],
        trust_alice,
    )
    s.verified(
        "valid-verify-in-scope",
        ["policy"],
        'alice is trusted only for packages="conformance/*"; the package id is conformance/minimal.',
        ["Trust"],
        alice,
        ["alice"],
        trust_text(entry("alice", packages=("conformance/*",))),
    )
    s.verified(
        "valid-verify-window-start-inclusive",
        ["now", "policy"],
        "now equals alice's valid-after: the window includes its start.",
        ["Trust"],
        alice,
        ["alice"],
        trust_text(entry("alice", valid_after="20260601000000Z", valid_before="20270101000000Z")),
    )
    s.verified(
        "valid-verify-newer-than-state",
        ["rollback"],
        "The state file has seen version 1 of this package id; this is version 2.",
        ["Rollback"],
        minimal(signers=["alice"], version=2),
        ["alice"],
        trust_alice,
        state=state_text(("conformance/minimal", 1, hashlib.sha256(b"v1").digest())),
    )
    s.verified(
        "valid-verify-state-other-id",
        ["rollback"],
        "The state file has seen version 9 of another package id: it does not affect this one (version 1).",
        ["Rollback"],
        alice,
        ["alice"],
        trust_alice,
        state=state_text(("conformance/other", 9, hashlib.sha256(b"other").digest())),
    )
    s.verified(
        "valid-verify-same-version-same-package",
        ["rollback"],
        "The state file has seen exactly this package (same version, same identity) before.",
        ["Rollback"],
        alice,
        ["alice"],
        trust_alice,
        state=state_text(("conformance/minimal", 1, bytes.fromhex(identity_of(alice)))),
    )

    def rej(
        case_id: str, code: str, topics: list[str], why: str, flags: list[str], data: bytes, **kw: Any
    ) -> None:
        kw.setdefault("trust", trust_alice)
        s.reject(case_id, code, topics, why, flags, data, **kw)

    rej(
        "unverified-no-signature",
        "no-signature",
        ["policy"],
        "An unsigned package.",
        ["Signature"],
        minimal(),
    )
    parts = split(alice)
    rej(
        "unverified-bad-signature-bit-flip",
        "bad-signature",
        ["pae", "strict"],
        "One bit of alice's signature flipped.",
        ["Signature"],
        flip(alice, len(alice) - 16 - 2),
    )
    other = split(minimal(signers=["alice"], package_id="conformance/other"))
    rej(
        "unverified-bad-signature-from-other-package",
        "bad-signature",
        ["pae"],
        "alice's valid signature block copied from another package onto this one.",
        ["Signature"],
        replace(parts, sigblock=other.sigblock).build(),
    )
    mb = parts.manifest
    key = KEYS["alice"]

    def entry_block(sig: bytes, keyid: bytes = key.keyid) -> bytes:
        return packb_sorted([{"alg": "ed25519", "keyid": keyid, "sig": sig}])

    rej(
        "unverified-bad-signature-no-domain-separation",
        "bad-signature",
        ["pae"],
        "alice's raw Ed25519 signature of the manifest bytes, without the PAE framing.",
        ["Signature"],
        replace(parts, sigblock=entry_block(key.sign(mb))).build(),
    )
    rej(
        "unverified-bad-signature-other-payload-type",
        "bad-signature",
        ["pae"],
        "alice's signature over the PAE of the manifest with another payload type.",
        ["Signature"],
        replace(
            parts, sigblock=entry_block(key.sign(pae(mb, b"application/vnd.mindvec.other+msgpack")))
        ).build(),
    )
    rej(
        "unverified-bad-signature-keyid-mismatch",
        "bad-signature",
        ["keyid"],
        "bob's keyid on alice's valid signature; both keys are trusted.",
        ["Signature"],
        replace(parts, sigblock=entry_block(key.sign(pae(mb)), KEYS["bob"].keyid)).build(),
        trust=trust_text("alice", "bob"),
    )
    good_sig = key.sign(pae(mb))
    s_value = int.from_bytes(good_sig[32:], "little") + L_ED25519
    rej(
        "unverified-bad-signature-non-canonical-s",
        "bad-signature",
        ["strict"],
        "alice's signature with S replaced by S + L (the same point, a non-canonical scalar): strict "
        "verification rejects it.",
        ["Signature"],
        replace(parts, sigblock=entry_block(good_sig[:32] + s_value.to_bytes(32, "little"))).build(),
    )
    identity_point = bytes([1]) + bytes(31)  # the neutral element: order 1
    weak = TrustEntry("weak", PublicKey(identity_point), comment="small-order key")
    rej(
        "unverified-bad-signature-small-order-key",
        "bad-signature",
        ["strict"],
        "A trusted small-order public key (the neutral point) and the signature R = neutral point, S = 0,"
        " which a non-strict verifier accepts for every message; libsodium's strict rules reject it.",
        ["Signature", "Trust"],
        replace(parts, sigblock=entry_block(identity_point + bytes(32), keyid(identity_point))).build(),
        trust=trust_text(weak),
    )
    strict_one_at_a_time(rej, parts, mb)
    two = split(minimal(signers=["alice", "bob"]))
    entries = msgpack.unpackb(two.sigblock, raw=False)
    bob_index = [e["keyid"] for e in entries].index(KEYS["bob"].keyid)
    entries[bob_index]["sig"] = bytes(64 - 1) + b"\x01"
    rej(
        "unverified-bad-signature-one-of-two",
        "bad-signature",
        ["pae", "policy-no-relax"],
        "alice's signature is valid, bob's (also trusted) is not: a bad signature by a known key always "
        "fails.",
        ["Signature"],
        replace(two, sigblock=packb_sorted(entries)).build(),
        trust=trust_text("alice", "bob"),
    )
    rej(
        "unverified-untrusted-key",
        "untrusted-key",
        ["policy"],
        "Signed by mallory only; the store trusts alice.",
        ["Trust"],
        minimal(signers=["mallory"]),
    )
    rej(
        "unverified-revoked",
        "revoked",
        ["revoked"],
        "alice is trusted, then revoked in the same store.",
        ["Trust"],
        alice,
        trust=trust_text("alice", revoked=["alice"]),
    )
    rej(
        "unverified-revoked-cosigner",
        "revoked",
        ["revoked"],
        "alice (trusted) and bob (revoked) both signed; threshold 1: any revoked signer fails the package.",
        ["Trust"],
        minimal(signers=["alice", "bob"]),
        trust=trust_text("alice", "bob", revoked=["bob"]),
    )
    rej(
        "unverified-expired-before-window",
        "expired",
        ["now"],
        "alice's entry is valid from 2027-01-01; now is 2026-06-01.",
        ["Trust"],
        alice,
        trust=trust_text(entry("alice", valid_after="20270101000000Z")),
    )
    rej(
        "unverified-expired-end-exclusive",
        "expired",
        ["now"],
        "alice's entry is valid before 2026-06-01T00:00:00Z, which is exactly now (the end is exclusive).",
        ["Trust"],
        alice,
        trust=trust_text(entry("alice", valid_before="20260601000000Z")),
    )
    rej(
        "unverified-scope",
        "scope",
        ["policy"],
        'alice may sign only packages="acme/*"; the package id is conformance/minimal.',
        ["Trust"],
        alice,
        trust=trust_text(entry("alice", packages=("acme/*",))),
    )
    rej(
        "unverified-threshold",
        "threshold",
        ["policy"],
        "Threshold 2 with only alice's signature; alice and bob are trusted.",
        ["Trust"],
        alice,
        trust=trust_text("alice", "bob"),
        threshold=2,
    )
    rej(
        "unverified-rollback",
        "rollback",
        ["rollback"],
        "The state file has seen version 3 of conformance/minimal; this is version 2.",
        ["Rollback"],
        minimal(signers=["alice"], version=2),
        state=state_text(("conformance/minimal", 3, hashlib.sha256(b"v3").digest())),
    )
    rej(
        "unverified-rollback-same-version-other-content",
        "rollback",
        ["rollback"],
        "The state file has seen version 1 of conformance/minimal with different content; this is version 1.",
        ["Rollback"],
        alice,
        state=state_text(("conformance/minimal", 1, hashlib.sha256(b"other content").digest())),
    )
    rej(
        "unverified-digest-mismatch-signed",
        "digest-mismatch",
        ["tensor-digest", "policy-no-relax"],
        "A package with a valid, trusted signature and one flipped bit in its tensor data.",
        ["Digest", "Signature"],
        flip(alice, len(alice) - 16 - len(parts.sigblock) - 1),
    )
