"""Collection across processes with ``torch.distributed``, started by ``torchrun``.

``torchrun --nproc-per-node N -m mindvec fit ...`` starts N processes with ``RANK`` and
``WORLD_SIZE`` set. Each takes the corpus batches ``b`` with ``b % N == rank`` (batches are
fixed runs of documents, so every per-batch step is the same whatever N is), and the ranks
then reduce what they hold with collectives: gloo on CPU, NCCL on CUDA. Only rank 0 writes.

The statistics reduce with the k-way form of Chan's update, in two all-reduces::

    n = Σ nᵢ,   μ = Σ nᵢ μᵢ / n,   S = Σ [Sᵢ + nᵢ (μᵢa - μa)(μᵢb - μb)ᵀ]

Test samples (bottom-k by key) and stored rows are gathered and merged by key, so the result
equals the single-process one up to float summation order.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mindvec.errors import UsageError
from mindvec.fit.accumulate import JointStats
from mindvec.fit.splits import HeldOutSample


@dataclass(frozen=True)
class World:
    """This process's place in the job: ``rank`` of ``size``, and the collective backend."""

    rank: int = 0
    size: int = 1
    backend: str = "none"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.backend != "none"

    def takes(self, batch: int) -> bool:
        return batch % self.size == self.rank

    def provenance(self) -> dict[str, int | str]:
        return {"world_size": self.size, "backend": self.backend}


SINGLE = World()


def launched() -> bool:
    """True under ``torchrun`` (or any launcher that sets ``WORLD_SIZE``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def init(device: str = "cpu") -> World:
    """Join the job ``torchrun`` started (NCCL for CUDA, else gloo), or run alone."""
    if not launched():
        return SINGLE
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        try:
            dist.init_process_group(backend=backend)
        except (RuntimeError, ValueError) as exc:
            raise UsageError("argument", f"cannot join the torchrun job ({backend}): {exc}") from exc
    return World(dist.get_rank(), dist.get_world_size(), dist.get_backend())


@contextlib.contextmanager
def joined(device: str = "cpu") -> Iterator[World]:
    """The job's :class:`World` for the length of a command (:func:`init`, then :func:`close`)."""
    world = init(device)
    try:
        yield world
    finally:
        close(world)


def close(world: World) -> None:
    if world.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def local_device(world: World, device: str) -> str:
    """Under NCCL each rank drives the GPU of its ``LOCAL_RANK``."""
    if world.active and device == "cuda":
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def _comm_device(world: World) -> torch.device:
    if world.backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(world: World, t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over ranks (a copy on ``t``'s device)."""
    if not world.active:
        return t.clone()
    import torch.distributed as dist

    buf = t.to(_comm_device(world)).clone()
    dist.all_reduce(buf)
    return buf.to(t.device)


def reduce_joint(world: World, stats: JointStats) -> JointStats:
    """Every rank's :class:`JointStats` merged, on every rank (the k-way Chan update)."""
    if not world.active:
        return stats
    keys = list(stats.dims)
    n_local = torch.tensor([float(stats.n)], dtype=torch.float64, device=stats.device)
    weighted = torch.cat([n_local] + [stats.mean[k] * stats.n for k in keys])
    summed = all_sum(world, weighted)
    n = int(round(float(summed[0])))
    out = JointStats.empty_like(stats)
    if n == 0:
        return out
    lo = 1
    for k in keys:
        out.mean[k] = summed[lo : lo + stats.dims[k]] / n
        lo += stats.dims[k]
    local = []
    for a, b in stats.products:
        corr = torch.outer(stats.mean[a] - out.mean[a], stats.mean[b] - out.mean[b]) * stats.n
        local.append((stats.prod[(a, b)] + corr).reshape(-1))
    flat = all_sum(world, torch.cat(local)) if local else torch.zeros(0, dtype=torch.float64)
    lo = 0
    for a, b in stats.products:
        size = stats.dims[a] * stats.dims[b]
        out.prod[(a, b)] = flat[lo : lo + size].reshape(stats.dims[a], stats.dims[b])
        lo += size
    out.n = n
    return out


def gather_rows(
    world: World, keys: np.ndarray, rows: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every rank's keyed rows, on every rank, sorted by key (uint64 keys, float rows)."""
    order = np.argsort(keys, kind="stable")
    if not world.active:
        return keys[order], {b: r[order] for b, r in rows.items()}
    import torch.distributed as dist

    dev = _comm_device(world)
    count = torch.tensor([len(keys)], dtype=torch.int64, device=dev)
    counts = [torch.zeros_like(count) for _ in range(world.size)]
    dist.all_gather(counts, count)
    sizes = [int(c) for c in counts]
    top = max(sizes)

    def gather(a: np.ndarray) -> np.ndarray:
        t = torch.zeros((top, *a.shape[1:]), dtype=torch.from_numpy(a[:0]).dtype, device=dev)
        t[: len(a)] = torch.from_numpy(np.ascontiguousarray(a)).to(dev)
        parts = [torch.zeros_like(t) for _ in range(world.size)]
        dist.all_gather(parts, t)
        return np.concatenate([p[:s].cpu().numpy() for p, s in zip(parts, sizes, strict=True)])

    all_keys = gather(keys.view(np.int64)).view(np.uint64)
    all_rows = {b: gather(r) for b, r in sorted(rows.items())}
    order = np.argsort(all_keys, kind="stable")
    return all_keys[order], {b: r[order] for b, r in all_rows.items()}


def reduce_sample(world: World, sample: HeldOutSample) -> HeldOutSample:
    """The bottom-k test sample of the whole job, on every rank."""
    keys, rows = gather_rows(world, sample.keys, sample.rows)
    out = HeldOutSample(sample.k)
    out.add(keys, rows)
    return out
