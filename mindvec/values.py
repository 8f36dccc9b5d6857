"""Rules on tensor values: finite entries, non-zero vectors, orthogonal weights, CCA's form.

Readers check :func:`check_values` on every tensor they hand out (step 6). The mapping rules
(:func:`check_orthogonal`, :func:`check_cca`) are the writer's: the spec lets a reader accept
or refuse them (R-37, R-38), and mindvec's writer refuses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mindvec.errors import InvalidError
from mindvec.manifest import MappingSpec


def check_values(name: str, values: np.ndarray[Any, Any], *, vector: bool) -> None:
    """``value`` errors: non-finite entries anywhere, zero norm for a vector tensor."""
    if values.size and not bool(np.isfinite(values).all()):
        raise InvalidError("value", f"tensor {name!r} holds NaN or infinite values")
    if vector and not bool(np.any(values)):
        raise InvalidError(
            "value", f"vector tensor {name!r} has zero norm; a direction needs a nonzero vector"
        )


def check_orthogonal(name: str, weight: np.ndarray[Any, Any], dtype: str) -> None:
    """``value`` unless ``weight`` is semi-orthogonal within the spec's per-dtype tolerance."""
    w = weight.astype(np.float64)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    tolerance = 1e-3 if dtype in ("F32", "F64") else 1e-2
    error = float(np.max(np.abs(gram - np.eye(gram.shape[0])))) if gram.size else 0.0
    if error > tolerance:
        raise InvalidError(
            "value", f"orthogonal mapping weight {name!r} is not semi-orthogonal (max error {error:.3g})"
        )


def check_covariance(name: str, cov: np.ndarray[Any, Any]) -> None:
    """A writer stores a covariance that is symmetric with a non-negative diagonal (R-95)."""
    c = cov.astype(np.float64)
    scale = float(np.max(np.abs(c))) if c.size else 0.0
    if float(np.max(np.abs(c - c.T))) > 1e-5 * scale or bool(np.any(np.diag(c) < 0)):
        raise InvalidError(
            "value", f"source_covariance {name!r} is not a covariance (asymmetric or a negative variance)"
        )


def check_cca(mapping: MappingSpec) -> None:
    """A CCA map is stored as the full affine map it implies, with both means."""
    if mapping.fit.get("method") == "cca" and (
        mapping.form != "affine"
        or set(mapping.tensors) - {"source_covariance"} != {"weight", "source_mean", "target_mean"}
    ):
        raise InvalidError(
            "schema",
            f"cca mapping {mapping.name!r} must be stored as affine with weight, source_mean, target_mean",
        )
