"""Train / validation / test splits keyed by text, so no text spans two splits.

:class:`SplitData` splits arrays held in memory; :class:`StreamingSplit` builds the same
from batches in bounded memory (sufficient statistics for train and validation, a capped
sample of test pairs), which is how a fit streams tens of thousands of pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
