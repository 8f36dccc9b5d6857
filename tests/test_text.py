"""mindvec.text: one escaper, so a hidden character looks the same in inspect, errors and cards."""

from __future__ import annotations

import pytest

from mindvec.text import escape, md_escape, plain, yaml_str


@pytest.mark.req("R-76")
def test_escape_makes_hidden_characters_visible() -> None:
    assert escape("héllo 世界") == "héllo 世界"
    assert escape("a\x1b[31mb") == "a\\x1b[31mb"
    assert escape("\x7f\x85\u202e\u2066\u200b\n\\") == "\\x7f\\x85\\u202e\\u2066\\u200b\\x0a\\\\"
    assert escape("\U000e0041") == "\\U000e0041"  # a tag character, invisible in a terminal
    assert escape("x" * 10, limit=3) == "xxx…"


def test_markdown_and_errors_use_the_same_escapes() -> None:
    text = "\u202eevil\x1b"
    assert md_escape(text).replace("&#92;", "\\") == escape(text)
    assert "\\u202e" in plain(text) and "\u202e" not in plain(text)
    assert md_escape("*bold* [link](x) <b>") == "&#42;bold&#42; &#91;link&#93;&#40;x&#41; &#60;b&#62;"


def test_yaml_str_is_ascii_and_quoted() -> None:
    assert yaml_str('a "b"\n\u202e') == '"a \\"b\\"\\n\\u202e"'
