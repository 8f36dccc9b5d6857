"""mindvec.fit.train/extract -> Vector: apply, save, push; checked against independent captures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fit_helpers import block_outputs, tiny_llama, word_tokenizer  # noqa: E402

import mindvec  # noqa: E402
from mindvec import fit  # noqa: E402
from mindvec.errors import UsageError  # noqa: E402
from mindvec.keys import SecretKey  # noqa: E402
from mindvec.trust import TrustEntry, TrustStore  # noqa: E402

POS = ["the film was good", "it was great", "we liked the movie", "the sun was good"]
NEG = ["the film was bad", "it was awful", "we hated the movie", "the rain was bad"]


def test_train_is_the_mean_difference_of_independently_captured_activations() -> None:
    model, tok = tiny_llama(), word_tokenizer()
    vec = fit.train(model, tok, list(zip(POS, NEG, strict=True)), layers=[1])
    per_text = [h[1:].mean(axis=0) for h in block_outputs(model, tok, POS + NEG, 1)]  # drop position 0
    expected = np.mean(per_text[: len(POS)], axis=0) - np.mean(per_text[len(POS) :], axis=0)
    assert vec.layers == [1]
    np.testing.assert_allclose(vec.fit.sites[0].vector, expected, rtol=1e-4, atol=1e-6)
    # extract with the same texts is the same vector
    again = fit.extract(model, tok, POS, NEG, layers=[1])
    np.testing.assert_array_equal(again.fit.sites[0].vector, vec.fit.sites[0].vector)


def test_apply_adds_scale_times_vector_at_the_block_and_nowhere_earlier() -> None:
    model, tok = tiny_llama(), word_tokenizer()
    vec = fit.train(model, tok, list(zip(POS, NEG, strict=True)), layers=[1])
    text = ["the cat stayed home"]
    before0, before1 = block_outputs(model, tok, text, 0)[0], block_outputs(model, tok, text, 1)[0]
    with vec.apply(model, scale=3.0) as handle:
        assert isinstance(handle, mindvec.SteeringHandle) and handle.active
        after0, after1 = block_outputs(model, tok, text, 0)[0], block_outputs(model, tok, text, 1)[0]
    np.testing.assert_array_equal(after0, before0)  # block 0 is upstream of the site
    shift = after1 - before1
    np.testing.assert_allclose(shift, np.broadcast_to(3.0 * vec.fit.sites[0].vector, shift.shape), atol=1e-4)
    np.testing.assert_array_equal(block_outputs(model, tok, text, 1)[0], before1)  # removed: restored


def test_save_signs_and_the_package_verifies(tmp_path: Path) -> None:
    model, tok = tiny_llama(), word_tokenizer()
    vec = fit.extract(model, tok, POS, NEG, layers=[0, 2], intended_effect="positive sentiment")
    key = SecretKey.generate("me")
    path = vec.save(tmp_path / "v.mindvec", sign=key)
    trust = TrustStore([TrustEntry("me", key.public_key)])
    report = mindvec.verify(path, mindvec.Policy(trust=trust))
    assert report.verdict == "verified", report.error
    with mindvec.open(path) as pkg:
        spec = pkg.vector()
        assert [s.site.layer for s in spec.sites] == [0, 2]
        assert pkg.manifest["package"]["intended_effect"] == "positive sentiment"
        for entry, site in zip(spec.sites, vec.fit.sites, strict=True):
            np.testing.assert_array_equal(pkg.tensor(entry.tensor), site.vector.astype(np.float32))
        assert pkg.model("model").hidden_size == 32 and pkg.model("model").num_layers == 3


def test_push_uploads_a_signed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mindvec import hub

    model, tok = tiny_llama(), word_tokenizer()
    vec = fit.extract(model, tok, POS, NEG, layers=[1])
    key = SecretKey.generate("me")
    seen: dict[str, Any] = {}

    def fake_push(path: Path, repo_id: str, **kwargs: Any) -> str:
        seen["report"] = mindvec.verify(
            path, mindvec.Policy(trust=TrustStore([TrustEntry("me", key.public_key)]))
        )
        seen.update(repo=repo_id, name=Path(path).name, keys=kwargs["public_key"])
        return "https://hub.invalid/commit/1"

    monkeypatch.setattr(hub, "push", fake_push)
    assert vec.push("me/steer", sign=key) == "https://hub.invalid/commit/1"
    assert seen["report"].verdict == "verified" and seen["repo"] == "me/steer"
    assert seen["name"] == "steer.mindvec" and seen["keys"] == [key.public_key]
    with pytest.raises(UsageError, match="sign="):
        vec.push("me/steer", sign=None)


def test_train_refuses_bad_samples() -> None:
    model, tok = tiny_llama(), word_tokenizer()
    with pytest.raises(UsageError):
        fit.train(model, tok, [])
    with pytest.raises(UsageError):
        fit.train(model, tok, [("only one",)])  # type: ignore[list-item]
