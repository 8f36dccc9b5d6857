"""The manifest: typed views, and the rules beyond the JSON Schema.

Validation runs in two stages, in the fixed check order of the spec:

1. :func:`validate` — the JSON Schema (:mod:`mindvec.schema`), then the rules a schema
   cannot express, in this order: format vs preamble version, critical extensions, model
   references, unique names, sites, mapping forms, scale ranges, and which tensors the
   manifest names.
2. :func:`check_header` — once the safetensors header is parsed: the same tensor
   names on both sides, and shapes consistent with the models' hidden sizes.

The dataclasses (:class:`ModelRef`, :class:`VectorSpec`, :class:`MappingSpec`) are
read-only typed views for the loader, fit and CLI; sites are :class:`mindvec.site.Site`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mindvec.errors import InvalidError, MalformedError
from mindvec.features import check_declared
from mindvec.limits import FORMAT_VERSION
from mindvec.schema import validate_schema
from mindvec.site import Site
from mindvec.text import escape

__all__ = [
    "FORMAT_VERSION",
    "FORMS",
    "SCALED_FORMS",
    "UNDERSTOOD_EXTENSIONS",
    "MappingSpec",
    "ModelRef",
    "VectorSite",
    "VectorSpec",
    "check_semantics",
    "check_site",
    "mappings",
    "models",
    "referenced_tensors",
    "validate",
    "vectors",
]

#: extensions this implementation understands (a critical one outside it is rejected)
UNDERSTOOD_EXTENSIONS: frozenset[str] = frozenset()

#: mapping form -> the allowed sets of tensor roles
FORMS: dict[str, tuple[frozenset[str], ...]] = {
    "linear": (frozenset({"weight"}),),
    "affine": (frozenset({"weight", "bias"}), frozenset({"weight", "source_mean", "target_mean"})),
    "orthogonal": (frozenset({"weight"}), frozenset({"weight", "source_mean", "target_mean"})),
    "low_rank": (
        frozenset({"u", "v"}),
        frozenset({"u", "v", "bias"}),
        frozenset({"u", "v", "source_mean", "target_mean"}),
    ),
}
#: tensor roles any form may add (1.1): statistics of the fit, not part of the map's equation
STATISTICS_ROLES = frozenset({"source_covariance"})
#: forms that may carry a separate scalar ``scale``
SCALED_FORMS = frozenset({"orthogonal"})

# ---------------------------------------------------------------- typed views


@dataclass(frozen=True)
class ModelRef:
    """A model binding from ``models``."""

    name: str
    model_type: str
    hidden_size: int
    num_layers: int
    source: dict[str, Any]
    architecture: str | None = None
    num_encoder_layers: int | None = None
    config_sha256: bytes | None = None

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ModelRef:
        return cls(
            name=name,
            model_type=data["model_type"],
            hidden_size=data["hidden_size"],
            num_layers=data["num_layers"],
            source=dict(data["source"]),
            architecture=data.get("architecture"),
            num_encoder_layers=data.get("num_encoder_layers"),
            config_sha256=data.get("config_sha256"),
        )

    def layers(self, stack: str) -> int | None:
        """Number of blocks in ``stack``, or None when the model has no such stack."""
        return self.num_encoder_layers if stack == "encoder" else self.num_layers


@dataclass(frozen=True)
class VectorSite:
    site: Site
    tensor: str
    mean_norm: float
    tokens: int


@dataclass(frozen=True)
class VectorSpec:
    """A steering vector: one tensor per site it acts on."""

    name: str
    model: str
    operation: str
    scale: float
    scale_range: tuple[float, float]
    positions: str | int
    sites: tuple[VectorSite, ...]
    method: dict[str, Any]
    translation: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VectorSpec:
        sites = tuple(
            VectorSite(
                site=Site.from_dict(s["site"]),
                tensor=s["tensor"],
                mean_norm=s["calibration"]["mean_norm"],
                tokens=s["calibration"]["tokens"],
            )
            for s in data["sites"]
        )
        low, high = data["scale_range"]
        return cls(
            name=data["name"],
            model=data["model"],
            operation=data["operation"],
            scale=data["scale"],
            scale_range=(low, high),
            positions=data["positions"],
            sites=sites,
            method=dict(data["method"]),
            translation=dict(data["translation"]) if "translation" in data else None,
        )

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(s.site.layer for s in self.sites)


@dataclass(frozen=True)
class MappingSpec:
    """A cross-model map from a source site to a target site."""

    name: str
    source_model: str
    source_site: Site
    target_model: str
    target_site: Site
    form: str
    tensors: dict[str, str]
    fit: dict[str, Any]
    metrics: dict[str, Any]
    target_calibration: dict[str, Any]
    scale: float | None = None
    shrinkage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MappingSpec:
        known = {
            "name",
            "source",
            "target",
            "form",
            "tensors",
            "fit",
            "metrics",
            "target_calibration",
            "scale",
            "shrinkage",
        }
        return cls(
            name=data["name"],
            source_model=data["source"]["model"],
            source_site=Site.from_dict(data["source"]["site"]),
            target_model=data["target"]["model"],
            target_site=Site.from_dict(data["target"]["site"]),
            form=data["form"],
            tensors=dict(data["tensors"]),
            fit=dict(data["fit"]),
            metrics=dict(data["metrics"]),
            target_calibration=dict(data["target_calibration"]),
            scale=data.get("scale"),
            shrinkage=dict(data["shrinkage"]) if "shrinkage" in data else None,
            extra={k: v for k, v in data.items() if k not in known},
        )


def models(manifest: Mapping[str, Any]) -> dict[str, ModelRef]:
    return {name: ModelRef.from_dict(name, data) for name, data in manifest["models"].items()}


def vectors(manifest: Mapping[str, Any]) -> list[VectorSpec]:
    return [VectorSpec.from_dict(v) for v in manifest.get("vectors", [])]


def mappings(manifest: Mapping[str, Any]) -> list[MappingSpec]:
    return [MappingSpec.from_dict(m) for m in manifest.get("mappings", [])]


# ---------------------------------------------------------------- semantic rules


def _check_format(manifest: Mapping[str, Any], version: tuple[int, int]) -> None:
    expected = f"{version[0]}.{version[1]}"
    if manifest["format"] != expected:
        raise MalformedError(
            "version",
            f"manifest format {escape(manifest['format'])!r} differs from preamble version {expected}",
        )


def _check_critical(manifest: Mapping[str, Any]) -> None:
    extensions = manifest.get("extensions", {})
    for name in manifest.get("critical", []):
        if name not in extensions:
            raise InvalidError("critical-extension", f"critical extension {name!r} is not in extensions")
        if name not in UNDERSTOOD_EXTENSIONS:
            raise InvalidError(
                "critical-extension",
                f"critical extension {name!r} is not understood by this reader; upgrade mindvec",
            )


def _model_refs(manifest: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, model name) for every reference to a key of ``models``."""
    for i, vector in enumerate(manifest.get("vectors", [])):
        yield f"vectors/{i}/model", vector["model"]
        if "translation" in vector:
            yield f"vectors/{i}/translation/source_model", vector["translation"]["source_model"]
    for key in ("mappings", "correspondences"):
        for i, item in enumerate(manifest.get(key, [])):
            yield f"{key}/{i}/source/model", item["source"]["model"]
            yield f"{key}/{i}/target/model", item["target"]["model"]


def _check_model_refs(manifest: Mapping[str, Any]) -> None:
    for where, name in _model_refs(manifest):
        if name not in manifest["models"]:
            raise InvalidError("schema", f"manifest at {where}: model {name!r} is not a key of models")
    held = {m["name"] for m in manifest.get("mappings", [])}
    for i, vector in enumerate(manifest.get("vectors", [])):
        translation = vector.get("translation")
        if translation and "mapping_package" not in translation and translation["mapping"] not in held:
            raise InvalidError(
                "schema",
                f"manifest at vectors/{i}/translation: mapping {translation['mapping']!r} is not in this "
                "package; name one of its mappings, or give mapping_package for a mapping held elsewhere",
            )


def _check_unique_names(manifest: Mapping[str, Any]) -> None:
    for key in ("vectors", "mappings"):
        names = [item["name"] for item in manifest.get(key, [])]
        if len(set(names)) != len(names):
            raise InvalidError("schema", f"two {key} have the same name; names must be unique")


def check_site(site: Site, model: ModelRef, where: str) -> None:
    """Raise ``site`` unless ``site`` addresses a real point of ``model``."""
    layers = model.layers(site.stack)
    if layers is None:
        raise InvalidError("site", f"{where}: model {model.name!r} has no {site.stack} stack")
    if site.layer >= layers:
        raise InvalidError("site", f"{where}: layer {site.layer} is beyond the {layers} {site.stack} layers")
    if site.point == "resid_pre" and site.layer > 0:
        raise InvalidError(
            "site",
            f"{where}: resid_pre is only written for layer 0; use resid_post of layer {site.layer - 1}",
        )
    if site.point == "cross_attn_out" and (site.stack != "decoder" or model.num_encoder_layers is None):
        raise InvalidError(
            "site", f"{where}: cross_attn_out exists only in the decoder of an encoder-decoder model"
        )


def _sites(manifest: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(where, model name, site dict) for every site in the manifest."""
    for i, vector in enumerate(manifest.get("vectors", [])):
        for j, entry in enumerate(vector["sites"]):
            yield f"vectors/{i}/sites/{j}", vector["model"], entry["site"]
    for key in ("mappings", "correspondences"):
        for i, item in enumerate(manifest.get(key, [])):
            yield f"{key}/{i}/source", item["source"]["model"], item["source"]["site"]
            yield f"{key}/{i}/target", item["target"]["model"], item["target"]["site"]


def _check_sites(manifest: Mapping[str, Any]) -> None:
    refs = models(manifest)
    for where, model, site in _sites(manifest):
        check_site(Site.from_dict(site), refs[model], where)
    for i, vector in enumerate(manifest.get("vectors", [])):
        addresses = [Site.from_dict(entry["site"]) for entry in vector["sites"]]
        if len(set(addresses)) != len(addresses):
            raise InvalidError("site", f"vectors/{i}: the same site appears twice")


def _check_forms(manifest: Mapping[str, Any]) -> None:
    for i, mapping in enumerate(manifest.get("mappings", [])):
        roles = frozenset(mapping["tensors"]) - STATISTICS_ROLES
        form = mapping["form"]
        if roles not in FORMS[form]:
            allowed = " or ".join("{" + ", ".join(sorted(s)) + "}" for s in FORMS[form])
            raise InvalidError(
                "schema", f"mappings/{i}: form {form} needs tensors {allowed}, got {sorted(roles)}"
            )
        if "scale" in mapping and form not in SCALED_FORMS:
            raise InvalidError("schema", f"mappings/{i}: only an orthogonal mapping may carry a scale")


def _check_ranges(manifest: Mapping[str, Any]) -> None:
    for i, vector in enumerate(manifest.get("vectors", [])):
        low, high = vector["scale_range"]
        if low > high:
            raise InvalidError("value", f"vectors/{i}: scale_range [{low}, {high}] has its bounds reversed")


def referenced_tensors(manifest: Mapping[str, Any]) -> list[str]:
    """Every tensor name the manifest references, in order, duplicates kept."""
    names = [entry["tensor"] for vector in manifest.get("vectors", []) for entry in vector["sites"]]
    names += [name for mapping in manifest.get("mappings", []) for name in mapping["tensors"].values()]
    return names


def _check_references(manifest: Mapping[str, Any]) -> None:
    names = referenced_tensors(manifest)
    if len(set(names)) != len(names):
        raise InvalidError("tensor-reference", "a tensor is referenced twice; each tensor has one use")
    digested = set(manifest["payload"]["tensors"])
    if set(names) != digested:
        missing = sorted(set(names) - digested)[:3]
        extra = sorted(digested - set(names))[:3]
        raise InvalidError(
            "tensor-reference",
            f"payload.tensors must list exactly the referenced tensors "
            f"(missing {missing}, unreferenced {extra})",
        )


def _check_created(manifest: Mapping[str, Any]) -> None:
    created = manifest["provenance"]["created"]
    try:
        datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise InvalidError(
            "schema", f"provenance.created {created!r} is not a time that exists (UTC, YYYY-MM-DDTHH:MM:SSZ)"
        ) from None


def check_semantics(manifest: Mapping[str, Any], version: tuple[int, int]) -> None:
    """The rules beyond the schema, in a fixed order (the first failure decides the code)."""
    _check_format(manifest, version)
    check_declared(manifest, version)
    _check_critical(manifest)
    _check_model_refs(manifest)
    _check_unique_names(manifest)
    _check_sites(manifest)
    _check_forms(manifest)
    _check_ranges(manifest)
    _check_references(manifest)
    _check_created(manifest)


def validate(manifest: Any, version: tuple[int, int] | None = None) -> None:
    """Schema, then semantics. ``version`` is the preamble's (major, minor); a bare manifest
    with none is read at the version its ``format`` declares."""
    if version is None:
        version = declared_version(manifest)
    validate_schema(manifest, version)
    check_semantics(manifest, version)


def declared_version(manifest: Any) -> tuple[int, int]:
    """(major, minor) of a manifest's ``format`` string, or this reader's when it has none."""
    text = manifest.get("format") if isinstance(manifest, Mapping) else None
    match = re.fullmatch(r"([0-9]{1,5})\.([0-9]{1,5})", text) if isinstance(text, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else FORMAT_VERSION
