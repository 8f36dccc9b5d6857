"""Conformance cases: schema and semantic rules."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import replace
from typing import Any

import numpy as np

from conformance_tests.casebook.common import W34
from conformance_tests.casebook.payload import A_BYTES
from conformance_tests.craft.manifests import (
    MODEL_A,
    MODEL_B,
    MODEL_T5,
    STEER,
    arr,
    manifest,
    mapping,
    minimal,
    raw_package,
    site,
    vector,
)
from conformance_tests.craft.surgery import (
    flip,
    join_payload,
    splice,
    split,
    split_payload,
    with_raw_manifest,
)
from conformance_tests.suite import Suite


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
