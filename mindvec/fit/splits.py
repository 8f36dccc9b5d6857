"""Train / validation / test splits keyed by document, so no document spans two splits.

:class:`SplitData` splits arrays held in memory. A streamed fit (:mod:`mindvec.fit.pipeline`)
uses the keyed pieces below instead, so that the result does not depend on the order in which
batches arrive, on the batch a process saw first, or on the number of processes:

- :func:`split_of` gives each document its split from a hash of ``(seed, document id)``;
- :func:`row_keys` gives each row a hash of ``(seed, document id, position)``, and
  :class:`HeldOutSample` keeps the ``k`` test rows with the smallest keys (a bottom-k sample,
  which merges exactly: the union's bottom k);
- :func:`cross_document_permutation` pairs each row of a batch with a row of another document
  of the same batch (the shuffled-pairs baseline); batches are fixed runs of documents.

The hash is SplitMix64 (Steele, Lea and Flood 2014), vectorised in numpy: no Python loop
over rows or documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mindvec.errors import UsageError
from mindvec.fit.mapping import F64
from mindvec.fit.stats import PairStats


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


U64 = npt.NDArray[np.uint64]
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SPLIT_SALT, _ROW_SALT, _SHUFFLE_SALT = 0x5B1, 0x7E57, 0x5AFF


def _mix(z: U64) -> U64:
    z = z.copy()
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def keyed_hash(*parts: Any) -> U64:
    """SplitMix64 of a tuple of integer arrays (broadcast), chained: the same tuple, the same key."""
    out = np.zeros(np.broadcast_shapes(*(np.shape(p) for p in parts)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for part in parts:
            out = _mix(out + _GOLDEN + np.asarray(part).astype(np.int64).astype(np.uint64))
    return out


def split_of(
    docs: Any, *, seed: int = 0, test_fraction: float = 0.2, val_fraction: float = 0.15
) -> npt.NDArray[np.int8]:
    """0 = train, 1 = validation, 2 = test, per document id, from a hash of (seed, id)."""
    u = (keyed_hash(seed, _SPLIT_SALT, docs) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    out = np.zeros(u.shape, dtype=np.int8)
    out[u < test_fraction + val_fraction] = 1
    out[u < test_fraction] = 2
    return out


def row_keys(docs: Any, positions: Any, *, seed: int = 0) -> U64:
    """One key per row, from (seed, document id, position in the document)."""
    return keyed_hash(seed, _ROW_SALT, docs, positions)


def cross_document_permutation(docs: Any, *, seed: int, batch: int) -> npt.NDArray[np.int64]:
    """``perm`` such that row ``i`` pairs with row ``perm[i]`` of another document, when possible.

    ``docs`` holds each row's document id, rows of a document contiguous. The documents are put
    in a seeded random order and the rows rolled by the longest document, so no row meets its
    own document unless one document holds more than half the rows; a batch of one document
    is then paired within it (reversed), which the spec's baseline note allows.
    """
    g = np.asarray(docs)
    m = len(g)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    counts = np.diff(np.r_[starts, m])
    if len(starts) < 2:
        return np.arange(m - 1, -1, -1, dtype=np.int64)
    rng = np.random.default_rng([seed, _SHUFFLE_SALT, batch])
    order = rng.permutation(len(starts))
    cnt = counts[order]
    offsets = np.repeat(starts[order] - np.r_[0, np.cumsum(cnt)[:-1]], cnt)
    seq = offsets + np.arange(m)
    perm = np.empty(m, dtype=np.int64)
    perm[seq] = seq[(np.arange(m) + int(counts.max())) % m]
    return perm


@dataclass
class HeldOutSample:
    """The ``k`` test rows with the smallest keys, per block: a sample that merges exactly."""

    k: int
    keys: U64 = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    rows: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.keys.shape[0])

    def threshold(self) -> int | None:
        """Keys at or above this cannot enter (None while the sample is not full)."""
        return int(self.keys.max()) if self.n >= self.k else None

    def add(self, keys: Any, rows: dict[str, Any]) -> None:
        """Fold in candidate rows (float32 ``[m, d]`` per block); the sample stays sorted by key."""
        all_keys = np.concatenate([self.keys, np.asarray(keys, dtype=np.uint64)])
        merged = {
            b: np.concatenate([self.rows[b], np.asarray(r, dtype=np.float32)])
            if b in self.rows
            else np.asarray(r, dtype=np.float32)
            for b, r in rows.items()
        }
        order = np.argsort(all_keys, kind="stable")[: self.k]
        self.keys = all_keys[order]
        self.rows = {b: r[order] for b, r in merged.items()}

    def merge_in(self, other: HeldOutSample) -> None:
        if other.n:
            self.add(other.keys, other.rows)
