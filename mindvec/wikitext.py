"""Plain prose paragraphs from a MediaWiki XML dump (the offline Wikipedia sample).

Maps fitted on one news corpus alone carried concept directions less well than maps that had
also seen encyclopedic text on many topics (``benchmarks/study_transfer.py``), and the only
such text offline is the shortened Wikipedia dump in gensim's test data. This turns its wiki
markup into the paragraphs a reader sees: references, comments, formulas, templates and
tables go, links keep their shown text, and only paragraphs of prose remain (no headings,
lists or table rows, at least ``min_chars`` long). No network, no parser dependency: wikitext has no
grammar a library here would give, and these rules are enough for prose.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

_PAGE_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)
_REF_EMPTY = re.compile(r"<ref[^>/]*/>")
_REF = re.compile(r"<ref.*?</ref>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MATH = re.compile(r"<math[^>]*>.*?</math>", re.S)
#: [[File:...]], [[Category:...]], interlanguage [[de:...]] links (one level of nested links)
_NAMESPACED = re.compile(r"\[\[(?:File|Image|Category|[a-z\-]{2,12}):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]")
_LINK = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]")
_EXTERNAL = re.compile(r"\[https?://\S+ ([^\]]*)\]")
_URL = re.compile(r"https?://\S+")
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
#: lines that are markup, not prose: headings, lists, definitions, table rows, indents
_NOT_PROSE = ("=", "*", "#", "|", "!", ":", ";")


def strip_nested(text: str, opening: str, closing: str) -> str:
    """``text`` without any ``opening … closing`` span, nested spans included."""
    out: list[str] = []
    depth = i = 0
    while i < len(text):
        if text.startswith(opening, i):
            depth, i = depth + 1, i + len(opening)
        elif depth and text.startswith(closing, i):
            depth, i = depth - 1, i + len(closing)
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def plain(wikitext: str) -> str:
    """One page's wiki markup as plain text, lines kept."""
    text = html.unescape(html.unescape(wikitext))  # the dump escapes entities once more
    text = _MATH.sub("", _COMMENT.sub("", _REF.sub("", _REF_EMPTY.sub("", text))))
    text = strip_nested(strip_nested(text, "{{", "}}"), "{|", "|}")
    text = _LINK.sub(r"\1", _NAMESPACED.sub("", text))
    text = _TAG.sub("", _URL.sub("", _EXTERNAL.sub(r"\1", text)))
    return text.replace("'''", "").replace("''", "").replace("\xa0", " ")


def paragraphs(dump_xml: str, *, min_chars: int = 200) -> Iterator[str]:
    """The prose paragraphs of every page of ``dump_xml``, in order (redirects skipped)."""
    for page in _PAGE_TEXT.findall(dump_xml):
        if page.lstrip().lower().startswith("#redirect"):
            continue
        for line in plain(page).split("\n"):
            line = line.strip()
            if len(line) >= min_chars and not line.startswith(_NOT_PROSE):
                yield _SPACE.sub(" ", line)
