"""The recommended scale of a translated vector (spec 4.6 and 6.1, R-94).

The target needs the vector the concept has there, the size of the target's own difference of
means ``u``. Two things keep ``|W v|`` below ``|u|`` on real pairs, and the rule undoes both:

1. **Ridge shrinkage.** A ridge map shrinks ``W v``, most along the source's low-variance
   directions, where concepts tend to live. A 1.1 mapping stores what undoes it (``shrinkage``
   and ``tensors.source_covariance``): the fit rows' source covariance ``Σ``, the ridge ``α``
   (``Wᵀ = (Σ + α I)⁻¹ Σxy``), the least-squares residual variance ``τ`` (trace, per row) and
   the row count ``n``. The least-squares image is exactly ``w = W (v + α Σ⁺ v)``, and
   ``|w|²`` overestimates it by its sampling variance ``τ·q/n`` with ``q = vᵀ Σ⁺ v``, so
   ``g² = max(|w|² − τ·q/n, |W v|²)`` (rule ``ridge_*``); without the statistics ``g = |W v|``
   (rule ``map_*``).
2. **The part of the concept the source does not predict.** Even the least-squares image is
   only the share of ``u`` that the source layer predicts: the source sees the concept
   through its own noise, and a regression attenuates by that noise. Taking the concept's
   difference of means to split between the predicted and the unpredicted part as the
   activations' variance does, ``|least-squares image|² = R²·|u|²`` with ``R²`` the map's
   held-out R² (``metrics.held_out.r2``, stored since 1.0), so ``n* = g / √R²`` (rules
   ``ridge_r2`` and ``map_r2``; ``R²`` is clamped to ``[0.1, 1]``). Measured into SmolLM2-135M
   layer 15 from Gemma 3 270M layers 4-8 and Qwen2.5-Coder 0.5B layers 4-12, 49k pairs, three
   concepts: ``|W v|/|u|`` was 0.67-0.92, and ``n*/|u|`` 0.83-1.11. The split is an assumption
   about the concept: for a movie-review sentiment vector into SmolLM2 layer 12, ``|W v|`` was
   already 0.86-1.02 of ``|u|`` and ``n*`` overshot by 1.15-1.39. Most of that is the vector's
   own sampling noise ``ε``, which ``W`` carries along (``|W(v + ε)|² ≈ |W v|² + |W ε|²``), so
   the *signal* part of the injected vector still has the size ``n*`` estimates. Taking
   ``|W ε|²`` out of ``g²`` (tried, with split-half estimates of ``ε``) brought the sentiment
   norm to 0.77-0.80 of ``|u|``, but it lowered the injected norm on the benchmark's concepts
   by 6-11% and the steering effect with it (Qwen L8 ocean: 0.76 -> 0.68 of native), because
   the noise part steers nothing: the rule keeps it. An orthogonal map is no
   regression and a map without a held-out R² gives no share, so these keep ``n* = g`` (rules
   ``ridge_gain``, ``map_gain``).

The 1.0 rule, ``n* = |v|·c_tgt/c_src`` (``mean_norm``), used the ratio of mean activation
norms, which outlier dimensions dominate: it under-steered by 3x from Gemma 3 and over-steered
from Qwen2.5; it is only read back from packages that recorded it.

``Σ⁺`` is the pseudo-inverse with eigenvalues at or below ``1e-6·λ_max`` treated as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

RULES = ("ridge_r2", "map_r2", "ridge_gain", "map_gain", "mean_norm")
#: the held-out R² a rule ``*_r2`` divides by is clamped to this range
R2_RANGE = (0.1, 1.0)
#: mapping forms that are regressions, so that their held-out R² measures the attenuation
REGRESSION_FORMS = ("linear", "affine", "low_rank")
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


def explained_share(form: str, metrics: Mapping[str, Any] | None) -> float | None:
    """The held-out R² a regression map attenuates by (clamped), or None when there is none."""
    if form not in REGRESSION_FORMS or not isinstance(metrics, Mapping):
        return None
    held = metrics.get("held_out")
    r2 = held.get("r2") if isinstance(held, Mapping) else None
    if not isinstance(r2, (int, float)) or isinstance(r2, bool) or not np.isfinite(r2) or r2 <= 0.0:
        return None
    return float(min(max(float(r2), R2_RANGE[0]), R2_RANGE[1]))


def target_norm(
    weight: np.ndarray[Any, Any],
    v: np.ndarray[Any, Any],
    shrinkage: Mapping[str, Any] | None,
    source_covariance: np.ndarray[Any, Any] | None,
    r2: float | None = None,
) -> TargetNorm:
    """``n*`` for source vector ``v`` through a mapping with effective matrix ``weight``.

    ``r2``: the map's :func:`explained_share`, or None."""
    v64 = np.asarray(v, dtype=np.float64)
    shrunk = float(np.linalg.norm(weight @ v64))
    gain, rule = shrunk, "map"
    if shrinkage is not None and source_covariance is not None:
        inv_v = pinv_apply(source_covariance, v64)
        u = weight @ (v64 + float(shrinkage["alpha"]) * inv_v)
        noise = float(shrinkage["residual_variance"]) * float(v64 @ inv_v) / float(shrinkage["samples"])
        gain, rule = float(np.sqrt(max(float(u @ u) - noise, shrunk * shrunk))), "ridge"
    if r2 is None:
        return TargetNorm(gain, f"{rule}_gain")
    return TargetNorm(gain / float(np.sqrt(r2)), f"{rule}_r2")
