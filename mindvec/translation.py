"""Translate a steering vector into another model's space with a cross-model map.

Pure numpy (no torch). The translated vector is ``W v`` (``scale·W v`` for an orthogonal
map with a scale, ``U Vᵀ v`` for ``low_rank``); bias and means never apply to a direction.

Recommended scale (the rule ``via=`` and ``translate`` share). With ``v`` the source
vector at the mapping's source site, ``s`` its default scale and ``n*`` the target norm of
:mod:`mindvec.calibration` (the size of the target's own vector for the concept, estimated
from the least-squares image of ``v`` and the map's held-out R²):

- ``norm_ratio = |W v| / n*`` (below 1: a regression map attenuates vectors);
- ``add``: ``recommended_scale = s / norm_ratio`` (and the recommended range is divided
  by ``norm_ratio``), so ``recommended_scale·|W v| = s·n*``;
- ``clamp`` (scale = target projection value): multiplied by ``n* / |v|``;
- ``project_out``: the scale is unused and kept.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mindvec._version import __version__
from mindvec.calibration import explained_share, target_norm
from mindvec.errors import InvalidError, UsageError
from mindvec.manifest import MappingSpec, ModelRef, VectorSpec
from mindvec.package import Package, PackageSource, Signer, write
from mindvec.package import open as open_package
from mindvec.payload import as_float32
from mindvec.policy import Policy, from_legacy
from mindvec.site import Site
from mindvec.verification import VerifyReport, checked


@dataclass(frozen=True)
class TranslatedVector:
    """A vector mapped into the target model: ``tensor = W v`` and its recommended scale."""

    name: str
    tensor: np.ndarray[Any, Any]  # float32 [d_out]
    operation: str
    scale: float  # recommended scale at the target
    scale_range: tuple[float, float]
    positions: str | int
    norm_ratio: float
    rule: str  # how n* was derived (mindvec.calibration.RULES)
    source_model: str
    source_site: Site
    target_model: str
    target_site: Site
    target_model_ref: dict[str, Any]
    source_model_ref: dict[str, Any]
    target_calibration: dict[str, Any]
    mapping: str
    vector_package: bytes  # identity (sha256 of manifest bytes)
    mapping_package: bytes


def _open(pkg: PackageSource) -> Package:
    """A Package as it is, or opened from a path *without* a policy (the numeric helpers)."""
    return pkg if isinstance(pkg, Package) else open_package(pkg)


def _f32(pkg: Package, name: str) -> np.ndarray[Any, Any]:
    info = pkg.tensor_info(name)
    return np.array(as_float32(pkg.tensor(name), info.dtype), dtype=np.float64)


def mapping_matrix(pkg: Package, spec: MappingSpec) -> np.ndarray[Any, Any]:
    """The full linear part W [d_out, d_in] of a mapping (float64)."""
    tensors = spec.tensors
    weight: np.ndarray[Any, Any]
    if spec.form == "low_rank":
        weight = _f32(pkg, tensors["u"]) @ _f32(pkg, tensors["v"]).T
    else:
        weight = _f32(pkg, tensors["weight"])
    if spec.form == "orthogonal" and spec.scale is not None:
        weight = weight * float(spec.scale)
    return weight


def translate_activations(
    mapping_pkg: PackageSource, activations: np.ndarray[Any, Any], *, mapping: str | None = None
) -> np.ndarray[Any, Any]:
    """Map source activations ``[..., d_in]`` into the target space (spec [R-36]).

    ``W (a − source_mean) + target_mean`` when the mapping stores means, ``W a + bias`` when
    it stores a bias, else ``W a``; ``W`` is the full linear part (:func:`mapping_matrix`).
    Unlike a direction, an activation keeps the offsets. Computed in float64.
    """
    mpkg = _open(mapping_pkg)
    spec = mpkg.mapping(mapping)
    weight = mapping_matrix(mpkg, spec)
    a = np.asarray(activations, dtype=np.float64)
    if a.shape[-1:] != weight.shape[1:]:
        raise UsageError(
            "argument",
            f"activations end in size {a.shape[-1] if a.ndim else 0}, but mapping {spec.name!r} "
            f"takes {weight.shape[1]}-wide inputs from model {spec.source_model!r}",
        )
    tensors = spec.tensors
    out: np.ndarray[Any, Any]
    if "source_mean" in tensors:
        out = (a - _f32(mpkg, tensors["source_mean"])) @ weight.T + _f32(mpkg, tensors["target_mean"])
    else:
        out = a @ weight.T
        if "bias" in tensors:
            out = out + _f32(mpkg, tensors["bias"])
    return out


def _same_model(a: ModelRef, b: ModelRef) -> list[str]:
    diffs = []
    for key in ("model_type", "hidden_size", "num_layers", "num_encoder_layers", "config_sha256"):
        va, vb = getattr(a, key), getattr(b, key)
        if key == "config_sha256" and (va is None or vb is None):
            continue
        if va != vb:
            diffs.append(f"{key} ({va!r} vs {vb!r})")
    return diffs


def _pick_mapping(mpkg: Package, vspec: VectorSpec, mapping: str | None) -> MappingSpec:
    if mapping is not None:
        return mpkg.mapping(mapping)
    maps = mpkg.mappings()
    if len(maps) == 1:
        return maps[0]
    sites = {vs.site for vs in vspec.sites}
    matching = [m for m in maps if m.source_site in sites]
    if len(matching) == 1:
        return matching[0]
    names = [m.name for m in (matching or maps)]
    raise UsageError(
        "argument",
        f"the mapping package has {len(maps)} mappings and {len(matching)} match the sites of vector "
        f"{vspec.name!r}; choose one with mapping=NAME (one of {names})",
    )


def translate_vector(
    vector_pkg: PackageSource,
    mapping_pkg: PackageSource,
    *,
    vector: str | None = None,
    mapping: str | None = None,
) -> TranslatedVector:
    """Map one vector (by name, or the only one) through one mapping: ``W v`` + recommended scale.

    Pure arithmetic: it applies no policy (:func:`translate` and ``steer(via=...)`` do).
    """
    vpkg, mpkg = _open(vector_pkg), _open(mapping_pkg)
    vspec = vpkg.vector(vector)
    mspec = _pick_mapping(mpkg, vspec, mapping)
    diffs = _same_model(vpkg.model(vspec.model), mpkg.model(mspec.source_model))
    if diffs:
        raise InvalidError(
            "model-mismatch",
            f"mapping {mspec.name!r} maps from a different model than vector {vspec.name!r} was made for: "
            + ", ".join(diffs)
            + "; use a mapping fitted from the vector's model",
        )
    vsite = next((vs for vs in vspec.sites if vs.site == mspec.source_site), None)
    if vsite is None:
        raise InvalidError(
            "site",
            f"mapping {mspec.name!r} reads site {mspec.source_site} but vector {vspec.name!r} has sites "
            f"{[str(vs.site) for vs in vspec.sites]}; use a mapping from one of those sites",
        )
    v = _f32(vpkg, vsite.tensor)
    weight = mapping_matrix(mpkg, mspec)
    w = weight @ v
    w_norm = float(np.linalg.norm(w))
    if not np.isfinite(w_norm) or w_norm == 0.0:
        raise InvalidError("value", f"W v is zero or not finite for vector {vspec.name!r}; the map loses it")
    cov_name = mspec.tensors.get("source_covariance")
    n_star = target_norm(
        weight,
        v,
        mspec.shrinkage,
        None if cov_name is None else _f32(mpkg, cov_name),
        explained_share(mspec.form, mspec.metrics),
    )
    if not np.isfinite(n_star.value) or n_star.value <= 0.0:
        raise InvalidError("value", f"the target norm of vector {vspec.name!r} is zero or not finite")
    ratio = w_norm / n_star.value
    gain = n_star.value / float(np.linalg.norm(v))
    factor = {"add": 1.0 / ratio, "clamp": gain}.get(vspec.operation, 1.0)
    lo, hi = vspec.scale_range
    return TranslatedVector(
        name=vspec.name,
        tensor=w.astype(np.float32),
        operation=vspec.operation,
        scale=float(vspec.scale) * factor,
        scale_range=(float(lo) * factor, float(hi) * factor),
        positions=vspec.positions,
        norm_ratio=ratio,
        rule=n_star.rule,
        source_model=vspec.model,
        source_site=vsite.site,
        target_model=mspec.target_model,
        target_site=mspec.target_site,
        target_model_ref=dict(mpkg.manifest["models"][mspec.target_model]),
        source_model_ref=dict(vpkg.manifest["models"][vspec.model]),
        target_calibration=dict(mspec.target_calibration),
        mapping=mspec.name,
        vector_package=vpkg.identity,
        mapping_package=mpkg.identity,
    )


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def translated_manifest(
    tv: TranslatedVector, vpkg: Package, mpkg: Package, *, created: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, tensors) of the package :func:`translate` writes."""
    src = vpkg.manifest["package"]
    site = tv.target_site.to_dict()
    tensor = f"{tv.name}/{tv.target_site}"
    model_type = str(tv.target_model_ref["model_type"])
    provenance = vpkg.manifest["provenance"]
    # the source model stays in `models` (translation.source_model names it)
    models = {tv.target_model: tv.target_model_ref}
    source_name = tv.source_model
    if source_name in models and models[source_name] != tv.source_model_ref:
        source_name = f"{source_name}-source"[:64]
    models[source_name] = tv.source_model_ref
    manifest: dict[str, Any] = {
        "package": {
            "id": f"{src['id']}/translated-{model_type}"[:128],
            "version": src["version"],
            "name": f"{src['name']} (translated to {tv.target_model})"[:256],
            "description": (
                f"{src['description']}\n\nTranslated into model {tv.target_model!r} ({model_type}) "
                f"with mapping {tv.mapping!r}."
            )[:8192],
            "intended_effect": src["intended_effect"],
        },
        "models": models,
        "vectors": [
            {
                "name": tv.name,
                "model": tv.target_model,
                "operation": tv.operation,
                "scale": tv.scale,
                "scale_range": [tv.scale_range[0], tv.scale_range[1]],
                "positions": tv.positions,
                "sites": [{"site": site, "tensor": tensor, "calibration": tv.target_calibration}],
                "method": {"kind": "translated"},
                "translation": {
                    "source_model": source_name,
                    "mapping": tv.mapping,
                    "mapping_package": tv.mapping_package,
                    "norm_ratio": tv.norm_ratio,
                    "recommended_scale": tv.scale,
                    "rule": tv.rule,
                },
            }
        ],
        "provenance": {
            "creator": provenance["creator"],
            "created": created or _now(),
            "tool": {"name": "mindvec", "version": __version__},
            "license": provenance["license"],
            "parents": [
                {"id": tv.vector_package, "package_id": src["id"], "role": "vector"},
                {"id": tv.mapping_package, "package_id": mpkg.manifest["package"]["id"], "role": "mapping"},
            ],
        },
    }
    return manifest, {tensor: tv.tensor}


def translate(
    vector_package: PackageSource,
    mapping_package: PackageSource,
    out_path: str | os.PathLike[str],
    *,
    vector: str | None = None,
    mapping: str | None = None,
    signers: Iterable[Signer] = (),
    created: str | None = None,
    policy: Policy | None = None,
    **legacy: Any,
) -> Path:
    """Write a package holding the vector translated into the mapping's target model.

    Both inputs must pass ``policy`` first (default: signed by a trusted key), exactly as
    ``steer`` requires: signing the output must never launder an input nobody vouched for.
    Its provenance ``parents`` name both inputs by identity (sha256 of manifest bytes); the
    vector carries ``translation`` metadata (source model, mapping, mapping package,
    norm_ratio, recommended_scale), computed by :func:`translate_vector`.
    """
    accepted = from_legacy(policy, legacy, "translate")
    with contextlib.ExitStack() as opened:
        vpkg, vreport = opened.enter_context(checked(vector_package, accepted))
        mpkg, mreport = opened.enter_context(checked(mapping_package, accepted))
        tv = translate_vector(vpkg, mpkg, vector=vector, mapping=mapping)
        manifest, tensors = translated_manifest(tv, vpkg, mpkg, created=created)
        manifest["provenance"]["inputs"] = {"vector": _record(vreport), "mapping": _record(mreport)}
        return write(out_path, manifest, tensors, signers=signers)


#: the 1.0 extension that 1.1's ``provenance.inputs`` replaced; read back from 1.0 packages
INPUTS_EXTENSION = "dev.mindvec.inputs"


def inputs_record(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """How each input of a translated package verified: ``provenance.inputs`` (1.1) or the 1.0
    extension ``dev.mindvec.inputs``."""
    record = manifest["provenance"].get("inputs")
    if record is None:
        record = manifest.get("extensions", {}).get(INPUTS_EXTENSION)
    return dict(record) if isinstance(record, Mapping) else None


def _record(report: VerifyReport) -> dict[str, Any]:
    """An input's identity, verdict and trusted signer key ids, as the translator saw them."""
    assert report.identity is not None
    signers = sorted(bytes.fromhex(r.keyid) for r in report.signatures if r.trusted)
    return {"identity": bytes.fromhex(report.identity), "verdict": report.verdict, "signers": signers}
