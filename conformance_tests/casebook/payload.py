"""Conformance cases: embedded safetensors payload."""

from __future__ import annotations

import hashlib
from typing import Any

from conformance_tests.casebook.structure import u64
from conformance_tests.craft.manifests import STEER, arr, header_json, manifest, raw_package, site, vector
from conformance_tests.craft.surgery import join_payload
from conformance_tests.suite import Suite


def two_site_manifest() -> dict[str, Any]:
    return manifest([vector(sites=[(site(0), "t.a"), (site(1), "t.b")])])


A_BYTES = arr(STEER).tobytes()
B_BYTES = arr(STEER * 2).tobytes()


def ent(dtype: str, shape: list[Any], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


GOOD_HEADER = [("t.a", ent("F32", [4], 0, 16)), ("t.b", ent("F32", [4], 16, 32))]


def payload(s: Suite) -> None:
    def case(
        case_id: str, code: str | None, topics: list[str], why: str, flags: list[str], body: bytes
    ) -> None:
        digests = {"t.a": hashlib.sha256(A_BYTES).digest(), "t.b": hashlib.sha256(B_BYTES).digest()}
        data = raw_package(two_site_manifest(), payload=body, digests=digests)
        if code is None:
            s.valid(case_id, topics, why, flags, data)
        else:
            s.reject(case_id, code, topics, why, flags, data)

    good = header_json(GOOD_HEADER)
    data = A_BYTES + B_BYTES
    case(
        "valid-payload-header-order-differs",
        None,
        ["contig", "header-digest"],
        "The JSON header lists t.b before t.a while t.a's data comes first: order in the header is free.",
        ["Safetensors"],
        join_payload(header_json(GOOD_HEADER[::-1]), data),
    )
    assert (len(good) + 8) % 64 != 0
    case(
        "malformed-payload-header-not-aligned",
        "payload",
        ["n56"],
        "The safetensors header length N is not 56 mod 64 (no space padding), so tensor data is not "
        "64-aligned.",
        ["Safetensors", "Padding"],
        join_payload(good, data, pad=False),
    )
    case(
        "malformed-payload-header-padding-nul",
        "payload",
        ["hdrpad"],
        "The safetensors header is padded with NUL bytes instead of spaces.",
        ["Safetensors", "Padding"],
        join_payload(good + b"\x00" * ((56 - len(good)) % 64), data, pad=False),
    )
    offsets = b'"data_offsets":[0,16]'
    assert good.count(offsets) == 1, good
    for case_id, number, why in (
        ("malformed-payload-offset-negative-zero", b"[-0,16]", "-0"),
        ("malformed-payload-offset-exponent", b"[0,1.6e1]", "1.6e1 (an exponent)"),
        ("malformed-payload-offset-fraction", b"[0,16.0]", "16.0 (a fraction)"),
    ):
        case(
            case_id,
            "payload",
            ["json-number"],
            f"A data_offsets entry of t.a is written {why}: the header's numbers are plain "
            "non-negative integers (no sign, fraction or exponent).",
            ["Safetensors"],
            join_payload(good.replace(offsets, b'"data_offsets":' + number), data),
        )
    case(
        "malformed-payload-metadata",
        "payload",
        ["metadata"],
        "The safetensors header holds __metadata__.",
        ["Safetensors"],
        join_payload(header_json([("__metadata__", {"format": "pt"}), *GOOD_HEADER]), data),
    )
    case(
        "malformed-payload-overlapping-offsets",
        "payload",
        ["contig"],
        "t.a is [0, 16) and t.b is [8, 24): the tensors overlap.",
        ["Safetensors", "HostileLength"],
        join_payload(
            header_json([("t.a", ent("F32", [4], 0, 16)), ("t.b", ent("F32", [4], 8, 24))]), data[:24]
        ),
    )
    case(
        "malformed-payload-reversed-offsets",
        "payload",
        ["entry-keys"],
        "t.b's data_offsets are [32, 16]: the end comes before the beginning.",
        ["Safetensors"],
        join_payload(header_json([("t.a", ent("F32", [4], 0, 16)), ("t.b", ent("F32", [4], 32, 16))]), data),
    )
    case(
        "malformed-payload-gap",
        "payload",
        ["contig"],
        "Four unused bytes between t.a and t.b.",
        ["Safetensors"],
        join_payload(
            header_json([("t.a", ent("F32", [4], 0, 16)), ("t.b", ent("F32", [4], 20, 36))]),
            A_BYTES + b"\0" * 4 + B_BYTES,
        ),
    )
    case(
        "malformed-payload-bytes-after-last-tensor",
        "payload",
        ["contig"],
        "Four bytes after the last tensor, inside payload_len.",
        ["Safetensors", "Trailing"],
        join_payload(good, data + b"\0" * 4),
    )
    case(
        "malformed-payload-size-mismatch",
        "payload",
        ["nbytes"],
        "t.a has shape [4] of F32 (16 bytes) but data_offsets [0, 12].",
        ["Safetensors"],
        join_payload(
            header_json([("t.a", ent("F32", [4], 0, 12)), ("t.b", ent("F32", [4], 12, 28))]), data[:28]
        ),
    )
    case(
        "malformed-payload-shape-overflow",
        "payload",
        ["nbytes"],
        "t.a has shape [2^62, 2^62]: the element count overflows 64 bits (a wrapping product must not "
        "match).",
        ["Safetensors", "HostileLength"],
        join_payload(header_json([("t.a", ent("F32", [2**62, 2**62], 0, 16)), GOOD_HEADER[1]]), data),
    )
    case(
        "malformed-payload-not-json",
        "payload",
        ["hdrpad"],
        "The safetensors header is not JSON.",
        ["Safetensors"],
        join_payload(b'{"t.a": nope}', data),
    )
    case(
        "malformed-payload-extra-entry-key",
        "payload",
        ["entry-keys"],
        "A header entry has a fourth key besides dtype, shape and data_offsets.",
        ["Safetensors"],
        join_payload(header_json([("t.a", {**ent("F32", [4], 0, 16), "offset": 0}), GOOD_HEADER[1]]), data),
    )
    case(
        "malformed-duplicate-key-payload-header",
        "duplicate-key",
        ["json-dup"],
        "The safetensors header names t.a twice (a last-wins JSON parser would see the second).",
        ["Safetensors", "DuplicateKey"],
        join_payload(header_json([("t.a", ent("F32", [4], 16, 32)), *GOOD_HEADER]), data),
    )
    dup_entry = (
        b'{"t.a":{"dtype":"F16","dtype":"F32","shape":[4],"data_offsets":[0,16]},"t.b":'
        + header_json([("x", GOOD_HEADER[1][1])])[5:]
    )
    case(
        "malformed-duplicate-key-payload-entry",
        "duplicate-key",
        ["json-dup"],
        "A header entry holds dtype twice.",
        ["Safetensors", "DuplicateKey"],
        join_payload(dup_entry, data),
    )
    padded = join_payload(good, data)
    case(
        "malformed-bounds-payload-header-len-2pow63",
        "bounds",
        ["nbound"],
        "The safetensors header length N is 2^63.",
        ["Safetensors", "HostileLength", "Bounds"],
        u64(2**63) + padded[8:],
    )
    case(
        "malformed-bounds-payload-header-len-beyond-payload",
        "bounds",
        ["nbound"],
        "The safetensors header length N (1080, which is 56 mod 64) runs past the end of the payload.",
        ["Safetensors", "Bounds"],
        u64(1080) + padded[8:],
    )
    case(
        "invalid-dtype-i32",
        "dtype",
        ["dtype"],
        "A tensor of dtype I32, which safetensors knows but mindvec does not allow.",
        ["Dtype", "Safetensors"],
        join_payload(header_json([("t.a", ent("I32", [4], 0, 16)), GOOD_HEADER[1]]), data),
    )
