"""Activation capture reads the loader's sites, drops the first position, and batches exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fit_helpers import tiny_llama, word_tokenizer

from mindvec.errors import UsageError
from mindvec.fit.activations import collect, layer_sites
from mindvec.fit.capture import forward_capture
from mindvec.fit.paired import collect_paired
from mindvec.fit.pairing import encode

TEXTS = ["the cat liked the sun .", "a dog hated rain", "they stayed home and it was good ."]


def _reference(model, tok, text: str) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    ids = torch.tensor([encode(tok, text).input_ids])
    with torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states
    return [h[0].numpy() for h in hs]


def test_collect_matches_hidden_states_and_drops_first() -> None:
    model, tok = tiny_llama(), word_tokenizer()
    sites = layer_sites(model, [0, 1])
    got = collect(model, tok, TEXTS, sites, batch_size=2, store=True, progress=False)
    refs = [_reference(model, tok, t) for t in TEXTS]
    for layer, site in enumerate(sites):
        expected = np.concatenate([r[layer + 1][1:] for r in refs])
        np.testing.assert_allclose(got.arrays[site], expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got.moments[site].mean, expected.mean(0), rtol=1e-4, atol=1e-5)
    assert got.rows == got.tokens == sum(len(encode(tok, t)) - 1 for t in TEXTS)
    assert got.groups is not None and list(np.unique(got.groups)) == [0, 1, 2]


def test_collect_mean_and_unstored() -> None:
    model, tok = tiny_llama(), word_tokenizer()
    [site] = layer_sites(model, [1])  # hidden_states[-1] is after the final norm: not a site
    got = collect(model, tok, TEXTS, [site], reduce="mean", progress=False)
    assert got.arrays == {} and got.rows == 3
    means = [_reference(model, tok, t)[2][1:].mean(0) for t in TEXTS]
    np.testing.assert_allclose(got.moments[site].mean, np.mean(means, axis=0), rtol=1e-4, atol=1e-5)
    with pytest.raises(UsageError):
        collect(model, tok, TEXTS, [site], reduce="median")


def test_forward_capture_stops_early_and_removes_hooks() -> None:
    model, tok = tiny_llama(), word_tokenizer()
    ids = torch.tensor([encode(tok, TEXTS[0]).input_ids])
    out = forward_capture(model, ids, torch.ones_like(ids), layer_sites(model, [0]))
    assert list(out.values())[0].shape == (1, ids.shape[1], 32)
    assert not any(m._forward_hooks for m in model.modules())


def test_collect_paired_aligned_rows() -> None:
    a, b = tiny_llama(seed=0), tiny_llama(hidden=48, seed=1)
    ta, tb = word_tokenizer(bos=True), word_tokenizer(bos=False)
    sa, sb = layer_sites(a, [1]), layer_sites(b, [0, 2])
    pairs = collect_paired(a, ta, sa, b, tb, sb, TEXTS, batch_size=2, progress=False)
    # with BOS, a's index i+1 pairs with b's index i; b's first word is dropped
    n_expected = sum(len(t.split()) - 1 - t.split()[1:].count(".") for t in TEXTS)
    assert pairs.n == n_expected
    assert pairs.x[sa[0]].shape == (pairs.n, 32) and pairs.y[sb[1]].shape == (pairs.n, 48)
    ref = _reference(a, ta, TEXTS[0])[2]
    np.testing.assert_allclose(pairs.x[sa[0]][0], ref[2], rtol=1e-4, atol=1e-5)  # "cat"


def test_massive_activations_are_dropped_like_the_first_position() -> None:
    model, tok = tiny_llama(), word_tokenizer()
    sink = encode(tok, "moon").input_ids[-1]
    with torch.no_grad():
        model.model.embed_tokens.weight[sink] *= 1000.0  # an attention-sink-like token
    texts = ["the cat liked the moon and the sun .", "a dog hated rain and it was bad ."]
    sites = layer_sites(model, [0])
    kept = collect(model, tok, texts, sites, store=True, progress=False)
    everything = collect(model, tok, texts, sites, store=True, progress=False, outlier_factor=None)
    assert everything.tokens - kept.tokens == 1
    norms = np.linalg.norm(kept.arrays[sites[0]], axis=1)
    assert norms.max() < 8 * np.median(norms)
    b = tiny_llama(hidden=48, seed=1)
    pairs = collect_paired(model, tok, sites, b, tok, layer_sites(b, [1]), texts, progress=False)
    raw = collect_paired(
        model, tok, sites, b, tok, layer_sites(b, [1]), texts, progress=False, outlier_factor=None
    )
    assert raw.n - pairs.n == 1
