"""Centred sufficient statistics: one pass, batches and merged shards agree exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mindvec.errors import UsageError
from mindvec.fit.stats import Moments, PairStats, merge_all


def _data(n: int = 500, dx: int = 7, dy: int = 5, offset: float = 1e5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, dx)) * 3 + offset  # Gemma-like scale: raw sums would lose precision
    y = x[:, :dy] * 0.5 + rng.normal(size=(n, dy))
    return x, y


def test_batches_equal_one_pass() -> None:
    x, y = _data()
    one = PairStats.from_arrays(x, y)
    streamed = PairStats.empty(7, 5)
    for lo in range(0, len(x), 37):
        streamed.update(x[lo : lo + 37], y[lo : lo + 37])
    assert streamed.n == one.n
    for a, b in [(one.mean_x, streamed.mean_x), (one.sxx, streamed.sxx), (one.sxy, streamed.sxy)]:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)
    xc = x - x.mean(0)
    np.testing.assert_allclose(streamed.sxx, xc.T @ xc, rtol=1e-9)


def test_merged_shards_equal_one_pass(tmp_path: Path) -> None:
    x, y = _data()
    paths = []
    for i, (lo, hi) in enumerate([(0, 100), (100, 333), (333, 500)]):
        paths.append(PairStats.from_arrays(x[lo:hi], y[lo:hi]).save(tmp_path / f"s{i}.npz"))
    merged = merge_all([PairStats.load(p) for p in paths])
    one = PairStats.from_arrays(x, y)
    assert merged.n == 500
    np.testing.assert_allclose(merged.syy, one.syy, rtol=1e-9)
    np.testing.assert_allclose(merged.sxy, one.sxy, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(merged.mean_y, one.mean_y, rtol=1e-12)
    assert not list(tmp_path.glob(".tmp-*"))


def test_load_rejects_other_files(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(UsageError):
        PairStats.load(tmp_path / "x.npz")
    with pytest.raises(UsageError):
        PairStats.from_arrays(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(UsageError):
        PairStats.empty(2, 2).merge_in(PairStats.empty(3, 2))


def test_moments_mean_norm() -> None:
    x, _ = _data(dx=4, dy=3)
    m = Moments.empty(4).update(x[:200])
    m2 = Moments.empty(4).update(x[200:])
    m.merge_in(m2)
    np.testing.assert_allclose(m.mean, x.mean(0), rtol=1e-12)
    assert m.mean_norm == pytest.approx(np.linalg.norm(x, axis=1).mean())
