"""The recommended scale of a translated vector (spec 4.6 and 6.1, R-94).

The target needs the vector the concept has there. When target activations are a linear
function of source activations plus noise that does not depend on the concept
(``b = A a + c + e``), a difference of means ``v`` in the source is ``A v`` in the target, so
the right size is ``|A v|``. A ridge map shrinks ``W v`` below it, most along the source's
low-variance directions, where concepts tend to live: ``|W v|`` came out 0.6-0.7 of the native
vector's norm on real pairs. A 1.1 mapping stores what undoes that (``shrinkage`` and
``tensors.source_covariance``): the fit rows' source covariance ``Σ``, the ridge ``α``
(``Wᵀ = (Σ + α I)⁻¹ Σxy``), the least-squares residual variance ``τ`` (trace, per row) and the
row count ``n``. Then the least-squares image is exactly ``u = W (v + α Σ⁺ v)``, and
``|u|²`` overestimates ``|A v|²`` by its sampling variance ``τ·q/n`` with ``q = vᵀ Σ⁺ v``, so

    n*² = max(|u|² − τ·q/n, |W v|²)          (rule ``ridge_gain``)

Without those statistics ``n* = |W v|`` (``map_gain``). The 1.0 rule, ``n* = |v|·c_tgt/c_src``
(``mean_norm``), used the ratio of mean activation norms, which outlier dimensions dominate: it
under-steered by 3x from Gemma 3 and over-steered from Qwen2.5; it is only read back from
packages that recorded it.

``Σ⁺`` is the pseudo-inverse with eigenvalues at or below ``1e-6·λ_max`` treated as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

RULES = ("ridge_gain", "map_gain", "mean_norm")
#: eigenvalues of Σ at or below this fraction of the largest are dropped from Σ⁺
PINV_CUTOFF = 1e-6


@dataclass(frozen=True)
class TargetNorm:
    """``n*`` and the rule that gave it."""

    value: float
    rule: str


def pinv_apply(cov: np.ndarray[Any, Any], v: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``Σ⁺ v`` for a symmetric positive semi-definite ``Σ`` (see module doc for the cutoff)."""
    c = np.asarray(cov, dtype=np.float64)
    vals, vecs = np.linalg.eigh((c + c.T) / 2.0)
    keep = vals > PINV_CUTOFF * max(float(vals[-1]), 0.0)
    inv = np.zeros_like(vals)
    inv[keep] = 1.0 / vals[keep]
    out: np.ndarray[Any, Any] = vecs @ (inv * (vecs.T @ np.asarray(v, dtype=np.float64)))
    return out


def residual_variance(sxx: Any, sxy: Any, syy: Any, n: int) -> float:
    """``τ``: the least-squares fit's residual variance (trace), unbiased for ``d_in`` inputs.

    ``sxx, sxy, syy`` are centred scatter matrices over ``n`` rows."""
    sxx64 = np.asarray(sxx, dtype=np.float64)
    sxy64 = np.asarray(sxy, dtype=np.float64)
    explained = float(np.sum(sxy64 * (np.linalg.pinv(sxx64, rcond=PINV_CUTOFF, hermitian=True) @ sxy64)))
    sse = max(float(np.trace(np.asarray(syy, dtype=np.float64))) - explained, 0.0)
    dof = max(n - sxx64.shape[0] - 1, 1)
    return float(sse / dof)


def target_norm(
    weight: np.ndarray[Any, Any],
    v: np.ndarray[Any, Any],
    shrinkage: Mapping[str, Any] | None,
    source_covariance: np.ndarray[Any, Any] | None,
) -> TargetNorm:
    """``n*`` for source vector ``v`` through a mapping with effective matrix ``weight``."""
    v64 = np.asarray(v, dtype=np.float64)
    shrunk = float(np.linalg.norm(weight @ v64))
    if shrinkage is None or source_covariance is None:
        return TargetNorm(shrunk, "map_gain")
    inv_v = pinv_apply(source_covariance, v64)
    u = weight @ (v64 + float(shrinkage["alpha"]) * inv_v)
    noise = float(shrinkage["residual_variance"]) * float(v64 @ inv_v) / float(shrinkage["samples"])
    return TargetNorm(float(np.sqrt(max(float(u @ u) - noise, shrunk * shrunk))), "ridge_gain")
