"""Held-out metrics of a map, and the baselines it is always reported beside.

The centred cosine between ``s·W(a - μA)`` and ``b - μB`` is the figure to report (the mean
direction alone scores 0); the raw cosine between ``ŷ`` and ``b`` and the variance-weighted R²
around the test mean go beside it. Baselines, fitted and scored the same way: ``shuffled``
(the same method on shuffled training pairs), ``mean`` (the constant training mean) and
``embedding`` (the same method from the source's embedding layer: token identity alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mindvec.errors import UsageError
from mindvec.fit.mapping import F64, LinearMap, fit
from mindvec.fit.splits import SplitData


@dataclass(frozen=True)
class Metrics:
    """Held-out agreement of predicted and true target activations."""

    centered_cosine: float
    raw_cosine: float
    r2: float

    def to_dict(self) -> dict[str, float]:
        return {"centered_cosine": self.centered_cosine, "raw_cosine": self.raw_cosine, "r2": self.r2}


def _row_cos(a: F64, b: F64) -> float:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    den = na * nb
    cos = np.divide(np.sum(a * b, axis=1), den, out=np.zeros_like(den), where=den > 0)
    return float(cos.mean())


def evaluate(m: LinearMap, x: Any, y: Any) -> Metrics:
    """Held-out metrics of ``m`` on true pairs ``(x, y)``."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape[0] != ya.shape[0] or xa.shape[0] == 0:
        raise UsageError("argument", "evaluation needs the same positive number of x and y rows")
    centred = (xa - m.source_mean) @ m.weight.T * m.scale
    pred = centred + m.target_mean
    sst = float(np.sum((ya - ya.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum((ya - pred) ** 2)) / sst if sst > 0 else 0.0
    return Metrics(_row_cos(centred, ya - m.target_mean), _row_cos(pred, ya), r2)


def evaluate_mean(target_mean: F64, y: Any) -> Metrics:
    """The constant-mean baseline: predict the training mean of y for every sample."""
    ya = np.asarray(y, dtype=np.float64)
    pred = np.broadcast_to(target_mean, ya.shape)
    sst = float(np.sum((ya - ya.mean(axis=0)) ** 2))
    r2 = 1.0 - float(np.sum((ya - pred) ** 2)) / sst if sst > 0 else 0.0
    return Metrics(0.0, _row_cos(np.ascontiguousarray(pred), ya), r2)


@dataclass
class FitReport:
    """A fitted map with its held-out metrics and the baselines fitted the same way."""

    mapping: LinearMap
    held_out: Metrics
    baselines: dict[str, Metrics]
    train_samples: int
    test_samples: int

    def metrics_dict(self) -> dict[str, Any]:
        """The ``metrics`` object of a manifest mapping."""
        return {
            "held_out": self.held_out.to_dict(),
            "baselines": {k: v.to_dict() for k, v in sorted(self.baselines.items())},
            "train_samples": self.train_samples,
            "test_samples": self.test_samples,
        }


def score_splits(
    data: SplitData,
    shuffled: SplitData,
    embedding: SplitData | None = None,
    *,
    method: str = "ridge",
    **hyper: Any,
) -> FitReport:
    """Fit on ``data`` and the baselines on theirs; score all on held-out true pairs."""
    m = fit(data.train, data.val, method=method, **hyper)
    held = evaluate(m, data.test_x, data.test_y)
    shuf_map = fit(shuffled.train, shuffled.val, method=method, **hyper)
    baselines = {
        "shuffled": evaluate(shuf_map, shuffled.test_x, shuffled.test_y),
        "mean": evaluate_mean(m.target_mean, data.test_y),
    }
    if embedding is not None:
        emb_map = fit(embedding.train, embedding.val, method=method, **hyper)
        baselines["embedding"] = evaluate(emb_map, embedding.test_x, embedding.test_y)
    return FitReport(m, held, baselines, data.train_samples, data.test_samples)


def fit_and_score(
    x: Any,
    y: Any,
    *,
    groups: Any = None,
    method: str = "ridge",
    seed: int = 0,
    embedding_x: Any = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    **hyper: Any,
) -> FitReport:
    """Fit on arrays with a grouped split, and score the map and the baselines on held-out pairs.

    Baselines: ``shuffled`` (the same method on shuffled training pairs), ``mean`` (constant
    training mean of y) and, when ``embedding_x`` (the source's embedding-layer activations at
    the same samples) is given, ``embedding`` (the same method from that layer).
    """
    kw: dict[str, Any] = {
        "groups": groups,
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
    }
    data = SplitData.from_arrays(x, y, **kw)
    shuf = SplitData.from_arrays(x, y, shuffle_pairs=True, **kw)
    emb = SplitData.from_arrays(embedding_x, y, **kw) if embedding_x is not None else None
    return score_splits(data, shuf, emb, method=method, **hyper)
