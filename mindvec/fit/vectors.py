"""Steering vectors from contrastive data: difference of means and PCA of paired differences.

Each text is summarised at each site by the mean of its activations (the first position
dropped) or by its last position. Then, per site:

- ``mean_diff``: ``v = mean(positive) - mean(negative)``.
- ``pca_diff`` (as repeng does): the first principal direction ``u`` of the paired differences
  ``d_i = pos_i - neg_i`` (uncentred by default; ``center=True`` centres them first, as
  scikit-learn's PCA in repeng does), signed so that positives project above negatives, and
  scaled to the mean projection ``v = mean(d_i·u)·u``, so the tensor is in activation units.

Calibration is the mean activation norm at the site over every token of both lists (the
first position dropped). The recommended scale is 1 (adding ``v`` itself), with range
``[0, max(1, 0.5·mean_norm/‖v‖)]``: from off up to injecting half the typical activation norm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mindvec.errors import UsageError
from mindvec.fit.pairing import Tokenizer
from mindvec.site import SiteArg

if TYPE_CHECKING:
    import torch

F64 = npt.NDArray[np.float64]
METHODS = ("mean_diff", "pca_diff")


def mean_diff(positive: Any, negative: Any) -> F64:
    """``mean(positive) - mean(negative)`` over rows."""
    p, n = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if p.ndim != 2 or n.ndim != 2 or p.shape[1] != n.shape[1] or not len(p) or not len(n):
        raise UsageError("argument", "mean_diff needs two non-empty [samples, hidden] arrays of equal width")
    out: F64 = p.mean(axis=0) - n.mean(axis=0)
    return out


def pca_diff(positive: Any, negative: Any, *, center: bool = False) -> F64:
    """First principal direction of paired differences, in activation units (see module doc)."""
    p, n = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    if p.shape != n.shape or p.ndim != 2 or len(p) < 2:
        raise UsageError(
            "argument", "pca_diff needs paired data: as many positive as negative rows (at least 2)"
        )
    d = p - n
    dc = d - d.mean(axis=0) if center else d
    _, _, vt = np.linalg.svd(dc, full_matrices=False)
    u = vt[0]
    if float(np.mean(p @ u)) < float(np.mean(n @ u)):
        u = -u
    out: F64 = float(np.mean(d @ u)) * u
    return out


def recommended_scale(vector_norm: float, mean_norm: float) -> tuple[float, tuple[float, float]]:
    """Default scale and recommended range for an ``add`` vector (see module doc)."""
    hi = max(1.0, 0.5 * mean_norm / vector_norm) if vector_norm > 0 else 1.0
    return 1.0, (0.0, float(hi))


@dataclass
class SiteVector:
    """A vector at one site with the calibration measured there."""

    site: Any  # loader SiteKey (stack, layer, point)
    vector: F64
    mean_norm: float
    tokens: int

    def site_dict(self) -> dict[str, Any]:
        return {"stack": self.site.stack, "layer": int(self.site.layer), "point": self.site.point}


@dataclass
class VectorFit:
    """Per-site vectors of one concept, ready for ``PackageBuilder.add_vector``."""

    method: str
    sites: list[SiteVector]
    params: dict[str, float | int | str | bool] = field(default_factory=dict)
    samples: int = 0

    def scale(self) -> tuple[float, tuple[float, float]]:
        """Recommended scale for the package, from the site with the largest range."""
        scales = [recommended_scale(float(np.linalg.norm(s.vector)), s.mean_norm) for s in self.sites]
        return scales[0][0], (0.0, max(r[1] for _, r in scales))

    def builder_sites(self, dtype: Any = np.float32) -> list[tuple[dict[str, Any], Any, dict[str, Any]]]:
        return [
            (
                s.site_dict(),
                s.vector.astype(dtype),
                {"mean_norm": float(s.mean_norm), "tokens": int(s.tokens)},
            )
            for s in self.sites
        ]


def read_pairs_jsonl(path: str | Path) -> tuple[list[str], list[str]]:
    """Contrastive pairs, one JSON object per line: ``{"positive": str, "negative": str}``."""
    pos: list[str] = []
    neg: list[str] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError("io", f"cannot read pairs file {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            p, n = item["positive"], item["negative"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UsageError(
                "argument",
                f'{path}:{number}: each line must be {{"positive": "...", "negative": "..."}}',
            ) from exc
        if not isinstance(p, str) or not isinstance(n, str):
            raise UsageError("argument", f"{path}:{number}: positive and negative must be strings")
        pos.append(p)
        neg.append(n)
    if not pos:
        raise UsageError("argument", f"{path} holds no pairs")
    return pos, neg


def read_lines(path: str | Path) -> list[str]:
    """A prompt list: one text per non-empty line."""
    try:
        return [t for t in Path(path).read_text(encoding="utf-8").splitlines() if t.strip()]
    except OSError as exc:
        raise UsageError("io", f"cannot read prompt list {path}: {exc}") from exc


def extract_at_sites(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    positive: Sequence[str],
    negative: Sequence[str],
    sites: Sequence[SiteArg],
    *,
    method: str = "mean_diff",
    reduce: str = "mean",
    center: bool = False,
    batch_size: int = 8,
    max_tokens: int = 128,
    progress: bool = True,
    world: Any = None,
) -> VectorFit:
    """Extract a vector at each of ``sites`` from positive and negative texts.

    ``reduce``: ``mean`` (each text's mean activation) or ``last`` (its last position).
    Every text needs at least two tokens (the first position is dropped). Texts are reduced
    on the model's device; under ``torchrun`` (``world``) each rank reads its batches.
    """
    from mindvec.fit.activations import collect

    if method not in METHODS:
        raise UsageError("argument", f"unknown vector method {method!r}; use one of {', '.join(METHODS)}")
    if reduce not in ("mean", "last"):
        raise UsageError("argument", f"reduce must be 'mean' or 'last', got {reduce!r}")
    if method == "pca_diff" and len(positive) != len(negative):
        raise UsageError("argument", "pca_diff needs paired texts: as many positive as negative")
    texts = list(positive) + list(negative)
    from mindvec.fit.distributed import SINGLE

    got = collect(
        model,
        tokenizer,
        texts,
        sites,
        reduce=reduce,
        store=True,
        batch_size=batch_size,
        max_tokens=max_tokens,
        progress=progress,
        desc=f"{method} activations",
        world=world or SINGLE,
    )
    if got.groups is None or len(np.unique(got.groups)) != len(texts):
        raise UsageError("argument", "every text needs at least two tokens; drop empty or one-word texts")
    out = []
    for site in got.sites:
        per_text = got.arrays[site].astype(np.float64)  # one row per text, in text order
        p, n = per_text[: len(positive)], per_text[len(positive) :]
        vec = mean_diff(p, n) if method == "mean_diff" else pca_diff(p, n, center=center)
        if not np.all(np.isfinite(vec)) or not np.any(vec):
            raise UsageError("argument", f"the vector at {site} is zero or not finite; use more varied texts")
        out.append(SiteVector(site, vec, got.mean_norm(site), got.tokens))
    params: dict[str, float | int | str | bool] = {"reduce": reduce, "max_tokens": max_tokens}
    if method == "pca_diff":
        params["center"] = center
    return VectorFit(method, out, params, samples=len(texts))


def extract(*args: Any, **kwargs: Any) -> VectorFit:
    """Deprecated alias of :func:`extract_at_sites` (0.1's name), removed in 0.3."""
    import warnings

    warnings.warn(
        "mindvec.fit.vectors.extract is deprecated; use extract_at_sites, or mindvec.fit.extract",
        DeprecationWarning,
        stacklevel=2,
    )
    return extract_at_sites(*args, **kwargs)
