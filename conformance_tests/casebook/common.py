"""Models and mapping packages several topics build on."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np

from conformance_tests.craft.manifests import (
    MODEL_A,
    MODEL_B,
    STEER,
    arr,
    manifest,
    mapping,
    provenance,
    site,
    vector,
    write,
)


def ab_models() -> dict[str, Any]:
    return {"a": copy.deepcopy(MODEL_A), "b": copy.deepcopy(MODEL_B)}


W34 = np.arange(12, dtype=np.float32).reshape(3, 4) / 8 - 0.5
ORTHO = np.eye(3, 4, dtype=np.float32)


def mapping_package(form: str, roles: dict[str, Any], **extra: Any) -> bytes:
    tensors = {f"map.{role}": value for role, value in roles.items()}
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [mapping(form, {role: f"map.{role}" for role in roles}, **extra)]
    return write(man, tensors)


def translated_package() -> tuple[dict[str, Any], dict[str, Any]]:
    """Two models, a mapping, a vector and its translation, correspondences and full provenance."""
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
    return man, tensors
