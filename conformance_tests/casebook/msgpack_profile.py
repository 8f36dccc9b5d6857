"""Conformance cases: canonical msgpack."""

from __future__ import annotations

import copy
import struct
from typing import Any

import msgpack

from conformance_tests.craft.manifests import minimal
from conformance_tests.craft.surgery import (
    encode_map_unsorted,
    manifest_of,
    mp_str,
    packb_sorted,
    splice,
    split,
    with_raw_manifest,
)
from conformance_tests.suite import Suite


def canonical_msgpack(s: Suite) -> None:
    base = minimal()
    parts = split(base)
    man = manifest_of(parts)
    mb = parts.manifest

    def case(
        case_id: str, code: str, topics: list[str], why: str, flags: list[str], manifest_bytes: bytes
    ) -> None:
        s.reject(case_id, code, topics, why, flags, with_raw_manifest(parts, manifest_bytes).build())

    case(
        "malformed-non-canonical-unsorted-keys",
        "non-canonical",
        ["reencode"],
        "The top-level manifest keys in reverse order.",
        ["Canonical"],
        encode_map_unsorted(man),
    )
    case(
        "malformed-non-canonical-int-uint16",
        "non-canonical",
        ["reencode"],
        "package.version 1 encoded as uint16 (cd 00 01) instead of a positive fixint.",
        ["Canonical"],
        splice(mb, b"\xa7version\x01", b"\xa7version\xcd\x00\x01"),
    )
    case(
        "malformed-non-canonical-float32",
        "non-canonical",
        ["reencode"],
        "scale 4.0 encoded as float32 (ca) instead of float64.",
        ["Canonical"],
        splice(mb, b"\xa5scale\xcb" + struct.pack(">d", 4.0), b"\xa5scale\xca" + struct.pack(">f", 4.0)),
    )
    case(
        "malformed-non-canonical-str8",
        "non-canonical",
        ["reencode"],
        "The string 'add' encoded as str8 (d9 03) instead of fixstr.",
        ["Canonical"],
        splice(mb, b"\xa9operation\xa3add", b"\xa9operation\xd9\x03add"),
    )
    case(
        "malformed-non-canonical-map16",
        "non-canonical",
        ["reencode"],
        "The calibration map encoded as map16 (de 00 02) instead of fixmap.",
        ["Canonical"],
        splice(mb, b"\x82\xa9mean_norm", b"\xde\x00\x02\xa9mean_norm"),
    )
    count = mb[0] & 0x0F
    first_key = mp_str("format") + mp_str("1.0")
    assert mb[1:].startswith(first_key)
    case(
        "malformed-duplicate-key-manifest",
        "duplicate-key",
        ["dup-key"],
        "The top-level map holds the key format twice, with the same value.",
        ["DuplicateKey"],
        bytes([0x80 | (count + 1)]) + first_key + mb[1:],
    )
    case(
        "malformed-duplicate-key-nested",
        "duplicate-key",
        ["dup-key"],
        "package holds version twice, once 1 and once 9 (a last-wins decoder would see 9).",
        ["DuplicateKey"],
        splice(
            splice(mb, b"\x85\xabdescription", b"\x86\xabdescription"),
            b"\xa7version\x01",
            b"\xa7version\x01\xa7version\x09",
        ),
    )
    case(
        "malformed-msgpack-reserved-byte",
        "msgpack",
        ["valid-msgpack"],
        "The manifest starts with 0xc1, a byte msgpack never uses.",
        ["Canonical"],
        b"\xc1" + mb[1:],
    )
    case(
        "malformed-msgpack-bytes-after-object",
        "msgpack",
        ["occupy"],
        "A nil byte follows the manifest map inside manifest_len.",
        ["Canonical"],
        mb + b"\xc0",
    )
    case(
        "malformed-msgpack-truncated-object",
        "msgpack",
        ["occupy"],
        "The manifest section ends one byte before the map does.",
        ["Canonical", "Truncation"],
        mb[:-1],
    )
    case(
        "malformed-msgpack-str32-huge-length",
        "msgpack",
        ["occupy"],
        "A manifest that is a str32 header declaring 2^32-1 bytes followed by one byte.",
        ["Canonical", "HostileLength"],
        b"\xdb\xff\xff\xff\xff" + b"x",
    )

    def ext_case(case_id: str, code: str, topics: list[str], why: str, value: Any) -> None:
        hostile = copy.deepcopy(man)
        hostile["extensions"] = {"org.example.x": value}
        case(case_id, code, topics, why, ["Canonical", "Extension"], packb_sorted(hostile))

    ext_case(
        "malformed-msgpack-timestamp",
        "msgpack",
        ["ext"],
        "A msgpack timestamp (ext -1) inside an extension value.",
        msgpack.Timestamp(1_700_000_000, 0),
    )
    ext_case(
        "malformed-msgpack-nan",
        "msgpack",
        ["finite"],
        "A NaN float64 inside an extension value.",
        float("nan"),
    )
    ext_case(
        "malformed-msgpack-integer-key",
        "msgpack",
        ["map-keys"],
        "A map with an integer key inside an extension value.",
        {1: "one"},
    )
    hostile = copy.deepcopy(man)
    hostile["extensions"] = {"org.example.x": "@@@@"}
    case(
        "malformed-msgpack-invalid-utf8",
        "msgpack",
        ["utf8"],
        "A string holding the bytes ff fe (not UTF-8) inside an extension value.",
        ["Canonical", "Unicode"],
        splice(packb_sorted(hostile), b"\xa4@@@@", b"\xa4\xff\xfe@@"),
    )
