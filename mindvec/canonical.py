"""The canonical msgpack profile used for the manifest and the signature block.

Why a profile: the signature covers exact bytes, so one value must have exactly one
encoding. Keys are ``str`` only and sorted by their UTF-8 bytes, integers use the
shortest form, floats are finite float64, ``bytes`` is ``bin``, no ext types, and
nesting is at most :data:`MAX_DEPTH` deep. The reader decodes strictly and then
re-encodes: any input whose re-encoding differs is ``non-canonical``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import msgpack

from mindvec.errors import MalformedError
from mindvec.limits import BYTES_PER_CONTAINER, MAX_DEPTH, MAX_MANIFEST, MIN_CONTAINERS

#: the largest buffer :func:`decode` accepts (the manifest limit)
MAX_INPUT = MAX_MANIFEST

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


class _DuplicateKey(Exception):
    """Raised inside msgpack's hook; translated to ``duplicate-key`` outside it."""


class _BadKey(Exception):
    """Raised inside msgpack's hook for a map key that is not a string."""


class _ExtType(Exception):
    """Raised by the ext hook: the profile forbids ext types."""


def _pairs_hook(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise _BadKey(type(key).__name__)
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _ext_hook(code: int, data: bytes) -> NoReturn:
    raise _ExtType(code)


def _sort_key(key: str) -> bytes:
    return key.encode("utf-8")


def _fail(message: str) -> NoReturn:
    raise MalformedError("msgpack", message)


def _normalize(obj: Any, depth: int) -> Any:
    """Return ``obj`` with maps sorted, or raise if it is outside the profile."""
    if type(obj).__module__ == "numpy" and hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        obj = obj.item()  # numpy scalars become the Python int/float/bool they hold
    if obj is None or isinstance(obj, (bool, str)):
        if isinstance(obj, str):
            _check_utf8(obj)
        return obj
    if isinstance(obj, int):
        if not _INT_MIN <= obj <= _INT_MAX:
            _fail(f"integer {obj} is outside the 64-bit range; store it as a string")
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            _fail("floats must be finite (no NaN or infinity); store such a value as a string")
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    if depth >= MAX_DEPTH:
        raise MalformedError("depth", f"nesting deeper than {MAX_DEPTH} levels; flatten the structure")
    if isinstance(obj, Mapping):
        return _normalize_map(obj, depth)
    if isinstance(obj, Sequence):
        return [_normalize(item, depth + 1) for item in obj]
    _fail(
        f"type {type(obj).__name__} cannot be encoded; use dict, list, str, int, float, bytes, bool or None"
    )


def _normalize_map(obj: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    for key in obj:
        if not isinstance(key, str):
            _fail(f"map key {key!r} is not a string; only string keys are allowed")
        _check_utf8(key)
    return {key: _normalize(obj[key], depth + 1) for key in sorted(obj, key=_sort_key)}


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        _fail("a string contains lone surrogates and is not valid UTF-8")


def encode(obj: Any) -> bytes:
    """Encode ``obj`` canonically; raise ``msgpack``/``depth`` for values outside the profile."""
    normalized = _normalize(obj, 0)
    packed: bytes = msgpack.packb(normalized, use_bin_type=True, use_single_float=False, strict_types=False)
    return packed


def _check_tree(obj: Any) -> None:
    """Iteratively check depth, float finiteness and types of a decoded value.

    Only containers go on the stack, with their depth; scalars are checked where they stand,
    so the check costs no memory per scalar (a tuple per element used to triple the peak).
    """
    _check_scalar_or_container(obj)
    stack: list[tuple[Any, int]] = [(obj, 1)] if isinstance(obj, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedError("depth", f"nesting deeper than {MAX_DEPTH} levels")
        for child in item.values() if isinstance(item, dict) else item:
            _check_scalar_or_container(child)
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def _check_scalar_or_container(item: Any) -> None:
    if isinstance(item, float) and not math.isfinite(item):
        _fail("the manifest holds a NaN or infinite float, which the profile forbids")
    if not isinstance(item, _DECODED_TYPES):
        _fail(f"ext type ({type(item).__name__}) found; the profile forbids ext types")


_DECODED_TYPES = (dict, list, str, bytes, int, float, bool, type(None))


class _TooManyContainers(Exception):
    """Raised inside msgpack's hooks once the container budget is spent."""


def container_budget(size: int) -> int:
    """How many maps and arrays (together) ``size`` bytes of msgpack may hold (spec section 13).

    An empty map is one byte of input but about 140 bytes of Python objects; without this
    budget 4 MB of ``[{}, {}, ...]`` took 560 MB. Real manifests spend 45 bytes or more per
    container (the artificial depth-32 case 20), far above one per 16.
    """
    return max(MIN_CONTAINERS, size // BYTES_PER_CONTAINER)


def _unpack(data: bytes) -> Any:
    # Every element takes at least one byte, so no declared count or length can
    # exceed the input size: bounding them by it stops huge pre-allocations.
    limit = len(data)
    budget = [container_budget(limit)]

    def spend() -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooManyContainers

    def pairs(items: list[tuple[Any, Any]]) -> dict[str, Any]:
        spend()
        return _pairs_hook(items)

    def array(items: list[Any]) -> list[Any]:
        spend()
        return items

    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=pairs,
            list_hook=array,
            ext_hook=_ext_hook,
            max_str_len=limit,
            max_bin_len=limit,
            max_array_len=limit,
            max_map_len=limit,
            max_ext_len=limit,
        )
    except _TooManyContainers:
        raise MalformedError(
            "bounds",
            f"{limit} bytes of msgpack hold more than {container_budget(limit)} maps and arrays "
            f"(at most one per {BYTES_PER_CONTAINER} bytes); the file is hostile or damaged",
        ) from None
    except _DuplicateKey as exc:
        raise MalformedError("duplicate-key", f"a map repeats the key {exc.args[0]!r}") from None
    except _BadKey as exc:
        _fail(f"a map key has type {exc.args[0]}; only string keys are allowed")
    except _ExtType as exc:
        _fail(f"ext type {exc.args[0]} found; the profile forbids ext types")
    except UnicodeDecodeError:
        _fail("a string is not valid UTF-8")
    except msgpack.ExtraData:
        _fail("bytes follow the end of the msgpack value")
    except RecursionError:
        raise MalformedError("depth", f"nesting deeper than {MAX_DEPTH} levels") from None
    except msgpack.exceptions.StackError:
        raise MalformedError("depth", f"nesting deeper than {MAX_DEPTH} levels") from None
    except (ValueError, OverflowError, MemoryError, msgpack.exceptions.UnpackException) as exc:
        if "depth" in str(exc).lower():
            raise MalformedError("depth", f"nesting deeper than {MAX_DEPTH} levels") from None
        _fail(f"the msgpack does not decode ({type(exc).__name__}: {exc}); the file is damaged")


def decode(data: bytes) -> Any:
    """Decode strictly, then reject any input that is not the canonical encoding of its value."""
    if len(data) > MAX_INPUT:
        raise MalformedError("bounds", f"msgpack input of {len(data)} bytes exceeds {MAX_INPUT}")
    if not data:
        _fail("empty input where a msgpack value was expected")
    value = _unpack(bytes(data))
    _check_tree(value)
    if encode(value) != bytes(data):
        raise MalformedError(
            "non-canonical",
            "the msgpack is valid but not canonical (key order, integer width, float width or "
            "str/bin form); re-encode it with mindvec",
        )
    return value
