"""Joint statistics on the device equal float64 numpy from first principles, batch by batch or merged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mindvec.errors import UsageError
from mindvec.fit.accumulate import JointStats

DIMS = {"a": 5, "b": 3}
PRODUCTS = [("a", "a"), ("a", "b"), ("b", "b")]


def _data(n: int, offset: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 5)) * 3 + offset
    b = a[:, :3] * 0.5 + rng.normal(size=(n, 3)) + offset
    return a.astype(np.float32), b.astype(np.float32)


def _reference(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ac, bc = a64 - a64.mean(0), b64 - b64.mean(0)
    return {"ma": a64.mean(0), "mb": b64.mean(0), "aa": ac.T @ ac, "ab": ac.T @ bc, "bb": bc.T @ bc}


def _stream(a: np.ndarray, b: np.ndarray, batch: int) -> JointStats:
    st = JointStats(DIMS, PRODUCTS)
    for lo in range(0, len(a), batch):
        st.add({"a": torch.from_numpy(a[lo : lo + batch]), "b": torch.from_numpy(b[lo : lo + batch])})
    return st


@pytest.mark.parametrize("offset", [0.0, 1e5])  # 1e5: Gemma 3's activation scale
def test_streamed_statistics_match_first_principles(offset: float) -> None:
    a, b = _data(3000, offset)
    ref = _reference(a, b)
    st = _stream(a, b, 128)
    p = st.pair("a", "b")
    assert p.n == 3000
    np.testing.assert_allclose(p.mean_x, ref["ma"], rtol=1e-12, atol=1e-9)
    for got, want in ((p.sxx, ref["aa"]), (p.sxy, ref["ab"]), (p.syy, ref["bb"])):
        # fp32 products of centred batches: relative error near fp32 rounding, not 1e5-scale loss
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max())


def test_batch_size_and_merge_order_do_not_matter() -> None:
    a, b = _data(2000, 50.0, seed=1)
    one = _stream(a, b, 2000).pair("a", "b")
    small = _stream(a, b, 7).pair("a", "b")
    left, right = _stream(a[:1300], b[:1300], 64), _stream(a[1300:], b[1300:], 64)
    right.merge_in(left)
    merged = right.pair("a", "b")
    for other in (small, merged):
        np.testing.assert_allclose(other.sxy, one.sxy, rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(other.mean_y, one.mean_y, rtol=1e-10)


def test_shard_arrays_round_trip_and_bad_input() -> None:
    a, b = _data(100)
    st = _stream(a, b, 30)
    back = JointStats.from_arrays(st.arrays("train"), "train", DIMS, PRODUCTS)
    assert back.n == 100 and torch.equal(back.prod[("a", "b")], st.prod[("a", "b")])
    with pytest.raises(UsageError, match="same number of rows"):
        st.add({"a": torch.zeros(3, 5), "b": torch.zeros(2, 3)})
    with pytest.raises(UsageError, match="lacks"):
        JointStats.from_arrays({}, "train", DIMS, PRODUCTS)
    with pytest.raises(UsageError, match="not declared"):
        JointStats(DIMS, [("a", "c")])
