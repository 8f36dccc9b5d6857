"""Layer correspondence between two models: a cheap screen, then ridge on the best candidates.

1. Screen every (source layer, target layer) pair with linear CKA on a few thousand paired
   tokens, all from one pass that captures every layer of both models::

       CKA(X, Y) = <Kx, Ky>_F / (‖Kx‖_F ‖Ky‖_F),   K = Xc Xcᵀ (centred Gram matrices)

   which equals ``‖Xcᵀ Yc‖²_F / (‖Xcᵀ Xc‖_F ‖Ycᵀ Yc‖_F)``. Full ``XᵀY`` for every pair would
   be gigabytes; Gram matrices of ``n`` tokens cost ``n²`` each.
2. For each target layer, the ``top_k`` sources by CKA are scored with the held-out R² of a ridge
   fit (grouped split, α chosen on validation). The best is stored for that target layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mindvec._fs import atomic_writer
from mindvec.errors import UsageError
from mindvec.fit.mapping import fit
from mindvec.fit.metrics import evaluate
from mindvec.fit.splits import SplitData

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
TAG = "mindvec.correspondence.v1"


def _unit_gram(x: Any) -> F32:
    xa = np.asarray(x, dtype=np.float64)
    xc = xa - xa.mean(axis=0)
    norm = np.linalg.norm(xc)
    xc = (xc / norm if norm > 0 else xc).astype(np.float32)
    gram = xc @ xc.T
    gn = float(np.linalg.norm(gram))
    out: F32 = gram / gn if gn > 0 else gram
    return out


def linear_cka(x: Any, y: Any) -> float:
    """Linear CKA of two paired sample matrices ``[n, dx]`` and ``[n, dy]``."""
    return float(np.sum(_unit_gram(x) * _unit_gram(y)))


def cka_matrix(xs: Sequence[Any], ys: Sequence[Any], *, max_samples: int = 2000) -> F64:
    """CKA of every (source, target) pair on the first ``max_samples`` paired rows."""
    if not xs or not ys:
        raise UsageError("argument", "cka_matrix needs at least one source and one target layer")
    n = min(len(xs[0]), max_samples)
    if n < 3:
        raise UsageError("argument", f"CKA needs at least 3 paired samples, got {n}")
    grams_x = [_unit_gram(np.asarray(x)[:n]).ravel() for x in xs]
    out = np.zeros((len(xs), len(ys)))
    for j, y in enumerate(ys):
        gy = _unit_gram(np.asarray(y)[:n]).ravel()
        for i, gx in enumerate(grams_x):
            out[i, j] = float(gx @ gy)
    return out


@dataclass(frozen=True)
class Candidate:
    source_layer: int
    target_layer: int
    cka: float
    r2: float | None = None


@dataclass
class Correspondence:
    """CKA screen over all pairs, ridge R² for candidates, and the best source per target."""

    source_layers: list[int]
    target_layers: list[int]
    cka: F64
    candidates: list[Candidate] = field(default_factory=list)

    def best(self) -> dict[int, Candidate]:
        """Best source for each target layer: highest ridge R², or CKA where none was scored."""
        out: dict[int, Candidate] = {}
        for t_idx, t in enumerate(self.target_layers):
            scored = [c for c in self.candidates if c.target_layer == t and c.r2 is not None]
            if scored:
                out[t] = max(scored, key=lambda c: c.r2 if c.r2 is not None else -np.inf)
            else:
                s_idx = int(np.argmax(self.cka[:, t_idx]))
                out[t] = Candidate(self.source_layers[s_idx], t, float(self.cka[s_idx, t_idx]))
        return out


def ridge_r2(x: Any, y: Any, groups: Any, *, seed: int = 0) -> float:
    """Held-out R² of a ridge map (grouped split, α chosen on validation)."""
    data = SplitData.from_arrays(x, y, groups=groups, seed=seed)
    return evaluate(fit(data.train, data.val, method="ridge"), data.test_x, data.test_y).r2


def correspond(
    xs: dict[int, Any],
    ys: dict[int, Any],
    groups: Any,
    *,
    top_k: int = 2,
    ridge_targets: Sequence[int] | None = None,
    cka_samples: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> Correspondence:
    """Screen all pairs of ``xs`` (source layer -> rows) and ``ys`` (target layer -> rows).

    Ridge R² is computed for the ``top_k`` CKA sources of each target in ``ridge_targets``
    (default all targets).
    """
    s_layers, t_layers = sorted(xs), sorted(ys)
    cka = cka_matrix([xs[s] for s in s_layers], [ys[t] for t in t_layers], max_samples=cka_samples)
    result = Correspondence(s_layers, t_layers, cka)
    targets = t_layers if ridge_targets is None else [t for t in ridge_targets if t in ys]
    jobs = []
    for t in targets:
        col = cka[:, t_layers.index(t)]
        for s_idx in np.argsort(col)[::-1][:top_k]:
            jobs.append((s_layers[int(s_idx)], t, float(col[s_idx])))
    from tqdm.auto import tqdm

    for s, t, score in tqdm(jobs, desc="ridge candidates", disable=not progress, leave=False):
        result.candidates.append(Candidate(s, t, score, ridge_r2(xs[s], ys[t], groups, seed=seed)))
    return result


def heatmap(
    corr: Correspondence,
    path: str | Path,
    *,
    source_name: str = "source",
    target_name: str = "target",
) -> Path:
    """Draw the CKA matrix (best source per target marked) as a PNG; needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError("not-found", "the heatmap needs matplotlib: pip install 'mindvec[plot]'") from exc
    fig, ax = plt.subplots(figsize=(max(4.0, len(corr.target_layers) * 0.3), 4.5))
    image = ax.imshow(corr.cka, origin="lower", aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    for t, cand in corr.best().items():
        ax.plot(corr.target_layers.index(t), corr.source_layers.index(cand.source_layer), "w.", ms=6)
    ax.set_xticks(range(len(corr.target_layers)), [str(t) for t in corr.target_layers], fontsize=6)
    ax.set_yticks(range(len(corr.source_layers)), [str(s) for s in corr.source_layers], fontsize=6)
    ax.set_xlabel(f"{target_name} layer")
    ax.set_ylabel(f"{source_name} layer")
    ax.set_title("linear CKA (dots: best source per target)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    out = Path(path)
    try:
        with atomic_writer(out) as handle:
            fig.savefig(handle, format="png", dpi=100)
    finally:
        plt.close(fig)
    return out


def save(corr: Correspondence, path: str | Path) -> Path:
    """Save the screen (CKA matrix and scored candidates) as an ``.npz`` (no pickle)."""
    from mindvec.fit.stats import save_npz_atomic

    cands = np.array(
        [[c.source_layer, c.target_layer, c.cka, np.nan if c.r2 is None else c.r2] for c in corr.candidates]
    ).reshape(-1, 4)
    return save_npz_atomic(
        Path(path),
        {
            "format": np.array(TAG),
            "source_layers": np.array(corr.source_layers),
            "target_layers": np.array(corr.target_layers),
            "cka": corr.cka,
            "candidates": cands,
        },
    )


def load(path: str | Path) -> Correspondence:
    from mindvec.fit.stats import load_npz_tagged

    a = load_npz_tagged(Path(path), TAG)
    cands = [
        Candidate(int(s), int(t), float(k), None if np.isnan(r) else float(r))
        for s, t, k, r in a["candidates"]
    ]
    return Correspondence(
        [int(x) for x in a["source_layers"]], [int(x) for x in a["target_layers"]], a["cka"], cands
    )
