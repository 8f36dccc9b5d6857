"""``import``: another tool's vector as a package bound to the model the caller names.

The caller names the model (as for ``extract``), so the package carries its hidden size, layer
count, model type and config digest. A width or layer count that does not fit, or a
``controlvector.model_hint`` naming another model type (unless ``ignore_model_hint``), is
``model-mismatch``.

Calibration. The schema requires ``calibration.mean_norm`` and a recommended range, which a
GGUF, repeng or Neuronpedia file lacks. The importer measures them, exactly as ``extract``
does, on a small corpus run through the named model (``texts``; by default the first 48
chunks of the bundled news corpus): the mean activation norm at each site, the first position
dropped. The default scale is the file's own strength (1, or Neuronpedia's
``default_steer_strength``), so applying the package reproduces the tool's default.

``layer_shift`` moves every site by that many blocks: 0 keeps the file's semantics (llama.cpp
adds ``direction.N`` after block N); -1 is for files whose ``direction.N`` was computed one
block earlier than llama.cpp adds it (llama.cpp's ``cvector-generator``), to place each vector
where it was measured. It is recorded in ``provenance.imported``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mindvec.builder import PackageBuilder
from mindvec.errors import InvalidError, UsageError
from mindvec.interop.sources import Source
from mindvec.site import Site

if TYPE_CHECKING:
    import torch

    from mindvec.fit.build import Meta
    from mindvec.fit.pairing import Tokenizer

CALIBRATION_CHUNKS = 48


def default_texts() -> list[str]:
    """The calibration corpus: the first chunks of the bundled news corpus."""
    from mindvec import assets
    from mindvec.fit.pairing import split_chunks

    return split_chunks(assets.corpus(), max_chars=400)[:CALIBRATION_CHUNKS]


def bound_sites(
    source: Source, ref: dict[str, Any], layer_shift: int, ignore_model_hint: bool
) -> dict[Site, Any]:
    """The source's vectors at their sites in the named model; ``model-mismatch`` where they do not fit."""
    width, layers, model_type = int(ref["hidden_size"]), int(ref["num_layers"]), str(ref["model_type"])
    if source.width != width:
        raise InvalidError(
            "model-mismatch",
            f"the {source.format} vectors are {source.width} wide but the model's hidden size is {width};"
            " import them into the model they were made for",
        )
    hint = source.model_hint
    if hint and hint != model_type and not ignore_model_hint:
        raise InvalidError(
            "model-mismatch",
            f"the file says it is for model type {hint!r} but the model is {model_type!r}; pass"
            " --ignore-model-hint if the file's hint is wrong",
        )
    out: dict[Site, Any] = {}
    for site, values in source.vectors.items():
        moved = Site(site.stack, site.layer + layer_shift, site.point)
        if not 0 <= moved.layer < layers:
            raise InvalidError(
                "model-mismatch",
                f"{site} shifted by {layer_shift} is layer {moved.layer}, outside the model's"
                f" {layers} layers",
            )
        out[moved] = values
    return out


def import_vector(
    source: Source,
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    meta: Meta,
    *,
    model_ref: dict[str, Any] | None = None,
    name: str = "imported",
    texts: Sequence[str] | None = None,
    layer_shift: int = 0,
    ignore_model_hint: bool = False,
    batch_size: int = 8,
    max_tokens: int = 128,
) -> PackageBuilder:
    """A builder for the package holding ``source``'s vector, bound to ``model`` (see module doc)."""
    from mindvec.fit.activations import collect
    from mindvec.fit.build import dataset_entry
    from mindvec.fit.vectors import recommended_scale
    from mindvec.loader.binding import model_ref as ref_of

    ref = (
        dict(model_ref)
        if model_ref is not None
        else ref_of(model, source={"kind": "local", "note": "imported"})
    )
    sites = bound_sites(source, ref, layer_shift, ignore_model_hint)
    corpus = list(texts) if texts is not None else default_texts()
    got = collect(
        model,
        tokenizer,
        corpus,
        list(sites),
        batch_size=batch_size,
        max_tokens=max_tokens,
        progress=False,
        desc="calibration",
    )
    if got.tokens == 0:
        raise UsageError(
            "argument", "the calibration texts gave no tokens (each needs two or more); give longer texts"
        )
    entries = []
    highest = 1.0
    for site, values in sites.items():
        mean_norm = got.mean_norm(site)
        highest = max(highest, recommended_scale(float(np.linalg.norm(values)), mean_norm)[1][1])
        entries.append((site.to_dict(), values, {"mean_norm": float(mean_norm), "tokens": int(got.tokens)}))
    dataset = dataset_entry("calibration", corpus, len(corpus))
    b = meta.builder().add_model_entry("model", ref)
    b.add_vector(
        name,
        "model",
        entries,
        operation="add",
        scale=float(source.strength),
        scale_range=(0.0, max(highest, float(source.strength))),
        positions="all",
        method={"kind": "imported", "params": {"format": source.format}, "dataset": dict(dataset)},
    )
    imported: dict[str, Any] = {"format": source.format, "tool": source.tool[:64], "sha256": source.sha256}
    if source.file:
        imported["file"] = source.file[:256]
    if layer_shift:
        imported["layer_shift"] = int(layer_shift)
    return b.set_provenance(
        creator=meta.creator,
        license=meta.license,
        created=meta.created,
        datasets=[dataset],
        imported=imported,
    )
