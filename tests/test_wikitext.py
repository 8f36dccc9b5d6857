"""``mindvec.wikitext``: prose paragraphs from MediaWiki XML, on hand-made pages and the real dump."""

from __future__ import annotations

import re

import pytest

from mindvec import assets
from mindvec.wikitext import paragraphs, plain, strip_nested

LONG = "word " * 45  # 225 characters of prose


def _page(body: str) -> str:
    return f'<page><title>T</title><revision><text xml:space="preserve">{body}</text></revision></page>'


def test_strip_nested_removes_whole_nested_spans() -> None:
    assert strip_nested("a {{x|{{y}} z}} b {{c}}", "{{", "}}") == "a  b "
    assert strip_nested("no spans", "{{", "}}") == "no spans"
    assert strip_nested("{| table {| inner |} |}after", "{|", "|}") == "after"


def test_plain_keeps_what_a_reader_sees() -> None:
    # the dump escapes markup once, and entities inside it twice
    body = (
        "'''Anarchism''' is a [[political philosophy]] that [[Hierarchy|rejects hierarchy]]"
        "&lt;ref&gt;Some source, p. 3&lt;/ref&gt;&lt;ref name=&quot;x&quot;/&gt;{{citation needed|date=2020}}"
        " [[File:Flag.svg|thumb|A [[flag]] here]]&lt;!-- a comment --&gt; at 10:00&amp;nbsp;am"
        " [http://example.org/a See this] http://example.org/b ok.&lt;math&gt;\\sin x&lt;/math&gt;"
    )
    text = plain(body)
    assert text == ("Anarchism is a political philosophy that rejects hierarchy  at 10:00 am See this  ok.")


def test_paragraphs_keep_prose_lines_only() -> None:
    pages = _page(f"== Heading ==\n{LONG}\n* a list item {LONG}\n| a table row {LONG}\nshort line\n{LONG}x")
    pages += _page(f"#REDIRECT [[Elsewhere]] {LONG}")
    got = list(paragraphs(pages))
    assert got == [LONG.strip(), (LONG + "x").strip()]
    assert list(paragraphs(pages, min_chars=300)) == []


def test_the_offline_wikipedia_sample_is_clean_prose() -> None:
    """gensim's shortened dump: 206 articles give about 380k words of prose, with no markup left."""
    text = assets.wikipedia()
    lines = text.split("\n")
    words = len(text.split())
    assert len(lines) > 4000 and 350_000 < words < 420_000, (len(lines), words)
    for marker in ("{{", "}}", "<ref", "</ref>", "[[File", "&nbsp;", "&amp;", "'''"):
        assert marker not in text, marker
    assert lines[0].startswith("Anarchism is a political philosophy")
    assert all(len(line) >= 200 for line in lines)
    # ordinary sentences: letters and spaces are most of every paragraph (census figures included)
    assert all(len(re.findall(r"[A-Za-z ]", line)) > 0.5 * len(line) for line in lines), "markup residue"
    assert "\\sin" not in text  # <math> formulas go


@pytest.mark.parametrize("bad", ["<text>{{unclosed", "<text>[[unclosed"])
def test_unbalanced_markup_never_raises(bad: str) -> None:
    assert list(paragraphs(bad + "</text>")) == []


def test_fit_reads_it_as_corpus_asset_wikipedia() -> None:
    """``mindvec fit --corpus-asset wikipedia`` pairs on these paragraphs, cut into chunks."""
    import argparse

    from mindvec.cli.options import corpus_texts

    name, chunks = corpus_texts(argparse.Namespace(corpus_asset="wikipedia", corpus=None, chunk_chars=600))
    assert name == "wikipedia" and len(chunks) > 5000
    assert chunks[0].startswith("Anarchism is a political philosophy")
