"""Paired activations of two models, batch by batch, from a plan that every rank shares.

A pass first pairs the corpus on the host (:func:`plan`: tokenization only), cutting it into
fixed batches of ``batch_size`` documents, so that a batch holds the same documents whatever
the number of processes; each rank then runs the batches it takes. Rows stay on the device
(:class:`PairedBatch`) for the streamed fit, or are stored on the host (:func:`collect_paired`)
for the layer screen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from mindvec.errors import UsageError
from mindvec.fit.activations import hidden_size, progress_bar
from mindvec.fit.capture import OUTLIER_FACTOR, flat_index, forward_capture, ordinary_rows, pad, segments
from mindvec.fit.device import input_device
from mindvec.fit.distributed import SINGLE, World, all_sum, gather_rows
from mindvec.fit.pairing import PairedText, Tokenizer, pair_texts
from mindvec.site import Site, as_site

F32 = npt.NDArray[np.float32]


@dataclass
class PairedBatch:
    """Paired rows of one corpus batch, on the device: ``x[site]`` row i pairs with ``y[site]`` row i.

    ``groups`` is each row's document (text index) and ``positions`` its position in the
    source model's tokens (``0`` in ``chunk`` mode): together they key the row.
    """

    index: int
    x: dict[Site, torch.Tensor]
    y: dict[Site, torch.Tensor]
    groups: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]
    texts: int

    @property
    def n(self) -> int:
        return int(self.groups.shape[0])


@dataclass
class Paired:
    """Paired activations of two models, stored on the host, sorted by (document, position)."""

    x: dict[Site, F32]
    y: dict[Site, F32]
    groups: npt.NDArray[np.int64]
    texts: int
    end: int = 0  # one past the last document the pass covered

    @property
    def n(self) -> int:
        return int(self.groups.shape[0])


@dataclass
class Plan:
    """The corpus batches a paired pass reads: fixed runs of ``batch_size`` documents.

    ``end`` is one past the last document the pass covers (the prefix whose pairs, counted
    before outlier filtering, first reach ``max_pairs``), the same on every rank.
    """

    batches: list[tuple[int, list[PairedText]]]
    end: int


def plan(
    texts: Sequence[str],
    tokenizer_a: Tokenizer,
    tokenizer_b: Tokenizer,
    *,
    mode: str,
    batch_size: int,
    max_tokens: int,
    max_pairs: int | None,
) -> Plan:
    """Tokenize and pair the corpus prefix a pass needs (host only, no forward pass)."""
    if batch_size < 1:
        raise UsageError("argument", f"batch size must be at least 1, got {batch_size}")
    batches: dict[int, list[PairedText]] = {}
    total, end = 0, len(texts)
    for p in pair_texts(texts, tokenizer_a, tokenizer_b, mode=mode, max_tokens=max_tokens):
        number = p.index // batch_size
        if max_pairs is not None and total >= max_pairs and number not in batches:
            end = number * batch_size
            break
        batches.setdefault(number, []).append(p)
        total += len(p.positions_a) if mode == "aligned" else 1
    return Plan(sorted(batches.items()), min(end, len(texts)))


def _read_side(
    model: torch.nn.Module, keys: list[Site], items: list[PairedText], side: str
) -> tuple[dict[Site, torch.Tensor], npt.NDArray[np.int64]]:
    encs = [p.a if side == "a" else p.b for p in items]
    positions = [p.positions_a if side == "a" else p.positions_b for p in items]
    batch = pad(encs, input_device(model))
    index, slot = flat_index(positions)
    return forward_capture(model, batch.input_ids, batch.attention_mask, keys, index=index), slot


def iter_paired(
    model_a: torch.nn.Module,
    tokenizer_a: Tokenizer,
    sites_a: Sequence[Site],
    model_b: torch.nn.Module,
    tokenizer_b: Tokenizer,
    sites_b: Sequence[Site],
    texts: Sequence[str],
    *,
    mode: str = "aligned",
    batch_size: int = 8,
    max_tokens: int = 256,
    max_pairs: int | None = None,
    progress: bool = True,
    outlier_factor: float | None = OUTLIER_FACTOR,
    world: World = SINGLE,
    schedule: Plan | None = None,
) -> Iterator[PairedBatch]:
    """Paired rows batch by batch (bounded memory), the batches of :func:`plan` this rank takes.

    Pairing as :func:`mindvec.fit.pairing.pair_texts`. Massive activations are dropped like the
    first position: a token whose norm at any captured site exceeds ``outlier_factor`` times that
    site's median norm in the batch (an attention sink; SmolLM2 sometimes puts one at the second
    position, norm ~5800 against a median of ~175) is not paired (``aligned``) or not averaged
    (``chunk``). ``None`` keeps all. Rows stay on the device.
    """
    ka, kb = [as_site(s) for s in sites_a], [as_site(s) for s in sites_b]
    todo = schedule or plan(
        texts,
        tokenizer_a,
        tokenizer_b,
        mode=mode,
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_pairs=max_pairs,
    )
    mine = [(b, items) for b, items in todo.batches if world.takes(b)]
    bar = progress_bar(len(mine), "paired batches", progress and world.main)
    try:
        for number, items in mine:
            x, slot = _read_side(model_a, ka, items, "a")
            y, _ = _read_side(model_b, kb, items, "b")
            docs = np.array([p.index for p in items], dtype=np.int64)
            if mode == "aligned":
                pos = np.concatenate([np.asarray(p.positions_a, dtype=np.int64) for p in items])
                keep = ordinary_rows([*x.values(), *y.values()], slot, outlier_factor)
                xs = {k: v[torch.from_numpy(keep).to(v.device)] for k, v in x.items()}
                ys = {k: v[torch.from_numpy(keep).to(v.device)] for k, v in y.items()}
                out = PairedBatch(number, xs, ys, docs[slot[keep]], pos[keep], len(items))
            else:
                slot_b = flat_index([p.positions_b for p in items])[1]
                out = PairedBatch(
                    number,
                    _chunk_means(x, slot, len(items), outlier_factor),
                    _chunk_means(y, slot_b, len(items), outlier_factor),
                    docs,
                    np.zeros(len(items), dtype=np.int64),
                    len(items),
                )
            yield out
            bar.update(1)
    finally:
        bar.close()


def _chunk_means(
    acts: dict[Site, torch.Tensor], slot: npt.NDArray[np.int64], n: int, factor: float | None
) -> dict[Site, torch.Tensor]:
    keep = ordinary_rows(list(acts.values()), slot, factor)
    out = {}
    for k, v in acts.items():
        sel = torch.from_numpy(keep).to(v.device)
        out[k] = segments(v[sel], torch.from_numpy(slot[keep]).to(v.device), n, "mean")
    return out


def collect_paired(
    model_a: torch.nn.Module,
    tokenizer_a: Tokenizer,
    sites_a: Sequence[Site],
    model_b: torch.nn.Module,
    tokenizer_b: Tokenizer,
    sites_b: Sequence[Site],
    texts: Sequence[str],
    *,
    mode: str = "aligned",
    batch_size: int = 8,
    max_tokens: int = 256,
    max_pairs: int | None = None,
    progress: bool = True,
    outlier_factor: float | None = OUTLIER_FACTOR,
    world: World = SINGLE,
) -> Paired:
    """All paired rows of :func:`iter_paired`, stored on the host (float32: few sites for many pairs).

    ``groups`` gives each row's text index, so that train/test splits never cut a text. Under
    ``torchrun`` every rank gets every row, in the same order as a single process.
    """
    schedule = plan(
        texts,
        tokenizer_a,
        tokenizer_b,
        mode=mode,
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_pairs=max_pairs,
    )
    xs: dict[str, list[F32]] = {f"x{i}": [] for i in range(len(sites_a))}
    xs.update({f"y{i}": [] for i in range(len(sites_b))})
    keys: list[npt.NDArray[np.uint64]] = []
    texts_read = 0
    for batch in iter_paired(
        model_a,
        tokenizer_a,
        sites_a,
        model_b,
        tokenizer_b,
        sites_b,
        texts,
        mode=mode,
        progress=progress,
        outlier_factor=outlier_factor,
        world=world,
        schedule=schedule,
    ):
        for i, s in enumerate(sites_a):
            xs[f"x{i}"].append(batch.x[as_site(s)].cpu().numpy())
        for i, s in enumerate(sites_b):
            xs[f"y{i}"].append(batch.y[as_site(s)].cpu().numpy())
        keys.append((batch.groups.astype(np.uint64) << np.uint64(24)) + batch.positions.astype(np.uint64))
        texts_read += batch.texts
    da, db = hidden_size(model_a), hidden_size(model_b)
    local = {
        name: np.concatenate(v) if v else np.zeros((0, da if name[0] == "x" else db), np.float32)
        for name, v in xs.items()
    }
    merged_keys, merged = gather_rows(world, np.concatenate(keys) if keys else np.zeros(0, np.uint64), local)
    texts_total = int(all_sum(world, torch.tensor([float(texts_read)]))[0])
    if not len(merged_keys):
        raise UsageError("argument", "no pairs found in the texts; use longer texts or mode='chunk'")
    return Paired(
        {as_site(s): merged[f"x{i}"] for i, s in enumerate(sites_a)},
        {as_site(s): merged[f"y{i}"] for i, s in enumerate(sites_b)},
        (merged_keys >> np.uint64(24)).astype(np.int64),
        texts_total,
        schedule.end,
    )
