"""The conformance cases, group by group (run through ``generate.py``).

Each case states its topics (mapped to spec requirement ids in ``generate.TOPICS``), a
description, flags, the bytes and the expected result. Hostile cases start from bytes
the project's writer produced and change as little as possible, so that each case has
exactly one defect unless its flags say ``MultipleDefects``.
"""

from __future__ import annotations

import copy
import hashlib
import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import msgpack
import numpy as np

from conformance_tests.generate import (
    KEYS,
    MODEL_A,
    MODEL_B,
    MODEL_T5,
    STEER,
    Suite,
    arr,
    bf16,
    encode_map_unsorted,
    entry,
    flip,
    header_json,
    identity_of,
    join_payload,
    manifest,
    manifest_of,
    mapping,
    minimal,
    mp_map_raw,
    mp_str,
    package_info,
    packb_sorted,
    provenance,
    raw_package,
    sigblock,
    site,
    splice,
    split,
    split_payload,
    state_text,
    trust_text,
    vector,
    with_manifest,
    with_raw_manifest,
    write,
)
from mindvec.keys import PublicKey
from mindvec.signing import keyid, pae
from mindvec.trust import TrustEntry

GROUPS: list[Callable[[Suite], None]] = []


def group(fn: Callable[[Suite], None]) -> Callable[[Suite], None]:
    GROUPS.append(fn)
    return fn


def ab_models() -> dict[str, Any]:
    return {"a": copy.deepcopy(MODEL_A), "b": copy.deepcopy(MODEL_B)}


W34 = np.arange(12, dtype=np.float32).reshape(3, 4) / 8 - 0.5
ORTHO = np.eye(3, 4, dtype=np.float32)


def mapping_package(form: str, roles: dict[str, Any], **extra: Any) -> bytes:
    tensors = {f"map.{role}": value for role, value in roles.items()}
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [mapping(form, {role: f"map.{role}" for role in roles}, **extra)]
    return write(man, tensors)


# ---------------------------------------------------------------- valid content


@group
def valid_content(s: Suite) -> None:
    s.valid(
        "valid-minimal-f32",
        ["manifest-schema", "payload-contig", "tensor-digest", "header-digest"],
        "The smallest useful package: one model, one F32 add vector at one site, unsigned.",
        ["Dtype", "Operation"],
        minimal(),
    )
    for dtype, tensor in (
        ("f16", arr(STEER, "float16")),
        ("bf16", bf16(STEER)),
        ("f64", arr(STEER, "float64")),
    ):
        s.valid(
            f"valid-dtype-{dtype}",
            ["dtype", "payload-nbytes", "tensor-digest"],
            f"One vector stored as {dtype.upper()}.",
            ["Dtype"],
            write(manifest(), {"steer.l1": tensor}),
        )
    for operation in ("project_out", "clamp"):
        s.valid(
            f"valid-operation-{operation.replace('_', '-')}",
            ["manifest-schema"],
            f"A vector with operation {operation}.",
            ["Operation"],
            write(
                manifest([vector(operation=operation, scale=-1.5, scale_range=[-3.0, 3.0])]),
                {"steer.l1": arr(STEER)},
            ),
        )
    multi = vector(
        sites=[
            (site(0, "resid_pre"), "steer.l0.pre"),
            (site(0, "attn_out"), "steer.l0.attn"),
            (site(0, "mlp_out"), "steer.l0.mlp"),
            (site(1), "steer.l1"),
        ],
        positions=3,
        method={"kind": "mean_diff", "params": {"layers": 2, "normalize": True, "note": "x"}, "dataset": {
            "name": "contrast pairs", "sha256": hashlib.sha256(b"pairs").digest(), "samples": 32}},
    )  # fmt: skip
    s.valid(
        "valid-vector-four-sites",
        ["site-layer", "resid-pre", "manifest-schema"],
        "One vector acting on four sites (resid_pre only at layer 0), with an integer start position.",
        ["Site"],
        write(
            manifest([multi]),
            {
                name: arr(STEER * (i + 1))
                for i, name in enumerate(["steer.l0.pre", "steer.l0.attn", "steer.l0.mlp", "steer.l1"])
            },
        ),
    )
    t5 = vector(
        model="t5",
        sites=[
            (site(1, "resid_post", "encoder"), "enc.l1"),
            (site(0, "resid_pre", "encoder"), "enc.l0"),
            (site(0, "cross_attn_out", "decoder"), "dec.l0.cross"),
        ],
    )
    s.valid(
        "valid-encoder-decoder-sites",
        ["site-layer", "cross-attn", "resid-pre"],
        "Encoder-stack sites and a decoder cross_attn_out site on a model with num_encoder_layers.",
        ["Site"],
        write(
            manifest([t5], models={"t5": copy.deepcopy(MODEL_T5)}),
            {n: arr(STEER) for n in ["enc.l1", "enc.l0", "dec.l0.cross"]},
        ),
    )
    big = {
        "model_type": "llama",
        "hidden_size": 2,
        "num_layers": 4096,
        "source": {"kind": "local", "note": "deep"},
    }
    s.valid(
        "valid-site-last-layer",
        ["site-layer"],
        "A site at layer 4095 of a 4096-layer model: the largest layer index the schema allows.",
        ["Site", "Limits"],
        write(
            manifest([vector(sites=[(site(4095), "steer.last")])], models={"a": big}),
            {"steer.last": arr([1.0, -1.0])},
        ),
    )
    forms: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
        ("linear", "linear", {"weight": W34}, {}),
        ("affine-bias", "affine", {"weight": W34, "bias": arr([0.5, -0.5, 1.0])}, {}),
        (
            "affine-means",
            "affine",
            {"weight": W34, "source_mean": arr(STEER), "target_mean": arr([1.0, 2.0, 3.0])},
            {},
        ),
        (
            "orthogonal-scale-means",
            "orthogonal",
            {"weight": ORTHO, "source_mean": arr(STEER), "target_mean": arr([1.0, 2.0, 3.0])},
            {"scale": 1.25},
        ),
        ("low-rank", "low_rank", {"u": arr(W34[:, :2]), "v": arr(W34.T[:, :2])}, {}),
        (
            "low-rank-bias",
            "low_rank",
            {"u": arr(W34[:, :2]), "v": arr(W34.T[:, :2]), "bias": arr([0.5, 0.5, 0.5])},
            {},
        ),
        (
            "low-rank-means",
            "low_rank",
            {
                "u": arr(W34[:, :1]),
                "v": arr(W34.T[:, :1]),
                "source_mean": arr(STEER),
                "target_mean": arr([1.0, 2.0, 3.0]),
            },
            {},
        ),
    ]
    for label, form, roles, extra in forms:
        s.valid(
            f"valid-mapping-{label}",
            ["mapping-forms", "shape", "manifest-schema"],
            f"A {form} mapping from a 4-wide model to a 3-wide model with tensors {sorted(roles)}.",
            ["Mapping"],
            mapping_package(form, roles, **extra),
        )
    # a translated vector with correspondences and full provenance
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [mapping("affine", {"weight": "map.weight", "bias": "map.bias"})]
    man["vectors"] = [
        vector(name="steer-a", sites=[(site(1), "steer.a")], method={"kind": "mean_diff"}),
        vector(
            name="steer-b",
            model="b",
            sites=[(site(2), "steer.b")],
            method={"kind": "translated"},
            translation={
                "source_model": "a",
                "mapping": "a-to-b",
                "norm_ratio": 0.8,
                "recommended_scale": 5.0,
            },
        ),
    ]
    man["correspondences"] = [
        {
            "source": {"model": "a", "site": site(0)},
            "target": {"model": "b", "site": site(1)},
            "score": 0.5,
            "metric": "linear_cka",
        },
        {
            "source": {"model": "a", "site": site(1)},
            "target": {"model": "b", "site": site(2)},
            "score": 0.875,
            "metric": "ridge_r2",
        },
    ]
    man["provenance"] = provenance(
        datasets=[{"name": "pairs", "sha256": hashlib.sha256(b"pairs").digest(), "samples": 64}],
        parents=[
            {"id": hashlib.sha256(b"parent").digest(), "package_id": "conformance/parent", "role": "vector"}
        ],
        seed=7,
        hyperparameters={"alpha": 0.5, "method": "ridge", "center": True},
    )
    tensors = {
        "map.weight": W34,
        "map.bias": arr([0.5, -0.5, 1.0]),
        "steer.a": arr(STEER),
        "steer.b": arr(W34 @ STEER),
    }
    s.valid(
        "valid-translated-vector-with-correspondences",
        ["manifest-schema", "model-refs", "tensor-refs", "shape"],
        "Two models, a mapping, a vector and its translation into the other model, correspondences and full "
        "provenance.",
        ["Mapping", "Semantics"],
        write(man, tensors),
    )
    man = manifest([vector(scale=2, scale_range=[0, 10])])
    s.valid(
        "valid-integer-scale",
        ["manifest-types"],
        "scale and scale_range given as integers (a number may be an int): the summary must keep them "
        "integers.",
        ["TaggedJson"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    text = (
        "Steers toward \u202etxet desrever\u202c and \x1b[31mred\x1b[0m; emoji \U0001f9ed; CJK \u65b9\u5411."
    )
    s.valid(
        "valid-unicode-and-control-text",
        ["utf8", "manifest-schema"],
        "Signed text holding bidi overrides, ANSI escapes, astral-plane and CJK characters: valid bytes "
        "(escaping is a display rule).",
        ["Unicode"],
        minimal(description=text, intended_effect=text),
    )


# ---------------------------------------------------------------- limits


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


@group
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


# ---------------------------------------------------------------- forward compatibility, extensions


@group
def versions_and_extensions(s: Suite) -> None:
    man = manifest()
    man["future_feature"] = {"enabled": True}
    man["package"]["tagline"] = "added by a later minor version"
    s.valid(
        "valid-minor-version-1-1",
        ["minor-accept", "minor-additive", "format"],
        'Preamble version 1.1 and format "1.1" with unknown keys at the top level and in package:'
        " a 1.0 reader validates with additionalProperties relaxed.",
        ["ForwardCompatible"],
        raw_package(man, {"steer.l1": arr(STEER)}, version=(1, 1)),
    )
    s.valid(
        "valid-minor-version-65535",
        ["minor-accept", "format"],
        "The largest minor version, 1.65535.",
        ["ForwardCompatible", "Limits"],
        raw_package(manifest(), {"steer.l1": arr(STEER)}, version=(1, 65535)),
    )
    man = manifest([vector(sites=[(site(1, "resid_pre"), "steer.l1")])])
    s.reject(
        "invalid-minor-version-known-rules-apply",
        "site",
        ["minor-additive", "resid-pre"],
        "A 1.1 package breaking a 1.0 site rule: a reader still applies every rule it knows.",
        ["ForwardCompatible", "Site"],
        raw_package(man, {"steer.l1": arr(STEER)}, version=(1, 1)),
    )
    for label, preamble, fmt in (
        ("1-0-vs-1-1", (1, 0), "1.1"),
        ("1-1-vs-1-0", (1, 1), "1.0"),
        ("leading-zero", (1, 0), "1.00"),
    ):
        man = manifest()
        man["format"] = fmt
        s.reject(
            f"malformed-version-format-{label}",
            "version",
            ["format"],
            f"Preamble version {preamble[0]}.{preamble[1]} but signed format {fmt!r}.",
            ["Structure"],
            raw_package(man, {"steer.l1": arr(STEER)}, version=preamble),
        )
    man = manifest()
    man["extensions"] = {
        "org.example.unknown": {
            "int": 1,
            "float": 1.0,
            "negzero": -0.0,
            "tiny": 5e-324,
            "huge": 1.7976931348623157e308,
            "u64max": 2**64 - 1,
            "i64min": -(2**63),
            "bin": b"\x00\xff",
            "nil": None,
            "flags": [True, False],
            "$bytes": "not a tag",
            "$float": {"$": "dollar keys get one more dollar"},
            "text": "\u00e9\U0001f9ed",
        },
        "com.example.other": [],
    }
    s.valid(
        "valid-extension-not-critical",
        ["ext-ignore", "manifest-schema"],
        "Unknown, non-critical extensions are ignored; their values test the tagged JSON summary"
        " (int vs float, -0.0, extremes of int and float, bin, nil, keys starting with $).",
        ["Extension", "TaggedJson"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["extensions"] = {}
    man["critical"] = []
    s.valid(
        "valid-extension-empty-critical",
        ["critical"],
        "An empty extensions map and an empty critical list.",
        ["Extension"],
        write(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["extensions"] = {"org.example.must-understand": {"v": 1}}
    man["critical"] = ["org.example.must-understand"]
    s.reject(
        "invalid-critical-extension-unknown",
        "critical-extension",
        ["critical"],
        "An extension listed in critical that no 1.0 reader understands.",
        ["Extension"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )
    man = manifest()
    man["critical"] = ["org.example.absent"]
    s.reject(
        "invalid-critical-extension-not-in-extensions",
        "critical-extension",
        ["critical"],
        "critical names an extension that is not a key of extensions.",
        ["Extension"],
        raw_package(man, {"steer.l1": arr(STEER)}),
    )


# ---------------------------------------------------------------- preamble, bounds, trailer


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def set_u64(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + u64(value) + data[offset + 8 :]


@group
def structure(s: Suite) -> None:
    base = minimal()
    signed = minimal(signers=["alice"])
    parts = split(base)
    size = len(base)
    s.reject(
        "malformed-magic-first-byte",
        "magic",
        ["magic"],
        "The first byte is 0x88 instead of 0x89.",
        ["Structure"],
        flip(base, 0),
    )
    s.reject(
        "malformed-magic-text-mode",
        "magic",
        ["magic"],
        "The magic after a text-mode transfer turned CR LF into LF (one byte shorter everywhere).",
        ["Structure"],
        base.replace(b"\r\n", b"\n"),
    )
    s.reject(
        "malformed-magic-short-file",
        "magic",
        ["magic"],
        "A 4-byte file that is not a prefix of the magic.",
        ["Structure", "Truncation"],
        b"MVEC",
    )
    s.reject(
        "malformed-truncated-empty-file",
        "truncated",
        ["short-file"],
        "An empty file: a prefix of the magic, shorter than the smallest package.",
        ["Truncation"],
        b"",
    )
    s.reject(
        "malformed-truncated-in-preamble",
        "truncated",
        ["short-file"],
        "The first 20 bytes of a package: the file ends inside the preamble.",
        ["Truncation"],
        base[:20],
    )
    s.reject(
        "malformed-bounds-48-bytes",
        "bounds",
        ["fit", "short-file"],
        "The first 48 bytes of a package: a whole preamble, but one byte shorter than the smallest package"
        " (32 + 1 + 16), so the declared lengths cannot fit.",
        ["Truncation"],
        base[:48],
    )
    for label, major in (("2", 2), ("0", 0)):
        s.reject(
            f"malformed-version-major-{label}",
            "version",
            ["major", "major-reject"],
            f"Preamble major version {major}.",
            ["Structure"],
            replace(parts, major=major).build(),
        )
    for label, flags in (("bit-31", 1 << 31),):
        s.reject(
            f"malformed-flags-{label}",
            "flags",
            ["flags"],
            f"Preamble flags {flags:#x}; they must be zero.",
            ["Structure"],
            replace(parts, flags=flags).build(),
        )
    for label, offset, value, why, topic in (
        ("manifest-len-zero", 16, 0, "manifest_len 0", "manifest-len"),
        ("manifest-len-over-limit", 16, 16 * 2**20 + 1, "manifest_len one past 16 MiB", "manifest-len"),
        ("manifest-len-2pow63", 16, 2**63 - 1, "manifest_len 2^63-1", "manifest-len"),
        ("payload-len-15", 24, 15, "payload_len 15, below the minimum 16", "payload-len"),
        ("payload-len-over-2pow48", 24, 2**48 + 1, "payload_len 2^48+1", "payload-len"),
        ("payload-len-u64-max", 24, 2**64 - 1, "payload_len 2^64-1", "payload-len"),
        ("manifest-beyond-file", 16, size, "manifest_len equal to the file size (within the limit)", "fit"),
        (
            "payload-beyond-file",
            24,
            len(parts.payload) + 64,
            "payload_len 64 bytes past the real payload",
            "fit",
        ),
    ):
        s.reject(
            f"malformed-bounds-{label}",
            "bounds",
            [topic, "fit"],
            f"A 300-byte-scale file whose preamble declares {why}: rejected before any allocation.",
            ["Bounds", "HostileLength"] if value >= 2**48 else ["Bounds"],
            set_u64(base, offset, value),
        )
    s.reject(
        "malformed-bounds-cut-in-manifest",
        "bounds",
        ["fit"],
        "The file is cut in the middle of the manifest: the declared lengths exceed the file.",
        ["Truncation", "Bounds"],
        base[: 32 + len(parts.manifest) // 2],
    )
    payload_offset = size - 16 - len(parts.sigblock) - len(parts.payload)
    s.reject(
        "malformed-bounds-cut-in-payload",
        "bounds",
        ["fit"],
        "The file is cut in the middle of the payload.",
        ["Truncation", "Bounds"],
        base[: payload_offset + len(parts.payload) // 2],
    )
    s.reject(
        "malformed-signature-block-cut-in-signature-block",
        "signature-block",
        ["end-magic"],
        "A signed file cut in the middle of its signature block: the last 8 bytes are not the end magic.",
        ["Truncation", "SignatureBlock"],
        signed[: len(signed) - 16 - 40],
    )
    s.reject(
        "malformed-bounds-cut-in-trailer",
        "bounds",
        ["fit"],
        "An unsigned file without its last byte: the declared lengths no longer fit the file.",
        ["Truncation", "Bounds"],
        base[:-1],
    )
    s.reject(
        "malformed-signature-block-cut-in-trailer",
        "signature-block",
        ["end-magic"],
        "A signed file without its last byte: the lengths still fit, but the end magic is gone.",
        ["Truncation", "SignatureBlock"],
        signed[:-1],
    )
    s.reject(
        "malformed-signature-block-end-magic",
        "signature-block",
        ["end-magic"],
        "The end magic reads MVECEND\\r instead of MVECEND\\n.",
        ["SignatureBlock"],
        base[:-1] + b"\r",
    )
    for label, value in (("zero", 0), ("over-limit", 65537)):
        s.reject(
            f"malformed-bounds-sig-len-{label}",
            "bounds",
            ["sig-len"],
            f"sig_len {value} in the trailer.",
            ["SignatureBlock", "Bounds"],
            set_u64(base, size - 16, value),
        )
    s.reject(
        "malformed-truncated-signature-block",
        "truncated",
        ["exact"],
        "Bytes removed from inside a signature block while the trailer keeps the old sig_len:"
        " the layout ends past the end of the file.",
        ["Truncation"],
        signed[: len(signed) - 16 - 10] + signed[-16:],
    )
    trailer = base[-16:]
    s.reject(
        "malformed-trailing-duplicate-trailer",
        "trailing",
        ["exact"],
        "A second copy of the 16-byte trailer appended: the file ends in a valid trailer but is longer than "
        "the layout.",
        ["Trailing"],
        base + trailer,
    )
    s.reject(
        "malformed-trailing-appended-package",
        "trailing",
        ["exact"],
        "Two packages concatenated.",
        ["Trailing"],
        base + base,
    )
    s.reject(
        "malformed-signature-block-appended-zero-byte",
        "signature-block",
        ["end-magic"],
        "One 0x00 byte appended: the file no longer ends with the end magic.",
        ["Trailing", "SignatureBlock"],
        base + b"\x00",
    )
    pad_len = payload_offset - 32 - len(parts.manifest)
    assert pad_len > 1
    for label, padding, why in (
        ("last-byte", b"\x00" * (pad_len - 1) + b"\x01", "The last padding byte is 0x01."),
    ):
        s.reject(
            f"malformed-padding-{label}",
            "padding",
            ["padding"],
            why,
            ["Padding"],
            replace(parts, padding=padding).build(),
        )


# ---------------------------------------------------------------- canonical msgpack


@group
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
        ["occupy"],
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


# ---------------------------------------------------------------- embedded safetensors payload


def two_site_manifest() -> dict[str, Any]:
    return manifest([vector(sites=[(site(0), "t.a"), (site(1), "t.b")])])


A_BYTES = arr(STEER).tobytes()
B_BYTES = arr(STEER * 2).tobytes()


def ent(dtype: str, shape: list[Any], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


GOOD_HEADER = [("t.a", ent("F32", [4], 0, 16)), ("t.b", ent("F32", [4], 16, 32))]


@group
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


# ---------------------------------------------------------------- signature block structure


@group
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


# ---------------------------------------------------------------- schema and semantic rules


@group
def semantics(s: Suite) -> None:
    tensors = {"steer.l1": arr(STEER)}

    def bad(
        case_id: str, code: str, topics: list[str], why: str, flags: list[str], man: dict[str, Any], **kw: Any
    ) -> None:
        s.reject(case_id, code, topics, why, flags, raw_package(man, kw.pop("tensors", tensors), **kw))

    man = manifest()
    man["colour"] = "blue"
    bad(
        "invalid-schema-unknown-core-key",
        "schema",
        ["schema"],
        "An unknown top-level key in a 1.0 manifest.",
        ["Schema"],
        man,
    )
    man = manifest()
    del man["provenance"]
    bad(
        "invalid-schema-missing-provenance",
        "schema",
        ["schema"],
        "The required provenance is missing.",
        ["Schema"],
        man,
    )
    man = manifest()
    man["models"]["a"]["hidden_size"] = 4.0
    bad(
        "invalid-schema-integer-as-float",
        "schema",
        ["types"],
        "hidden_size is the float 4.0: not an integer.",
        ["Schema", "TaggedJson"],
        man,
    )
    man = manifest()
    man["package"]["version"] = True
    man = manifest()
    man["models"]["a"]["config_sha256"] = hashlib.sha256(b"config").hexdigest()
    bad(
        "invalid-schema-digest-as-hex-text",
        "schema",
        ["types"],
        "config_sha256 as a hex string instead of bin.",
        ["Schema"],
        man,
    )
    man = manifest()
    man["models"]["a"]["config_sha256"] = hashlib.sha256(b"config").digest()[:31]
    bad(
        "invalid-schema-digest-31-bytes",
        "schema",
        ["byte-length"],
        "config_sha256 of 31 bytes.",
        ["Schema"],
        man,
    )
    parts = split(minimal())
    s.reject(
        "invalid-schema-manifest-not-a-map",
        "schema",
        ["schema"],
        "The manifest is the canonical array [1] instead of a map.",
        ["Schema"],
        with_raw_manifest(parts, b"\x91\x01").build(),
    )
    man = manifest([vector(model="ghost")])
    bad(
        "invalid-schema-unknown-model",
        "schema",
        ["model-refs"],
        "A vector names a model that is not a key of models.",
        ["Semantics"],
        man,
    )
    man = manifest([vector(), vector(sites=[(site(0), "steer.l0")])])
    bad(
        "invalid-schema-duplicate-vector-name",
        "schema",
        ["unique-names"],
        "Two vectors with the same name.",
        ["Semantics"],
        man,
        tensors={"steer.l1": arr(STEER), "steer.l0": arr(STEER)},
    )
    ab = {"a": copy.deepcopy(MODEL_A), "b": copy.deepcopy(MODEL_B)}
    roles = {"map.weight": W34, "map.bias": arr([0.5, -0.5, 1.0])}
    man = manifest(vectors=[], models=ab)
    man["mappings"] = [mapping("linear", {"weight": "map.weight", "bias": "map.bias"})]
    bad(
        "invalid-schema-linear-with-bias",
        "schema",
        ["mapping-forms"],
        "A linear mapping with a bias tensor.",
        ["Mapping"],
        man,
        tensors=roles,
    )
    man = manifest(vectors=[], models=ab)
    man["mappings"] = [mapping("affine", {"weight": "map.weight", "bias": "map.bias"}, scale=2.0)]
    bad(
        "invalid-schema-scale-on-affine",
        "schema",
        ["mapping-forms"],
        "An affine mapping with a scale.",
        ["Mapping"],
        man,
        tensors=roles,
    )
    man = manifest([vector(scale_range=[8.0, 0.0])])
    bad(
        "invalid-value-scale-range-reversed",
        "value",
        ["scale-range"],
        "scale_range [8.0, 0.0].",
        ["Semantics"],
        man,
    )
    t5 = {"t5": copy.deepcopy(MODEL_T5)}
    site_cases: list[tuple[str, str, str, dict[str, Any], dict[str, Any] | None]] = [
        ("invalid-site-layer-beyond", "site-layer", "A site at layer 2 of a 2-layer model.", site(2), None),
        (
            "invalid-site-resid-pre-layer-1",
            "resid-pre",
            "resid_pre at layer 1 (must be written resid_post of layer 0).",
            site(1, "resid_pre"),
            None,
        ),
        (
            "invalid-site-encoder-stack-without-encoder",
            "site-layer",
            "An encoder site on a decoder-only model.",
            site(0, "resid_post", "encoder"),
            None,
        ),
        (
            "invalid-site-cross-attn-without-encoder",
            "cross-attn",
            "cross_attn_out on a decoder-only model.",
            site(0, "cross_attn_out"),
            None,
        ),
        (
            "invalid-site-encoder-layer-beyond",
            "site-layer",
            "An encoder site at layer 2 of a model with 2 encoder layers.",
            site(2, "resid_post", "encoder"),
            t5,
        ),
    ]
    for case_id, topic, why, where, models in site_cases:
        vec = vector(model="t5" if models else "a", sites=[(where, "steer.l1")])
        bad(case_id, "site", [topic], why, ["Site"], manifest([vec], models=models))
    bad(
        "invalid-site-twice",
        "site",
        ["site-twice"],
        "A vector lists layer 1 resid_post twice, with two different tensors.",
        ["Site"],
        manifest([vector(sites=[(site(1), "steer.l1"), (site(1), "steer.again")])]),
        tensors={"steer.l1": arr(STEER), "steer.again": arr(STEER)},
    )
    man = manifest(vectors=[], models=ab)
    man["mappings"] = [mapping("linear", {"weight": "map.weight"})]
    weight = W34.copy()
    weight[1, 2] = np.nan
    bad(
        "invalid-value-nan-in-mapping",
        "value",
        ["vector-value"],
        "A linear mapping weight holding one NaN: every tensor must be finite, not only vectors.",
        ["Mapping"],
        man,
        tensors={"map.weight": weight},
    )
    man = manifest()
    bad(
        "invalid-tensor-reference-extra-digest",
        "tensor-reference",
        ["tensor-refs"],
        "payload.tensors lists a tensor that nothing references and the header lacks.",
        ["Semantics"],
        man,
        digests={"steer.l1": hashlib.sha256(A_BYTES).digest(), "ghost": hashlib.sha256(b"").digest()},
    )
    man = manifest()
    bad(
        "invalid-tensor-reference-unreferenced-tensor",
        "tensor-reference",
        ["tensor-refs"],
        "The payload holds a second tensor that the manifest neither references nor digests.",
        ["Semantics", "Safetensors"],
        man,
        tensors={"steer.l1": arr(STEER), "stowaway": arr(STEER)},
        digests={"steer.l1": hashlib.sha256(A_BYTES).digest()},
    )
    man = manifest([vector(sites=[(site(0), "steer.l1"), (site(1), "steer.missing")])])
    bad(
        "invalid-tensor-reference-missing-tensor",
        "tensor-reference",
        ["tensor-refs"],
        "The manifest references and digests a tensor the payload does not hold.",
        ["Semantics", "Safetensors"],
        man,
        digests={
            "steer.l1": hashlib.sha256(A_BYTES).digest(),
            "steer.missing": hashlib.sha256(A_BYTES).digest(),
        },
    )
    man = manifest([vector(sites=[(site(0), "steer.l1"), (site(1), "steer.l1")])])
    bad(
        "invalid-tensor-reference-twice",
        "tensor-reference",
        ["tensor-refs"],
        "Two sites share one tensor.",
        ["Semantics"],
        man,
    )
    man = manifest()
    man["models"]["a"]["hidden_size"] = 5
    bad(
        "invalid-shape-vector-length",
        "shape",
        ["shape"],
        "A 4-element vector for a model whose hidden_size is 5.",
        ["Semantics"],
        man,
    )
    man = manifest(vectors=[], models=ab)
    man["mappings"] = [mapping("linear", {"weight": "map.weight"})]
    bad(
        "invalid-shape-weight-transposed",
        "shape",
        ["shape"],
        "A 4-to-3 linear mapping whose weight is [4, 3] instead of [d_out, d_in] = [3, 4].",
        ["Mapping"],
        man,
        tensors={"map.weight": np.ascontiguousarray(W34.T)},
    )
    man = manifest(vectors=[], models=ab)
    man["mappings"] = [mapping("low_rank", {"u": "map.u", "v": "map.v"})]
    bad(
        "invalid-shape-rank-too-large",
        "shape",
        ["shape"],
        "A low_rank mapping of rank 4 between widths 4 and 3 (rank must be at most 3).",
        ["Mapping"],
        man,
        tensors={"map.u": arr(np.ones((3, 4))), "map.v": arr(np.ones((4, 4)))},
    )
    for case_id, values, dtype, why in (
        ("invalid-value-zero-vector", [0.0, 0.0, 0.0, 0.0], "float32", "A vector of zeros (no direction)."),
        ("invalid-value-nan-in-vector", [1.0, float("nan"), 0.0, 0.0], "float32", "A vector holding NaN."),
    ):
        with np.errstate(over="ignore"):
            bad(
                case_id,
                "value",
                ["vector-value"],
                why,
                ["Semantics", "Dtype"],
                manifest(),
                tensors={"steer.l1": arr(values, dtype)},
            )
    base = minimal()
    s.reject(
        "unverified-digest-mismatch-tensor",
        "digest-mismatch",
        ["tensor-digest"],
        "One bit of the tensor data flipped.",
        ["Digest"],
        flip(base, len(base) - 16 - 1 - 1),
    )
    parts = split(base)
    header, body = split_payload(parts.payload)
    swapped = splice(header, b'"dtype":"F32","shape":[4]', b'"shape":[4],"dtype":"F32"')
    s.reject(
        "unverified-digest-mismatch-header",
        "digest-mismatch",
        ["header-digest"],
        "The safetensors header with two keys of an entry swapped: same length, same meaning, different "
        "bytes.",
        ["Digest", "Safetensors"],
        replace(parts, payload=join_payload(swapped, body, pad=False)).build(),
    )


# ---------------------------------------------------------------- signatures and trust (verify)

L_ED25519 = 2**252 + 27742317777372353535851937790883648493


@group
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


# ---------------------------------------------------------------- several defects: the first check decides


@group
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


# ---------------------------------------------------------------- either outcome allowed


@group
def acceptable(s: Suite) -> None:
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [mapping("orthogonal", {"weight": "map.weight"})]
    s.acceptable(
        "acceptable-orthogonal-not-orthonormal",
        ["orthogonal"],
        "An orthogonal mapping whose weight rows are not orthonormal (every entry 0.5). R-37 binds writers; "
        "the"
        " spec gives readers no code for it, so a reader may accept the package or reject it as a bad value.",
        ["Mapping"],
        raw_package(man, {"map.weight": arr(np.full((3, 4), 0.5))}),
        codes=["value"],
    )
    man = manifest()
    man["extensions"] = {"com.acme.quantized-vectors": {"bits": 4}}
    man["critical"] = ["com.acme.quantized-vectors"]
    s.acceptable(
        "acceptable-critical-vendor-extension",
        ["critical"],
        "A critical vendor extension. A reader that implements com.acme.quantized-vectors accepts the "
        "package;"
        " every other reader must reject it with critical-extension.",
        ["Extension"],
        raw_package(man, {"steer.l1": arr(STEER)}),
        codes=["critical-extension"],
    )
    deep_shape = b"[" * 50_000 + b"4" + b"]" * 50_000
    header = header_json(GOOD_HEADER).replace(b'"shape":[4]', b'"shape":' + deep_shape, 1)
    digests = {"t.a": hashlib.sha256(A_BYTES).digest(), "t.b": hashlib.sha256(B_BYTES).digest()}
    s.acceptable(
        "acceptable-payload-header-deep-nesting",
        ["entry-keys"],
        "A safetensors header whose first shape is nested 50000 arrays deep (valid JSON, 100 kB)."
        " R-47 makes it a payload error; a parser that bounds JSON nesting reports depth."
        " Either code is fine; a crash is not.",
        ["Safetensors", "Depth", "HostileLength"],
        raw_package(two_site_manifest(), payload=join_payload(header, A_BYTES + B_BYTES), digests=digests),
        codes=["payload", "depth"],
    )
