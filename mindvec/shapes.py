"""Step 5's last rules: the manifest against the safetensors header (names, then shapes).

The shapes a package's tensors must have follow from the models' hidden sizes: a vector site
tensor is ``[hidden_size]``, a mapping's ``weight`` ``[d_out, d_in]`` and so on (spec R-51, R-52).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mindvec.errors import InvalidError
from mindvec.manifest import MappingSpec, ModelRef, mappings, models, vectors
from mindvec.payload import TensorInfo


def expected_shapes(
    manifest: Mapping[str, Any], tensors: Mapping[str, TensorInfo]
) -> dict[str, tuple[int, ...]]:
    """Tensor name -> the shape the models' hidden sizes require."""
    refs = models(manifest)
    shapes: dict[str, tuple[int, ...]] = {}
    for vector in vectors(manifest):
        for entry in vector.sites:
            shapes[entry.tensor] = (refs[vector.model].hidden_size,)
    for mapping in mappings(manifest):
        shapes.update(_mapping_shapes(mapping, refs, tensors))
    return shapes


def _mapping_shapes(
    mapping: MappingSpec, refs: Mapping[str, ModelRef], tensors: Mapping[str, TensorInfo]
) -> dict[str, tuple[int, ...]]:
    d_in = refs[mapping.source_model].hidden_size
    d_out = refs[mapping.target_model].hidden_size
    by_role: dict[str, tuple[int, ...]] = {
        "weight": (d_out, d_in),
        "bias": (d_out,),
        "target_mean": (d_out,),
        "source_mean": (d_in,),
        "source_covariance": (d_in, d_in),
    }
    if "u" in mapping.tensors:
        u_shape = tensors[mapping.tensors["u"]].shape
        rank = u_shape[1] if len(u_shape) == 2 else 0
        if not 1 <= rank <= min(d_in, d_out):
            raise InvalidError(
                "shape", f"mapping {mapping.name!r}: rank {rank} is outside 1..{min(d_in, d_out)}"
            )
        by_role["u"] = (d_out, rank)
        by_role["v"] = (d_in, rank)
    return {name: by_role[role] for role, name in mapping.tensors.items()}


def check_header(manifest: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> None:
    """Manifest vs safetensors header: same names (``tensor-reference``), right shapes (``shape``)."""
    digested = set(manifest["payload"]["tensors"])
    if set(tensors) != digested:
        missing = sorted(digested - set(tensors))[:3]
        extra = sorted(set(tensors) - digested)[:3]
        raise InvalidError(
            "tensor-reference",
            f"manifest and safetensors header name different tensors (missing {missing}, unlisted {extra})",
        )
    for name, shape in expected_shapes(manifest, tensors).items():
        actual = tensors[name].shape
        if actual != shape:
            raise InvalidError(
                "shape", f"tensor {name!r} has shape {list(actual)}, the models require {list(shape)}"
            )
