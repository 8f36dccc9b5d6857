"""Print the spec's architecture tables (sections 8.2.1 and 8.2.2) from the loader's tables.

Usage: python spec/tools/arch_tables.py
tests/test_spec_requirements.py checks that the spec holds exactly these rows.
"""

from __future__ import annotations

from mindvec.loader.sites import BLOCK_TERMS, Term
from mindvec.loader.stacks import STACK_TABLE


def stack_rows() -> list[str]:
    groups: dict[tuple[str, str | None], list[str]] = {}
    for model_type, entry in STACK_TABLE.items():
        groups.setdefault((entry["decoder"], entry.get("encoder")), []).append(model_type)
    return [
        "| " + ", ".join(f"`{m}`" for m in types) + f" | `{dec}` | " + (f"`{enc}`" if enc else "—") + " |"
        for (dec, enc), types in groups.items()
    ]


def cell(term: Term | None) -> str:
    if term is None:
        return "—"
    text = f"`{term.module}`"
    if term.multiplier:
        text += f" × `{term.multiplier}`"
    if term.clone:
        text += " (copy)"
    if getattr(term, "flat", False):
        text += " (flat)"
    return text


def term_rows() -> list[str]:
    return [
        f"| `{name}` | {cell(t.attn_out)} | {cell(t.mlp_out)} | {cell(t.cross_attn_out)} |"
        for name, t in BLOCK_TERMS.items()
    ]


if __name__ == "__main__":
    print("\n".join(stack_rows()))
    print()
    print("\n".join(term_rows()))
