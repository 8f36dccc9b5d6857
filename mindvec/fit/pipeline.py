"""The fitting steps the CLI and the demo share: screen layers, fit maps with baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mindvec.errors import UsageError
from mindvec.fit.activations import hidden_size, layer_sites, num_layers
from mindvec.fit.correspondence import Correspondence, correspond
from mindvec.fit.device import device_errors, input_device
from mindvec.fit.distributed import SINGLE, World
from mindvec.fit.fitstate import (
    EMBEDDING,
    EMBEDDING_SITE,
    MAX_TEST,
    FitState,
    shuffled_block,
    site_of,
    source_block,
    target_block,
)
from mindvec.fit.metrics import FitReport, score_splits
from mindvec.fit.models import LoadedModel
from mindvec.fit.paired import Paired, collect_paired, iter_paired, plan
from mindvec.fit.splits import SplitData
from mindvec.site import Site

__all__ = [
    "EMBEDDING_SITE",
    "FitState",
    "MapFit",
    "PairCount",
    "collect_state",
    "finish_state",
    "fit_maps",
    "screen_layers",
]


@dataclass
class MapFit:
    """One fitted map with its sites and the target site's calibration."""

    name: str
    report: FitReport
    source_site: Site
    target_site: Site
    target_mean_norm: float
    target_tokens: int


def screen_layers(
    src: LoadedModel,
    tgt: LoadedModel,
    texts: Sequence[str],
    *,
    samples: int = 3000,
    cka_samples: int = 1500,
    top_k: int = 2,
    ridge_targets: Sequence[int] | None = None,
    pairing: str = "aligned",
    batch_size: int = 8,
    max_tokens: int = 256,
    seed: int = 0,
    progress: bool = True,
    world: World = SINGLE,
) -> tuple[Correspondence, Paired]:
    """One pass capturing every layer of both models, then CKA and ridge on candidates.

    Under ``torchrun`` (``world``) the ranks split the batches and gather the paired rows, so
    every rank screens the same rows as a single process would.
    """
    sa, sb = layer_sites(src.model), layer_sites(tgt.model)
    paired = collect_paired(
        src.model,
        src.tokenizer,
        sa,
        tgt.model,
        tgt.tokenizer,
        sb,
        texts,
        mode=pairing,
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_pairs=samples,
        progress=progress,
        world=world,
    )
    xs = {k.layer: paired.x[k] for k in sa}
    ys = {k.layer: paired.y[k] for k in sb}
    corr = correspond(
        xs,
        ys,
        paired.groups,
        top_k=top_k,
        ridge_targets=ridge_targets,
        cka_samples=cka_samples,
        seed=seed,
        progress=progress,
    )
    return corr, paired


@dataclass(frozen=True)
class PairCount:
    """How much data a fit used: paired rows and texts read."""

    n: int
    texts: int


def _check_pairs(src: LoadedModel, tgt: LoadedModel, layer_pairs: Sequence[tuple[int, int]]) -> None:
    if not layer_pairs:
        raise UsageError("argument", "no layer pairs to fit; pass at least one (source, target) pair")
    for s, t in layer_pairs:
        if not (0 <= s < num_layers(src.model) and 0 <= t < num_layers(tgt.model)):
            raise UsageError(
                "argument",
                f"layer pair ({s}, {t}) is out of range: the source has {num_layers(src.model)} layers, "
                f"the target {num_layers(tgt.model)}",
            )


def collect_state(
    src: LoadedModel,
    tgt: LoadedModel,
    texts: Sequence[str],
    layer_pairs: Sequence[tuple[int, int]],
    *,
    pairing: str = "aligned",
    max_pairs: int | None = 20000,
    batch_size: int = 8,
    max_tokens: int = 256,
    seed: int = 0,
    progress: bool = True,
    world: World = SINGLE,
    part: tuple[int, int] | None = None,
    max_test: int = MAX_TEST,
) -> FitState:
    """One streamed paired pass over ``texts`` into a :class:`FitState` (bounded memory).

    The corpus is cut into fixed batches of ``batch_size`` documents. Under ``torchrun``
    (``world``) each rank reads its batches and the ranks reduce, so every rank ends with the
    whole state; ``part=(K, N)`` reads batch ``b`` only when ``b % N == K`` and reduces
    nothing (a shard for ``--from-shards``).
    """
    _check_pairs(src, tgt, layer_pairs)
    reader = World(part[0], part[1], "none") if part else world
    dev = input_device(src.model)
    state = FitState.empty(
        layer_pairs, hidden_size(src.model), hidden_size(tgt.model), seed=seed, max_test=max_test, device=dev
    )
    s_sites = layer_sites(src.model, sorted({s for s, _ in layer_pairs})) + [EMBEDDING_SITE]
    t_sites = layer_sites(tgt.model, sorted({t for _, t in layer_pairs}))
    schedule = plan(
        texts,
        src.tokenizer,
        tgt.tokenizer,
        mode=pairing,
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_pairs=max_pairs,
    )
    state.end = schedule.end
    with device_errors("the paired pass", batch_size):
        for batch in iter_paired(
            src.model,
            src.tokenizer,
            s_sites,
            tgt.model,
            tgt.tokenizer,
            t_sites,
            texts,
            mode=pairing,
            progress=progress,
            world=reader,
            schedule=schedule,
        ):
            state.add(batch)
    state.reduce(world if not part else SINGLE)
    if state.n == 0 and not part:
        raise UsageError("argument", "no pairs found in the texts; use longer texts or pairing 'chunk'")
    return state


def finish_state(state: FitState, *, method: str = "ridge", **hyper: Any) -> list[MapFit]:
    """Fit every pair's map and baselines from the state; score on the held-out pairs."""
    out = []
    test = state.test.rows
    if state.test.n == 0:
        raise UsageError("argument", "too few texts for a held-out test split; use more text")
    for s, t in state.pairs:

        def split(x: str, y: str, test_x: str, test_y: str = target_block(t)) -> SplitData:
            return SplitData(
                state.train.pair(x, y),
                state.val.pair(x, y),
                test[test_x].astype(np.float64),
                test[test_y].astype(np.float64),
            )

        if state.train.n < 2:
            raise UsageError("argument", "too few texts for a train/validation/test split; use more text")
        report = score_splits(
            split(source_block(s), target_block(t), source_block(s)),
            split(source_block(s), shuffled_block(t), source_block(s)),
            split(EMBEDDING, target_block(t), EMBEDDING),
            method=method,
            **hyper,
        )
        norms = state.norm_moments(t)
        out.append(MapFit(f"l{s}-to-l{t}", report, site_of(s), site_of(t), norms.mean_norm, norms.n))
    return out


def fit_maps(
    src: LoadedModel,
    tgt: LoadedModel,
    texts: Sequence[str],
    layer_pairs: Sequence[tuple[int, int]],
    *,
    method: str = "ridge",
    pairing: str = "aligned",
    max_pairs: int | None = 20000,
    batch_size: int = 8,
    max_tokens: int = 256,
    seed: int = 0,
    progress: bool = True,
    **hyper: Any,
) -> tuple[list[MapFit], PairCount]:
    """Fit one map per (source layer, target layer) from one streamed paired pass, with baselines.

    Memory is bounded: each pair keeps train/validation statistics and a capped test sample
    (:class:`FitState`) for the map and for the shuffled and
    embedding baselines. The source's embedding layer (``resid_pre`` of layer 0) is captured
    for the ``embedding`` baseline.
    """
    state = collect_state(
        src,
        tgt,
        texts,
        layer_pairs,
        pairing=pairing,
        max_pairs=max_pairs,
        batch_size=batch_size,
        max_tokens=max_tokens,
        seed=seed,
        progress=progress,
    )
    return finish_state(state, method=method, **hyper), PairCount(state.n, state.texts)
