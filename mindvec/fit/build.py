"""Turn fitted vectors, maps and correspondences into packages (via ``PackageBuilder``).

Provenance records the model references (in ``models``), the datasets with their digest and
sample counts, the tool version (filled by the builder), the seed, the hyperparameters, and,
for maps, the held-out metrics with their baselines and the target calibration. Every
function returns a :class:`~mindvec.builder.PackageBuilder`; ``.write(path, signers=...)``
validates by the reader's rules and writes atomically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mindvec.builder import PackageBuilder
from mindvec.fit.correspondence import Correspondence
from mindvec.fit.metrics import FitReport
from mindvec.fit.vectors import VectorFit

Params = dict[str, float | int | str | bool]


def dataset_entry(name: str, texts: Iterable[str], samples: int) -> dict[str, Any]:
    """``{name, sha256, samples}``; the digest is over the texts joined by newlines, UTF-8."""
    h = hashlib.sha256()
    for i, text in enumerate(texts):
        h.update(b"\n" if i else b"")
        h.update(text.encode("utf-8"))
    return {"name": name[:256], "sha256": h.digest(), "samples": int(samples)}


@dataclass
class Meta:
    """What every produced package says about itself."""

    package_id: str
    name: str | None = None
    description: str = ""
    intended_effect: str = ""
    creator: str = "mindvec"
    license: str = "CC-BY-4.0"
    version: int = 1
    created: str | None = None

    def builder(self) -> PackageBuilder:
        return PackageBuilder(
            self.package_id,
            version=self.version,
            name=self.name,
            description=self.description,
            intended_effect=self.intended_effect,
        )


def vector_package(
    fitted: VectorFit,
    model_name: str,
    model_ref: Mapping[str, Any],
    meta: Meta,
    *,
    vector_name: str,
    dataset: Mapping[str, Any],
    seed: int = 0,
    run: Params | None = None,
) -> PackageBuilder:
    """``run``: how it was computed (world size, backend, device, dtype), for provenance."""
    scale, scale_range = fitted.scale()
    params: Params = dict(fitted.params)
    b = meta.builder().add_model_entry(model_name, model_ref)
    b.add_vector(
        vector_name,
        model_name,
        fitted.builder_sites(),
        operation="add",
        scale=scale,
        scale_range=scale_range,
        positions="all",
        method={"kind": fitted.method, "params": params, "dataset": dict(dataset)},
    )
    return b.set_provenance(
        creator=meta.creator,
        license=meta.license,
        created=meta.created,
        datasets=[dataset],
        seed=seed,
        hyperparameters={"method": fitted.method, **params, **(run or {})},
    )


@dataclass
class MapSide:
    """One side of a map: the manifest model name, its entry and the site."""

    name: str
    ref: Mapping[str, Any]
    site: Any


def add_mapping(
    b: PackageBuilder,
    report: FitReport,
    source: MapSide,
    target: MapSide,
    *,
    mapping_name: str,
    dataset: Mapping[str, Any],
    pairing: str,
    target_mean_norm: float,
    target_tokens: int,
    seed: int = 0,
) -> PackageBuilder:
    """Add one fitted map (with metrics and target calibration) to a builder."""
    m = report.mapping
    hyper: Params = {k: v for k, v in m.hyperparameters.items()}
    fit_info: dict[str, Any] = {
        "method": m.method,
        "hyperparameters": hyper,
        "dataset": dict(dataset),
        "pairing": pairing,
        "seed": seed,
    }
    b.add_mapping(
        mapping_name,
        source=(source.name, source.site),
        target=(target.name, target.site),
        form=m.form,
        tensors=m.tensors(),
        fit=fit_info,
        metrics=report.metrics_dict(),
        target_calibration={"mean_norm": float(target_mean_norm), "tokens": int(target_tokens)},
        scale=m.scale if m.form == "orthogonal" and m.hyperparameters.get("with_scale") else None,
        shrinkage=m.shrinkage,
    )
    return b


def mapping_package(
    reports: Sequence[tuple[str, FitReport, Any, Any, float, int]],
    source: MapSide,
    target: MapSide,
    meta: Meta,
    *,
    dataset: Mapping[str, Any],
    pairing: str,
    seed: int = 0,
    hyperparameters: Params | None = None,
    correspondence: Correspondence | None = None,
) -> PackageBuilder:
    """A package of maps from ``source`` to ``target``.

    ``reports``: (mapping name, report, source site, target site, target mean norm, tokens).
    """
    b = meta.builder().add_model_entry(source.name, source.ref).add_model_entry(target.name, target.ref)
    for name, report, s_site, t_site, norm, tokens in reports:
        add_mapping(
            b,
            report,
            MapSide(source.name, source.ref, s_site),
            MapSide(target.name, target.ref, t_site),
            mapping_name=name,
            dataset=dataset,
            pairing=pairing,
            target_mean_norm=norm,
            target_tokens=tokens,
            seed=seed,
        )
    if correspondence is not None:
        add_correspondences(b, correspondence, source.name, target.name)
    return b.set_provenance(
        creator=meta.creator,
        license=meta.license,
        created=meta.created,
        datasets=[dataset],
        seed=seed,
        hyperparameters=hyperparameters,
    )


def add_correspondences(
    b: PackageBuilder, corr: Correspondence, source: str, target: str, point: str = "resid_post"
) -> PackageBuilder:
    """Store the best source site for each target layer (ridge R² where scored, else CKA)."""
    for t, cand in sorted(corr.best().items()):
        b.add_correspondence(
            (source, {"stack": "decoder", "layer": cand.source_layer, "point": point}),
            (target, {"stack": "decoder", "layer": t, "point": point}),
            cand.r2 if cand.r2 is not None else cand.cka,
            "ridge_r2" if cand.r2 is not None else "linear_cka",
        )
    return b
