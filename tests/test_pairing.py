"""Cross-tokenizer pairing pairs the right words, checked against hand-written expectations."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from mindvec.errors import UsageError
from mindvec.fit.pairing import (
    Encoded,
    aligned_positions,
    encode,
    pair_texts,
    split_chunks,
    word_ends,
)

SENTENCE = "The cat's owner didn't like rain, so they stayed home."
# Words that end where both tokenizers end a token; "The" is the first position of
# SmolLM2's sequence, which is never paired.
WORDS = ["cat", "s", "owner", "didn", "t", "like", "rain", "so", "they", "stayed", "home"]


@cache
def _tokenizer(which: str) -> Any:
    from transformers import AutoTokenizer

    from mindvec import assets

    model = assets.smollm2() if which == "smollm2" else assets.gemma3()
    return AutoTokenizer.from_pretrained(str(model.folder), gguf_file=model.name)


def _word_level() -> Any:
    """A second, different tokenizer built offline: word level, split on punctuation."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(set("The cat ' s owner didn t like rain , so they stayed home .".split()))
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def _paired_words(a: Encoded, b: Encoded, pairs: list[tuple[int, int]]) -> list[str]:
    out = []
    for ia, ib in pairs:
        end_a, end_b = a.offsets[ia][1], b.offsets[ib][1]
        assert end_a == end_b
        start = max(a.offsets[ia][0], b.offsets[ib][0])
        out.append(SENTENCE[start:end_a].strip())
    return out


def test_aligned_on_synthetic_offsets() -> None:
    text = "ab cd, ef"
    a = Encoded([0, 1, 2, 3, 4], [(0, 0), (0, 2), (2, 5), (5, 6), (6, 9)])  # bos ab ␣cd , ␣ef
    b = Encoded([0, 1, 2], [(0, 3), (3, 6), (6, 9)])  # "ab " "cd," " ef"
    assert word_ends(text) == {2, 5, 9}
    assert aligned_positions(text, a, b) == [(4, 2)]  # 'cd' ends at 5 in a only, ',' is no word end
    assert aligned_positions(text, a, b, boundary="any") == [(3, 1), (4, 2)]
    with pytest.raises(UsageError):
        aligned_positions(text, a, b, boundary="nope")


def test_split_chunks_whole_sentences() -> None:
    corpus = "One two three. Four five six! Seven eight?\n\nNine ten eleven twelve."
    chunks = split_chunks(corpus, max_chars=30, min_chars=5)
    assert chunks == ["One two three. Four five six!", "Seven eight?", "Nine ten eleven twelve."]


@pytest.mark.realmodel
def test_smollm2_vs_word_level_tokenizer() -> None:
    smol, other = _tokenizer("smollm2"), _word_level()
    a, b = encode(smol, SENTENCE), encode(other, SENTENCE)
    pairs = aligned_positions(SENTENCE, a, b)
    assert _paired_words(a, b, pairs) == WORDS
    assert pairs == [
        (1, 1),
        (2, 3),
        (3, 4),
        (4, 5),
        (5, 7),
        (6, 8),
        (7, 9),
        (9, 11),
        (10, 12),
        (11, 13),
        (12, 14),
    ]
    [paired] = list(pair_texts([SENTENCE], smol, other, mode="chunk"))
    assert paired.positions_a == list(range(1, len(a)))


@pytest.mark.slow
def test_smollm2_vs_gemma3_tokenizer() -> None:
    smol, gemma = _tokenizer("smollm2"), _tokenizer("gemma3")
    [paired] = list(pair_texts([SENTENCE], smol, gemma, mode="aligned"))
    pairs = list(zip(paired.positions_a, paired.positions_b, strict=True))
    assert _paired_words(paired.a, paired.b, pairs) == WORDS
    # Gemma starts with <bos> and splits "'s" into "'" + "s"
    assert pairs == [
        (1, 2),
        (2, 4),
        (3, 5),
        (4, 6),
        (5, 8),
        (6, 9),
        (7, 10),
        (9, 12),
        (10, 13),
        (11, 14),
        (12, 15),
    ]
