"""One mutant of the reference reader: a text edit of one function that drops a rule or swaps two checks."""

from __future__ import annotations

from dataclasses import dataclass

SEMANTICS = "mindvec.manifest"


@dataclass(frozen=True)
class Mutant:
    """One rule dropped or one order changed, in function ``function`` of ``module``.

    ``old`` is found exactly once in the function's source and replaced by ``new``; the cases
    citing ``requirements`` must kill the result.
    """

    name: str
    module: str
    function: str  # "name" or "Class.name"
    old: str
    new: str
    requirements: tuple[str, ...]


def swap(first: str, second: str) -> tuple[str, str]:
    """(old, new) that swap two consecutive statements of a function body."""
    return f"{first}\n    {second}", f"{second}\n    {first}"
