"""Steering vectors: planted directions are recovered; extraction runs on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fit_helpers import block_outputs, tiny_llama, word_tokenizer

from mindvec.errors import UsageError
from mindvec.fit import vectors as vx
from mindvec.fit.activations import layer_sites


def _clusters(n: int = 400, d: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    base = rng.normal(size=(n, d)) * 2.0 + 30.0
    pos = base + 3.0 * direction + 0.5 * rng.normal(size=(n, d))
    neg = base - 0.5 * rng.normal(size=(n, d))
    return pos, neg, 3.0 * direction


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_mean_diff_recovers_planted_direction() -> None:
    pos, neg, planted = _clusters()
    v = vx.mean_diff(pos, neg)
    assert _cos(v, planted) > 0.99
    assert np.linalg.norm(v) == pytest.approx(3.0, rel=0.05)


def test_pca_diff_recovers_planted_direction_and_sign() -> None:
    pos, neg, planted = _clusters()
    v = vx.pca_diff(pos, neg)
    assert _cos(v, planted) > 0.99
    assert np.linalg.norm(v) == pytest.approx(3.0, rel=0.05)
    flipped = vx.pca_diff(neg, pos)
    assert _cos(flipped, planted) < -0.99
    with pytest.raises(UsageError):
        vx.pca_diff(pos, neg[:-1])


def test_recommended_scale() -> None:
    assert vx.recommended_scale(2.0, 100.0) == (1.0, (0.0, 25.0))
    assert vx.recommended_scale(100.0, 10.0) == (1.0, (0.0, 1.0))


def test_read_pairs_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "\n".join(json.dumps({"positive": f"p{i}", "negative": f"n{i}"}) for i in range(3)) + "\n"
    )
    assert vx.read_pairs_jsonl(path) == (["p0", "p1", "p2"], ["n0", "n1", "n2"])
    path.write_text('{"positive": "x"}\n')
    with pytest.raises(UsageError, match="positive"):
        vx.read_pairs_jsonl(path)


@pytest.mark.parametrize("method", ["mean_diff", "pca_diff"])
def test_extract_on_tiny_model(method: str) -> None:
    model, tok = tiny_llama(), word_tokenizer()
    pos = ["the film was good", "it was great", "we liked the movie", "the sun was good"]
    neg = ["the film was bad", "it was awful", "we hated the movie", "the rain was bad"]
    fit = vx.extract_at_sites(model, tok, pos, neg, layer_sites(model, [0, 1]), method=method, progress=False)
    assert [s.site.layer for s in fit.sites] == [0, 1]
    for s in fit.sites:
        # independently: each text's mean block output over positions 1.. (position 0 is dropped)
        rows = np.array([h[1:].mean(axis=0) for h in block_outputs(model, tok, pos + neg, s.site.layer)])
        p, n = rows[: len(pos)], rows[len(pos) :]
        expected = vx.mean_diff(p, n) if method == "mean_diff" else vx.pca_diff(p, n)
        np.testing.assert_allclose(s.vector, expected, rtol=1e-4, atol=1e-6)
        token_norms = np.concatenate(
            [np.linalg.norm(h[1:], axis=1) for h in block_outputs(model, tok, pos + neg, s.site.layer)]
        )
        assert s.mean_norm == pytest.approx(float(token_norms.mean()), rel=1e-5)
        assert s.tokens == sum(len(t.split()) for t in pos + neg) == token_norms.size
    scale, (lo, hi) = fit.scale()
    assert scale == 1.0 and lo == 0.0 and hi >= 1.0
    [(site, tensor, calib), _] = fit.builder_sites()
    assert site == {"stack": "decoder", "layer": 0, "point": "resid_post"} and tensor.dtype == np.float32
