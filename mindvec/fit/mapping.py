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

Metrics on held-out pairs (:func:`evaluate`): the centred cosine between ``s·W(a - μA)`` and
``b - μB`` (the figure to report: the mean direction alone scores 0), the raw cosine between
``ŷ`` and ``b``, and the variance-weighted R² around the test mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mindvec.errors import UsageError
from mindvec.fit.stats import PairStats

F64 = npt.NDArray[np.float64]
METHODS = ("ridge", "lstsq", "procrustes", "cca", "low_rank_ridge")
#: ridge grid, as multiples of the mean eigenvalue tr(Σxx)/d_x
DEFAULT_RELATIVE_ALPHAS = (1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)

Params = dict[str, float | int | str | bool]


@dataclass(frozen=True)
class Metrics:
    """Held-out agreement of predicted and true target activations."""

    centered_cosine: float
    raw_cosine: float
    r2: float

    def to_dict(self) -> dict[str, float]:
        return {"centered_cosine": self.centered_cosine, "raw_cosine": self.raw_cosine, "r2": self.r2}


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
    return out


# ----------------------------------------------------------------------------- metrics


def _row_cos(a: F64, b: F64) -> float:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    den = na * nb
    cos = np.divide(np.sum(a * b, axis=1), den, out=np.zeros_like(den), where=den > 0)
    return float(cos.mean())


def evaluate(m: LinearMap, x: Any, y: Any) -> Metrics:
    """Held-out metrics of ``m`` on true pairs ``(x, y)``."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape[0] != ya.shape[0] or xa.shape[0] == 0:
        raise UsageError("argument", "evaluation needs the same positive number of x and y rows")
    centred = (xa - m.source_mean) @ m.weight.T * m.scale
    pred = centred + m.target_mean
    sst = float(np.sum((ya - ya.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum((ya - pred) ** 2)) / sst if sst > 0 else 0.0
    return Metrics(_row_cos(centred, ya - m.target_mean), _row_cos(pred, ya), r2)


def evaluate_mean(target_mean: F64, y: Any) -> Metrics:
    """The constant-mean baseline: predict the training mean of y for every sample."""
    ya = np.asarray(y, dtype=np.float64)
    pred = np.broadcast_to(target_mean, ya.shape)
    sst = float(np.sum((ya - ya.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum((ya - pred) ** 2)) / sst if sst > 0 else 0.0
    return Metrics(0.0, _row_cos(np.ascontiguousarray(pred), ya), r2)


# ----------------------------------------------------------------------------- splits


@dataclass
class SplitData:
    """Train and validation statistics plus stored held-out test pairs."""

    train: PairStats
    val: PairStats
    test_x: F64
    test_y: F64

    @property
    def train_samples(self) -> int:
        return self.train.n + self.val.n

    @property
    def test_samples(self) -> int:
        return int(self.test_x.shape[0])

    @classmethod
    def from_arrays(
        cls,
        x: Any,
        y: Any,
        *,
        groups: Any = None,
        test_fraction: float = 0.2,
        val_fraction: float = 0.15,
        seed: int = 0,
        shuffle_pairs: bool = False,
    ) -> SplitData:
        """Split by group (e.g. text chunk) so no chunk spans two splits.

        With ``shuffle_pairs`` the training and validation ``y`` rows are permuted (the
        shuffled-pairs baseline); the test pairs stay true.
        """
        xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        n = xa.shape[0]
        g = np.arange(n) if groups is None else np.asarray(groups)
        rng = np.random.default_rng(seed)
        uniq = np.unique(g)
        order = rng.permutation(len(uniq))
        n_test = max(1, int(round(len(uniq) * test_fraction)))
        n_val = max(1, int(round(len(uniq) * val_fraction)))
        if len(uniq) < n_test + n_val + 1:
            raise UsageError("argument", f"only {len(uniq)} groups; use more text to split train/val/test")
        split = np.empty(len(uniq), dtype=np.int8)
        split[order[:n_test]] = 2
        split[order[n_test : n_test + n_val]] = 1
        split[order[n_test + n_val :]] = 0
        which = split[np.searchsorted(uniq, g)]
        ytr = ya.copy()
        if shuffle_pairs:
            fit_rows = np.flatnonzero(which != 2)
            ytr[fit_rows] = ya[rng.permutation(fit_rows)]
        return cls(
            PairStats.from_arrays(xa[which == 0], ytr[which == 0]),
            PairStats.from_arrays(xa[which == 1], ytr[which == 1]),
            xa[which == 2],
            ya[which == 2],
        )


@dataclass
class FitReport:
    """A fitted map with its held-out metrics and the baselines fitted the same way."""

    mapping: LinearMap
    held_out: Metrics
    baselines: dict[str, Metrics]
    train_samples: int
    test_samples: int

    def metrics_dict(self) -> dict[str, Any]:
        """The ``metrics`` object of a manifest mapping."""
        return {
            "held_out": self.held_out.to_dict(),
            "baselines": {k: v.to_dict() for k, v in sorted(self.baselines.items())},
            "train_samples": self.train_samples,
            "test_samples": self.test_samples,
        }


def score_splits(
    data: SplitData,
    shuffled: SplitData,
    embedding: SplitData | None = None,
    *,
    method: str = "ridge",
    **hyper: Any,
) -> FitReport:
    """Fit on ``data`` and the baselines on theirs; score all on held-out true pairs."""
    m = fit(data.train, data.val, method=method, **hyper)
    held = evaluate(m, data.test_x, data.test_y)
    shuf_map = fit(shuffled.train, shuffled.val, method=method, **hyper)
    baselines = {
        "shuffled": evaluate(shuf_map, shuffled.test_x, shuffled.test_y),
        "mean": evaluate_mean(m.target_mean, data.test_y),
    }
    if embedding is not None:
        emb_map = fit(embedding.train, embedding.val, method=method, **hyper)
        baselines["embedding"] = evaluate(emb_map, embedding.test_x, embedding.test_y)
    return FitReport(m, held, baselines, data.train_samples, data.test_samples)


def fit_and_score(
    x: Any,
    y: Any,
    *,
    groups: Any = None,
    method: str = "ridge",
    seed: int = 0,
    embedding_x: Any = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    **hyper: Any,
) -> FitReport:
    """Fit on arrays with a grouped split, and score the map and the baselines on held-out pairs.

    Baselines: ``shuffled`` (the same method on shuffled training pairs), ``mean`` (constant
    training mean of y) and, when ``embedding_x`` (the source's embedding-layer activations at
    the same samples) is given, ``embedding`` (the same method from that layer).
    """
    kw: dict[str, Any] = {
        "groups": groups,
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
    }
    data = SplitData.from_arrays(x, y, **kw)
    shuf = SplitData.from_arrays(x, y, shuffle_pairs=True, **kw)
    emb = SplitData.from_arrays(embedding_x, y, **kw) if embedding_x is not None else None
    return score_splits(data, shuf, emb, method=method, **hyper)


class StreamingSplit:
    """Build a :class:`SplitData` from batches in bounded memory.

    Each group (text) goes to test, validation or train by a seeded draw, so a text never
    spans two splits. Train and validation become :class:`PairStats`; at most ``max_test``
    test pairs are stored. With ``shuffle_pairs``, training/validation ``x`` rows are paired
    with ``y`` rows drawn from the *previous* batch (other texts), the streaming form of the
    shuffled-pairs baseline; test pairs stay true.
    """

    def __init__(
        self,
        *,
        test_fraction: float = 0.2,
        val_fraction: float = 0.15,
        seed: int = 0,
        max_test: int = 5000,
        shuffle_pairs: bool = False,
    ) -> None:
        self.test_fraction, self.val_fraction = test_fraction, val_fraction
        self.seed, self.max_test, self.shuffle_pairs = seed, max_test, shuffle_pairs
        self.train: PairStats | None = None
        self.val: PairStats | None = None
        self._test: list[tuple[F64, F64]] = []
        self._n_test = 0
        self._prev_y: F64 | None = None
        self._rng = np.random.default_rng(seed)
        self._splits: dict[int, int] = {}

    def _split_of(self, group: int) -> int:
        if group not in self._splits:
            u = float(np.random.default_rng([self.seed, group]).random())
            self._splits[group] = (
                2 if u < self.test_fraction else 1 if u < self.test_fraction + self.val_fraction else 0
            )
        return self._splits[group]

    def add(self, x: Any, y: Any, groups: Any) -> None:
        xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        g = np.asarray(groups)
        if self.train is None or self.val is None:
            self.train = PairStats.empty(xa.shape[1], ya.shape[1])
            self.val = PairStats.empty(xa.shape[1], ya.shape[1])
        which = np.array([self._split_of(int(v)) for v in g], dtype=np.int8)
        test = which == 2
        if test.any() and self._n_test < self.max_test:
            take = np.flatnonzero(test)[: self.max_test - self._n_test]
            self._test.append((xa[take], ya[take]))
            self._n_test += len(take)
        fit_rows = np.flatnonzero(~test)
        y_fit = ya[fit_rows]
        if self.shuffle_pairs:
            prev, self._prev_y = self._prev_y, y_fit
            if prev is None or len(prev) == 0:
                return
            y_fit = prev[self._rng.integers(0, len(prev), size=len(fit_rows))]
        for split, stats in ((0, self.train), (1, self.val)):
            sel = which[fit_rows] == split
            if sel.any():
                stats.update(xa[fit_rows][sel], y_fit[sel])

    def merge_in(self, other: StreamingSplit) -> None:
        """Fold in a split built on other texts (another shard); test pairs stay capped."""
        if other.train is None or other.val is None:
            return
        if self.train is None or self.val is None:
            self.train, self.val = other.train.copy(), other.val.copy()
        else:
            self.train.merge_in(other.train)
            self.val.merge_in(other.val)
        for tx, ty in other._test:
            room = self.max_test - self._n_test
            if room > 0:
                self._test.append((tx[:room], ty[:room]))
                self._n_test += min(room, len(tx))

    def state(self, prefix: str, test: str = "xy") -> dict[str, Any]:
        """Arrays for an ``.npz`` shard (with :meth:`from_state`); ``test`` picks the test
        arrays kept (``"xy"``, ``"x"`` or ``""`` when another split holds the same rows)."""
        if self.train is None or self.val is None:
            raise UsageError("argument", "nothing was added to this split; there is no shard to save")
        out: dict[str, Any] = {}
        for name, st in (("train", self.train), ("val", self.val)):
            for field_name in ("mean_x", "mean_y", "sxx", "sxy", "syy"):
                out[f"{prefix}.{name}.{field_name}"] = getattr(st, field_name)
            out[f"{prefix}.{name}.n"] = np.array(st.n, dtype=np.int64)
        data = self.finish()
        # activations arrive as float32, so the stored test pairs lose nothing in float32
        if "x" in test:
            out[f"{prefix}.test_x"] = data.test_x.astype(np.float32)
        if "y" in test:
            out[f"{prefix}.test_y"] = data.test_y.astype(np.float32)
        return out

    @classmethod
    def from_state(
        cls, arrays: dict[str, Any], prefix: str, *, test_x: str = "", test_y: str = "", **kw: Any
    ) -> StreamingSplit:
        """Rebuild from :meth:`state`; ``test_x``/``test_y`` name another prefix holding them."""
        split = cls(**kw)
        stats = []
        for name in ("train", "val"):
            f = {
                k: arrays[f"{prefix}.{name}.{k}"].astype(np.float64)
                for k in ("mean_x", "mean_y", "sxx", "sxy", "syy")
            }
            stats.append(PairStats(int(arrays[f"{prefix}.{name}.n"]), **f))
        split.train, split.val = stats
        tx = arrays[f"{test_x or prefix}.test_x"].astype(np.float64)
        ty = arrays[f"{test_y or prefix}.test_y"].astype(np.float64)
        split._test, split._n_test = [(tx, ty)], len(tx)
        return split

    def finish(self) -> SplitData:
        if self.train is None or self.val is None or self.train.n < 2 or not self._test:
            raise UsageError("argument", "too few texts for a train/validation/test split; use more text")
        return SplitData(
            self.train,
            self.val,
            np.concatenate([t[0] for t in self._test]),
            np.concatenate([t[1] for t in self._test]),
        )
