"""Pair token positions of two models whose tokenizers differ.

Two modes (documented in the spec's fitting appendix):

- ``chunk``: one pair per text chunk, the mean activation over each model's tokens of the
  chunk (the first position excluded).
- ``aligned``: one pair per character offset at which *both* tokenizers end a token and a word
  ends (the end of a ``\\w+`` run), found with the fast tokenizers' offset mappings. Each model
  contributes the activation at its token that ends there, which has read the same text.
  ``boundary="any"`` pairs every common token end instead of word ends only.

The first position of every sequence is never paired: SmolLM2's first position carries
activations with norms near 26,000, unlike any other token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mindvec.errors import UsageError

MODES = ("chunk", "aligned")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Encoded:
    """Token ids of one text and the character span ``(start, end)`` of each token."""

    input_ids: list[int]
    offsets: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.input_ids)


class Tokenizer(Protocol):
    """A fast Hugging Face tokenizer: called on text, it returns ids and character offsets."""

    is_fast: bool

    def __call__(self, text: str, **kwargs: Any) -> Any: ...


def encode(tokenizer: Tokenizer, text: str, max_tokens: int | None = None) -> Encoded:
    """Tokenize with the model's own special tokens and keep character offsets."""
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError(
            "argument",
            "pairing needs a fast tokenizer (offset mappings); load it with use_fast=True "
            "or wrap a tokenizers.Tokenizer in PreTrainedTokenizerFast",
        )
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    ids = list(enc["input_ids"])
    offsets = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
    if max_tokens is not None:
        ids, offsets = ids[:max_tokens], offsets[:max_tokens]
    return Encoded(ids, offsets)


def word_ends(text: str) -> set[int]:
    """Character offsets at which a word (a ``\\w+`` run) ends."""
    return {m.end() for m in _WORD.finditer(text)}


def _ends(enc: Encoded, drop_first: bool) -> dict[int, int]:
    """Character end offset -> index of the token ending there (last one wins, none at 0)."""
    out: dict[int, int] = {}
    for i, (start, end) in enumerate(enc.offsets):
        if (drop_first and i == 0) or end <= start:
            continue  # special tokens have empty spans
        out[end] = i
    return out


def aligned_positions(
    text: str,
    a: Encoded,
    b: Encoded,
    *,
    boundary: str = "word",
    drop_first: bool = True,
) -> list[tuple[int, int]]:
    """Pairs ``(index in a, index in b)`` of tokens ending at the same offset, in text order."""
    if boundary not in ("word", "any"):
        raise UsageError("argument", f"boundary must be 'word' or 'any', got {boundary!r}")
    ea, eb = _ends(a, drop_first), _ends(b, drop_first)
    common = set(ea) & set(eb)
    if boundary == "word":
        common &= word_ends(text)
    return [(ea[c], eb[c]) for c in sorted(common)]


def chunk_positions(enc: Encoded, *, drop_first: bool = True) -> list[int]:
    """The token indices averaged in ``chunk`` mode."""
    return list(range(1 if drop_first else 0, len(enc)))


@dataclass(frozen=True)
class PairedText:
    """One text chunk encoded by both models, with the positions to read in each."""

    index: int
    text: str
    a: Encoded
    b: Encoded
    positions_a: list[int]
    positions_b: list[int]


def pair_texts(
    texts: Sequence[str],
    tokenizer_a: Tokenizer,
    tokenizer_b: Tokenizer,
    *,
    mode: str = "aligned",
    boundary: str = "word",
    max_tokens: int | None = 256,
) -> Iterator[PairedText]:
    """Encode each text with both tokenizers and yield the paired positions.

    ``aligned``: equal-length position lists, element i of each is one pair.
    ``chunk``: each list holds the positions to average (the chunk is one pair).
    Texts with no pair are skipped.
    """
    if mode not in MODES:
        raise UsageError("argument", f"unknown pairing mode {mode!r}; use one of {', '.join(MODES)}")
    for i, text in enumerate(texts):
        a, b = encode(tokenizer_a, text, max_tokens), encode(tokenizer_b, text, max_tokens)
        if mode == "aligned":
            # both truncated encodings must have read up to the paired character
            pairs = aligned_positions(text, a, b, boundary=boundary)
            pa, pb = [p[0] for p in pairs], [p[1] for p in pairs]
        else:
            pa, pb = chunk_positions(a), chunk_positions(b)
            if not pa or not pb:
                pa, pb = [], []
        if pa:
            yield PairedText(i, text, a, b, pa, pb)


def split_chunks(corpus: str, *, max_chars: int = 600, min_chars: int = 40) -> list[str]:
    """Cut a corpus into chunks of whole sentences of at most about ``max_chars`` characters."""
    chunks: list[str] = []
    for line in corpus.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        current = ""
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            if current and len(current) + 1 + len(sentence) > max_chars:
                chunks.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}" if current else sentence
        if current:
            chunks.append(current)
    return [c[: max_chars * 2] for c in chunks if len(c) >= min_chars]
