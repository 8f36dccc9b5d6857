"""Tagged JSON: how a decoded manifest is written as JSON without losing types (stdlib only).

The rules (README.md, "Tagged JSON") in short:

* msgpack nil, bool, str, array and map become JSON null, true/false, string, array, object;
* an integer becomes a JSON integer (exact digits, no fraction, no exponent);
* a float becomes ``{"$float": "<decimal>"}``: any decimal string that parses to the same
  IEEE 754 binary64 value (``"1.0"``, ``"1"``, ``"1e0"`` are all the float 1.0);
* bin becomes ``{"$bytes": "<lowercase hex>"}``;
* a map key that starts with ``$`` is written with one more ``$`` in front (``"$x"`` -> ``"$$x"``),
  so a manifest map can never be mistaken for a tag.

``compare`` decides equality under these rules and says where two values first differ.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")


def tag(value: Any) -> Any:
    """Turn a decoded msgpack value (dict/list/str/bytes/int/float/bool/None) into tagged JSON."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"$float": repr(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [tag(item) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"map key {key!r} is not a string")
            out[("$" + key) if key.startswith("$") else key] = tag(item)
        return out
    raise TypeError(f"cannot tag a value of type {type(value).__name__}")


def _float_bits(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) and text.strip().lower() not in ("inf", "-inf", "+inf", "nan"):
        return None
    return int(struct.unpack("<Q", struct.pack("<d", number))[0])


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "untagged float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        if len(value) == 1 and "$float" in value:
            return "float"
        if len(value) == 1 and "$bytes" in value:
            return "bytes"
        return "map"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compare(expected: Any, got: Any, path: str = "$") -> str | None:
    """None when ``got`` equals ``expected`` under the tagged-JSON rules, else where and how they differ."""
    kind_e, kind_g = _kind(expected), _kind(got)
    if kind_e != kind_g:
        return f"{path}: expected {kind_e} {_short(expected)}, got {kind_g} {_short(got)}"
    if kind_e == "float":
        bits_e, bits_g = _float_bits(expected["$float"]), _float_bits(got["$float"])
        if bits_g is None:
            return f"{path}: {_short(got['$float'])} is not a decimal float"
        if bits_e != bits_g:
            return f"{path}: expected float {expected['$float']}, got {got['$float']}"
        return None
    if kind_e == "bytes":
        hex_g = got["$bytes"]
        if not isinstance(hex_g, str) or not _HEX.match(hex_g):
            return f"{path}: {_short(hex_g)} is not lowercase hex"
        if expected["$bytes"] != hex_g:
            return f"{path}: expected bytes {_short(expected['$bytes'])}, got {_short(hex_g)}"
        return None
    if kind_e == "map":
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        if missing or extra:
            return f"{path}: keys differ (missing {missing}, unexpected {extra})"
        for key in sorted(expected):
            diff = compare(expected[key], got[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if kind_e == "array":
        if len(expected) != len(got):
            return f"{path}: expected {len(expected)} items, got {len(got)}"
        for index, (item_e, item_g) in enumerate(zip(expected, got, strict=True)):
            diff = compare(item_e, item_g, f"{path}[{index}]")
            if diff:
                return diff
        return None
    if expected != got:
        return f"{path}: expected {_short(expected)}, got {_short(got)}"
    return None
