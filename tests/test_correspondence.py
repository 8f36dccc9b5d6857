"""Layer correspondence: CKA is exact, invariant as it should be, and finds planted pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mindvec.errors import UsageError
from mindvec.fit import correspondence as cc


def _feature_cka(x: np.ndarray, y: np.ndarray) -> float:
    xc, yc = x - x.mean(0), y - y.mean(0)
    return float(np.linalg.norm(xc.T @ yc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def test_cka_equals_feature_form_and_is_invariant() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20))
    y = x[:, :10] @ rng.normal(size=(10, 15)) + rng.normal(size=(300, 15))
    assert cc.linear_cka(x, y) == pytest.approx(_feature_cka(x, y), rel=1e-4)
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert cc.linear_cka(x @ q * 1e5 + 7.0, y) == pytest.approx(cc.linear_cka(x, y), rel=1e-3)
    assert cc.linear_cka(x, x) == pytest.approx(1.0, rel=1e-5)


def _layers(seed: int = 0) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 900
    latent = [rng.normal(size=(n, 12)) for _ in range(4)]
    xs = {i: z @ rng.normal(size=(12, 16)) + 0.1 * rng.normal(size=(n, 16)) for i, z in enumerate(latent)}
    # target layer t reads source layer (3 - t)
    ys = {t: latent[3 - t] @ rng.normal(size=(12, 10)) + 0.1 * rng.normal(size=(n, 10)) for t in range(4)}
    return xs, ys, np.arange(n) // 10


def test_correspond_finds_planted_pairs(tmp_path: Path) -> None:
    xs, ys, groups = _layers()
    corr = cc.correspond(xs, ys, groups, top_k=2)
    assert corr.cka.shape == (4, 4)
    best = corr.best()
    assert {t: c.source_layer for t, c in best.items()} == {0: 3, 1: 2, 2: 1, 3: 0}
    assert all(c.r2 is not None and c.r2 > 0.9 for c in best.values())
    assert len(corr.candidates) == 8
    png = cc.heatmap(corr, tmp_path / "cka.png", source_name="A", target_name="B")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_correspond_without_ridge_uses_cka() -> None:
    xs, ys, groups = _layers()
    corr = cc.correspond(xs, ys, groups, ridge_targets=[])
    assert {t: c.source_layer for t, c in corr.best().items()} == {0: 3, 1: 2, 2: 1, 3: 0}
    assert all(c.r2 is None for c in corr.best().values())
    with pytest.raises(UsageError):
        cc.cka_matrix([], [])


def test_save_load_round_trip(tmp_path: Path) -> None:
    xs, ys, groups = _layers()
    corr = cc.correspond(xs, ys, groups, ridge_targets=[0, 1])
    back = cc.load(cc.save(corr, tmp_path / "screen.npz"))
    np.testing.assert_array_equal(back.cka, corr.cka)
    assert back.candidates == corr.candidates and back.best() == corr.best()
