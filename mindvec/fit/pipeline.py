"""The fitting steps the CLI and the demo share: screen layers, fit maps with baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mindvec.errors import UsageError
from mindvec.fit.activations import Paired, collect_paired, iter_paired, layer_sites, num_layers
from mindvec.fit.correspondence import Correspondence, correspond
from mindvec.fit.metrics import FitReport, score_splits
from mindvec.fit.models import LoadedModel
from mindvec.fit.splits import StreamingSplit
from mindvec.fit.stats import Moments, load_npz_tagged, save_npz_atomic
from mindvec.site import Site, as_site

EMBEDDING_SITE = as_site(("decoder", 0, "resid_pre"))


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


SHARD_TAG = "mindvec.fitshard.v1"
_KINDS = ("main", "shuffled", "embedding")


@dataclass
class FitState:
    """Streaming state of a multi-pair fit; shards of it merge exactly (train/val statistics).

    ``splits[(s, t)]`` holds the map's, the shuffled baseline's and the embedding baseline's
    :class:`~mindvec.fit.splits.StreamingSplit`; ``norms[t]`` the target site's norms.
    """

    pairs: list[tuple[int, int]]
    splits: dict[tuple[int, int], tuple[StreamingSplit, StreamingSplit, StreamingSplit]]
    norms: dict[int, Moments]
    n: int = 0
    texts: int = 0

    @classmethod
    def empty(cls, pairs: Sequence[tuple[int, int]], seed: int = 0) -> FitState:
        splits = {
            p: (
                StreamingSplit(seed=seed),
                StreamingSplit(seed=seed, shuffle_pairs=True),
                StreamingSplit(seed=seed),
            )
            for p in pairs
        }
        return cls(list(pairs), splits, {t: Moments.empty(1) for _, t in pairs})

    def merge_in(self, other: FitState) -> None:
        if other.pairs != self.pairs:
            raise UsageError("argument", f"shards fit different layer pairs ({other.pairs} vs {self.pairs})")
        for p in self.pairs:
            for mine, theirs in zip(self.splits[p], other.splits[p], strict=True):
                mine.merge_in(theirs)
        for t, m in self.norms.items():
            m.n += other.norms[t].n
            m.norm_sum += other.norms[t].norm_sum
        self.n += other.n
        self.texts += other.texts

    def save(self, path: str | Path, meta: bytes = b"") -> Path:
        """An ``.npz`` shard (no pickle); ``meta`` is opaque bytes (e.g. canonical msgpack)."""
        arrays: dict[str, Any] = {
            "format": np.array(SHARD_TAG),
            "pairs": np.array(self.pairs, dtype=np.int64),
            "counts": np.array([self.n, self.texts], dtype=np.int64),
            "meta": np.frombuffer(meta, dtype=np.uint8),
        }
        # the three splits of a pair hold the same test rows: keep the test y once, and
        # the test x of the map and of the embedding baseline
        for (s, t), trio in self.splits.items():
            for kind, split, test in zip(_KINDS, trio, ("xy", "", "x"), strict=True):
                arrays.update(split.state(f"{s}-{t}.{kind}", test=test))
        for t, m in self.norms.items():
            arrays[f"norm.{t}"] = np.array([m.n, m.norm_sum], dtype=np.float64)
        return save_npz_atomic(Path(path), arrays)

    @classmethod
    def load(cls, path: str | Path) -> tuple[FitState, bytes]:
        a = load_npz_tagged(Path(path), SHARD_TAG)
        pairs = [(int(s), int(t)) for s, t in a["pairs"]]
        state = cls.empty(pairs)
        for s, t in pairs:
            main = f"{s}-{t}.main"
            trio = (
                StreamingSplit.from_state(a, main),
                StreamingSplit.from_state(
                    a, f"{s}-{t}.shuffled", test_x=main, test_y=main, shuffle_pairs=True
                ),
                StreamingSplit.from_state(a, f"{s}-{t}.embedding", test_y=main),
            )
            state.splits[(s, t)] = trio
        for t in state.norms:
            n, total = a[f"norm.{t}"]
            state.norms[t] = Moments(int(n), np.zeros(1), float(total))
        state.n, state.texts = (int(v) for v in a["counts"])
        return state, a["meta"].tobytes()


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


def _key(layer: int) -> Site:
    return as_site(("decoder", layer, "resid_post"))


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
    group_ids: Sequence[int] | None = None,
) -> FitState:
    """One streamed paired pass over ``texts`` into a :class:`FitState` (bounded memory).

    ``group_ids``: the global index of each text (for shards), which decides its split.
    """
    _check_pairs(src, tgt, layer_pairs)
    state = FitState.empty(layer_pairs, seed)
    s_sites = layer_sites(src.model, sorted({s for s, _ in layer_pairs})) + [EMBEDDING_SITE]
    t_sites = layer_sites(tgt.model, sorted({t for _, t in layer_pairs}))
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
        group_ids=group_ids,
    ):
        state.n, state.texts = state.n + batch.n, state.texts + batch.texts
        for (s, t), (main, shuffled, embedding) in state.splits.items():
            x, y = batch.x[_key(s)], batch.y[_key(t)]
            main.add(x, y, batch.groups)
            shuffled.add(x, y, batch.groups)
            embedding.add(batch.x[EMBEDDING_SITE], y, batch.groups)
        for t, moments in state.norms.items():
            row_norms = np.linalg.norm(batch.y[_key(t)].astype(np.float64), axis=1)
            moments.n += len(row_norms)
            moments.norm_sum += float(row_norms.sum())
    if state.n == 0:
        raise UsageError("argument", "no pairs found in the texts; use longer texts or pairing 'chunk'")
    return state


def finish_state(state: FitState, *, method: str = "ridge", **hyper: Any) -> list[MapFit]:
    """Fit every pair's map and baselines from the state; score on the held-out pairs."""
    out = []
    for (s, t), (main, shuffled, embedding) in state.splits.items():
        report = score_splits(main.finish(), shuffled.finish(), embedding.finish(), method=method, **hyper)
        norms = state.norms[t]
        out.append(MapFit(f"l{s}-to-l{t}", report, _key(s), _key(t), norms.mean_norm, norms.n))
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
    (:class:`~mindvec.fit.splits.StreamingSplit`) for the map and for the shuffled and
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
