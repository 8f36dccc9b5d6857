"""The streamed state of a fit: joint statistics, held-out sample and norms, keyed by document.

Shards (``--part K/N --shard``) and ``torchrun`` ranks of the same fit merge exactly, because
the split of every row is a function of its document and the held-out sample is the bottom-k
by row key (:mod:`mindvec.fit.splits`). Shards are ``.npz`` files, never pickles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mindvec.errors import UsageError
from mindvec.fit.accumulate import JointStats, Product
from mindvec.fit.distributed import World, all_sum, reduce_joint, reduce_sample
from mindvec.fit.paired import PairedBatch
from mindvec.fit.splits import HeldOutSample, cross_document_permutation, row_keys, split_of
from mindvec.fit.stats import Moments, load_npz_tagged, save_npz_atomic
from mindvec.site import Site, as_site

#: the source's embedding layer, read for the ``embedding`` baseline
EMBEDDING_SITE = as_site(("decoder", 0, "resid_pre"))
#: held-out test rows kept per fit (a bottom-k sample by row key)
MAX_TEST = 5000


def site_of(layer: int) -> Site:
    return as_site(("decoder", layer, "resid_post"))


SHARD_TAG = "mindvec.fitshard.v2"
EMBEDDING = "emb"


def source_block(layer: int) -> str:
    return f"s{layer}"


def target_block(layer: int) -> str:
    return f"t{layer}"


def shuffled_block(layer: int) -> str:
    return f"t{layer}~"  # the target rows of the shuffled-pairs baseline


def _layout(pairs: Sequence[tuple[int, int]], d_src: int, d_tgt: int) -> tuple[dict[str, int], list[Product]]:
    """Blocks and products of a fit: each source's ``Sxx`` once, shared by every map reading it."""
    sources = sorted({s for s, _ in pairs})
    targets = sorted({t for _, t in pairs})
    dims = {source_block(s): d_src for s in sources} | {EMBEDDING: d_src}
    dims |= {target_block(t): d_tgt for t in targets} | {shuffled_block(t): d_tgt for t in targets}
    products: list[Product] = [(b, b) for b in dims]
    products += [(source_block(s), target_block(t)) for s, t in pairs] + [
        (source_block(s), shuffled_block(t)) for s, t in pairs
    ]
    products += [(EMBEDDING, target_block(t)) for t in targets]
    return dims, products


@dataclass
class FitState:
    """Streaming state of a multi-pair fit; shards and ranks of it merge exactly.

    ``train`` and ``val`` hold the joint statistics of every source site, the embedding
    layer, every target site and its shuffled-pairs twin; ``test`` the bottom-k sample of
    held-out rows; ``norms[t]`` the target site's ``(tokens, sum of norms)``. ``end`` is one
    past the last document the pass covered. Splits are keyed by document and rows by
    (document, position), so the state does not depend on batch arrival or the world size.
    """

    pairs: list[tuple[int, int]]
    train: JointStats
    val: JointStats
    test: HeldOutSample
    norms: dict[int, torch.Tensor]
    seed: int = 0
    n: int = 0
    texts: int = 0
    end: int = 0

    @classmethod
    def empty(
        cls,
        pairs: Sequence[tuple[int, int]],
        d_src: int,
        d_tgt: int,
        *,
        seed: int = 0,
        max_test: int = MAX_TEST,
        device: torch.device | str = "cpu",
    ) -> FitState:
        dims, products = _layout(pairs, d_src, d_tgt)
        dev = torch.device(device)
        rows = {b: np.zeros((0, d), np.float32) for b, d in dims.items() if not b.endswith("~")}
        return cls(
            list(pairs),
            JointStats(dims, products, dev),
            JointStats(dims, products, dev),
            HeldOutSample(max_test, rows=rows),
            {t: torch.zeros(2, dtype=torch.float64, device=dev) for t in sorted({t for _, t in pairs})},
            seed,
        )

    def add(self, batch: PairedBatch) -> None:
        """Fold in one batch: train/validation statistics, candidate test rows, target norms."""
        dev = self.train.device
        sources, targets = sorted({s for s, _ in self.pairs}), sorted(self.norms)
        x = {source_block(s): batch.x[site_of(s)] for s in sources} | {EMBEDDING: batch.x[EMBEDDING_SITE]}
        y = {target_block(t): batch.y[site_of(t)] for t in targets}
        split = split_of(batch.groups, seed=self.seed)
        fit_rows = np.flatnonzero(split != 2)
        perm = cross_document_permutation(batch.groups[fit_rows], seed=self.seed, batch=batch.index)
        for part, stats in ((0, self.train), (1, self.val)):
            local = np.flatnonzero(split[fit_rows] == part)
            rows = torch.from_numpy(fit_rows[local])
            shuffled = torch.from_numpy(fit_rows[perm[local]])
            blocks = {b: v[rows.to(v.device)] for b, v in (x | y).items()}
            blocks |= {
                shuffled_block(t): y[target_block(t)][shuffled.to(y[target_block(t)].device)] for t in targets
            }
            stats.add(blocks)
        test_rows = np.flatnonzero(split == 2)
        if len(test_rows):
            keys = row_keys(batch.groups[test_rows], batch.positions[test_rows], seed=self.seed)
            limit = self.test.threshold()
            take = test_rows if limit is None else test_rows[keys < np.uint64(limit)]
            keys = keys if limit is None else keys[keys < np.uint64(limit)]
            if len(take):
                idx = torch.from_numpy(take)
                self.test.add(keys, {b: v[idx.to(v.device)].cpu().numpy() for b, v in (x | y).items()})
        for t in targets:
            v = y[target_block(t)]
            norms = torch.linalg.vector_norm(v, dim=1).sum(dtype=torch.float64).to(dev)
            self.norms[t] += torch.stack(
                [torch.tensor(float(v.shape[0]), dtype=torch.float64, device=dev), norms]
            )
        self.n += batch.n
        self.texts += batch.texts

    def merge_in(self, other: FitState) -> None:
        """Fold in a shard written by another process (``--part K/N --shard``)."""
        if other.pairs != self.pairs:
            raise UsageError("argument", f"shards fit different layer pairs ({other.pairs} vs {self.pairs})")
        self.train.merge_in(other.train)
        self.val.merge_in(other.val)
        self.test.merge_in(other.test)
        for t in self.norms:
            self.norms[t] += other.norms[t].to(self.norms[t].device)
        self.n += other.n
        self.texts += other.texts
        self.end = max(self.end, other.end)

    def reduce(self, world: World) -> None:
        """Merge every rank's state into this one, on every rank (collectives)."""
        if not world.active:
            return
        self.train = reduce_joint(world, self.train)
        self.val = reduce_joint(world, self.val)
        self.test = reduce_sample(world, self.test)
        for t in self.norms:
            self.norms[t] = all_sum(world, self.norms[t])
        counts = all_sum(world, torch.tensor([float(self.n), float(self.texts)], dtype=torch.float64))
        self.n, self.texts = int(counts[0]), int(counts[1])

    def norm_moments(self, t: int) -> Moments:
        n, total = (float(v) for v in self.norms[t].cpu())
        return Moments(int(n), np.zeros(1), total)

    def save(self, path: str | Path, meta: bytes = b"") -> Path:
        """An ``.npz`` shard (no pickle); ``meta`` is opaque bytes (e.g. canonical msgpack)."""
        arrays: dict[str, Any] = {
            "format": np.array(SHARD_TAG),
            "pairs": np.array(self.pairs, dtype=np.int64),
            "counts": np.array([self.n, self.texts, self.end, self.seed, self.test.k], dtype=np.int64),
            "dims": np.array([self.train.dims[EMBEDDING], self._dtarget_block()], dtype=np.int64),
            "meta": np.frombuffer(meta, dtype=np.uint8),
            "test.keys": self.test.keys.view(np.int64),
        }
        arrays |= self.train.arrays("train") | self.val.arrays("val")
        arrays |= {f"test.rows.{b}": r for b, r in self.test.rows.items()}
        arrays |= {f"norm.{t}": v.cpu().numpy() for t, v in self.norms.items()}
        return save_npz_atomic(Path(path), arrays)

    def _dtarget_block(self) -> int:
        return next(d for b, d in self.train.dims.items() if b.startswith("t"))

    @classmethod
    def load(cls, path: str | Path) -> tuple[FitState, bytes]:
        a = load_npz_tagged(Path(path), SHARD_TAG)
        try:
            pairs = [(int(s), int(t)) for s, t in a["pairs"]]
            n, texts, end, seed, k = (int(v) for v in a["counts"])
            d_src, d_tgt = (int(v) for v in a["dims"])
            state = cls.empty(pairs, d_src, d_tgt, seed=seed, max_test=k)
            dims, products = _layout(pairs, d_src, d_tgt)
            state.train = JointStats.from_arrays(a, "train", dims, products)
            state.val = JointStats.from_arrays(a, "val", dims, products)
            state.test = HeldOutSample(
                k, a["test.keys"].view(np.uint64), {b: a[f"test.rows.{b}"] for b in state.test.rows}
            )
            state.norms = {t: torch.from_numpy(a[f"norm.{t}"].astype(np.float64)) for t in state.norms}
        except (KeyError, ValueError) as exc:
            raise UsageError("argument", f"{path} is not a complete fit shard ({exc}); re-create it") from exc
        state.n, state.texts, state.end = n, texts, end
        return state, a["meta"].tobytes()
