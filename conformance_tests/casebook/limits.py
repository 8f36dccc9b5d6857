"""Conformance cases: limits."""

from __future__ import annotations

import copy
import struct
from dataclasses import replace
from typing import Any

import msgpack

from conformance_tests.craft.keys import KEYS
from conformance_tests.craft.manifests import (
    MODEL_A,
    STEER,
    arr,
    manifest,
    minimal,
    package_info,
    raw_package,
    site,
    vector,
    write,
)
from conformance_tests.craft.surgery import mp_map_raw, mp_str, split
from conformance_tests.suite import Suite


def manifest_length(data: bytes) -> int:
    return int(struct.unpack_from("<Q", data, 16)[0])


def count_containers(data: bytes) -> int:
    """Maps and arrays in a package's manifest, counted with plain msgpack hooks."""
    count = [0]

    def one(value: Any) -> Any:
        count[0] += 1
        return value

    manifest_bytes = data[32 : 32 + manifest_length(data)]
    msgpack.unpackb(manifest_bytes, raw=False, list_hook=one, object_pairs_hook=lambda p: one(dict(p)))
    return count[0]


def depth_value(levels: int) -> Any:
    """A value nested ``levels`` containers deep (alternating arrays and maps)."""
    value: Any = "bottom"
    for i in range(levels):
        value = [value] if i % 2 == 0 else {"k": value}
    return value


def padded_minimal_to(remainder: int) -> bytes:
    """A minimal package whose 32 + manifest_len is ``remainder`` mod 64."""
    for extra in range(200):
        data = minimal(description="x" * extra)
        if (32 + struct.unpack_from("<Q", data, 16)[0]) % 64 == remainder:
            return data
    raise AssertionError("no description length gives that padding")


def limits(s: Suite) -> None:
    man = manifest()
    man["extensions"] = {"org.example.deep": depth_value(30)}  # manifest 1, extensions 2, value 3..32
    s.valid(
        "valid-depth-32",
        ["depth", "ext-ignore"],
        "Nesting exactly 32 levels deep (the manifest map is level 1), inside a non-critical extension.",
        ["Depth", "Limits", "Extension"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    wide = "\u00e9" * 8000 + "\U0001f9ed" * 192  # 8192 characters, 16768 UTF-8 bytes
    man = manifest()
    man["package"] = package_info(
        package_id="conformance/" + "l" * 116,
        name="N" * 256,
        description=wide,
        intended_effect="e" * 8192,
    )
    s.valid(
        "valid-longest-strings",
        ["manifest-schema"],
        "package.id of 128, name of 256 and description and intended_effect of 8192 characters"
        " (the description multi-byte: maxLength counts characters, not bytes).",
        ["Limits", "Unicode"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    models = {f"m{i:02d}": {**copy.deepcopy(MODEL_A), "hidden_size": 1} for i in range(16)}
    vec = vector(model="m15", sites=[(site(1), "steer.one")])
    s.valid(
        "valid-sixteen-models",
        ["manifest-schema"],
        "16 models, the most the schema allows.",
        ["Limits"],
        write(manifest([vec], models=models), {"steer.one": arr([2.0])}),
    )
    s.valid(
        "valid-sixteen-signatures",
        ["sig-block", "sig-sort"],
        "16 signature entries, the most allowed, sorted by keyid (decode does not check them).",
        ["Limits", "SignatureBlock"],
        minimal(signers=list(KEYS)),
    )
    s.valid(
        "valid-no-padding",
        ["padding", "layout"],
        "A manifest whose end falls on a 64-byte boundary: the payload follows with no padding at all.",
        ["Padding", "Structure"],
        padded_minimal_to(0),
    )
    s.valid(
        "valid-padding-63",
        ["padding", "layout"],
        "A manifest that ends one byte past a 64-byte boundary: 63 zero padding bytes.",
        ["Padding", "Structure"],
        padded_minimal_to(1),
    )
    man = manifest()
    man["extensions"] = {"org.example.deep": depth_value(31)}
    s.reject(
        "malformed-depth-33",
        "depth",
        ["depth"],
        "Nesting 33 levels deep, one more than the limit, inside a non-critical extension.",
        ["Depth", "Limits"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
    for case_id, extra in (("valid-containers-at-budget", 0), ("malformed-containers-over-budget", 1)):
        man = manifest()
        man["extensions"] = {"org.example.many": []}
        base = count_containers(raw_package(man, {"steer.l1": arr(STEER)}))
        man["extensions"]["org.example.many"] = [{}] * (1024 - base + extra)
        data = raw_package(man, {"steer.l1": arr(STEER)})
        total = count_containers(data)
        assert total == 1024 + extra and manifest_length(data) // 16 < 1024, (total, manifest_length(data))
        why = (
            f"{total} maps and arrays in a {manifest_length(data)}-byte manifest (the budget is "
            "max(1024, manifest_len / 16) = 1024)"
        )
        if extra:
            s.reject(case_id, "bounds", ["containers"], why + ": one too many.", ["Limits", "Bounds"], data)
        else:
            s.valid(case_id, ["containers", "ext-ignore"], why + ": exactly the budget.", ["Limits"], data)
    parts = split(minimal())
    deep = b"\x91" * 100_000 + b"\xc0"
    ext = mp_map_raw([(mp_str("extensions"), mp_map_raw([(mp_str("org.example.deep"), deep)]))])
    # splice the deep extension in front of "format" (keys stay sorted: "extensions" < "format")
    man_bytes = parts.manifest
    count = man_bytes[0] & 0x0F
    hostile = bytes([0x80 | (count + 1)]) + ext[1:] + man_bytes[1:]
    s.reject(
        "malformed-depth-100000",
        "depth",
        ["depth"],
        "An extension value of 100000 nested one-element arrays: a recursive decoder must not overflow its "
        "stack.",
        ["Depth", "HostileLength"],
        replace(parts, manifest=hostile).build(),
    )
    man = manifest()
    man["models"] = {f"m{i:02d}": copy.deepcopy(MODEL_A) for i in range(17)}
    man["vectors"] = [vector(model="m00")]
    s.reject(
        "invalid-seventeen-models",
        "schema",
        ["manifest-schema"],
        "17 models, one more than the schema allows.",
        ["Limits", "Schema"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["package"] = package_info(description="\u00e9" * 8193)
    s.reject(
        "invalid-description-too-long",
        "schema",
        ["manifest-schema"],
        "A description of 8193 characters, one more than maxLength.",
        ["Limits", "Schema", "Unicode"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
