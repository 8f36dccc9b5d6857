"""PackageBuilder: assemble a manifest and its tensors without writing msgpack by hand.

The builder only collects; all validation is the reader's, run by
:func:`mindvec.package.write` before anything is written, so a builder can never
produce a package the reader rejects. Tensor names are derived from the vector or
mapping they belong to (``vector/<name>/<stack>.<layer>.<point>`` and
``mapping/<name>/<role>``), which keeps them unique and self-describing.

Determinism: identical calls give byte-identical files. ``created`` defaults to
``SOURCE_DATE_EPOCH`` when that is set (reproducible builds), else the current time,
so pass ``created=`` explicitly when you need two builds to match.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mindvec.errors import UsageError
from mindvec.package import Signer, encode_package, write
from mindvec.site import Site, SiteArg, as_site


def _site_dict(site: SiteArg) -> dict[str, Any]:
    return as_site(site).to_dict()


def _now_utc() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = int(epoch) if epoch and epoch.isdigit() else int(time.time())
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _tool() -> dict[str, str]:
    from mindvec._version import __version__

    return {"name": "mindvec", "version": __version__}


class PackageBuilder:
    """Fluent builder: every ``add_*``/``set_*`` returns the builder itself."""

    def __init__(
        self,
        package_id: str,
        *,
        version: int = 1,
        name: str | None = None,
        description: str = "",
        intended_effect: str = "",
    ) -> None:
        self._package = {
            "id": package_id,
            "version": version,
            "name": name if name is not None else package_id.rsplit("/", 1)[-1],
            "description": description,
            "intended_effect": intended_effect,
        }
        self._models: dict[str, dict[str, Any]] = {}
        self._vectors: list[dict[str, Any]] = []
        self._mappings: list[dict[str, Any]] = []
        self._correspondences: list[dict[str, Any]] = []
        self._provenance: dict[str, Any] | None = None
        self._extensions: dict[str, Any] = {}
        self._critical: list[str] = []
        self._tensors: dict[str, Any] = {}

    # ------------------------------------------------------------ models

    def add_model(
        self,
        name: str,
        *,
        model_type: str,
        hidden_size: int,
        num_layers: int,
        source: Mapping[str, Any],
        **optional: Any,
    ) -> PackageBuilder:
        """Add a model binding; ``optional`` holds architecture, num_encoder_layers, config_sha256."""
        entry = {
            "model_type": model_type,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "source": dict(source),
        }
        entry.update(optional)
        return self.add_model_entry(name, entry)

    def add_model_entry(self, name: str, entry: Mapping[str, Any]) -> PackageBuilder:
        """Add a model entry as a whole (e.g. from ``loader.binding.model_ref``)."""
        if name in self._models:
            raise UsageError("argument", f"model {name!r} was already added")
        self._models[name] = copy.deepcopy(dict(entry))
        return self

    # ------------------------------------------------------------ vectors and mappings

    def _add_tensor(self, name: str, value: Any) -> str:
        if name in self._tensors:
            raise UsageError("argument", f"tensor {name!r} was already added")
        self._tensors[name] = value
        return name

    def add_vector(
        self,
        name: str,
        model: str,
        sites: Sequence[tuple[SiteArg, Any, Mapping[str, Any]]],
        *,
        operation: str = "add",
        scale: float = 1.0,
        scale_range: tuple[float, float] = (0.0, 1.0),
        positions: str | int = "all",
        method: Mapping[str, Any] | None = None,
        translation: Mapping[str, Any] | None = None,
    ) -> PackageBuilder:
        """Add a vector: ``sites`` is a list of (site, tensor, calibration dict).

        The calibration dict holds ``mean_norm`` (typical activation norm at the
        site) and ``tokens`` (how many tokens it was measured on).
        """
        entries = []
        for site, tensor, calibration in sites:
            site_dict = _site_dict(site)
            label = str(Site.from_dict(site_dict))
            tensor_name = self._add_tensor(f"vector/{name}/{label}", tensor)
            entries.append({"site": site_dict, "tensor": tensor_name, "calibration": dict(calibration)})
        vector: dict[str, Any] = {
            "name": name,
            "model": model,
            "operation": operation,
            "scale": float(scale),
            "scale_range": [float(scale_range[0]), float(scale_range[1])],
            "positions": positions,
            "sites": entries,
            "method": dict(method) if method is not None else {"kind": "manual"},
        }
        if translation is not None:
            vector["translation"] = dict(translation)
        self._vectors.append(vector)
        return self

    def add_mapping(
        self,
        name: str,
        *,
        source: tuple[str, SiteArg],
        target: tuple[str, SiteArg],
        form: str,
        tensors: Mapping[str, Any],
        fit: Mapping[str, Any],
        metrics: Mapping[str, Any],
        target_calibration: Mapping[str, Any],
        scale: float | None = None,
        shrinkage: Mapping[str, Any] | None = None,
    ) -> PackageBuilder:
        """Add a mapping; ``tensors`` maps roles (weight, bias, source_mean, ...) to arrays.

        ``shrinkage`` (with a ``source_covariance`` tensor) lets a translation undo a ridge's
        shrinkage (:mod:`mindvec.calibration`); it makes the package format 1.1."""
        names = {role: self._add_tensor(f"mapping/{name}/{role}", value) for role, value in tensors.items()}
        mapping: dict[str, Any] = {
            "name": name,
            "source": {"model": source[0], "site": _site_dict(source[1])},
            "target": {"model": target[0], "site": _site_dict(target[1])},
            "form": form,
            "tensors": names,
            "fit": copy.deepcopy(dict(fit)),
            "metrics": copy.deepcopy(dict(metrics)),
            "target_calibration": dict(target_calibration),
        }
        if scale is not None:
            mapping["scale"] = float(scale)
        if shrinkage is not None:
            mapping["shrinkage"] = dict(shrinkage)
        self._mappings.append(mapping)
        return self

    def add_correspondence(
        self, source: tuple[str, SiteArg], target: tuple[str, SiteArg], score: float, metric: str
    ) -> PackageBuilder:
        self._correspondences.append(
            {
                "source": {"model": source[0], "site": _site_dict(source[1])},
                "target": {"model": target[0], "site": _site_dict(target[1])},
                "score": float(score),
                "metric": metric,
            }
        )
        return self

    # ------------------------------------------------------------ provenance and extensions

    def set_provenance(
        self,
        *,
        creator: str,
        license: str,
        created: str | None = None,
        tool: Mapping[str, str] | None = None,
        datasets: Iterable[Mapping[str, Any]] = (),
        parents: Iterable[Mapping[str, Any]] = (),
        seed: int | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        imported: Mapping[str, Any] | None = None,
    ) -> PackageBuilder:
        """``imported`` (format 1.1): the file an imported vector was read from."""
        provenance: dict[str, Any] = {
            "creator": creator,
            "created": created if created is not None else _now_utc(),
            "tool": dict(tool) if tool is not None else _tool(),
            "license": license,
        }
        if datasets := [dict(d) for d in datasets]:
            provenance["datasets"] = datasets
        if parents := [dict(p) for p in parents]:
            provenance["parents"] = parents
        if seed is not None:
            provenance["seed"] = seed
        if hyperparameters is not None:
            provenance["hyperparameters"] = dict(hyperparameters)
        if imported is not None:
            provenance["imported"] = dict(imported)
        self._provenance = provenance
        return self

    def add_extension(self, name: str, value: Any, *, critical: bool = False) -> PackageBuilder:
        """Add a reverse-DNS extension; ``critical`` ones make readers that lack them refuse."""
        self._extensions[name] = copy.deepcopy(value)
        if critical and name not in self._critical:
            self._critical.append(name)
        return self

    # ------------------------------------------------------------ output

    def build(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (manifest without format/payload, tensors) for :func:`mindvec.write`."""
        if self._provenance is None:
            raise UsageError("argument", "call set_provenance(creator=..., license=...) before building")
        manifest: dict[str, Any] = {
            "package": dict(self._package),
            "models": copy.deepcopy(self._models),
            "provenance": copy.deepcopy(self._provenance),
        }
        for key, items in (
            ("vectors", self._vectors),
            ("mappings", self._mappings),
            ("correspondences", self._correspondences),
        ):
            if items:
                manifest[key] = copy.deepcopy(items)
        if self._extensions:
            manifest["extensions"] = copy.deepcopy(self._extensions)
        if self._critical:
            manifest["critical"] = list(self._critical)
        return manifest, dict(self._tensors)

    def to_bytes(self, *, signers: Iterable[Signer] = ()) -> bytes:
        """The whole validated file in memory (tests, uploads)."""
        manifest, tensors = self.build()
        return b"".join(encode_package(manifest, tensors, signers=signers))

    def write(self, path: str | os.PathLike[str], *, signers: Iterable[Signer] = ()) -> Path:
        """Validate by the reader's rules and write atomically."""
        manifest, tensors = self.build()
        return write(path, manifest, tensors, signers=signers)
