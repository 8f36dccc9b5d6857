"""Models and mapping packages several topics build on."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from conformance_tests.craft.manifests import MODEL_A, MODEL_B, manifest, mapping, write


def ab_models() -> dict[str, Any]:
    return {"a": copy.deepcopy(MODEL_A), "b": copy.deepcopy(MODEL_B)}


W34 = np.arange(12, dtype=np.float32).reshape(3, 4) / 8 - 0.5
ORTHO = np.eye(3, 4, dtype=np.float32)


def mapping_package(form: str, roles: dict[str, Any], **extra: Any) -> bytes:
    tensors = {f"map.{role}": value for role, value in roles.items()}
    man = manifest(vectors=[], models=ab_models())
    man["mappings"] = [mapping(form, {role: f"map.{role}" for role in roles}, **extra)]
    return write(man, tensors)
