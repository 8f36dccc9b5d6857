"""Centred sufficient statistics for fitting linear maps, merged exactly across shards.

A :class:`PairStats` holds, for paired samples ``x`` (``d_x``) and ``y`` (``d_y``), the count,
the means and the *centred* sums of products ``Sxx = Σ (x-μx)(x-μx)ᵀ``, ``Sxy`` and ``Syy``,
all in float64. Raw sums lose precision at Gemma 3's activation scale (about 1e5), so batches
are folded in with the parallel update of Chan, Golub and LeVeque::

    n = na + nb,   δ = μb - μa,   μ = μa + δ·nb/n,
    S = Sa + Sb + (δx δyᵀ)·na·nb/n

which is exact: the stats of two shards merged equal the stats of one pass over both.
Shards are saved as ``.npz`` (never pickle) with :meth:`PairStats.save` / :meth:`PairStats.load`.
:class:`Moments` is the one-variable version, which also tracks the mean Euclidean norm
(the calibration of a site).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mindvec._fs import atomic_writer
from mindvec.errors import UsageError

F64 = npt.NDArray[np.float64]
FORMAT_TAG = "mindvec.pairstats.v1"


def _as_2d(a: Any, name: str) -> F64:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise UsageError("argument", f"{name} must be [samples, features], got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise UsageError("argument", f"{name} has NaN or Inf values; check the activations")
    return arr


def save_npz_atomic(path: Path, arrays: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as handle:
        np.savez(handle, **arrays)
    return path


def load_npz_tagged(path: Path, tag: str) -> dict[str, Any]:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UsageError("io", f"cannot read statistics shard {path}: {exc}; re-create it") from exc
    found = str(arrays.get("format", ""))
    if found != tag:
        if found.rpartition(".")[0] == tag.rpartition(".")[0]:
            raise UsageError("argument", f"{path} is a {found} shard from another mindvec; re-create it")
        raise UsageError("argument", f"{path} is not a {tag} shard; pass a file written by save()")
    return arrays


@dataclass
class PairStats:
    """Count, means and centred second moments of paired samples (float64)."""

    n: int
    mean_x: F64
    mean_y: F64
    sxx: F64
    sxy: F64
    syy: F64

    @classmethod
    def empty(cls, d_x: int, d_y: int) -> PairStats:
        return cls(
            0,
            np.zeros(d_x),
            np.zeros(d_y),
            np.zeros((d_x, d_x)),
            np.zeros((d_x, d_y)),
            np.zeros((d_y, d_y)),
        )

    @classmethod
    def from_arrays(cls, x: Any, y: Any) -> PairStats:
        """Statistics of one batch, computed in one centred pass."""
        xa, ya = _as_2d(x, "x"), _as_2d(y, "y")
        if xa.shape[0] != ya.shape[0]:
            raise UsageError("argument", f"x has {xa.shape[0]} rows but y has {ya.shape[0]}; pair them")
        mx, my = xa.mean(axis=0), ya.mean(axis=0)
        xc, yc = xa - mx, ya - my
        return cls(xa.shape[0], mx, my, xc.T @ xc, xc.T @ yc, yc.T @ yc)

    @property
    def d_x(self) -> int:
        return int(self.mean_x.shape[0])

    @property
    def d_y(self) -> int:
        return int(self.mean_y.shape[0])

    def update(self, x: Any, y: Any) -> PairStats:
        """Fold in a batch of pairs (in place); returns self."""
        self.merge_in(PairStats.from_arrays(x, y))
        return self

    def merge_in(self, other: PairStats) -> None:
        if (other.d_x, other.d_y) != (self.d_x, self.d_y):
            raise UsageError(
                "argument",
                f"cannot merge stats of widths {other.d_x}x{other.d_y} into {self.d_x}x{self.d_y}; "
                "merge shards of the same site pair only",
            )
        if other.n == 0:
            return
        if self.n == 0:
            self.n, self.mean_x, self.mean_y = other.n, other.mean_x.copy(), other.mean_y.copy()
            self.sxx, self.sxy, self.syy = other.sxx.copy(), other.sxy.copy(), other.syy.copy()
            return
        n = self.n + other.n
        dx = other.mean_x - self.mean_x
        dy = other.mean_y - self.mean_y
        f = self.n * other.n / n
        self.sxx = self.sxx + other.sxx + np.outer(dx, dx) * f
        self.sxy = self.sxy + other.sxy + np.outer(dx, dy) * f
        self.syy = self.syy + other.syy + np.outer(dy, dy) * f
        self.mean_x = self.mean_x + dx * (other.n / n)
        self.mean_y = self.mean_y + dy * (other.n / n)
        self.n = n

    def merged(self, other: PairStats) -> PairStats:
        out = self.copy()
        out.merge_in(other)
        return out

    def copy(self) -> PairStats:
        return PairStats(
            self.n,
            self.mean_x.copy(),
            self.mean_y.copy(),
            self.sxx.copy(),
            self.sxy.copy(),
            self.syy.copy(),
        )

    def cov_xx(self) -> F64:
        return self.sxx / max(self.n, 1)

    def cov_xy(self) -> F64:
        return self.sxy / max(self.n, 1)

    def cov_yy(self) -> F64:
        return self.syy / max(self.n, 1)

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` shard atomically (no pickle)."""
        return save_npz_atomic(
            Path(path),
            {
                "format": np.array(FORMAT_TAG),
                "n": np.array(self.n, dtype=np.int64),
                "mean_x": self.mean_x,
                "mean_y": self.mean_y,
                "sxx": self.sxx,
                "sxy": self.sxy,
                "syy": self.syy,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> PairStats:
        a = load_npz_tagged(Path(path), FORMAT_TAG)
        return cls(
            int(a["n"]),
            a["mean_x"].astype(np.float64),
            a["mean_y"].astype(np.float64),
            a["sxx"].astype(np.float64),
            a["sxy"].astype(np.float64),
            a["syy"].astype(np.float64),
        )


def merge_all(shards: list[PairStats]) -> PairStats:
    """Merge shards in order; raises if the list is empty."""
    if not shards:
        raise UsageError("argument", "no statistics shards to merge; pass at least one")
    out = shards[0].copy()
    for shard in shards[1:]:
        out.merge_in(shard)
    return out


@dataclass
class Moments:
    """Running count, mean and mean Euclidean norm of vectors at one site (float64)."""

    n: int
    mean: F64
    norm_sum: float

    @classmethod
    def empty(cls, d: int) -> Moments:
        return cls(0, np.zeros(d), 0.0)

    def update(self, x: Any) -> Moments:
        xa = _as_2d(x, "x")
        if xa.shape[0] == 0:
            return self
        n = self.n + xa.shape[0]
        self.mean = self.mean + (xa.mean(axis=0) - self.mean) * (xa.shape[0] / n)
        self.norm_sum += float(np.linalg.norm(xa, axis=1).sum())
        self.n = n
        return self

    def merge_in(self, other: Moments) -> None:
        if other.n == 0:
            return
        n = self.n + other.n
        self.mean = self.mean + (other.mean - self.mean) * (other.n / n)
        self.norm_sum += other.norm_sum
        self.n = n

    @property
    def mean_norm(self) -> float:
        """Mean Euclidean norm of the samples (the calibration of a site)."""
        return self.norm_sum / self.n if self.n else 0.0
