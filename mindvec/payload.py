"""The embedded safetensors payload: a strict header parser and the payload builder.

Why our own parser: ``safetensors.safe_open`` cannot open a blob at an offset inside
another file, and the format must reject more than the Rust implementation does.
:func:`parse_header` applies every check of the Rust ``safetensors`` crate (header
at most 100,000,000 bytes, header starts with ``{``, offsets sorted, contiguous and
non-overlapping, ``end - begin == numel * itemsize``, data ends exactly at the end of
the payload) plus the stricter mindvec rules: no duplicate JSON keys, only spaces
after the JSON object, no ``__metadata__``, exactly the keys dtype/shape/data_offsets,
only the dtypes F16/BF16/F32/F64, and a header length N with N = 56 (mod 64) so the
tensor data starts 64-aligned in the file.

The ``safetensors`` library stays the writer (:func:`build_payload`); we only re-pad
its JSON header with spaces.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from mindvec.errors import InvalidError, MalformedError, UsageError
from mindvec.limits import ALIGN, MAX_SAFETENSORS_HEADER, MAX_TENSORS, MIN_PAYLOAD

#: dtype name -> (bytes per element, numpy dtype used to view it; BF16 see below)
DTYPES: dict[str, tuple[int, np.dtype[Any]]] = {
    "F16": (2, np.dtype("<f2")),
    "BF16": (2, np.dtype("<u2")),
    "F32": (4, np.dtype("<f4")),
    "F64": (8, np.dtype("<f8")),
}
_SAFETENSORS_NAMES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}
_NUMPY_TO_DTYPE = {"float16": "F16", "float32": "F32", "float64": "F64", "bfloat16": "BF16"}
_TORCH_TO_DTYPE = {
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.float32": "F32",
    "torch.float64": "F64",
}
_U64_MAX = 2**64 - 1
_HEADER_KEYS = {"dtype", "shape", "data_offsets"}


def _bf16_dtype() -> np.dtype[Any]:
    """ml_dtypes' bfloat16 when installed, else uint16 (the raw bits)."""
    try:
        import ml_dtypes
    except ImportError:
        return np.dtype("<u2")
    bf16: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
    return bf16


def numpy_dtype(dtype: str) -> np.dtype[Any]:
    """The numpy dtype a tensor of ``dtype`` is returned as."""
    return _bf16_dtype() if dtype == "BF16" else DTYPES[dtype][1]


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the payload; offsets are relative to the start of the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class Header:
    """The parsed safetensors header of a payload."""

    header_len: int
    header_bytes: bytes
    tensors: dict[str, TensorInfo]
    payload_len: int

    @property
    def data_offset(self) -> int:
        """Offset of the data section from the start of the payload."""
        return 8 + self.header_len

    @property
    def data_len(self) -> int:
        return self.payload_len - self.data_offset

    @property
    def digest(self) -> bytes:
        return header_digest(self.header_bytes)


def header_digest(header_bytes: bytes) -> bytes:
    """``payload.header_sha256``: sha256 of the N JSON header bytes, padding included."""
    return hashlib.sha256(header_bytes).digest()


def _bad(message: str) -> NoReturn:
    raise MalformedError("payload", message)


# ---------------------------------------------------------------- parsing


def read_header_len(prefix: bytes, payload_len: int) -> int:
    """Check the 8-byte header length N against the limits before the header is read."""
    if len(prefix) != 8 or payload_len < MIN_PAYLOAD:
        _bad("the payload is too short to hold a safetensors header")
    (header_len,) = struct.unpack("<Q", prefix)
    if header_len > MAX_SAFETENSORS_HEADER:
        raise MalformedError(
            "bounds", f"safetensors header of {header_len} bytes exceeds {MAX_SAFETENSORS_HEADER}"
        )
    if 8 + header_len > payload_len:
        raise MalformedError(
            "bounds", f"safetensors header of {header_len} bytes does not fit in the payload"
        )
    if (8 + header_len) % ALIGN:
        _bad("safetensors header length must be 56 mod 64 so tensor data is 64-aligned; pad it with spaces")
    return int(header_len)


class _DuplicateJsonKey(Exception):
    pass


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateJsonKey(key)
        result[key] = value
    return result


def _no_float(text: str) -> NoReturn:
    _bad(f"the safetensors header holds a non-integer number {text[:40]!r}")


def _plain_int(text: str) -> int:
    """The header's one number form: ``0`` or a non-zero digit then digits (no sign: ``-0`` is
    refused, as the safetensors library refuses it; JSON itself already refuses ``01``)."""
    if text.startswith("-"):
        _bad(f"the safetensors header holds the number {text[:40]!r}; numbers there have no sign")
    return int(text)


def _load_json(header_bytes: bytes) -> dict[str, Any]:
    if not header_bytes.startswith(b"{"):
        _bad("the safetensors header must start with '{'")
    try:
        text = header_bytes.decode("utf-8")
        obj, end = json.JSONDecoder(
            object_pairs_hook=_json_pairs,
            parse_float=_no_float,
            parse_int=_plain_int,
            parse_constant=_no_float,
        ).raw_decode(text)
    except _DuplicateJsonKey as exc:
        raise MalformedError(
            "duplicate-key", f"the safetensors header repeats the key {exc.args[0]!r}"
        ) from None
    except UnicodeDecodeError:
        _bad("the safetensors header is not valid UTF-8")
    except RecursionError:
        raise MalformedError("depth", "the safetensors header nests too deeply") from None
    except ValueError as exc:
        _bad(f"the safetensors header is not valid JSON ({exc})")
    if text[end:].strip(" "):
        _bad("only spaces may follow the JSON object in the safetensors header")
    if not isinstance(obj, dict):
        _bad("the safetensors header must be a JSON object")
    return obj


def _is_u64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


def _numel_matches(shape: list[int], nbytes: int, itemsize: int) -> bool:
    """``product(shape) * itemsize == nbytes`` exactly (R-49), in time linear in the rank.

    The product is never formed past the byte count: with a zero dimension it is 0; otherwise
    it only grows, so it can stop as soon as it passes. 30,000 dimensions of 2^64-1 cost
    30,000 small multiplications, not a 600,000-digit number.
    """
    if nbytes % itemsize:
        return False
    if 0 in shape:
        return nbytes == 0
    want, product = nbytes // itemsize, 1
    for dim in shape:
        product *= dim
        if product > want:
            return False
    return product == want


def _tensor_info(name: str, entry: Any) -> TensorInfo:
    if not isinstance(entry, dict) or set(entry) != _HEADER_KEYS:
        _bad(f"tensor {name!r}: header entry must have exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str):
        _bad(f"tensor {name!r}: dtype must be a string")
    if dtype not in DTYPES:
        raise InvalidError(
            "dtype", f"tensor {name!r} has dtype {dtype[:20]!r}; only F16, BF16, F32, F64 are allowed"
        )
    if not isinstance(shape, list) or not all(_is_u64(dim) for dim in shape):
        _bad(f"tensor {name!r}: shape must be a list of non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_u64(o) for o in offsets):
        _bad(f"tensor {name!r}: data_offsets must be two non-negative integers")
    info = TensorInfo(name, dtype, tuple(shape), offsets[0], offsets[1])
    if info.end < info.begin:
        _bad(f"tensor {name!r}: data_offsets end before they begin")
    if not _numel_matches(shape, info.nbytes, DTYPES[dtype][0]):
        _bad(f"tensor {name!r}: {info.nbytes} data bytes do not match shape {list(shape)} of {dtype}")
    return info


def _check_contiguous(infos: list[TensorInfo], data_len: int) -> None:
    position = 0
    for info in infos:
        if info.begin != position:
            _bad(f"tensor {info.name!r} starts at {info.begin}, expected {position}: gap or overlap")
        position = info.end
    if position != data_len:
        _bad(f"tensor data ends at {position} but the data section has {data_len} bytes")


def parse_header(header_bytes: bytes, payload_len: int) -> Header:
    """Parse and check the N JSON header bytes of a payload of ``payload_len`` bytes."""
    header_len = len(header_bytes)
    obj = _load_json(header_bytes)
    if "__metadata__" in obj:
        _bad("__metadata__ must be absent from the safetensors header; all meaning lives in the manifest")
    if len(obj) > MAX_TENSORS:
        raise MalformedError("bounds", f"{len(obj)} tensors exceed the limit of {MAX_TENSORS}")
    infos = sorted((_tensor_info(name, entry) for name, entry in obj.items()), key=lambda i: (i.begin, i.end))
    _check_contiguous(infos, payload_len - 8 - header_len)
    return Header(header_len, header_bytes, {info.name: info for info in infos}, payload_len)


def parse_payload(payload: bytes) -> Header:
    """Parse a whole payload held in memory (the writer's self-check, and tests)."""
    header_len = read_header_len(payload[:8], len(payload))
    return parse_header(payload[8 : 8 + header_len], len(payload))


# ---------------------------------------------------------------- tensors in and out


@dataclass(frozen=True)
class TensorData:
    """A tensor as the writer stores it: dtype name, shape and little-endian bytes.

    Use :meth:`bf16` to store raw BF16 bits held in a ``uint16`` array (what the
    reader returns for BF16 when ml_dtypes is not installed).
    """

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    @classmethod
    def bf16(cls, bits: np.ndarray[Any, Any]) -> TensorData:
        array = np.ascontiguousarray(bits, dtype="<u2")
        return cls("BF16", tuple(int(d) for d in array.shape), array.tobytes())

    def to_numpy(self) -> np.ndarray[Any, Any]:
        flat = np.frombuffer(self.data, dtype=numpy_dtype(self.dtype))
        return flat.reshape(self.shape)


def _from_numpy(array: np.ndarray[Any, Any]) -> TensorData:
    dtype = _NUMPY_TO_DTYPE.get(array.dtype.name)
    if dtype is None:
        raise InvalidError(
            "dtype", f"numpy dtype {array.dtype} is not allowed; use float16, bfloat16, float32 or float64"
        )
    if dtype == "BF16":
        array = array.view(np.uint16)
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    return TensorData(dtype, tuple(int(d) for d in array.shape), little.tobytes())


def _from_torch(tensor: Any) -> TensorData:
    dtype = _TORCH_TO_DTYPE.get(str(tensor.dtype))
    if dtype is None:
        raise InvalidError(
            "dtype", f"torch dtype {tensor.dtype} is not allowed; use float16, bfloat16, float32 or float64"
        )
    torch = sys.modules["torch"]  # already imported: the caller holds a torch tensor
    tensor = tensor.detach().to("cpu").contiguous()
    if dtype == "BF16":
        bits = tensor.view(torch.int16).numpy().view(np.uint16)
        return TensorData.bf16(bits)
    return _from_numpy(tensor.numpy())


def to_tensor_data(value: Any) -> TensorData:
    """Accept a numpy array, a torch tensor (never importing torch) or :class:`TensorData`."""
    if isinstance(value, TensorData):
        if value.dtype not in DTYPES:
            raise InvalidError("dtype", f"dtype {value.dtype!r} is not allowed; use F16, BF16, F32 or F64")
        return value
    if isinstance(value, np.ndarray):
        return _from_numpy(value)
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        return _from_torch(value)
    raise UsageError(
        "argument",
        f"tensor of type {type(value).__name__} is not supported; pass a numpy array or torch tensor",
    )


def _serialize(tensors: Mapping[str, TensorData]) -> bytes:
    """The safetensors library's own writer, in the API of whichever release is installed.

    Releases from 0.8 take ``TensorSpec`` objects holding a pointer to the data; earlier ones
    take ``{dtype, shape, data}`` dicts. The bytes are the same.
    """
    import safetensors as library

    st: Any = library  # the two releases' signatures differ; each branch calls its own
    spec = getattr(st, "TensorSpec", None)
    if spec is None:
        plain = {
            name: {"dtype": _SAFETENSORS_NAMES[t.dtype], "shape": list(t.shape), "data": t.data}
            for name, t in tensors.items()
        }
        return bytes(st.serialize(plain))
    buffers = {name: np.frombuffer(t.data, dtype=np.uint8) for name, t in tensors.items()}
    specs = {
        name: spec(
            dtype=_SAFETENSORS_NAMES[t.dtype],
            shape=list(t.shape),
            data_ptr=buffers[name].ctypes.data,  # kept alive by ``buffers`` until serialize returns
            data_len=len(t.data),
        )
        for name, t in tensors.items()
    }
    return bytes(st.serialize(specs))


def build_payload(tensors: Mapping[str, TensorData]) -> bytes:
    """Serialize with the safetensors library, then re-pad the header for 64-byte alignment."""
    raw = _serialize(tensors)
    (old_len,) = struct.unpack_from("<Q", raw)
    header = raw[8 : 8 + old_len].rstrip(b" ")
    new_len = (len(header) + 8 + ALIGN - 1) // ALIGN * ALIGN - 8
    return struct.pack("<Q", new_len) + header + b" " * (new_len - len(header)) + raw[8 + old_len :]


def tensor_digests(payload: bytes, header: Header) -> dict[str, bytes]:
    """sha256 of each tensor's bytes, as ``payload.tensors`` records them."""
    data = memoryview(payload)[header.data_offset :]
    return {name: hashlib.sha256(data[i.begin : i.end]).digest() for name, i in header.tensors.items()}


def as_float32(array: np.ndarray[Any, Any], dtype: str) -> np.ndarray[Any, Any]:
    """Values as float32 for checks (finite, norm); BF16 bits are widened exactly."""
    if dtype == "BF16" and array.dtype == np.dtype("<u2"):
        return (array.astype(np.uint32) << 16).view(np.float32)
    return np.asarray(array, dtype=np.float32) if dtype != "F64" else np.asarray(array)
