"""Which minor version of the format each key and value needs (spec section 12, R-93).

A writer declares the lowest minor that holds its content, so a 1.0 reader still reads every
package that uses nothing newer; a reader refuses a package that uses a key or value newer
than the minor it declares (``schema``), since a 1.0 reader would misread it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mindvec.errors import InvalidError


def _uses_1_1(manifest: Mapping[str, Any]) -> Iterator[str]:
    provenance = manifest.get("provenance")
    if isinstance(provenance, Mapping):
        for key in ("imported", "inputs"):
            if key in provenance:
                yield f"provenance.{key}"
    for i, vector in enumerate(manifest.get("vectors") or ()):
        if not isinstance(vector, Mapping):
            continue
        method = vector.get("method")
        if isinstance(method, Mapping) and method.get("kind") == "imported":
            yield f"vectors/{i}/method.kind 'imported'"
        translation = vector.get("translation")
        if isinstance(translation, Mapping) and "rule" in translation:
            yield f"vectors/{i}/translation.rule"
    for i, mapping in enumerate(manifest.get("mappings") or ()):
        if not isinstance(mapping, Mapping):
            continue
        tensors = mapping.get("tensors")
        if isinstance(tensors, Mapping) and "source_covariance" in tensors:
            yield f"mappings/{i}/tensors.source_covariance"
        if "shrinkage" in mapping:
            yield f"mappings/{i}/shrinkage"


def minor_needed(manifest: Mapping[str, Any]) -> int:
    """The lowest 1.x minor that can hold ``manifest``."""
    return 1 if next(_uses_1_1(manifest), None) is not None else 0


def check_declared(manifest: Mapping[str, Any], version: tuple[int, int]) -> None:
    """A package declaring minor m uses nothing newer than m (R-93)."""
    if version[1] >= 1:
        return
    used = next(_uses_1_1(manifest), None)
    if used is not None:
        raise InvalidError(
            "schema",
            f"manifest at {used}: this key or value is new in format 1.1 but the package declares"
            f" {version[0]}.{version[1]}; write it as 1.1",
        )
