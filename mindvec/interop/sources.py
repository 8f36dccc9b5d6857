"""Other tools' steering-vector files and objects, parsed into one :class:`Source`.

These files come from anywhere, so each parser bounds what it reads and checks every value
before it is used: a malformed file, ``direction.0``, a tensor that is not 1-D F32 (GGUF) or
F32/F16/BF16 (safetensors), lengths that differ, a non-finite or all-zero value, or a layer
past 4095 is error ``foreign-file`` (``site`` for a site the format cannot express), never a
traceback from inside a parser. Formats:

- ``llamacpp`` / ``repeng``: a control vector GGUF; ``direction.N`` (N >= 1) is ``resid_post``
  of layer N (spec 8.3). ``controlvector.model_hint`` is kept, to be checked against the model.
- ``steering-vectors``: the safetensors ``export`` writes (one tensor per layer, key
  ``"<layer>"``, ``layer_type`` in the metadata), or a ``SteeringVector`` object.
- ``neuronpedia``: JSON, one object or a list (``values``, ``hook_name``, ``layer_num``, ...).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mindvec.errors import InvalidError, UsageError
from mindvec.interop.names import from_transformer_lens
from mindvec.site import Site

FORMATS = ("llamacpp", "repeng", "steering-vectors", "neuronpedia")
#: the largest file an importer reads (a 4096-layer, 16384-wide F32 control vector is 256 MiB)
MAX_FILE = 1 << 28
MAX_LAYER = 4095
_DIRECTION = re.compile(r"direction\.(0|[1-9][0-9]{0,3})")
#: steering-vectors layer types and the point each reads (``decoder_block`` is a block's output)
LAYER_TYPES = {"decoder_block": "resid_post", "self_attn": "attn_out", "mlp": "mlp_out"}


def _bad(path: str, why: str) -> UsageError:
    return UsageError("foreign-file", f"{path}: {why}; this file cannot be imported")


@dataclass
class Source:
    """Per-site vectors read from another tool, with where they came from."""

    format: str
    tool: str
    vectors: dict[Site, np.ndarray[Any, np.dtype[np.float32]]]
    sha256: bytes
    file: str | None = None
    model_hint: str | None = None
    strength: float = 1.0

    @property
    def width(self) -> int:
        return int(next(iter(self.vectors.values())).shape[0])


def _checked(path: str, vectors: Mapping[Site, Any]) -> dict[Site, np.ndarray[Any, np.dtype[np.float32]]]:
    """One width, finite, non-zero, at a layer the format allows."""
    if not vectors:
        raise _bad(path, "it holds no vector")
    out: dict[Site, np.ndarray[Any, np.dtype[np.float32]]] = {}
    widths = set()
    for site, values in sorted(vectors.items(), key=lambda kv: kv[0].layer):
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.size == 0:
            raise _bad(path, f"the vector at {site} has shape {list(arr.shape)}, not [hidden_size]")
        if site.layer > MAX_LAYER:
            raise _bad(path, f"layer {site.layer} is past the largest layer a package holds ({MAX_LAYER})")
        f32 = arr.astype(np.float32)
        if not np.all(np.isfinite(f32)):
            raise _bad(path, f"the vector at {site} has a NaN or infinite value")
        if not np.any(f32):
            raise _bad(path, f"the vector at {site} is all zeros")
        widths.add(int(arr.shape[0]))
        out[site] = f32
    if len(widths) != 1:
        raise _bad(path, f"its vectors have different lengths {sorted(widths)}")
    return out


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE:
            raise _bad(str(path), f"it is {size} bytes, over the {MAX_FILE}-byte limit for imports")
        return path.read_bytes()
    except OSError as exc:
        raise UsageError("io", f"cannot read {path}: {exc.strerror or exc}") from None


def _gguf_string(reader: Any, key: str) -> str | None:
    field_ = reader.fields.get(key)
    if field_ is None:
        return None
    try:
        return bytes(field_.parts[field_.data[0]]).decode("utf-8")
    except (IndexError, UnicodeDecodeError, TypeError, ValueError):
        return None


def read_gguf(path: str | Path, *, tool: str = "llama.cpp") -> Source:
    """A llama.cpp / repeng control vector GGUF."""
    import gguf

    p = Path(path)
    data = _read(p)
    try:
        reader = gguf.GGUFReader(str(p))
        tensors = list(reader.tensors)
    except Exception as exc:  # noqa: BLE001 - the gguf reader raises many types on hostile bytes
        raise _bad(str(p), f"it is not a readable GGUF file ({type(exc).__name__})") from None
    vectors: dict[Site, Any] = {}
    for tensor in tensors:
        match = _DIRECTION.fullmatch(str(tensor.name))
        if match is None:
            raise _bad(str(p), f"tensor {str(tensor.name)[:60]!r} is not direction.N")
        layer = int(match.group(1))
        if layer == 0:
            raise InvalidError(
                "site", f"{p}: direction.0 has no meaning (llama.cpp adds direction.N after block N, N >= 1)"
            )
        if tensor.tensor_type != gguf.GGMLQuantizationType.F32 or len(tensor.shape) != 1:
            raise _bad(str(p), f"direction.{layer} is not a 1-D F32 tensor")
        site = Site("decoder", layer, "resid_post")
        if site in vectors:
            raise _bad(str(p), f"direction.{layer} appears twice")
        vectors[site] = np.array(tensor.data, dtype=np.float32)
    hint = _gguf_string(reader, "controlvector.model_hint")
    return Source(
        "repeng" if tool == "repeng" else "llamacpp",
        tool,
        _checked(str(p), vectors),
        hashlib.sha256(data).digest(),
        file=p.name,
        model_hint=hint,
    )


def read_steering_vectors(path: str | Path) -> Source:
    """The safetensors file ``mindvec export --format steering-vectors`` writes."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    p = Path(path)
    data = _read(p)
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, TypeError, AttributeError) as exc:
        raise _bad(str(p), f"it is not a readable safetensors file ({type(exc).__name__})") from None
    layer_type = metadata.get("layer_type", "decoder_block") if isinstance(metadata, dict) else None
    if layer_type not in LAYER_TYPES:
        raise InvalidError("site", f"{p}: steering-vectors layer_type {str(layer_type)[:40]!r} has no site")
    vectors: dict[Site, Any] = {}
    for key, values in tensors.items():
        if not re.fullmatch(r"0|[1-9][0-9]{0,3}", key):
            raise _bad(str(p), f"tensor {key[:60]!r} is not a layer index")
        vectors[Site("decoder", int(key), LAYER_TYPES[layer_type])] = values
    return Source(
        "steering-vectors",
        "steering-vectors",
        _checked(str(p), vectors),
        hashlib.sha256(data).digest(),
        p.name,
    )


def _number(path: str, item: Mapping[str, Any], key: str) -> float:
    value = item.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(path, f"{key!r} is not a finite number")
    return float(value)


def read_neuronpedia(path: str | Path) -> Source:
    """Neuronpedia-style JSON: one object, or a list of them (one per site)."""
    p = Path(path)
    data = _read(p)
    try:
        parsed = json.loads(data.decode("utf-8"), parse_constant=lambda c: _reject_constant(str(p), c))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _bad(str(p), f"it is not JSON ({type(exc).__name__})") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    vectors: dict[Site, Any] = {}
    strengths = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise _bad(str(p), "each entry must be an object with a 'values' list")
        hook = item.get("hook_name")
        if not isinstance(hook, str):
            raise _bad(str(p), "each entry needs a TransformerLens 'hook_name' string")
        site = from_transformer_lens(hook)
        if "layer_num" in item and _number(str(p), item, "layer_num") != int(hook.split(".")[1]):
            raise _bad(str(p), f"layer_num {item['layer_num']!r} disagrees with hook_name {hook!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in item["values"]):
            raise _bad(str(p), f"the values of {hook} are not all numbers")
        if site in vectors:
            raise _bad(str(p), f"{hook} appears twice")
        vectors[site] = np.array(item["values"], dtype=np.float64)
        strengths.add(
            _number(str(p), item, "default_steer_strength") if "default_steer_strength" in item else 1.0
        )
    if len(strengths) != 1:
        raise _bad(str(p), f"its entries have different default strengths {sorted(strengths)}")
    return Source(
        "neuronpedia",
        "neuronpedia",
        _checked(str(p), vectors),
        hashlib.sha256(data).digest(),
        file=p.name,
        strength=strengths.pop(),  # model_id is a Neuronpedia name, not a model_type: not a hint
    )


def _reject_constant(path: str, constant: str) -> float:
    raise _bad(path, f"it holds {constant}, which is not a number")


def from_repeng(vector: Any) -> Source:
    """A repeng ``ControlVector`` object (``directions[N]`` is added after block N)."""
    directions = getattr(vector, "directions", None)
    if not isinstance(directions, Mapping):
        raise UsageError("argument", "expected a repeng ControlVector (with a .directions dict)")
    vectors: dict[Site, Any] = {}
    for layer, values in directions.items():
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 1:
            raise InvalidError("site", f"repeng direction {layer!r}: layers are the block indices N >= 1")
        vectors[Site("decoder", layer, "resid_post")] = np.asarray(values, dtype=np.float64)
    checked = _checked("ControlVector", vectors)
    digest = hashlib.sha256(b"".join(v.tobytes() for v in checked.values())).digest()
    return Source(
        "repeng", "repeng", checked, digest, model_hint=str(getattr(vector, "model_type", "")) or None
    )


def from_steering_vectors(vector: Any) -> Source:
    """A steering-vectors ``SteeringVector`` object."""
    layers = getattr(vector, "layer_activations", None)
    layer_type = getattr(vector, "layer_type", "decoder_block")
    if not isinstance(layers, Mapping):
        raise UsageError("argument", "expected a steering-vectors SteeringVector (with .layer_activations)")
    if layer_type not in LAYER_TYPES:
        raise InvalidError("site", f"steering-vectors layer_type {layer_type!r} has no mindvec site")
    vectors = {
        Site("decoder", int(layer), LAYER_TYPES[layer_type]): np.asarray(
            values.detach().float().cpu().numpy() if hasattr(values, "detach") else values, dtype=np.float64
        )
        for layer, values in layers.items()
    }
    checked = _checked("SteeringVector", vectors)
    digest = hashlib.sha256(b"".join(v.tobytes() for v in checked.values())).digest()
    return Source("steering-vectors", "steering-vectors", checked, digest)


def read(path: str | Path, format: str) -> Source:  # noqa: A002 - the CLI's --format
    """Parse ``path`` as ``format`` (one of :data:`FORMATS`)."""
    if format in ("llamacpp", "repeng"):
        return read_gguf(path, tool="repeng" if format == "repeng" else "llama.cpp")
    if format == "steering-vectors":
        return read_steering_vectors(path)
    if format == "neuronpedia":
        return read_neuronpedia(path)
    raise UsageError("argument", f"unknown import format {format!r}; use one of {', '.join(FORMATS)}")
