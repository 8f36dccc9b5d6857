"""Centred statistics of many column blocks of the same rows, accumulated on the device.

A fit reads several sites of two models at once, and every site sees the same rows (the
paired tokens). :class:`JointStats` keeps, for those rows, the count, each block's mean and
the centred cross-products ``S_ab = Σ (a - μa)(b - μb)ᵀ`` of the block pairs asked for, so a
source site's ``Sxx`` is computed once and shared by every map and baseline that reads it.

Each batch is centred on its own mean, its products are taken in fp32 with TF32 off, and it
is folded into float64 totals with the update of Chan, Golub and LeVeque (DESIGN 8)::

    n = na + nb,   δ = μb - μa,   S = Sa + Sb + δa δbᵀ · na·nb/n

Ranks of a ``torchrun`` job reduce theirs with the k-way form of the same update
(:func:`mindvec.fit.distributed.reduce_joint`). :meth:`JointStats.pair` gives the
:class:`~mindvec.fit.stats.PairStats` that the solvers take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mindvec.errors import UsageError
from mindvec.fit.device import exact_fp32
from mindvec.fit.stats import PairStats

Product = tuple[str, str]


@dataclass
class JointStats:
    """Count, block means and centred block cross-products (float64 tensors on one device)."""

    dims: dict[str, int]
    products: list[Product]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    n: int = 0
    mean: dict[str, torch.Tensor] = field(default_factory=dict)
    prod: dict[Product, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for a, b in self.products:
            if a not in self.dims or b not in self.dims:
                raise UsageError("argument", f"product ({a}, {b}) names a block that is not declared")
        dev, f64 = self.device, torch.float64
        self.mean = self.mean or {k: torch.zeros(d, dtype=f64, device=dev) for k, d in self.dims.items()}
        self.prod = self.prod or {
            (a, b): torch.zeros(self.dims[a], self.dims[b], dtype=f64, device=dev) for a, b in self.products
        }

    @classmethod
    def empty_like(cls, other: JointStats) -> JointStats:
        return cls(dict(other.dims), list(other.products), other.device)

    def add(self, blocks: dict[str, torch.Tensor]) -> None:
        """Fold in one batch: ``blocks[name]`` is ``[m, d]``, the same ``m`` rows for every block."""
        m = {int(t.shape[0]) for t in blocks.values()}
        if len(m) != 1 or set(blocks) != set(self.dims):
            raise UsageError(
                "argument", "every block needs the same number of rows, and every block is needed"
            )
        rows = m.pop()
        if rows == 0:
            return
        with exact_fp32():
            xs = {k: t.to(self.device, torch.float32) for k, t in blocks.items()}
            mu = {k: x.sum(0, dtype=torch.float64) / rows for k, x in xs.items()}
            centred = {k: x - mu[k].to(torch.float32) for k, x in xs.items()}
            # what fp32 centring left over, so that each product is centred exactly
            rest = {k: c.sum(0, dtype=torch.float64) / rows for k, c in centred.items()}
            total = self.n + rows
            f = self.n * rows / total
            delta = {k: mu[k] - self.mean[k] for k in xs}
            for a, b in self.products:
                p = (centred[a].T @ centred[b]).to(torch.float64)
                p -= rows * torch.outer(rest[a], rest[b])
                if self.n:
                    p += torch.outer(delta[a], delta[b]) * f
                self.prod[(a, b)] += p
            for k in xs:
                self.mean[k] += delta[k] * (rows / total)
            self.n = total

    def merge_in(self, other: JointStats) -> None:
        """Chan's update with another accumulator over other rows (a shard)."""
        if other.dims != self.dims or other.products != self.products:
            raise UsageError(
                "argument", "cannot merge statistics of different sites; merge shards of one fit"
            )
        if other.n == 0:
            return
        total = self.n + other.n
        f = self.n * other.n / total
        delta = {k: other.mean[k].to(self.device) - self.mean[k] for k in self.dims}
        for key in self.products:
            a, b = key
            self.prod[key] += other.prod[key].to(self.device) + torch.outer(delta[a], delta[b]) * f
        for k in self.dims:
            self.mean[k] += delta[k] * (other.n / total)
        self.n = total

    def pair(self, x: str, y: str) -> PairStats:
        """The statistics of the pair of blocks ``(x, y)`` as numpy float64."""

        def get(a: str, b: str) -> np.ndarray:
            if (a, b) in self.prod:
                return self.prod[(a, b)].cpu().numpy()
            if (b, a) in self.prod:
                return self.prod[(b, a)].T.cpu().numpy()
            raise UsageError("argument", f"no product ({a}, {b}) was accumulated")

        return PairStats(
            self.n,
            self.mean[x].cpu().numpy(),
            self.mean[y].cpu().numpy(),
            get(x, x),
            get(x, y),
            get(y, y),
        )

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Flat numpy arrays for an ``.npz`` shard (with :meth:`from_arrays`)."""
        out = {f"{prefix}.n": np.array(self.n, dtype=np.int64)}
        for k, v in self.mean.items():
            out[f"{prefix}.mean.{k}"] = v.cpu().numpy()
        for (a, b), v in self.prod.items():
            out[f"{prefix}.prod.{a}|{b}"] = v.cpu().numpy()
        return out

    @classmethod
    def from_arrays(
        cls, arrays: dict[str, np.ndarray], prefix: str, dims: dict[str, int], products: Sequence[Product]
    ) -> JointStats:
        try:
            mean = {k: torch.from_numpy(np.asarray(arrays[f"{prefix}.mean.{k}"], np.float64)) for k in dims}
            prod = {
                (a, b): torch.from_numpy(np.asarray(arrays[f"{prefix}.prod.{a}|{b}"], np.float64))
                for a, b in products
            }
            n = int(arrays[f"{prefix}.n"])
        except KeyError as exc:
            raise UsageError(
                "argument", f"statistics shard lacks {exc}; re-create it with this version"
            ) from exc
        for k, v in mean.items():
            if v.shape != (dims[k],):
                raise UsageError(
                    "argument", f"statistics shard block {k} has shape {tuple(v.shape)}; re-create it"
                )
        return cls(dict(dims), list(products), torch.device("cpu"), n, mean, prod)
