"""The manifest's JSON Schema (``schemas/manifest.schema.json``) and its validator.

Why a custom validator: msgpack has types JSON lacks. ``bytes`` is msgpack bin and never a
hex string; ``integer`` is a Python ``int``, never a bool or a float (576.0 is not an
integer); ``number`` is never a bool; ``byteLength`` fixes a bin's length; ``pattern``
anchors ``$`` at the very end, as ECMA-262 does.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import ValidationError

from mindvec.errors import InvalidError, error_for
from mindvec.limits import FORMAT_VERSION
from mindvec.text import escape

SCHEMA_FILE = "manifest.schema.json"


def schema_path(name: str = SCHEMA_FILE) -> Path:
    """Find a schema in an installed wheel (mindvec/schemas) or the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas" / name, here.parent / "schemas" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} is missing from the mindvec installation; reinstall mindvec")


@lru_cache(maxsize=8)
def load_schema(name: str = SCHEMA_FILE) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return schema


@lru_cache(maxsize=8)
def _file_validator(name: str) -> Any:
    return _validator_class()(load_schema(name))


def load_json_file(data: bytes, name: str, *, source: str, code: str) -> dict[str, Any]:
    """A JSON file mindvec writes (state, key file, rotation record), decoded and schema-checked.

    Deep nesting, a 5000-digit number or a member of the wrong type is error ``code`` naming
    where, never a RecursionError, ValueError or AttributeError from inside a caller.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise error_for(code, f"{source} is not UTF-8 text") from None
    except RecursionError:
        raise error_for(code, f"{source} nests too deeply to be a mindvec file") from None
    except ValueError as exc:  # JSONDecodeError, and integers with too many digits
        raise error_for(code, f"{source} is not valid JSON ({escape(str(exc), 120)})") from None
    error = next(iter(_file_validator(name).iter_errors(doc)), None)
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        raise error_for(
            code, f"{source} at {escape(where, 120)}: {escape(error.message, 200)}; is it the right file?"
        )
    result: dict[str, Any] = doc
    return result


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_number(checker: Any, instance: Any) -> bool:
    return isinstance(instance, (int, float)) and not isinstance(instance, bool)


def _is_bytes(checker: Any, instance: Any) -> bool:
    return isinstance(instance, bytes)


def _byte_length(validator: Any, value: int, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if isinstance(instance, bytes) and len(instance) != value:
        yield ValidationError(f"expected {value} bytes, got {len(instance)}")


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """ECMA-262 ``$`` semantics: Python's ``$`` would also match before a final newline."""
    if not isinstance(instance, str):
        return
    anchored = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    if re.search(anchored, instance) is None:
        yield ValidationError(f"{escape(instance, 60)!r} does not match {pattern!r}")


def _freeze(value: Any) -> Any:
    """A hashable stand-in with JSON Schema's equality (1 == 1.0, True != 1, key order free)."""
    if isinstance(value, dict):
        return ("object", frozenset((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_freeze(v) for v in value))
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    return (type(value).__name__, value)


def _unique_items(validator: Any, unique: bool, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """Linear ``uniqueItems``: jsonschema's own compares every pair, quadratic in the length."""
    if unique and isinstance(instance, list):
        seen: set[Any] = set()
        for index, item in enumerate(instance):
            key = _freeze(item)
            if key in seen:
                yield ValidationError(f"item {index} repeats an earlier item; items must be unique")
                return
            seen.add(key)


def _validator_class() -> Any:
    base = validators.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number, "bytes": _is_bytes}
    )
    keywords = {"byteLength": _byte_length, "pattern": _pattern, "uniqueItems": _unique_items}
    return validators.extend(base, validators=keywords, type_checker=checker)


def _relax(node: Any) -> Any:
    """Drop ``additionalProperties: false`` everywhere (forward-compatible minor versions)."""
    if isinstance(node, dict):
        return {k: _relax(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [_relax(v) for v in node]
    return node


@lru_cache(maxsize=2)
def _validator(relaxed: bool) -> Any:
    schema = load_schema()
    if relaxed:
        schema = _relax(copy.deepcopy(schema))
    return _validator_class()(schema)


def _schema_error(error: ValidationError) -> InvalidError:
    where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
    return InvalidError("schema", f"manifest at {escape(where, 200)}: {escape(error.message, 300)}")


def validate_schema(manifest: Any, version: tuple[int, int] = FORMAT_VERSION) -> None:
    """Validate against the JSON Schema; a higher minor version relaxes closed objects."""
    relaxed = version[0] == FORMAT_VERSION[0] and version[1] > FORMAT_VERSION[1]
    # the first error, not the best of all of them: collecting every error of a hostile manifest
    # (a long `critical` list failing maxItems, say) is work a reader must not be made to do
    error = next(iter(_validator(relaxed).iter_errors(manifest)), None)
    if error is not None:
        raise _schema_error(error)
