"""The one escaper for text that came from a package, a file or a server.

Signed strings are attacker-chosen. Shown raw, an ANSI escape or a bidi override could
repaint a terminal, and Markdown could make a model card say something the signer never
wrote. Every place that shows such text (``inspect``, errors, model cards) goes through
:func:`escape`, so the same character always looks the same: ``\\x1b``, ``\\u202e``,
``\\U000e0001``, and ``\\\\`` for a backslash.
"""

from __future__ import annotations

import json
import unicodedata

#: control, format (bidi overrides, zero-width), surrogate, private-use, unassigned,
#: line and paragraph separators
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_MD_PLAIN = set(" ,.;:?'\"/%@=$^")


def _code(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape(text: str, limit: int | None = None) -> str:
    """``text`` with hidden characters and backslashes escaped, cut to ``limit`` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in HIDDEN_CATEGORIES:
            out.append(_code(char))
        else:
            out.append(char)
    return "".join(out)


def plain(value: object, limit: int = 200) -> str:
    """A value for an error message: repr'd, shortened, hidden characters escaped."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return escape(text)


def md_escape(text: str) -> str:
    """Signed text as inert Markdown: only letters, digits, space and harmless punctuation stay.

    Everything else becomes an HTML character reference (so ``*``, ``[``, ``<``, ``|``,
    backticks and ``#`` cannot form markup), hidden characters are shown as :func:`escape`
    shows them (with the backslash as ``&#92;``), and a line break becomes ``<br>``.
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
        elif unicodedata.category(ch) in HIDDEN_CATEGORIES:
            out.append("&#92;" + _code(ch)[1:])
        elif ch.isalnum() or ch in _MD_PLAIN:
            out.append(ch)
        else:
            out.append(f"&#{ord(ch)};")
    return "".join(out)


def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax with ASCII escapes is valid YAML)."""
    return json.dumps(text, ensure_ascii=True)
