"""``export``: a verified package's vector in the formats other tools read.

The package goes through the same policy as ``steer`` first (a bad signature always refuses;
unsigned or untrusted only with the caller's opt-in). Tensors hold ``scale × vector`` in
float32, so applying the file at strength 1 reproduces the package's default. Formats:

- ``llamacpp``: a control vector GGUF (``direction.N`` = ``resid_post`` of layer N, N >= 1),
  written with the ``gguf`` library; ``llama-cli --control-vector FILE`` reads it, and so does
  repeng's ``ControlVector.import_gguf``. Metadata keys ``mindvec.*`` record the scale, the
  package id, version and identity, and the verdict with its signer key ids (llama.cpp ignores them).
- ``steering-vectors``: safetensors with one tensor per layer (key ``"<layer>"``) and the
  ``layer_type`` in the metadata; the README gives the two-line loader.
- ``neuronpedia``: JSON, one object per site (``values``, ``hook_name``, ``default_steer_strength``,
  ``model_id``, ``layer_num``), a list when there are several.

Only ``add`` vectors at ``all`` positions are expressible in these tools; anything else, and
any site a format has no name for (:mod:`mindvec.interop.names`), is error ``site``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mindvec._fs import atomic_path, atomic_write
from mindvec.errors import InvalidError, UsageError
from mindvec.interop.names import llamacpp_layer, steering_vectors_layer_type, transformer_lens
from mindvec.manifest import VectorSpec
from mindvec.package import Package
from mindvec.payload import as_float32
from mindvec.policy import Policy
from mindvec.verification import VerifyReport, checked

FORMATS = ("llamacpp", "steering-vectors", "neuronpedia")


@dataclass(frozen=True)
class Layer:
    """One exported site: its mindvec site, the format's layer index, and ``scale × tensor``."""

    site: Any
    index: int
    values: np.ndarray[Any, np.dtype[np.float32]]


def _vector(pkg: Package, name: str | None, model: str | None) -> VectorSpec:
    vectors = [v for v in pkg.vectors() if model is None or v.model == model]
    if name is not None:
        vectors = [v for v in vectors if v.name == name]
    if len(vectors) != 1:
        names = ", ".join(f"{v.name} ({v.model})" for v in pkg.vectors())
        raise UsageError(
            "argument", f"the package holds {names or 'no vectors'}; choose one with --vector (and --model)"
        )
    spec = vectors[0]
    if spec.operation != "add" or spec.positions != "all":
        raise InvalidError(
            "site",
            f"vector {spec.name!r} is {spec.operation} at positions {spec.positions!r}; these tools add a"
            " vector at every position, so only add at positions 'all' can be exported",
        )
    return spec


def _layers(pkg: Package, spec: VectorSpec, fmt: str, layers: Sequence[int] | None) -> list[Layer]:
    model_type = pkg.models()[spec.model].model_type
    chosen = [s for s in spec.sites if layers is None or s.site.layer in layers]
    if layers is not None and {s.site.layer for s in chosen} != set(layers):
        have = sorted(s.site.layer for s in spec.sites)
        raise UsageError("argument", f"--layers {sorted(layers)}: the vector has layers {have}")
    out = []
    for entry in chosen:
        if fmt == "llamacpp":
            index = llamacpp_layer(entry.site)
        elif fmt == "steering-vectors":
            steering_vectors_layer_type(entry.site, model_type)
            index = entry.site.layer
        else:
            if transformer_lens(entry.site) is None:
                raise InvalidError("site", f"{entry.site}: Neuronpedia has no hook name for this site")
            index = entry.site.layer
        info = pkg.tensor_info(entry.tensor)
        values = as_float32(np.asarray(pkg.tensor(entry.tensor)), info.dtype) * np.float32(spec.scale)
        out.append(Layer(entry.site, index, values.astype(np.float32)))
    if not out:
        raise UsageError("argument", "nothing to export: no site of the vector is selected")
    return out


def _signers(report: VerifyReport) -> list[str]:
    return sorted(r.keyid for r in report.signatures if r.trusted)


def _gguf(out: Path, pkg: Package, spec: VectorSpec, layers: list[Layer], report: VerifyReport) -> None:
    import gguf

    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), "controlvector")
        writer.add_string("controlvector.model_hint", pkg.models()[spec.model].model_type)
        writer.add_uint32("controlvector.layer_count", len(layers))
        writer.add_float32("mindvec.scale", float(spec.scale))
        writer.add_string("mindvec.package_id", str(pkg.manifest["package"]["id"]))
        writer.add_uint64("mindvec.package_version", int(pkg.manifest["package"]["version"]))
        writer.add_string("mindvec.identity", pkg.identity.hex())
        writer.add_string("mindvec.vector", spec.name)
        writer.add_string("mindvec.verdict", "verified" if report.error is None else report.error.code)
        writer.add_string("mindvec.signers", ",".join(_signers(report)))
        for layer in sorted(layers, key=lambda x: x.index):
            writer.add_tensor(f"direction.{layer.index}", layer.values)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()


def _safetensors(out: Path, pkg: Package, spec: VectorSpec, layers: list[Layer]) -> None:
    from safetensors.numpy import save

    model_type = pkg.models()[spec.model].model_type
    layer_type = steering_vectors_layer_type(layers[0].site, model_type)
    if any(steering_vectors_layer_type(x.site, model_type) != layer_type for x in layers):
        raise InvalidError("site", "a SteeringVector has one layer_type; export sites of one point at a time")
    data = save(
        {str(x.index): x.values for x in layers},
        metadata={
            "layer_type": layer_type,
            "mindvec.identity": pkg.identity.hex(),
            "mindvec.vector": spec.name,
        },
    )
    atomic_write(out, data)


def _neuronpedia(out: Path, pkg: Package, spec: VectorSpec, layers: list[Layer]) -> None:
    ref = pkg.models()[spec.model]
    items = [
        {
            "values": [float(v) for v in x.values],
            "hook_name": transformer_lens(x.site),
            "default_steer_strength": 1.0,
            "model_id": ref.model_type,
            "layer_num": int(x.site.layer),
            "mindvec_identity": pkg.identity.hex(),
        }
        for x in layers
    ]
    text = json.dumps(items[0] if len(items) == 1 else items, indent=1)
    atomic_write(out, (text + "\n").encode())


def export(
    source: Package | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    format: str,  # noqa: A002 - the CLI's --format
    policy: Policy | None = None,
    vector: str | None = None,
    model: str | None = None,
    layers: Sequence[int] | None = None,
) -> Path:
    """Write ``source``'s vector to ``out`` in ``format`` (see module doc); returns ``out``."""
    if format not in FORMATS:
        raise UsageError("argument", f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    target = Path(out)
    with checked(source, policy or Policy()) as (pkg, report):
        spec = _vector(pkg, vector, model)
        chosen = _layers(pkg, spec, format, layers)
        if format == "llamacpp":
            _gguf(target, pkg, spec, chosen, report)
        elif format == "steering-vectors":
            _safetensors(target, pkg, spec, chosen)
        else:
            _neuronpedia(target, pkg, spec, chosen)
    return target
