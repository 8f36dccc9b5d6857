"""Collect activations at any set of sites of a transformers model, streaming over texts.

Sites are resolved by the loader (:func:`mindvec.loader.sites.attach`), so a capture reads
exactly what steering writes. Texts go through the model in right-padded batches with a tqdm
progress bar. Memory stays bounded: each site keeps running :class:`~mindvec.fit.stats.Moments`
(count, mean, mean norm) unless ``store=True`` asks for the rows (float32).

The first position of every sequence is always dropped (SmolLM2's first position has norms
near 26,000). The forward pass stops right after the deepest requested block, so reading early
layers does not pay for the rest of the model or the LM head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from mindvec.errors import UsageError
from mindvec.fit.pairing import Encoded, PairedText, Tokenizer, encode, pair_texts
from mindvec.fit.stats import Moments
from mindvec.loader.binding import text_config
from mindvec.loader.sites import attach
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


#: tokens with a norm above this multiple of the site's median norm are dropped from fits
OUTLIER_FACTOR = 8.0


def _ordinary(per_site: list[list[F32]], factor: float | None) -> list[npt.NDArray[np.bool_]]:
    """Per text, a mask of the rows whose norm is at most ``factor`` x the site median, at every site."""
    n_texts = len(per_site[0]) if per_site else 0
    keep = [np.ones(len(per_site[0][i]), dtype=bool) for i in range(n_texts)]
    if factor is None:
        return keep
    for arrays in per_site:
        norms = [np.linalg.norm(a.astype(np.float64), axis=1) for a in arrays]
        nonempty = [n for n in norms if len(n)]
        if not nonempty:
            continue
        limit = factor * float(np.median(np.concatenate(nonempty)))
        for i, n in enumerate(norms):
            keep[i] &= n <= limit
    return keep


class _Stop(Exception):  # noqa: N818 - internal control flow, never escapes
    pass


@dataclass
class _Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lengths: list[int]


def _pad(encs: Sequence[Encoded], pad_id: int = 0) -> _Batch:
    longest = max(len(e) for e in encs)
    ids = torch.full((len(encs), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encs), longest), dtype=torch.long)
    for row, e in enumerate(encs):
        ids[row, : len(e)] = torch.tensor(e.input_ids, dtype=torch.long)
        mask[row, : len(e)] = 1
    return _Batch(ids, mask, [len(e) for e in encs])


def forward_capture(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, sites: Sequence[Site]
) -> dict[Site, torch.Tensor]:
    """One forward pass; returns a float32 CPU copy ``[batch, seq, hidden]`` for each site."""
    keys = [as_site(s) for s in sites]
    if not keys:
        raise UsageError("argument", "no sites to capture; pass at least one site")
    out: dict[Site, torch.Tensor] = {}
    last = max(k.layer for k in keys)
    stop_ready = all(k.stack == "decoder" for k in keys)
    deepest = [k for k in keys if k.layer == last]

    def observer(key: Site) -> Callable[[torch.Tensor], None]:
        def fn(t: torch.Tensor) -> None:
            out[key] = t.detach().to(torch.float32).cpu().clone()
            if stop_ready and key.layer == last and all(d in out for d in deepest):
                raise _Stop

        return fn

    handles = [attach(model, k, observer(k)) for k in keys]
    try:
        with torch.no_grad():
            base = getattr(model, "base_model", model)
            try:
                base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            except _Stop:
                pass
    finally:
        for h in handles:
            h.remove()
    missing = [str(k) for k in keys if k not in out]
    if missing:
        raise UsageError("site", f"the forward pass never reached {', '.join(missing)}; check the sites")
    return out


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", disable=not enabled, leave=False)


@dataclass
class Collected:
    """Per-site running moments, and the rows themselves when stored."""

    sites: list[Site]
    moments: dict[Site, Moments]
    arrays: dict[Site, F32] = field(default_factory=dict)
    groups: npt.NDArray[np.int64] | None = None
    rows: int = 0
    tokens: int = 0


def _reduce(rows: npt.NDArray[Any], how: str) -> npt.NDArray[Any]:
    if how == "mean":
        out: npt.NDArray[Any] = rows.mean(axis=0, keepdims=True)
        return out
    if how == "last":
        return rows[-1:]
    return rows


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
) -> Collected:
    """Run ``texts`` through ``model`` and summarise the activations at ``sites``.

    ``reduce``: ``tokens`` (every position but the first is a row), ``mean`` (one row per text,
    the mean over its positions but the first) or ``last`` (the last position of each text).
    Massive activations (norm above ``outlier_factor`` x the site's median in the batch, at
    any site) are dropped like the first position; ``None`` keeps them.
    """
    if reduce not in REDUCE:
        raise UsageError("argument", f"reduce must be one of {', '.join(REDUCE)}, got {reduce!r}")
    keys = [as_site(s) for s in sites]
    d = hidden_size(model)
    res = Collected(keys, {k: Moments.empty(d) for k in keys})
    stored: dict[Site, list[F32]] = {k: [] for k in keys}
    groups: list[npt.NDArray[np.int64]] = []
    encs = [encode(tokenizer, t, max_tokens) for t in texts]
    bar = _progress(len(encs), desc, progress)
    try:
        for lo in range(0, len(encs), batch_size):
            chunk = [(i, e) for i, e in enumerate(encs[lo : lo + batch_size], start=lo) if len(e) >= 2]
            if not chunk:
                bar.update(min(batch_size, len(encs) - lo))
                continue
            batch = _pad([e for _, e in chunk])
            acts = forward_capture(model, batch.input_ids, batch.attention_mask, keys)
            per_site = [[acts[k][row][1 : len(e)].numpy() for row, (_, e) in enumerate(chunk)] for k in keys]
            keep = _ordinary(per_site, outlier_factor)
            for row, (i, _) in enumerate(chunk):
                mask = keep[row] if keep[row].any() else np.ones_like(keep[row])
                res.tokens += int(mask.sum())
                for k, texts_rows in zip(keys, per_site, strict=True):
                    r = _reduce(texts_rows[row][mask], reduce)
                    res.moments[k].update(r)
                    if store:
                        stored[k].append(r.astype(np.float32))
                n_rows = int(mask.sum()) if reduce == "tokens" else 1
                res.rows += n_rows
                if store:
                    groups.append(np.full(n_rows, i, dtype=np.int64))
            bar.update(len(encs[lo : lo + batch_size]))
    finally:
        bar.close()
    if store and groups:
        res.arrays = {k: np.concatenate(v) for k, v in stored.items()}
        res.groups = np.concatenate(groups)
    return res


@dataclass
class Paired:
    """Paired activations of two models: ``x[site]`` rows pair with ``y[site]`` rows."""

    x: dict[Site, F32]
    y: dict[Site, F32]
    groups: npt.NDArray[np.int64]
    texts: int

    @property
    def n(self) -> int:
        return int(self.groups.shape[0])


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
    group_ids: Sequence[int] | None = None,
    outlier_factor: float | None = OUTLIER_FACTOR,
) -> Iterator[Paired]:
    """Paired rows batch by batch (bounded memory); stops once ``max_pairs`` rows were yielded.

    Pairing as :func:`mindvec.fit.pairing.pair_texts`; ``groups`` gives each row's text index
    (``group_ids[index]`` when given, e.g. global indices of a shard's texts).

    Massive activations are dropped like the first position: a token whose norm at any
    captured site exceeds ``outlier_factor`` times that site's median norm in the batch (an
    attention sink; SmolLM2 sometimes puts one at the second position, norm ~5800 against a
    median of ~175) is not paired (``aligned``) or not averaged (``chunk``). ``None`` keeps all.
    """
    ka, kb = [as_site(s) for s in sites_a], [as_site(s) for s in sites_b]
    total = 0
    bar = _progress(len(texts), "paired activations", progress)
    pending: list[PairedText] = []

    def gid(index: int) -> int:
        return int(group_ids[index]) if group_ids is not None else index

    def run(model: torch.nn.Module, keys: list[Site], side: str) -> dict[Site, list[F32]]:
        """Per site, one [positions, hidden] array per pending text."""
        batch = _pad([p.a if side == "a" else p.b for p in pending])
        acts = forward_capture(model, batch.input_ids, batch.attention_mask, keys)
        out: dict[Site, list[F32]] = {k: [] for k in keys}
        for row, p in enumerate(pending):
            pos = p.positions_a if side == "a" else p.positions_b
            for k in keys:
                out[k].append(acts[k][row][pos].numpy().astype(np.float32))
        return out

    def flush() -> Paired:
        nonlocal total
        x, y = run(model_a, ka, "a"), run(model_b, kb, "b")
        if mode == "aligned":
            keep = _ordinary(list(x.values()) + list(y.values()), outlier_factor)
            keep_a = keep_b = keep
        else:
            keep_a = _ordinary(list(x.values()), outlier_factor)
            keep_b = _ordinary(list(y.values()), outlier_factor)

        def rows(d: dict[Site, list[F32]], keep: list[npt.NDArray[np.bool_]]) -> dict[Site, F32]:
            if mode == "chunk":  # a text whose every token is flagged keeps them all
                return {
                    k: np.stack([(r[m] if m.any() else r).mean(axis=0) for r, m in zip(v, keep, strict=True)])
                    for k, v in d.items()
                }
            return {k: np.concatenate([r[m] for r, m in zip(v, keep, strict=True)]) for k, v in d.items()}

        counts = [1 if mode == "chunk" else int(m.sum()) for m in keep_a]
        groups = np.concatenate(
            [np.full(c, gid(p.index), dtype=np.int64) for c, p in zip(counts, pending, strict=True)]
        )
        out = Paired(rows(x, keep_a), rows(y, keep_b), groups, len(pending))
        total += len(groups)
        pending.clear()
        bar.update(out.texts)
        return out

    try:
        for p in pair_texts(texts, tokenizer_a, tokenizer_b, mode=mode, max_tokens=max_tokens):
            pending.append(p)
            if len(pending) >= batch_size:
                yield flush()
            if max_pairs is not None and total >= max_pairs:
                break
        if pending:
            yield flush()
    finally:
        bar.close()


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
) -> Paired:
    """All paired rows of :func:`iter_paired`, stored (float32: choose few sites for many pairs).

    ``groups`` gives each row's text index, so that train/test splits never cut a text.
    """
    batches = list(
        iter_paired(
            model_a,
            tokenizer_a,
            sites_a,
            model_b,
            tokenizer_b,
            sites_b,
            texts,
            mode=mode,
            batch_size=batch_size,
            max_tokens=max_tokens,
            max_pairs=max_pairs,
            progress=progress,
            outlier_factor=outlier_factor,
        )
    )
    if not batches:
        raise UsageError("argument", "no pairs found in the texts; use longer texts or mode='chunk'")
    return Paired(
        {k: np.concatenate([b.x[k] for b in batches]) for k in batches[0].x},
        {k: np.concatenate([b.y[k] for b in batches]) for k in batches[0].y},
        np.concatenate([b.groups for b in batches]),
        sum(b.texts for b in batches),
    )
