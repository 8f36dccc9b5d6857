"""The fitting steps the CLI and the demo share: screen layers, fit maps with baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mindvec.errors import UsageError
from mindvec.fit.activations import Paired, collect_paired, iter_paired, layer_sites, num_layers
from mindvec.fit.correspondence import Correspondence, correspond
from mindvec.fit.mapping import FitReport, StreamingSplit, score_splits
from mindvec.fit.models import LoadedModel
from mindvec.fit.stats import Moments
from mindvec.loader.sites import SiteKey, as_site

EMBEDDING_SITE = as_site(("decoder", 0, "resid_pre"))


@dataclass
class MapFit:
    """One fitted map with its sites and the target site's calibration."""

    name: str
    report: FitReport
    source_site: SiteKey
    target_site: SiteKey
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
) -> tuple[Correspondence, Paired]:
    """One pass capturing every layer of both models, then CKA and ridge on candidates."""
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
    (:class:`~mindvec.fit.mapping.StreamingSplit`) for the map and for the shuffled and
    embedding baselines. The source's embedding layer (``resid_pre`` of layer 0) is captured
    for the ``embedding`` baseline.
    """
    if not layer_pairs:
        raise UsageError("argument", "no layer pairs to fit; pass at least one (source, target) pair")
    for s, t in layer_pairs:
        if not (0 <= s < num_layers(src.model) and 0 <= t < num_layers(tgt.model)):
            raise UsageError(
                "argument",
                f"layer pair ({s}, {t}) is out of range: the source has {num_layers(src.model)} layers, "
                f"the target {num_layers(tgt.model)}",
            )
    s_sites = layer_sites(src.model, sorted({s for s, _ in layer_pairs})) + [EMBEDDING_SITE]
    t_sites = layer_sites(tgt.model, sorted({t for _, t in layer_pairs}))
    keys = {
        (s, t): (as_site(("decoder", s, "resid_post")), as_site(("decoder", t, "resid_post")))
        for s, t in layer_pairs
    }
    splits = {
        pair: (
            StreamingSplit(seed=seed),
            StreamingSplit(seed=seed, shuffle_pairs=True),
            StreamingSplit(seed=seed),
        )
        for pair in keys
    }
    norms = {k: Moments.empty(1) for k in t_sites}
    n = n_texts = 0
    for batch in iter_paired(
        src.model,
        src.tokenizer,
        s_sites,
        tgt.model,
        tgt.tokenizer,
        t_sites,
        texts,
        mode=pairing,
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_pairs=max_pairs,
        progress=progress,
    ):
        n, n_texts = n + batch.n, n_texts + batch.texts
        for pair, (main, shuffled, embedding) in splits.items():
            ks, kt = keys[pair]
            main.add(batch.x[ks], batch.y[kt], batch.groups)
            shuffled.add(batch.x[ks], batch.y[kt], batch.groups)
            embedding.add(batch.x[EMBEDDING_SITE], batch.y[kt], batch.groups)
        for k, moments in norms.items():
            row_norms = np.linalg.norm(batch.y[k].astype(np.float64), axis=1)
            moments.n += len(row_norms)
            moments.norm_sum += float(row_norms.sum())
    if n == 0:
        raise UsageError("argument", "no pairs found in the texts; use longer texts or pairing 'chunk'")
    out = []
    for (s, t), (main, shuffled, embedding) in splits.items():
        ks, kt = keys[(s, t)]
        report = score_splits(main.finish(), shuffled.finish(), embedding.finish(), method=method, **hyper)
        out.append(MapFit(f"l{s}-to-l{t}", report, ks, kt, norms[kt].mean_norm, norms[kt].n))
    return out, PairCount(n, n_texts)
