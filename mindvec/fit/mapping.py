"""Linear maps between activation spaces, fitted from centred statistics, with honest metrics.

Every map predicts ``ŷ = s·W (x - μx) + μy`` (``s`` = 1 except for scaled Procrustes), so it is
stored as an ``affine`` (or ``orthogonal`` / ``low_rank``) mapping with both means. Methods:

- ``ridge``: ``Wᵀ = (Sxx + n·α·I)⁻¹ Sxy``; α is chosen on a held-out split from a grid relative
  to the mean eigenvalue of ``Σxx``, then the map is refitted on train + validation.
  ``lstsq``: α = 0 (pseudo-inverse of ``Sxx``).
- ``procrustes``: ``W = U Vᵀ`` from the SVD ``Sxyᵀ = U S Vᵀ``; semi-orthogonal, rows orthonormal
  (``W Wᵀ = I``) when ``d_out ≤ d_in``, else columns (``Wᵀ W = I``); optional least-squares scale
  ``s = tr(S) / tr(Sxx)``.
- ``cca``: ``W = Σyy^{1/2} V diag(ρ) Uᵀ Σxx^{-1/2}`` with ``U, ρ, V`` the SVD of
  ``Σxx^{-1/2} Σxy Σyy^{-1/2}`` truncated to ``k``; each Σ gets ``reg·tr(Σ)/d`` on its diagonal.
- ``low_rank_ridge``: reduced-rank regression: ridge, then project onto the top-``r`` principal
  directions ``P`` of the fitted values: ``W_r = P Pᵀ W``, stored as ``u = P``, ``v = Wᵀ P``.

Held-out metrics and baselines are :mod:`mindvec.fit.metrics`; splits :mod:`mindvec.fit.splits`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mindvec.calibration import residual_variance
from mindvec.errors import UsageError
from mindvec.fit.stats import PairStats

F64 = npt.NDArray[np.float64]
METHODS = ("ridge", "lstsq", "procrustes", "cca", "low_rank_ridge")
#: ridge grid, as multiples of the mean eigenvalue tr(Σxx)/d_x
DEFAULT_RELATIVE_ALPHAS = (1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)

Params = dict[str, float | int | str | bool]


@dataclass
class LinearMap:
    """``ŷ = scale · weight (x - source_mean) + target_mean``; ``weight`` is ``[d_out, d_in]``."""

    method: str
    weight: F64
    source_mean: F64
    target_mean: F64
    scale: float = 1.0
    u: F64 | None = None
    v: F64 | None = None
    hyperparameters: Params = field(default_factory=dict)
    #: the fit's source covariance (ridge fits), stored so a translation can undo the shrinkage
    source_covariance: F64 | None = None
    shrinkage: dict[str, float | int] | None = None

    @property
    def d_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def d_out(self) -> int:
        return int(self.weight.shape[0])

    @property
    def form(self) -> str:
        if self.method == "procrustes":
            return "orthogonal"
        if self.u is not None:
            return "low_rank"
        return "affine"

    def predict(self, x: Any) -> F64:
        xa = np.asarray(x, dtype=np.float64)
        out: F64 = (xa - self.source_mean) @ self.weight.T * self.scale + self.target_mean
        return out

    def apply_vector(self, vec: Any) -> F64:
        """A direction maps as ``s·W v``; the means never apply to a direction."""
        return self.scale * (self.weight @ np.asarray(vec, dtype=np.float64))

    def tensors(self, dtype: Any = np.float32) -> dict[str, Any]:
        """Tensors for a package, keyed by role (``weight``/``u``/``v``, ``source_mean``...)."""
        out: dict[str, Any] = {}
        if self.u is not None and self.v is not None:
            out["u"] = self.u.astype(dtype)
            out["v"] = self.v.astype(dtype)
        else:
            out["weight"] = self.weight.astype(dtype)
        out["source_mean"] = self.source_mean.astype(dtype)
        out["target_mean"] = self.target_mean.astype(dtype)
        if self.source_covariance is not None:
            out["source_covariance"] = self.source_covariance.astype(dtype)
        return out


# ----------------------------------------------------------------------------- fitting


def _check(stats: PairStats, what: str) -> None:
    if stats.n < 2:
        raise UsageError("argument", f"{what} needs at least 2 paired samples, got {stats.n}; use more data")


def _base_alpha(stats: PairStats) -> float:
    return float(np.trace(stats.sxx)) / stats.n / max(stats.d_x, 1) or 1.0


def ridge_weight(stats: PairStats, alpha: float) -> F64:
    """``W = [(Sxx + n·α·I)⁻¹ Sxy]ᵀ`` with α in covariance units."""
    _check(stats, "ridge")
    a = stats.sxx + stats.n * alpha * np.eye(stats.d_x)
    return np.asarray(np.linalg.solve(a, stats.sxy).T, dtype=np.float64)


def fit_ridge(stats: PairStats, alpha: float) -> LinearMap:
    return LinearMap(
        "ridge",
        ridge_weight(stats, alpha),
        stats.mean_x.copy(),
        stats.mean_y.copy(),
        hyperparameters={"alpha": float(alpha)},
    )


def sse_from_stats(m: LinearMap, test: PairStats) -> float:
    """Sum of squared residuals of ``m`` on the samples summarised by ``test``."""
    w = m.scale * m.weight
    c = test.mean_y - m.target_mean - w @ (test.mean_x - m.source_mean)
    return float(
        np.trace(test.syy) - 2.0 * np.sum(w * test.sxy.T) + np.sum((w @ test.sxx) * w) + test.n * float(c @ c)
    )


def r2_from_stats(m: LinearMap, test: PairStats) -> float:
    sst = float(np.trace(test.syy))
    return 1.0 - sse_from_stats(m, test) / sst if sst > 0 else 0.0


def _low_rank(w: F64, stats: PairStats, rank: int) -> tuple[F64, F64]:
    fitted_cov = w @ stats.sxx @ w.T
    vals, vecs = np.linalg.eigh((fitted_cov + fitted_cov.T) / 2)
    p = vecs[:, np.argsort(vals)[::-1][:rank]]
    return p, w.T @ p


def fit_low_rank(stats: PairStats, rank: int, alpha: float) -> LinearMap:
    if not 1 <= rank <= min(stats.d_x, stats.d_y):
        raise UsageError("argument", f"rank must be in 1..{min(stats.d_x, stats.d_y)}, got {rank}")
    u, v = _low_rank(ridge_weight(stats, alpha), stats, rank)
    return LinearMap(
        "low_rank_ridge",
        u @ v.T,
        stats.mean_x.copy(),
        stats.mean_y.copy(),
        u=u,
        v=v,
        hyperparameters={"alpha": float(alpha), "rank": int(rank)},
    )


def fit_procrustes(stats: PairStats, *, with_scale: bool = False) -> LinearMap:
    """Semi-orthogonal ``W = U Vᵀ`` maximising ``tr(W Sxy)``, after centring."""
    _check(stats, "procrustes")
    u, s, vt = np.linalg.svd(stats.sxy.T, full_matrices=False)
    w = u @ vt
    scale = float(s.sum() / np.trace(stats.sxx)) if with_scale else 1.0
    return LinearMap(
        "procrustes",
        w,
        stats.mean_x.copy(),
        stats.mean_y.copy(),
        scale=scale,
        hyperparameters={"with_scale": with_scale},
    )


def _sym_power(cov: F64, power: float) -> F64:
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    vals = np.clip(vals, 1e-12 * max(float(vals.max()), 1e-300), None)
    return np.asarray((vecs * vals**power) @ vecs.T, dtype=np.float64)


def fit_cca(stats: PairStats, *, k: int | None = None, reg: float = 1e-3) -> LinearMap:
    """CCA stored as the full linear map it implies (see module docstring)."""
    _check(stats, "cca")
    kmax = min(stats.d_x, stats.d_y)
    k = kmax if k is None else k
    if not 1 <= k <= kmax:
        raise UsageError("argument", f"cca k must be in 1..{kmax}, got {k}")
    cxx, cyy, cxy = stats.cov_xx(), stats.cov_yy(), stats.cov_xy()
    cxx = cxx + reg * np.trace(cxx) / stats.d_x * np.eye(stats.d_x)
    cyy = cyy + reg * np.trace(cyy) / stats.d_y * np.eye(stats.d_y)
    xi, yh = _sym_power(cxx, -0.5), _sym_power(cyy, 0.5)
    yi = _sym_power(cyy, -0.5)
    u, rho, vt = np.linalg.svd(xi @ cxy @ yi, full_matrices=False)
    u, rho, v = u[:, :k], rho[:k], vt[:k].T
    w = yh @ v @ np.diag(rho) @ u.T @ xi
    return LinearMap(
        "cca",
        w,
        stats.mean_x.copy(),
        stats.mean_y.copy(),
        hyperparameters={"k": int(k), "reg": float(reg)},
    )


def fit(
    train: PairStats,
    val: PairStats | None = None,
    *,
    method: str = "ridge",
    alphas: tuple[float, ...] = DEFAULT_RELATIVE_ALPHAS,
    rank: int = 64,
    k: int | None = None,
    reg: float = 1e-3,
    with_scale: bool = False,
) -> LinearMap:
    """Fit ``method``; for ridge methods choose α on ``val`` (R²), then refit on train + val."""
    if method not in METHODS:
        raise UsageError("argument", f"unknown fit method {method!r}; use one of {', '.join(METHODS)}")
    full = train if val is None or val.n == 0 else train.merged(val)
    if method == "procrustes":
        return fit_procrustes(full, with_scale=with_scale)
    if method == "cca":
        return fit_cca(full, k=k, reg=reg)
    if method == "lstsq":
        _check(full, "lstsq")
        w = np.asarray((np.linalg.pinv(full.sxx) @ full.sxy).T, dtype=np.float64)
        return LinearMap("lstsq", w, full.mean_x.copy(), full.mean_y.copy(), hyperparameters={"alpha": 0.0})
    base = _base_alpha(train)
    rel = alphas[len(alphas) // 2]
    if val is not None and val.n > 0 and len(alphas) > 1:
        scores = []
        for r in alphas:
            m = fit_ridge(train, r * base) if method == "ridge" else fit_low_rank(train, rank, r * base)
            scores.append(r2_from_stats(m, val))
        rel = alphas[int(np.argmax(scores))]
    elif len(alphas) == 1:
        rel = alphas[0]
    alpha = rel * _base_alpha(full)
    out = fit_ridge(full, alpha) if method == "ridge" else fit_low_rank(full, rank, alpha)
    out.hyperparameters["relative_alpha"] = float(rel)
    # what a translation needs to undo the shrinkage (mindvec.calibration): Σ of the rows the
    # map was fitted on, in the units of α (Wᵀ = (Σ + α I)⁻¹ Σxy), τ and n
    out.source_covariance = full.sxx / full.n
    out.shrinkage = {
        "alpha": float(alpha),
        "residual_variance": residual_variance(full.sxx, full.sxy, full.syy, full.n),
        "samples": int(full.n),
    }
    return out
