"""Conformance cases: what format 1.1 added (imported vectors, mapping statistics,
``provenance.inputs``) and the rule that a package uses nothing newer than it declares."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np

from conformance_tests.casebook.common import W34, ab_models
from conformance_tests.craft.manifests import (
    STEER,
    arr,
    manifest,
    mapping,
    provenance,
    raw_package,
    site,
    vector,
    write,
)
from conformance_tests.suite import Suite

#: a symmetric positive definite 4x4 source covariance (model a is 4 wide)
COVARIANCE = np.array(
    [[4.0, 1.0, 0.0, 0.5], [1.0, 3.0, 0.25, 0.0], [0.0, 0.25, 2.0, 0.0], [0.5, 0.0, 0.0, 1.0]],
    dtype=np.float32,
)
SHRINKAGE = {"alpha": 0.5, "residual_variance": 0.75, "samples": 64}
KEYID = hashlib.sha256(b"conformance signer").digest()[:16]


def imported() -> tuple[dict[str, Any], dict[str, Any]]:
    """A vector imported from a llama.cpp control vector file."""
    man = manifest([vector(method={"kind": "imported"})])
    man["provenance"] = provenance(
        imported={
            "format": "llamacpp",
            "tool": "repeng",
            "sha256": hashlib.sha256(b"control vector file").digest(),
            "file": "happy.gguf",
            "layer_shift": 0,
        }
    )
    return man, {"steer.l1": arr(STEER)}


def with_statistics() -> tuple[dict[str, Any], dict[str, Any]]:
    """A ridge mapping with its shrinkage statistics, and a vector translated with rule ridge_r2."""
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [
        mapping(
            "affine",
            {"weight": "map.weight", "bias": "map.bias", "source_covariance": "map.source_covariance"},
            shrinkage=dict(SHRINKAGE),
        )
    ]
    man["vectors"] = [
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
                "rule": "ridge_r2",
            },
        )
    ]
    man["provenance"] = provenance(
        inputs={
            "vector": {"identity": hashlib.sha256(b"v").digest(), "verdict": "verified", "signers": [KEYID]},
            "mapping": {"identity": hashlib.sha256(b"m").digest(), "verdict": "unsigned", "signers": []},
        }
    )
    tensors = {
        "map.weight": W34,
        "map.bias": arr([0.5, -0.5, 1.0]),
        "map.source_covariance": COVARIANCE,
        "steer.b": arr(W34 @ STEER),
    }
    return man, tensors


def format_1_1(s: Suite) -> None:
    man, tensors = imported()
    s.valid(
        "valid-1-1-imported-vector",
        ["format-1-1", "imported"],
        "Format 1.1: a vector of method kind 'imported' with provenance.imported (the source file's"
        " format, tool, sha256, name and layer shift). The writer declares 1.1, the lowest minor that"
        " holds it.",
        ["Format11"],
        write(man, tensors),
    )
    stats, stat_tensors = with_statistics()
    s.valid(
        "valid-1-1-mapping-statistics",
        ["format-1-1", "statistics"],
        "Format 1.1: a ridge mapping with shrinkage {alpha, residual_variance, samples} and a"
        " [d_in, d_in] source_covariance tensor (allowed beside any form's tensors), a translation"
        " with rule 'ridge_r2' (the ridge image divided by √R²), and provenance.inputs.",
        ["Format11"],
        write(stats, stat_tensors),
    )
    for label, (m, t) in {
        "imported": imported(),
        "statistics": with_statistics(),
    }.items():
        s.reject(
            f"invalid-1-1-{label}-declared-1-0",
            "schema",
            ["format-1-1"],
            f"The valid-1-1 {label} package, declared 1.0 (preamble and format): it uses a key or value"
            " that 1.0 does not have, which a 1.0 reader would misread.",
            ["Format11"],
            raw_package(m, t, version=(1, 0)),
        )
    only_inputs = manifest()
    only_inputs["provenance"] = provenance(inputs=copy.deepcopy(stats["provenance"]["inputs"]))
    s.reject(
        "invalid-1-1-inputs-declared-1-0",
        "schema",
        ["format-1-1"],
        "provenance.inputs (new in 1.1) in a package declared 1.0.",
        ["Format11"],
        raw_package(only_inputs, {"steer.l1": arr(STEER)}, version=(1, 0)),
    )
    _statistics_defects(s)
    _imported_defects(s)


def _statistics_defects(s: Suite) -> None:
    def variant(change: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        m, t = with_statistics()
        change(m["mappings"][0], t)
        return m, t

    def drop_shrinkage(mp: dict[str, Any], t: dict[str, Any]) -> None:
        del mp["shrinkage"]

    def drop_covariance(mp: dict[str, Any], t: dict[str, Any]) -> None:
        del mp["tensors"]["source_covariance"]
        del t["map.source_covariance"]

    def wrong_shape(mp: dict[str, Any], t: dict[str, Any]) -> None:
        t["map.source_covariance"] = COVARIANCE[:3, :3].copy()

    def one_sample(mp: dict[str, Any], t: dict[str, Any]) -> None:
        mp["shrinkage"]["samples"] = 1

    def negative_alpha(mp: dict[str, Any], t: dict[str, Any]) -> None:
        mp["shrinkage"]["alpha"] = -0.5

    cases = [
        (
            "shrinkage-without-covariance",
            "schema",
            drop_shrinkage,
            "a source_covariance tensor without shrinkage",
        ),
        ("covariance-without-shrinkage", "schema", drop_covariance, "shrinkage without a source_covariance"),
        ("covariance-shape", "shape", wrong_shape, "a [3, 3] source_covariance for a 4-wide source model"),
        ("shrinkage-one-sample", "schema", one_sample, "shrinkage.samples 1 (a variance needs 2 rows)"),
        ("shrinkage-negative-alpha", "schema", negative_alpha, "a negative ridge alpha"),
    ]
    for label, code, change, what in cases:
        m, t = variant(change)
        s.reject(
            f"invalid-1-1-{label}",
            code,
            ["statistics"],
            f"The valid-1-1 mapping-statistics package with {what}.",
            ["Format11"],
            raw_package(m, t, version=(1, 1)),
        )
    m, t = with_statistics()
    m["vectors"][0]["translation"]["rule"] = "median_norm"
    s.reject(
        "invalid-1-1-translation-rule",
        "schema",
        ["statistics"],
        "translation.rule 'median_norm', not one of ridge_r2, map_r2, ridge_gain, map_gain, mean_norm.",
        ["Format11"],
        raw_package(m, t, version=(1, 1)),
    )


def _imported_defects(s: Suite) -> None:
    m, t = imported()
    del m["provenance"]["imported"]
    s.reject(
        "invalid-1-1-imported-without-source",
        "schema",
        ["imported"],
        "A vector of kind 'imported' in a package without provenance.imported: where it came from is"
        " required.",
        ["Format11"],
        raw_package(m, t, version=(1, 1)),
    )
    m, t = imported()
    m["provenance"]["imported"]["format"] = "pickle"
    s.reject(
        "invalid-1-1-imported-format",
        "schema",
        ["imported"],
        "provenance.imported.format 'pickle', not one of llamacpp, repeng, steering-vectors, neuronpedia.",
        ["Format11"],
        raw_package(m, t, version=(1, 1)),
    )
