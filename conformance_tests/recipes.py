"""Recipes: a large case file described in a few KB and built by the runner (README, "Recipes")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def materialize(recipe: dict[str, Any]) -> bytes:
    """The bytes a recipe describes: its parts in order, literal hex or a numbered template repeated.

    ``{"hex": "89..."}`` is those bytes; ``{"repeat": "\"t{i}\":...,", "count": N}`` is the
    template N times with ``{i}`` replaced by 0, 1, ... N-1 written as six digits, UTF-8 encoded.
    """
    out = bytearray()
    for part in recipe["parts"]:
        if "hex" in part:
            out += bytes.fromhex(part["hex"])
        else:
            template = part["repeat"]
            out += "".join(template.replace("{i}", f"{i:06d}") for i in range(part["count"])).encode()
    return bytes(out)


def case_file(folder: Path, command: dict[str, Any], scratch: Path) -> Path:
    """A case's package file: the stored one, or one built from its ``recipe`` in ``scratch``."""
    if "recipe" not in command:
        return folder / command["file"]
    recipe = json.loads((folder / command["recipe"]).read_text(encoding="utf-8"))
    target = scratch / command["file"]
    target.write_bytes(materialize(recipe))
    return target
