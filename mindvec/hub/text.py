"""Escaping for text that came from a package or a server, before anyone is shown it.

Signed strings are shown with control, bidi and invisible characters made visible, so that a
signed description cannot repaint a terminal or a rendered model card.
"""

from __future__ import annotations

import unicodedata

_BIDI_AND_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_MD_PLAIN = set(" ,.;:?'\"/%@=$^")


def visible(text: str) -> str:
    """Replace control, format (bidi, zero-width) and unassigned characters with ``\\u{XXXX}``."""
    out: list[str] = []
    for ch in text:
        if unicodedata.category(ch) in _BIDI_AND_INVISIBLE:
            out.append(f"\\u{{{ord(ch):04x}}}")
        else:
            out.append(ch)
    return "".join(out)


def plain(value: object, limit: int = 200) -> str:
    """A value for an error message: repr'd, control characters escaped, shortened."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return visible(text)


def md_escape(text: str) -> str:
    """Signed text as inert Markdown: only letters, digits, space and harmless punctuation stay literal.

    Everything else becomes an HTML character reference (so ``*``, ``[``, ``<``, ``|``, backticks
    and ``#`` cannot form markup), control and bidi characters become visible ``\\u{XXXX}``, and a
    line break becomes ``<br>``.
    """
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            out.append(ch)  # intraword: never emphasis
        elif ch == "-" and i > 0 and text[i - 1] != "\n":
            out.append(ch)  # a list marker or a rule only at the start of a line
        elif ch == "\n":
            out.append("<br>")
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in _BIDI_AND_INVISIBLE:
            out.append(f"&#92;u{{{ord(ch):04x}}}")
        elif ch.isalnum() or ch in _MD_PLAIN:
            out.append(ch)
        else:
            out.append(f"&#{ord(ch)};")
    return "".join(out)


def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax with ASCII escapes is valid YAML)."""
    import json

    return json.dumps(text, ensure_ascii=True)
