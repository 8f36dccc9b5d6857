"""Manifests and packages the cases start from, written by the project's writer."""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import mindvec
from conformance_tests.craft.constants import CREATED, PACKAGE_FILE
from conformance_tests.craft.keys import KEYS
from conformance_tests.craft.surgery import Parts, packb_sorted, sigblock, split, split_payload
from mindvec.payload import TensorData


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


MODEL_A = {
    "model_type": "llama",
    "architecture": "LlamaForCausalLM",
    "hidden_size": 4,
    "num_layers": 2,
    "source": {
        "kind": "hf",
        "repo": "conformance/tiny-llama",
        "revision": "0123456789abcdef0123456789abcdef01234567",
    },
}
MODEL_B = {
    "model_type": "gemma3_text",
    "hidden_size": 3,
    "num_layers": 3,
    "config_sha256": sha("tiny gemma config"),
    "source": {
        "kind": "gguf",
        "file_sha256": sha("tiny gemma gguf"),
        "quantization": "F16",
        "file_name": "tiny.gguf",
    },
}
MODEL_T5 = {
    "model_type": "t5",
    "hidden_size": 4,
    "num_layers": 2,
    "num_encoder_layers": 2,
    "source": {"kind": "local", "note": "a tiny encoder-decoder for the conformance suite"},
}
DATASET = {"name": "conformance pairs", "sha256": sha("conformance dataset"), "samples": 64}
CALIBRATION = {"mean_norm": 12.5, "tokens": 256}
METRICS = {"centered_cosine": 0.75, "raw_cosine": 0.875, "r2": 0.5}


def package_info(package_id: str = "conformance/minimal", version: int = 1, **extra: Any) -> dict[str, Any]:
    info = {
        "id": package_id,
        "version": version,
        "name": "Conformance package",
        "description": "A small package from the mindvec conformance suite.",
        "intended_effect": "None: it exists to test readers.",
    }
    info.update(extra)
    return info


def provenance(**extra: Any) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "creator": "mindvec conformance suite",
        "created": CREATED,
        "tool": {"name": "conformance_tests.generate", "version": "1.0"},
        "license": "CC0-1.0",
    }
    prov.update(extra)
    return prov


def site(layer: int, point: str = "resid_post", stack: str = "decoder") -> dict[str, Any]:
    return {"stack": stack, "layer": layer, "point": point}


def vector(
    name: str = "steer",
    model: str = "a",
    operation: str = "add",
    sites: Sequence[tuple[dict[str, Any], str]] = ((site(1), "steer.l1"),),
    **extra: Any,
) -> dict[str, Any]:
    vec: dict[str, Any] = {
        "name": name,
        "model": model,
        "operation": operation,
        "scale": 4.0,
        "scale_range": [0.0, 8.0],
        "positions": "all",
        "sites": [{"site": s, "tensor": t, "calibration": dict(CALIBRATION)} for s, t in sites],
        "method": {"kind": "manual"},
    }
    vec.update(extra)
    return vec


def mapping(form: str, tensors: dict[str, str], name: str = "a-to-b", **extra: Any) -> dict[str, Any]:
    mp: dict[str, Any] = {
        "name": name,
        "source": {"model": "a", "site": site(1)},
        "target": {"model": "b", "site": site(2)},
        "form": form,
        "tensors": tensors,
        "fit": {
            "method": "ridge",
            "hyperparameters": {"alpha": 0.5},
            "dataset": dict(DATASET),
            "pairing": "chunk",
        },
        "metrics": {
            "held_out": dict(METRICS),
            "baselines": {"shuffled": {"centered_cosine": 0.0, "raw_cosine": 0.5, "r2": -0.25}},
            "train_samples": 48,
            "test_samples": 16,
        },
        "target_calibration": dict(CALIBRATION),
    }
    mp.update(extra)
    return mp


def manifest(
    vectors: Sequence[dict[str, Any]] | None = None,
    models: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    man: dict[str, Any] = {
        "package": package_info(),
        "models": copy.deepcopy(models) if models is not None else {"a": copy.deepcopy(MODEL_A)},
        "provenance": provenance(),
    }
    man["vectors"] = list(vectors) if vectors is not None else [vector()]
    if not man["vectors"]:
        del man["vectors"]
    man.update(extra)
    return man


STEER = np.array([0.5, -1.0, 2.0, 0.25])


def arr(values: Any, dtype: str = "float32") -> np.ndarray[Any, Any]:
    return np.asarray(values, dtype=dtype)


def bf16(values: Any) -> TensorData:
    bits = (np.asarray(values, dtype="<f4").view("<u4") >> 16).astype("<u2")
    return TensorData.bf16(bits)


def write(man: dict[str, Any], tensors: dict[str, Any], signers: Sequence[str] = ()) -> bytes:
    """A package from the project's writer, as bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PACKAGE_FILE
        mindvec.write(path, man, tensors, signers=[KEYS[name] for name in signers])
        data = path.read_bytes()
    assert split(data).build() == data
    return data


def minimal(signers: Sequence[str] = (), **info: Any) -> bytes:
    man = manifest()
    if info:
        man["package"] = package_info(**info)
    return write(man, {"steer.l1": arr(STEER)}, signers)


def header_json(entries: Sequence[tuple[str, Any]]) -> bytes:
    """A safetensors JSON header from (key, value) pairs, in order (duplicates allowed)."""
    body = ",".join(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":")) for k, v in entries)
    return ("{" + body + "}").encode()


def tolerant_digests(payload: bytes) -> dict[str, bytes]:
    """sha256 of each tensor's bytes, for whatever offsets the header claims."""
    header, data = split_payload(payload)
    digests: dict[str, bytes] = {}
    try:
        parsed = json.loads(header)
    except ValueError:
        return digests
    if not isinstance(parsed, dict):
        return digests
    for name, info in parsed.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        offsets = info.get("data_offsets")
        chunk = b""
        if isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
            if offsets[0] <= offsets[1] <= len(data):
                chunk = data[offsets[0] : offsets[1]]
        digests[name] = hashlib.sha256(chunk).digest()
    return digests


def raw_package(
    man: dict[str, Any],
    tensors: dict[str, Any] | None = None,
    *,
    payload: bytes | None = None,
    signers: Sequence[str] = (),
    version: tuple[int, int] = (1, 0),
    digests: dict[str, bytes] | None = None,
) -> bytes:
    """What the writer would produce, without its validation: for packages it must refuse.

    The payload comes from the project's payload builder (``mindvec.payload.build_payload``)
    unless ``payload`` is given; ``format`` and the payload digests are filled in.
    """
    from mindvec.payload import build_payload, to_tensor_data

    if payload is None:
        assert tensors is not None
        payload = build_payload({name: to_tensor_data(value) for name, value in tensors.items()})
    header, _ = split_payload(payload)
    out = copy.deepcopy(man)
    out.setdefault("format", f"{version[0]}.{version[1]}")
    out["payload"] = {
        "header_sha256": hashlib.sha256(header).digest(),
        "tensors": digests if digests is not None else tolerant_digests(payload),
    }
    manifest_bytes = packb_sorted(out)
    return Parts(
        manifest_bytes, payload, sigblock(manifest_bytes, signers), major=version[0], minor=version[1]
    ).build()
