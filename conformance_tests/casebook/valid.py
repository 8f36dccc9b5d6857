"""Conformance cases: valid content."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from conformance_tests.casebook.common import ORTHO, W34, mapping_package, translated_package
from conformance_tests.craft.manifests import (
    MODEL_T5,
    STEER,
    arr,
    bf16,
    manifest,
    minimal,
    site,
    vector,
    write,
)
from conformance_tests.suite import Suite


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
    man, tensors = translated_package()
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
