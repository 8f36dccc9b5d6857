"""Document-keyed splits, the cross-document shuffle and the bottom-k test sample."""

from __future__ import annotations

import numpy as np

from mindvec.fit.splits import (
    HeldOutSample,
    SplitData,
    cross_document_permutation,
    keyed_hash,
    row_keys,
    split_of,
)


def test_split_is_a_function_of_the_document_and_seed() -> None:
    docs = np.arange(40000)
    s = split_of(docs, seed=3)
    assert np.array_equal(s[::-1], split_of(docs[::-1], seed=3))  # order does not matter
    assert np.array_equal(s[1000:2000], split_of(docs[1000:2000], seed=3))  # nor what else is there
    frac = np.bincount(s, minlength=3) / len(docs)
    np.testing.assert_allclose(frac, [0.65, 0.15, 0.20], atol=0.01)
    assert (s != split_of(docs, seed=4)).mean() > 0.3


def test_keys_differ_across_positions_and_documents() -> None:
    docs, pos = np.repeat(np.arange(100), 50), np.tile(np.arange(50), 100)
    assert len(np.unique(row_keys(docs, pos))) == 5000
    assert keyed_hash(1, 2, 3) == keyed_hash(1, 2, 3) and keyed_hash(1, 2, 3) != keyed_hash(1, 3, 2)


def test_cross_document_permutation_never_pairs_a_row_with_its_document() -> None:
    rng = np.random.default_rng(0)
    for trial in range(50):
        counts = rng.integers(1, 30, size=rng.integers(2, 9))
        if counts.max() * 2 > counts.sum():
            continue
        docs = np.repeat(np.arange(len(counts)) * 7 + trial, counts)
        perm = cross_document_permutation(docs, seed=1, batch=trial)
        assert sorted(perm) == list(range(len(docs)))  # a permutation: y's multiset is unchanged
        assert not np.any(docs[perm] == docs)
        assert np.array_equal(perm, cross_document_permutation(docs, seed=1, batch=trial))


def test_cross_document_permutation_of_one_document_reverses_it() -> None:
    assert list(cross_document_permutation(np.zeros(4, dtype=np.int64), seed=0, batch=0)) == [3, 2, 1, 0]


def test_bottom_k_sample_merges_exactly() -> None:
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 2**63, size=900).astype(np.uint64)
    rows = rng.normal(size=(900, 3)).astype(np.float32)
    whole = HeldOutSample(100)
    whole.add(keys, {"x": rows})
    parts = [HeldOutSample(100) for _ in range(3)]
    for i, part in enumerate(parts):
        for lo in range(i * 300, (i + 1) * 300, 37):  # batches of any size
            part.add(keys[lo : min(lo + 37, (i + 1) * 300)], {"x": rows[lo : min(lo + 37, (i + 1) * 300)]})
    merged = parts[2]
    merged.merge_in(parts[0])
    merged.merge_in(parts[1])
    expected = np.argsort(keys)[:100]  # numpy from first principles
    assert np.array_equal(merged.keys, keys[expected]) and np.array_equal(whole.keys, keys[expected])
    np.testing.assert_array_equal(merged.rows["x"], rows[expected])
    assert whole.threshold() == int(keys[expected[-1]])


def test_in_memory_split_keeps_documents_whole() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(600, 4)), rng.normal(size=(600, 2))
    groups = np.repeat(np.arange(60), 10)
    data = SplitData.from_arrays(x, y, groups=groups, seed=0)
    assert data.train.n + data.val.n + data.test_samples == 600
    assert data.test_samples % 10 == 0
