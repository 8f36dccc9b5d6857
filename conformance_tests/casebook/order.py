"""Conformance cases: the order of checks *inside* one step, and rules no other case isolates.

Each order case holds exactly the two defects whose order matters and expects the code of the
check that spec section 10 runs first; the mutants of :mod:`conformance_tests.mutation` that
swap those checks, or drop a rule, fail here.
"""

from __future__ import annotations

import copy
import hashlib
import struct
from dataclasses import replace

from conformance_tests.casebook.common import W34
from conformance_tests.craft.constants import MAGIC
from conformance_tests.craft.manifests import (
    MODEL_A,
    MODEL_B,
    STEER,
    arr,
    header_json,
    manifest,
    mapping,
    raw_package,
    site,
    vector,
)
from conformance_tests.craft.surgery import (
    encode_map_unsorted,
    join_payload,
    manifest_of,
    split,
    split_payload,
    with_manifest,
    with_raw_manifest,
)
from conformance_tests.suite import Suite


def _ent(dtype: object, shape: object, begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def order_within_steps(s: Suite) -> None:
    two = ["MultipleDefects"]
    tensors = {"steer.l1": arr(STEER)}
    # step 1 on a short file: magic, major and flags on the bytes that exist, then truncation
    s.reject(
        "malformed-flags-in-14-byte-file",
        "flags",
        ["short-file", "flags"],
        "14 bytes: magic, major 1, minor 0 and the first flags byte 0x01; the file ends inside the"
        " preamble, but the flags that exist are checked first.",
        ["Structure", "Truncation"],
        MAGIC + struct.pack("<HH", 1, 0) + b"\x01\x00",
    )
    s.reject(
        "malformed-version-partial-major-9-bytes",
        "version",
        ["short-file", "major"],
        "9 bytes: magic and one byte 0x02 of the major version, which already cannot be 1.",
        ["Structure", "Truncation"],
        MAGIC + b"\x02",
    )
    # step 4: R-28 before R-29
    man = manifest([vector(model="ghost")])
    man["extensions"] = {"org.example.must-understand": {"v": 1}}
    man["critical"] = ["org.example.must-understand"]
    s.reject(
        "invalid-multi-critical-before-model-refs",
        "critical-extension",
        ["order", "critical", "model-refs"],
        "An unknown critical extension and a vector naming a model that does not exist: R-28 comes"
        " before R-29.",
        two,
        raw_package(man, tensors),
    )
    # R-30 before R-31
    man = manifest([vector(sites=[(site(2), "steer.l1")]), vector(sites=[(site(0), "steer.l0")])])
    s.reject(
        "invalid-multi-names-before-sites",
        "schema",
        ["order", "unique-names", "site-layer"],
        "Two vectors with the same name, the first at layer 2 of a 2-layer model: R-30 comes before R-31.",
        two,
        raw_package(man, {"steer.l1": arr(STEER), "steer.l0": arr(STEER)}),
    )
    # R-31 before R-32
    ab = {"a": copy.deepcopy(MODEL_A), "b": copy.deepcopy(MODEL_B)}
    man = manifest(vectors=[], models=ab)
    bad_site = mapping("linear", {"weight": "map.weight", "bias": "map.bias"})
    bad_site["source"]["site"] = site(9)
    man["mappings"] = [bad_site]
    s.reject(
        "invalid-multi-sites-before-forms",
        "site",
        ["order", "site-layer", "mapping-forms"],
        "A linear mapping with a bias tensor whose source site is at layer 9 of a 2-layer model: R-31"
        " comes before R-32.",
        two,
        raw_package(man, {"map.weight": W34, "map.bias": arr([0.5, -0.5, 1.0])}),
    )
    # R-33 before R-34
    man = manifest([vector(sites=[(site(0), "steer.l1"), (site(1), "steer.l1")], scale_range=[8.0, 0.0])])
    s.reject(
        "invalid-multi-range-before-references",
        "value",
        ["order", "scale-range", "tensor-refs"],
        "scale_range [8.0, 0.0] and one tensor referenced by two sites: R-33 comes before R-34.",
        two,
        raw_package(man, tensors),
    )
    # a boolean is not an integer
    man = manifest()
    man["package"]["version"] = True
    s.reject(
        "invalid-schema-boolean-as-integer",
        "schema",
        ["types"],
        "package.version is the boolean true: not an integer.",
        ["Schema", "TaggedJson"],
        raw_package(man, tensors),
    )
    # step 5, inside one header entry: the key set, dtype (a string, then allowed), shape, offsets
    _, data = split_payload(raw_payload(tensors))
    entries = [("steer.l1", _ent("I32", "four", 0, 16))]
    header = header_json(entries)
    man = manifest()
    s.reject(
        "invalid-multi-dtype-before-shape",
        "dtype",
        ["order", "dtype", "entry-keys"],
        'A header entry with dtype I32 and the shape "four" (not a list): R-48\'s dtype comes before'
        " R-47's shape.",
        two,
        raw_package(man, payload=join_payload(header, data)),
    )


def isolated_rules(s: Suite) -> None:
    """Rules that other cases only break together with a second rule of the same code."""
    _, data = split_payload(raw_payload({"steer.l1": arr(STEER)}))
    header = header_json([("__metadata__", _ent("F32", [4], 0, 16))])
    man = manifest([vector(sites=[(site(1), "__metadata__")])])
    s.reject(
        "malformed-payload-metadata-shaped-like-a-tensor",
        "payload",
        ["metadata"],
        "The header's __metadata__ is a well-formed F32 [4] tensor entry, and the manifest names and"
        " digests it as the vector's tensor: only R-45 forbids it.",
        ["Safetensors"],
        raw_package(
            man,
            payload=join_payload(header, data),
            digests={"__metadata__": hashlib.sha256(data[:16]).digest()},
        ),
    )


def header_order(s: Suite) -> None:
    """Inside step 5: the header digest before the header is parsed; integers without sign (R-43)."""
    parts = split(raw_package(manifest(), {"steer.l1": arr(STEER)}))
    header, data = split_payload(parts.payload)
    broken = header.replace(b'"steer.l1":', b'"steer.l1";', 1)
    s.reject(
        "unverified-multi-header-digest-before-json",
        "digest-mismatch",
        ["order", "header-digest", "hdrpad"],
        "A header byte changed from ':' to ';' (invalid JSON) after signing, so its digest no longer"
        " matches either: R-42 checks the digest before the header is parsed.",
        ["MultipleDefects", "Safetensors"],
        replace(parts, payload=join_payload(broken, data, pad=False)).build(),
    )
    signed_zero = header_json([("steer.l1", _ent("F32", [4], 0, 16))]).replace(b"[0,16]", b"[-0,16]")
    s.reject(
        "malformed-payload-header-minus-zero",
        "payload",
        ["json-number"],
        "data_offsets [-0,16]: the number -0 has a sign, which the header's integer grammar forbids.",
        ["Safetensors"],
        raw_package(manifest(), payload=join_payload(signed_zero, data)),
    )


def more_orders(s: Suite) -> None:
    """The order questions of issue 14 that the first cases left open, one pair of defects each."""
    two = ["MultipleDefects"]
    tensors = {"steer.l1": arr(STEER)}
    # step 3: occupancy while decoding, before the re-encoding check
    parts = split(raw_package(manifest(), tensors))
    unsorted = encode_map_unsorted(manifest_of(parts))
    s.reject(
        "malformed-multi-occupancy-before-canonical",
        "msgpack",
        ["order", "occupy", "reencode"],
        "A manifest with unsorted keys (non-canonical) followed by one stray byte in its section: R-21 is"
        " checked while decoding, R-22 only after, so the code is msgpack.",
        two + ["Canonical"],
        with_raw_manifest(parts, unsorted + b"\xc0").build(),
    )
    # step 4: the schema before R-27
    man = manifest()
    man["colour"] = "blue"
    s.reject(
        "invalid-multi-schema-before-format",
        "schema",
        ["order", "schema", "format"],
        'Preamble 1.0, format "1.1" and an unknown top-level key: the 1.0 schema refuses the key'
        " before R-27 compares the versions.",
        two + ["Schema"],
        raw_package({**man, "format": "1.1"}, tensors),
    )
    man = manifest([vector(model="ghost", scale_range=[8.0, 0.0])])
    s.reject(
        "invalid-multi-model-refs-before-ranges",
        "schema",
        ["order", "model-refs", "scale-range"],
        "A vector naming a missing model, with scale_range [8.0, 0.0]: R-29 comes before R-33.",
        two,
        raw_package(man, tensors),
    )
    man = manifest([vector(sites=[(site(2), "steer.l1"), (site(1), "steer.l1")])])
    s.reject(
        "invalid-multi-sites-before-references",
        "site",
        ["order", "site-layer", "tensor-refs"],
        "A site at layer 2 of a 2-layer model, and one tensor referenced by two sites: R-31 comes before"
        " R-34.",
        two + ["Site"],
        raw_package(man, tensors),
    )
    # step 5: R-41 before before R-51
    _, data = split_payload(raw_payload(tensors))
    unpadded = header_json([("steer.l1", _ent("F32", [4], 0, 16))])
    payload = join_payload(unpadded, data, pad=False)
    built = split(raw_package(manifest(), payload=payload))
    man = manifest_of(built)
    man["payload"]["header_sha256"] = hashlib.sha256(b"another header").digest()
    s.reject(
        "malformed-multi-alignment-before-header-digest",
        "payload",
        ["order", "n56", "header-digest"],
        "A safetensors header length that is not 56 mod 64, and a header digest that does not match: R-41"
        " comes before R-42.",
        two + ["Safetensors"],
        with_manifest(built, man).build(),
    )
    broken = header_json([("stray", {"dtype": "F32", "shape": [4]})])
    s.reject(
        "malformed-multi-entry-before-names",
        "payload",
        ["order", "entry-keys", "tensor-refs"],
        "A header entry 'stray' without data_offsets, a name the manifest does not list either: R-47"
        " comes before R-51.",
        two + ["Safetensors"],
        raw_package(manifest(vectors=[]), payload=join_payload(broken, b""), digests={}),
    )


def raw_payload(tensors: dict[str, object]) -> bytes:
    from mindvec.payload import build_payload, to_tensor_data

    return build_payload({name: to_tensor_data(value) for name, value in tensors.items()})
