"""Shared fixtures for building small packages in tests (any test module may import these).

``minimal_manifest()`` is the smallest valid manifest (one model, no tensors);
``vector_manifest()`` and ``mapping_manifest()`` add one vector or one mapping;
``small_package(tmp_path)`` writes a package with both and returns its path.
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from mindvec import canonical, container, package
from mindvec import payload as payload_mod

ZERO_SHA = bytes(32)
CREATED = "2026-01-01T00:00:00Z"


def model_entry(
    hidden_size: int = 8, num_layers: int = 4, model_type: str = "llama", **extra: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_type": model_type,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "source": {"kind": "local", "note": "test model"},
    }
    entry.update(extra)
    return entry


def site(layer: int = 1, point: str = "resid_post", stack: str = "decoder") -> dict[str, Any]:
    return {"layer": layer, "point": point, "stack": stack}


def minimal_manifest(**models: dict[str, Any]) -> dict[str, Any]:
    """A valid manifest without ``format``/``payload`` (the writer fills them)."""
    return {
        "package": {
            "id": "test/minimal",
            "version": 1,
            "name": "minimal",
            "description": "a test package",
            "intended_effect": "none; used by tests",
        },
        "models": models or {"m": model_entry()},
        "provenance": {
            "creator": "tests",
            "created": CREATED,
            "tool": {"name": "mindvec", "version": "0.1.0"},
            "license": "Apache-2.0",
        },
    }


def vector_entry(
    name: str = "v", model: str = "m", layers: tuple[int, ...] = (1,), prefix: str | None = None
) -> dict[str, Any]:
    prefix = prefix or f"{name}"
    return {
        "name": name,
        "model": model,
        "operation": "add",
        "scale": 4.0,
        "scale_range": [0.0, 8.0],
        "positions": "all",
        "sites": [
            {
                "site": site(layer),
                "tensor": f"{prefix}.{layer}",
                "calibration": {"mean_norm": 12.5, "tokens": 100},
            }
            for layer in layers
        ],
        "method": {"kind": "mean_diff", "params": {"pairs": 16}},
    }


def metric_set(value: float = 0.5) -> dict[str, float]:
    return {"centered_cosine": value, "raw_cosine": value, "r2": value}


def mapping_entry(
    name: str = "map",
    source: str = "src",
    target: str = "tgt",
    form: str = "affine",
    tensors: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"model": source, "site": site(1)},
        "target": {"model": target, "site": site(2)},
        "form": form,
        "tensors": tensors or {"weight": f"{name}.weight", "bias": f"{name}.bias"},
        "fit": {
            "method": "ridge",
            "hyperparameters": {"alpha": 1.0},
            "dataset": {"name": "corpus", "sha256": ZERO_SHA, "samples": 1000},
            "pairing": "aligned",
        },
        "metrics": {
            "held_out": metric_set(0.8),
            "baselines": {"shuffled": metric_set(0.1), "mean": metric_set(0.0)},
            "train_samples": 800,
            "test_samples": 200,
        },
        "target_calibration": {"mean_norm": 30.0, "tokens": 1000},
    }


def vector_manifest(hidden: int = 8, layers: tuple[int, ...] = (1,)) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, tensors) with one vector on model ``m``."""
    manifest = minimal_manifest(m=model_entry(hidden_size=hidden))
    manifest["vectors"] = [vector_entry(layers=layers)]
    rng = np.random.default_rng(0)
    tensors = {f"v.{layer}": rng.standard_normal(hidden).astype(np.float32) for layer in layers}
    return manifest, tensors


def mapping_manifest(d_in: int = 6, d_out: int = 4) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, tensors) with one affine mapping src -> tgt."""
    manifest = minimal_manifest(src=model_entry(hidden_size=d_in), tgt=model_entry(hidden_size=d_out))
    manifest["mappings"] = [mapping_entry()]
    rng = np.random.default_rng(1)
    tensors = {
        "map.weight": rng.standard_normal((d_out, d_in)).astype(np.float32),
        "map.bias": rng.standard_normal(d_out).astype(np.float32),
    }
    return manifest, tensors


def full_manifest() -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, tensors) with a vector, a mapping and a correspondence."""
    manifest = minimal_manifest(
        src=model_entry(hidden_size=6), tgt=model_entry(hidden_size=4), m=model_entry(hidden_size=8)
    )
    vec_manifest, vec_tensors = vector_manifest()
    map_manifest, map_tensors = mapping_manifest()
    manifest["vectors"] = vec_manifest["vectors"]
    manifest["mappings"] = map_manifest["mappings"]
    manifest["correspondences"] = [
        {
            "source": {"model": "src", "site": site(1)},
            "target": {"model": "tgt", "site": site(2)},
            "score": 0.9,
            "metric": "linear_cka",
        }
    ]
    return manifest, {**vec_tensors, **map_tensors}


def small_package(tmp_path: Path, name: str = "small.mindvec", *, signers: Any = ()) -> Path:
    """Write the :func:`full_manifest` package under ``tmp_path`` and return its path."""
    manifest, tensors = full_manifest()
    return package.write(tmp_path / name, manifest, tensors, signers=signers)


def tiny_package(tmp_path: Path, name: str = "tiny.mindvec") -> Path:
    """The smallest package with a tensor: one 2-dim vector (for byte-by-byte tests)."""
    manifest = minimal_manifest(m=model_entry(hidden_size=2, num_layers=1))
    manifest["package"]["description"] = "d"
    manifest["package"]["intended_effect"] = "e"
    entry = vector_entry(layers=(0,))
    manifest["vectors"] = [entry]
    return package.write(tmp_path / name, manifest, {"v.0": np.array([1.0, -2.0], dtype=np.float32)})


def clone(obj: Any) -> Any:
    return copy.deepcopy(obj)


# ---------------------------------------------------------------- crafting invalid files
# The writer refuses anything the reader rejects, so tests that need a bad file build
# the bytes here, with the same pieces the writer uses but without its checks.


def pad_header(header: bytes | str) -> bytes:
    """A safetensors header padded with spaces to N = 56 (mod 64), with its u64 prefix."""
    raw = header.encode() if isinstance(header, str) else header
    size = (len(raw) + 8 + 63) // 64 * 64 - 8
    return struct.pack("<Q", size) + raw + b" " * (size - len(raw))


def raw_payload(header: Any, data: bytes = b"") -> bytes:
    """A payload from a header (dict -> compact JSON, or exact text/bytes) and data bytes."""
    text = json.dumps(header, separators=(",", ":")) if isinstance(header, dict) else header
    return pad_header(text) + data


def fill_payload(manifest: dict[str, Any], payload: bytes) -> dict[str, Any]:
    """Add format and payload digests computed from raw payload bytes (no parsing checks)."""
    (size,) = struct.unpack_from("<Q", payload)
    header_bytes = payload[8 : 8 + size]
    full = clone(manifest)
    full.setdefault("format", "1.0")
    digests: dict[str, bytes] = {}
    try:
        header = json.loads(header_bytes)
        data = payload[8 + size :]
        for name, entry in header.items():
            if isinstance(entry, dict) and "data_offsets" in entry:
                begin, end = entry["data_offsets"]
                digests[name] = hashlib.sha256(data[begin:end]).digest()
    except (ValueError, TypeError, AttributeError):
        pass
    full["payload"] = {"header_sha256": hashlib.sha256(header_bytes).digest(), "tensors": digests}
    return full


def assemble(
    manifest_bytes: bytes,
    payload: bytes,
    signature_block: bytes = b"\x90",
    *,
    version: tuple[int, int] = (1, 0),
) -> bytes:
    """A whole file from its sections, exactly as given."""
    chunks = container.container_chunks(manifest_bytes, payload, signature_block)
    chunks[0] = container.encode_preamble(len(manifest_bytes), len(payload), version)
    return b"".join(chunks)


def unchecked_package(
    manifest: dict[str, Any], tensors: dict[str, Any], *, version: tuple[int, int] = (1, 0)
) -> bytes:
    """The bytes the writer would produce, without any validation (for invalid content)."""
    data = {name: payload_mod.to_tensor_data(value) for name, value in tensors.items()}
    payload = payload_mod.build_payload(data)
    full = clone(manifest)
    full.setdefault("format", f"{version[0]}.{version[1]}")
    if "payload" not in full:
        full = fill_payload(full, payload)
    return assemble(canonical.encode(full), payload, version=version)


def write_bytes(tmp_path: Path, data: bytes, name: str = "crafted.mindvec") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
