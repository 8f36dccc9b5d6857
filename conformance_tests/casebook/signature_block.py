"""Conformance cases: signature block structure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from conformance_tests.craft.keys import KEYS
from conformance_tests.craft.manifests import minimal
from conformance_tests.craft.surgery import mp_str, packb_sorted, split
from conformance_tests.suite import Suite


def signature_block(s: Suite) -> None:
    parts = split(minimal())
    mb = parts.manifest

    def sig_entry(name: str) -> dict[str, Any]:
        return {"alg": "ed25519", "keyid": KEYS[name].keyid, "sig": KEYS[name].sign_manifest(mb).sig}

    pair = sorted([sig_entry("alice"), sig_entry("bob")], key=lambda e: e["keyid"])

    def case(case_id: str, why: str, block: bytes, flags: tuple[str, ...] = ()) -> None:
        s.reject(
            case_id,
            "signature-block",
            ["sig-block"],
            why,
            ["SignatureBlock", *flags],
            replace(parts, sigblock=block).build(),
        )

    case(
        "malformed-signature-block-not-array",
        "The signature block is an empty map instead of an array.",
        b"\x80",
    )
    s.reject(
        "malformed-signature-block-unsorted",
        "signature-block",
        ["sig-sort"],
        "Two entries in descending keyid order.",
        ["SignatureBlock"],
        replace(parts, sigblock=packb_sorted(pair[::-1])).build(),
    )
    s.reject(
        "malformed-signature-block-duplicate-keyid",
        "signature-block",
        ["sig-sort"],
        "The same entry twice.",
        ["SignatureBlock"],
        replace(parts, sigblock=packb_sorted([pair[0], pair[0]])).build(),
    )
    case(
        "malformed-signature-block-alg",
        "An entry with alg ed448.",
        packb_sorted([{**pair[0], "alg": "ed448"}]),
    )
    case(
        "malformed-signature-block-sig-63-bytes",
        "A 63-byte signature.",
        packb_sorted([{**pair[0], "sig": pair[0]["sig"][:63]}]),
    )
    case(
        "malformed-signature-block-extra-key",
        "An entry with a fourth key.",
        packb_sorted([{**pair[0], "note": "hi"}]),
    )
    entries = sorted([sig_entry(name) for name in KEYS], key=lambda e: e["keyid"])
    entries.append({"alg": "ed25519", "keyid": b"\xff" * 16, "sig": b"\x00" * 64})
    case(
        "malformed-signature-block-17-entries",
        "17 entries, one more than allowed.",
        packb_sorted(entries),
        ("Limits",),
    )
    unsorted_map = (
        b"\x91\x83" + mp_str("sig") + packb_sorted(pair[0]["sig"]) + mp_str("alg") + mp_str("ed25519")
    )
    unsorted_map += mp_str("keyid") + packb_sorted(pair[0]["keyid"])
    case(
        "malformed-signature-block-non-canonical",
        "An entry map with its keys out of order.",
        unsorted_map,
        ("Canonical",),
    )
    bad = bytearray(packb_sorted([sig_entry("alice")]))
    bad[-1] ^= 0x01
    s.valid(
        "valid-decode-does-not-check-signatures",
        ["sig-block"],
        "A well-formed signature block whose signature is wrong: decode (a plain reader) does not verify it.",
        ["SignatureBlock", "Signature"],
        replace(parts, sigblock=bytes(bad)).build(),
    )
