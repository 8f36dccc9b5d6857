"""Collect activations at any set of sites of a transformers model, streaming over texts.

Sites are resolved by the loader (:func:`mindvec.loader.sites.attach`), so a capture reads
exactly what steering writes. Texts go through the model in right-padded batches with a tqdm
progress bar. Memory stays bounded: each site keeps running :class:`~mindvec.fit.stats.Moments`
(count, mean, mean norm) unless ``store=True`` asks for the rows (float32).

The first position of every sequence is always dropped (SmolLM2's first position has norms
near 26,000). Rows are reduced on the model's device (:mod:`mindvec.fit.capture`); paired
activations of two models are :mod:`mindvec.fit.paired`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from mindvec.errors import UsageError
from mindvec.fit.capture import OUTLIER_FACTOR, flat_index, forward_capture, ordinary_rows, pad, segments
from mindvec.fit.device import input_device
from mindvec.fit.distributed import SINGLE, World, all_sum, gather_rows
from mindvec.fit.pairing import Tokenizer, encode
from mindvec.fit.stats import Moments
from mindvec.loader.binding import text_config
from mindvec.loader.stacks import find_stacks
from mindvec.site import Site, SiteArg, as_site

F32 = npt.NDArray[np.float32]
REDUCE = ("tokens", "mean", "last")


def num_layers(model: torch.nn.Module, stack: str = "decoder") -> int:
    return len(find_stacks(model).get(stack))


def hidden_size(model: torch.nn.Module) -> int:
    return int(text_config(model).hidden_size)


def layer_sites(
    model: torch.nn.Module, layers: Iterable[int] | None = None, point: str = "resid_post"
) -> list[Site]:
    """Sites at ``point`` for ``layers`` (default all layers of the decoder)."""
    chosen = range(num_layers(model)) if layers is None else layers
    return [as_site(("decoder", int(i), point)) for i in chosen]


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", disable=not enabled, leave=False)


@dataclass
class Collected:
    """Per-site running moments of the rows, token calibration, and the rows when stored.

    ``moments`` summarise the rows (tokens, or one per text for ``mean``/``last``);
    ``calibration[site]`` is ``(tokens, sum of token norms)`` over every kept token.
    """

    sites: list[Site]
    moments: dict[Site, Moments]
    calibration: dict[Site, tuple[int, float]] = field(default_factory=dict)
    arrays: dict[Site, F32] = field(default_factory=dict)
    groups: npt.NDArray[np.int64] | None = None
    rows: int = 0
    tokens: int = 0

    def mean_norm(self, site: Site) -> float:
        n, total = self.calibration.get(site, (0, 0.0))
        return total / n if n else 0.0


class _Sums:
    """Device-side running sums of one site (no host copy until the end)."""

    def __init__(self, d: int, device: torch.device) -> None:
        f64 = torch.float64
        self.row_sum = torch.zeros(d, dtype=f64, device=device)
        self.row_norms = torch.zeros((), dtype=f64, device=device)
        self.token_norms = torch.zeros((), dtype=f64, device=device)
        self.rows = self.tokens = 0

    def vector(self) -> torch.Tensor:
        return torch.cat([self.row_sum, self.row_norms[None], self.token_norms[None]])


def collect(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    sites: Sequence[SiteArg],
    *,
    reduce: str = "tokens",
    batch_size: int = 8,
    max_tokens: int = 256,
    store: bool = False,
    progress: bool = True,
    desc: str = "activations",
    outlier_factor: float | None = OUTLIER_FACTOR,
    world: World = SINGLE,
) -> Collected:
    """Run ``texts`` through ``model`` and summarise the activations at ``sites``.

    ``reduce``: ``tokens`` (every position but the first is a row), ``mean`` (one row per text,
    the mean over its positions but the first) or ``last`` (the last position of each text).
    Massive activations (norm above ``outlier_factor`` x the site's median in the batch, at
    any site) are dropped like the first position; ``None`` keeps them. Under ``torchrun``
    (``world``) each rank reads its batches and every rank gets the whole result.
    """
    if reduce not in REDUCE:
        raise UsageError("argument", f"reduce must be one of {', '.join(REDUCE)}, got {reduce!r}")
    keys = [as_site(s) for s in sites]
    d = hidden_size(model)
    dev = input_device(model)
    sums = {k: _Sums(d, dev) for k in keys}
    stored: dict[Site, list[F32]] = {k: [] for k in keys}
    row_keys: list[npt.NDArray[np.uint64]] = []
    encs = [encode(tokenizer, t, max_tokens) for t in texts]
    bar = progress_bar(len(encs), desc, progress and world.main)
    try:
        for number, lo in enumerate(range(0, len(encs), batch_size)):
            chunk = [(i, e) for i, e in enumerate(encs[lo : lo + batch_size], start=lo) if len(e) >= 2]
            if not chunk or not world.takes(number):
                bar.update(len(encs[lo : lo + batch_size]))
                continue
            batch = pad([e for _, e in chunk], dev)
            index, slot = flat_index([range(1, len(e)) for _, e in chunk])
            acts = forward_capture(model, batch.input_ids, batch.attention_mask, keys, index=index)
            keep = ordinary_rows(list(acts.values()), slot, outlier_factor)
            kept_slot = slot[keep]
            text_ids = np.array([i for i, _ in chunk], dtype=np.int64)
            if reduce == "tokens":
                groups = text_ids[kept_slot]
                order = np.flatnonzero(keep) - np.searchsorted(slot, kept_slot)
            else:
                groups, order = text_ids, np.zeros(len(chunk), dtype=np.int64)
            for k in keys:
                x = acts[k][torch.from_numpy(keep).to(acts[k].device)]
                r = (
                    x
                    if reduce == "tokens"
                    else segments(x, torch.from_numpy(kept_slot).to(x.device), len(chunk), reduce)
                )
                acc = sums[k]
                acc.token_norms += torch.linalg.vector_norm(x, dim=1).sum(dtype=torch.float64).to(dev)
                acc.tokens += int(keep.sum())
                acc.row_sum += r.sum(0, dtype=torch.float64).to(dev)
                acc.row_norms += torch.linalg.vector_norm(r, dim=1).sum(dtype=torch.float64).to(dev)
                acc.rows += int(r.shape[0])
                if store:
                    stored[k].append(r.cpu().numpy())
            row_keys.append((groups.astype(np.uint64) << np.uint64(24)) + order.astype(np.uint64))
            bar.update(len(encs[lo : lo + batch_size]))
    finally:
        bar.close()
    return _finish_collect(keys, sums, stored, row_keys, store, world)


def _finish_collect(
    keys: list[Site],
    sums: dict[Site, _Sums],
    stored: dict[Site, list[F32]],
    row_keys: list[npt.NDArray[np.uint64]],
    store: bool,
    world: World,
) -> Collected:
    first = sums[keys[0]]
    counts = all_sum(world, torch.tensor([first.rows, first.tokens], dtype=torch.float64))
    rows, tokens = int(counts[0]), int(counts[1])
    res = Collected(keys, {}, rows=rows, tokens=tokens)
    for k in keys:
        v = all_sum(world, sums[k].vector()).cpu().numpy()
        d = len(v) - 2
        res.moments[k] = Moments(rows, v[:d] / rows if rows else np.zeros(d), float(v[d]))
        res.calibration[k] = (tokens, float(v[d + 1]))
    if store:
        local = np.concatenate(row_keys) if row_keys else np.zeros(0, dtype=np.uint64)
        d = len(first.row_sum)
        arrays = {
            str(k): np.concatenate(stored[k]) if stored[k] else np.zeros((0, d), np.float32) for k in keys
        }
        merged_keys, merged = gather_rows(world, local, arrays)
        if len(merged_keys):
            res.arrays = {k: merged[str(k)] for k in keys}
            res.groups = (merged_keys >> np.uint64(24)).astype(np.int64)
    return res
