"""The bundled corpora (mindvec.assets): read from the gensim wheel that install.sh fetches."""

from __future__ import annotations

import pytest

from mindvec import assets
from mindvec.errors import UsageError


def test_polarity_splits_the_labelled_sentences_in_file_order() -> None:
    raw = assets.corpus("pang_lee_polarity.cor").splitlines()
    want_pos = [t.partition(" ")[2].strip() for t in raw if t.startswith("__label__pos ")]
    want_neg = [t.partition(" ")[2].strip() for t in raw if t.startswith("__label__neg ")]
    pos, neg = assets.polarity()
    assert (pos, neg) == (want_pos, want_neg) and len(pos) > 10 and len(neg) > 10
    short_pos, short_neg = assets.polarity(5, min_words=4)
    assert short_pos == [t for t in want_pos if len(t.split()) >= 4][:5]
    assert short_neg == [t for t in want_neg if len(t.split()) >= 4][:5]


def test_a_missing_corpus_is_a_typed_error() -> None:
    with pytest.raises(UsageError, match="no file 'nope.cor'") as err:
        assets.corpus("nope.cor")
    assert err.value.code == "not-found"
