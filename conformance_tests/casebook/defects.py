"""Conformance cases: several defects: the first check decides."""

from __future__ import annotations

import copy
from dataclasses import replace

from conformance_tests.casebook.payload import A_BYTES, B_BYTES, GOOD_HEADER, two_site_manifest
from conformance_tests.casebook.structure import set_u64
from conformance_tests.craft.keys import entry, trust_text
from conformance_tests.craft.manifests import STEER, arr, header_json, manifest, minimal, raw_package, vector
from conformance_tests.craft.surgery import (
    encode_map_unsorted,
    flip,
    join_payload,
    manifest_of,
    sigblock,
    split,
    with_manifest,
    with_raw_manifest,
)
from conformance_tests.suite import Suite


def multiple_defects(s: Suite) -> None:
    base = minimal()
    parts = split(base)
    flags = ["MultipleDefects"]
    bad_padding = b"\x07" + b"\x00" * (64 - (32 + len(parts.manifest)) % 64 - 1)
    s.reject(
        "malformed-multi-magic-version-trailing",
        "magic",
        ["order", "magic"],
        "Wrong magic, major version 2 and trailing bytes: magic is checked first.",
        flags,
        b"\x00" + replace(parts, major=2).build()[1:] + b"\x00" * 16,
    )
    s.reject(
        "malformed-multi-version-flags",
        "version",
        ["order", "major"],
        "Major version 2 and non-zero flags: version comes first.",
        flags,
        replace(parts, major=2, flags=1).build(),
    )
    s.reject(
        "malformed-multi-flags-bounds",
        "flags",
        ["order", "flags"],
        "Non-zero flags and manifest_len 0: flags come before bounds.",
        flags,
        set_u64(replace(parts, flags=4).build(), 16, 0),
    )
    s.reject(
        "malformed-multi-trailing-padding",
        "trailing",
        ["order", "exact"],
        "Trailing bytes (ending in a copy of the trailer) and a non-zero padding byte: the file size is "
        "checked first.",
        flags,
        replace(parts, padding=bad_padding).build() + base[-16:],
    )
    s.reject(
        "malformed-multi-padding-signature-block",
        "padding",
        ["order", "padding"],
        "A non-zero padding byte and a signature block that is a map: padding comes first.",
        flags,
        replace(parts, padding=bad_padding, sigblock=b"\x80").build(),
    )
    man = manifest_of(parts)
    hostile = copy.deepcopy(man)
    hostile["colour"] = "blue"
    s.reject(
        "malformed-multi-non-canonical-schema",
        "non-canonical",
        ["order", "reencode"],
        "A manifest with unsorted keys that also breaks the schema: decoding comes before the schema.",
        flags,
        with_raw_manifest(parts, encode_map_unsorted(hostile)).build(),
    )
    man2 = manifest([vector(model="ghost")])
    data = raw_package(man2, {"steer.l1": arr(STEER)})
    s.reject(
        "invalid-multi-schema-digest",
        "schema",
        ["order", "model-refs"],
        "A schema error and a flipped tensor bit: the schema (step 4) comes before tensor digests (step 6).",
        flags,
        flip(data, len(data) - 16 - 2),
    )
    zero = raw_package(manifest(), {"steer.l1": arr([0.0, 0.0, 0.0, 0.0])})
    s.reject(
        "unverified-multi-digest-value",
        "digest-mismatch",
        ["order", "tensor-digest"],
        "A zero vector whose bytes also fail their digest (one bit flipped, still zero norm): the digest "
        "comes before the value.",
        flags,
        flip(zero, len(zero) - 16 - 2, 0x80),
    )
    # full verification checks tensors in data-offset order: digest, then values, per tensor
    two = two_site_manifest()
    zero_first = raw_package(two, payload=join_payload(header_json(GOOD_HEADER), bytes(16) + B_BYTES))
    s.reject(
        "invalid-multi-value-then-digest",
        "value",
        ["order", "vector-value"],
        "t.a (first in the data) is a zero vector and t.b has a flipped bit: t.a's value fails before t.b's "
        "digest.",
        flags,
        flip(zero_first, len(zero_first) - 16 - 2),
    )
    bad_first = raw_package(two, payload=join_payload(header_json(GOOD_HEADER), A_BYTES + bytes(16)))
    payload_at = len(bad_first) - 16 - 1 - 32
    s.reject(
        "unverified-multi-digest-then-value",
        "digest-mismatch",
        ["order", "tensor-digest"],
        "t.a (first in the data) has a flipped bit and t.b is a zero vector: t.a's digest fails first.",
        flags,
        flip(bad_first, payload_at),
    )
    # verify: signatures (step 2) come before decoding (step 3) and schema (step 4)
    signed = split(minimal(signers=["alice"]))
    unsorted = encode_map_unsorted(manifest_of(signed))
    bad_block = bytearray(sigblock(unsorted, ["alice"]))
    bad_block[-1] ^= 1
    s.reject(
        "unverified-multi-bad-signature-non-canonical",
        "bad-signature",
        ["order", "pae"],
        "A non-canonical manifest whose signature by trusted alice is also wrong: signatures (step 2) come "
        "before decoding.",
        flags + ["Signature", "Canonical"],
        replace(signed, manifest=unsorted, sigblock=bytes(bad_block)).build(),
        trust=trust_text("alice"),
    )
    s.reject(
        "invalid-multi-schema-untrusted",
        "schema",
        ["order", "schema"],
        "A schema error in a package signed only by untrusted mallory: the schema (step 4) comes before "
        "trust (step 7).",
        flags + ["Trust"],
        with_manifest(signed, {**manifest_of(signed), "colour": "blue"}, signers=["mallory"]).build(),
        trust=trust_text("alice"),
    )
    mallory = minimal(signers=["mallory"])
    s.reject(
        "unverified-multi-digest-untrusted",
        "digest-mismatch",
        ["order", "tensor-digest"],
        "Signed only by untrusted mallory and a flipped tensor bit: digests (step 6) come before trust "
        "(step 7).",
        flags + ["Trust", "Digest"],
        flip(mallory, len(mallory) - 16 - len(split(mallory).sigblock) - 1),
        trust=trust_text("alice"),
    )
    s.reject(
        "malformed-multi-trailing-bad-signature",
        "trailing",
        ["order", "exact"],
        "A wrong signature by trusted alice and a duplicated trailer: structure (step 1) comes first.",
        flags + ["Signature", "Trailing"],
        flip(minimal(signers=["alice"]), len(minimal(signers=["alice"])) - 18) + base[-16:],
        trust=trust_text("alice"),
    )
    s.reject(
        "unverified-multi-revoked-expired",
        "revoked",
        ["order", "revoked"],
        "alice is revoked and also outside her validity window: revoked takes precedence.",
        flags + ["Trust"],
        minimal(signers=["alice"]),
        trust=trust_text(entry("alice", valid_before="20260101000000Z"), revoked=["alice"]),
    )
    s.reject(
        "unverified-multi-expired-scope",
        "expired",
        ["order", "now", "policy"],
        "alice is outside her validity window and bob outside his scope: expired takes precedence over "
        "scope.",
        flags + ["Trust"],
        minimal(signers=["alice", "bob"]),
        trust=trust_text(entry("alice", valid_before="20260101000000Z"), entry("bob", packages=("acme/*",))),
    )
