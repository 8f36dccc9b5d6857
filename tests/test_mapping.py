"""Each fitting method recovers a planted map from noisy synthetic pairs.

Tolerances: relative Frobenius error ‖Ŵ - W‖/‖W‖ < 0.05 with 4000 samples at noise 0.1
(ridge, CCA, low-rank); Procrustes recovers a planted rotation to 1e-2 and is semi-orthogonal
to 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

from mindvec.errors import UsageError
from mindvec.fit import mapping as mp
from mindvec.fit import metrics
from mindvec.fit.stats import PairStats


def _planted(n: int = 4000, dx: int = 24, dy: int = 16, noise: float = 0.1, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(dy, dx)) / np.sqrt(dx)
    x = rng.normal(size=(n, dx)) * rng.uniform(0.5, 2.0, size=dx) + 50.0
    y = x @ w.T + 3.0 + noise * rng.normal(size=(n, dy))
    return x, y, w


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("method", ["ridge", "lstsq", "cca"])
def test_methods_recover_planted_map(method: str) -> None:
    x, y, w = _planted()
    kw = {"reg": 1e-6} if method == "cca" else {}
    report = metrics.fit_and_score(x, y, method=method, **kw)
    assert _rel(report.mapping.weight, w) < 0.05
    assert report.held_out.r2 > 0.95
    assert report.held_out.centered_cosine > 0.95
    assert report.baselines["shuffled"].centered_cosine < 0.2
    assert report.baselines["mean"].r2 < 0.01


def test_low_rank_recovers_planted_low_rank_map() -> None:
    rng = np.random.default_rng(1)
    x, y, _ = _planted()
    w = rng.normal(size=(16, 3)) @ rng.normal(size=(3, 24)) / 5
    y = x @ w.T + 0.1 * rng.normal(size=(len(x), 16))
    m = mp.fit(PairStats.from_arrays(x, y), method="low_rank_ridge", rank=3, alphas=(1e-6,))
    assert m.u is not None and m.v is not None
    assert m.u.shape == (16, 3) and m.v.shape == (24, 3)
    np.testing.assert_allclose(m.u @ m.v.T, m.weight, atol=1e-12)
    assert _rel(m.weight, w) < 0.05
    assert m.form == "low_rank"


def test_streamed_ridge_equals_lstsq_on_stacked_data() -> None:
    x, y, _ = _planted(n=600)
    stats = PairStats.empty(24, 16)
    for lo in range(0, 600, 64):
        stats.update(x[lo : lo + 64], y[lo : lo + 64])
    alpha = 0.37
    m = mp.fit_ridge(stats, alpha)
    xc, yc = x - x.mean(0), y - y.mean(0)
    a = np.vstack([xc, np.sqrt(len(x) * alpha) * np.eye(24)])
    b = np.vstack([yc, np.zeros((24, 16))])
    ref = np.linalg.lstsq(a, b, rcond=None)[0].T
    np.testing.assert_allclose(m.weight, ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m.predict(x[:5]), xc[:5] @ ref.T + y.mean(0), rtol=1e-8)


def test_r2_from_stats_matches_direct() -> None:
    x, y, _ = _planted(n=800)
    m = mp.fit_ridge(PairStats.from_arrays(x[:500], y[:500]), 0.01)
    direct = metrics.evaluate(m, x[500:], y[500:]).r2
    assert mp.r2_from_stats(m, PairStats.from_arrays(x[500:], y[500:])) == pytest.approx(direct, abs=1e-9)


@pytest.mark.parametrize(("dx", "dy"), [(20, 12), (12, 20), (16, 16)])
def test_procrustes_semi_orthogonal_and_recovers_rotation(dx: int, dy: int) -> None:
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(max(dx, dy), max(dx, dy))))
    w = q[:dy, :dx]  # semi-orthogonal planted map
    z, _ = np.linalg.qr(rng.normal(size=(3000, dx)) - 0.0)
    x = (z - z.mean(0)) * np.sqrt(3000) + 10.0  # isotropic sample: the rotation is identifiable
    y = x @ w.T - 4.0 + 0.01 * rng.normal(size=(3000, dy))
    m = mp.fit(PairStats.from_arrays(x, y), method="procrustes")
    if dy <= dx:
        np.testing.assert_allclose(m.weight @ m.weight.T, np.eye(dy), atol=1e-10)
    else:
        np.testing.assert_allclose(m.weight.T @ m.weight, np.eye(dx), atol=1e-10)
    assert _rel(m.weight, w) < 1e-2
    assert metrics.evaluate(m, x, y).r2 > 0.99
    assert m.form == "orthogonal"


def test_procrustes_scale() -> None:
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    x = rng.normal(size=(2000, 8))
    m = mp.fit_procrustes(PairStats.from_arrays(x, 2.5 * x @ q.T), with_scale=True)
    assert m.scale == pytest.approx(2.5, rel=1e-6)
    np.testing.assert_allclose(m.apply_vector(np.ones(8)), 2.5 * q @ np.ones(8), atol=1e-6)


def test_bad_arguments() -> None:
    x, y, _ = _planted(n=50)
    with pytest.raises(UsageError):
        mp.fit(PairStats.from_arrays(x, y), method="magic")
    with pytest.raises(UsageError):
        mp.fit_low_rank(PairStats.from_arrays(x, y), rank=99, alpha=1.0)
    with pytest.raises(UsageError):
        mp.fit_ridge(PairStats.empty(3, 3), 1.0)
