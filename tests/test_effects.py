"""The effect and damage measures agree with a plain per-text computation.

The batched, right-padded pass must give the numbers each text gives alone: an independent
torch computation, one unpadded text at a time, is the reference.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fit_helpers import tiny_llama, word_tokenizer

from mindvec.errors import UsageError
from mindvec.fit.effects import log_mass, perplexity, word_ids

torch = pytest.importorskip("torch")

#: different lengths, so that the batch pads
PROMPTS = ["the cat was", "we liked the film and it was", "it is so"]
TEXTS = ["the dog was good and the owner stayed home", "they liked it", "the sun and the moon were great"]


@pytest.fixture(scope="module")
def model() -> Any:
    return tiny_llama(seed=3)


def _alone(model: Any, tok: Any, text: str) -> Any:
    with torch.no_grad():
        return torch.log_softmax(model(**tok(text, return_tensors="pt")).logits[0].double(), -1)


def test_log_mass_is_the_mean_over_prompts_of_the_words_next_token_mass(model: Any) -> None:
    tok = word_tokenizer()
    ids = word_ids(tok, ["cat", "dog"])
    assert ids == [tok.convert_tokens_to_ids("cat"), tok.convert_tokens_to_ids("dog")]
    expected = sum(math.log(sum(math.exp(float(_alone(model, tok, p)[-1, i])) for i in ids)) for p in PROMPTS)
    assert log_mass(model, tok, PROMPTS, ids) == pytest.approx(expected / len(PROMPTS), abs=1e-9)


def test_perplexity_pools_every_predicted_token_of_every_text(model: Any) -> None:
    tok = word_tokenizer()
    nll, count = 0.0, 0
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        lp = _alone(model, tok, text)
        nll -= sum(float(lp[k, ids[k + 1]]) for k in range(len(ids) - 1))
        count += len(ids) - 1
    assert perplexity(model, tok, TEXTS) == pytest.approx(math.exp(nll / count), rel=1e-9)


def test_the_tokenizer_is_left_as_it_was(model: Any) -> None:
    tok = word_tokenizer()
    tok.padding_side = "left"
    perplexity(model, tok, TEXTS)
    assert tok.padding_side == "left" and tok.pad_token is None


def test_bad_inputs_are_usage_errors(model: Any) -> None:
    tok = word_tokenizer()
    with pytest.raises(UsageError, match="no texts"):
        perplexity(model, tok, [])
    with pytest.raises(UsageError, match="has no tokens"):
        word_ids(tok, [""])
    tok.unk_token = None
    tok.bos_token = None
    with pytest.raises(UsageError, match="no pad, end or unknown token"):
        log_mass(model, tok, PROMPTS, [2])
