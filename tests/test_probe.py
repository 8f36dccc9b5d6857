"""The layer probe scores a map by what vectors translated through it do.

Maps whose answer is known without the probe: the identity map between a layer and itself
translates each probe vector into the native one, so it scores exactly 1; the negated map
pushes the other way (effect below 0); a random rotation keeps the norm but not the direction
(the control). On tiny random models (seconds) and, with ``-m realmodel``, on SmolLM2 with
the shipped probes, where a real map between two of its layers must beat the rotation.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fit_helpers import WORDS, tiny_llama, word_tokenizer

from mindvec.errors import InvalidError, UnverifiedError, UsageError
from mindvec.fit.build import MapSide, Meta, dataset_entry, mapping_package
from mindvec.fit.models import LoadedModel
from mindvec.fit.pipeline import fit_maps
from mindvec.fit.probe import DAMAGE_FLOOR, ConceptRatio, ProbeScore, ProbeSet, best, probe_maps
from mindvec.policy import Policy
from mindvec.site import Site

OK = Policy(allow_unsigned=True)

#: probes a tiny random model responds to (the words are its vocabulary)
TINY_PROBES: dict[str, Any] = {
    "prompts": ["the cat was", "we liked the", "it is so", "they stayed home and"],
    "neutral_text": ["the dog was good and the owner stayed home", "they liked the film so it was great"],
    "concepts": {
        "pets": {
            "positive": [
                "the cat was good",
                "the dog liked the owner",
                "a cat and a dog",
                "the owner hated the cat",
            ],
            "negative": [
                "the film was good",
                "the movie liked the sun",
                "a film and a movie",
                "the moon hated the film",
            ],
            "words": ["cat", "dog", "owner"],
        },
        "weather": {
            "positive": [
                "the rain was awful",
                "the sun was great",
                "the moon was good",
                "it is rain so we stayed",
            ],
            "negative": [
                "the film was awful",
                "the movie was great",
                "the dog was good",
                "it is a film so we stayed",
            ],
            "words": ["sun", "rain", "moon"],
        },
    },
}


def _loaded(model: Any, tok: Any, label: str = "tiny") -> LoadedModel:
    return LoadedModel(label, model, tok, {"kind": "local", "note": label})


def _texts() -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS[:20]) for _ in range(12)) for _ in range(200)]


def map_packages(
    src: LoadedModel, tgt: LoadedModel, layers: tuple[int, int], folder: Path, **weights: Any
) -> dict[str, Path]:
    """A least-squares map ``layers`` fitted for real, written once per entry of ``weights``
    (name -> function of the fitted W giving the W to store)."""
    texts = _texts()
    [mf], paired = fit_maps(src, tgt, texts, [layers], method="lstsq", max_pairs=1500, progress=False)
    out = {}
    for name, make in weights.items():
        report = replace(mf.report, mapping=replace(mf.report.mapping, weight=make(mf.report.mapping.weight)))
        out[name] = mapping_package(
            [(name, report, mf.source_site, mf.target_site, mf.target_mean_norm, mf.target_tokens)],
            MapSide("source", src.ref(), mf.source_site),
            MapSide("target", tgt.ref(), mf.target_site),
            Meta(f"test/{name}"),
            dataset=dataset_entry("random words", texts, paired.n),
            pairing="aligned",
        ).write(folder / f"{name}.mindvec")
    return out


def rotation(seed: int = 0) -> Any:
    def make(w: Any) -> Any:
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((w.shape[0], w.shape[0])))
        return q

    return make


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, dict[str, Path]]:
    loaded = _loaded(tiny_llama(layers=3, seed=0), word_tokenizer())
    eye = lambda w: np.eye(w.shape[0])  # noqa: E731
    maps = map_packages(
        loaded, loaded, (1, 1), tmp_path_factory.mktemp("probe"), identity=eye, negated=lambda w: -eye(w)
    )
    return loaded, maps


def test_identity_scores_one_and_the_negated_map_pushes_the_other_way(
    tiny: tuple[LoadedModel, dict[str, Path]],
) -> None:
    loaded, maps = tiny
    identity, negated = probe_maps(
        [maps["identity"], maps["negated"]], loaded, loaded, probes=ProbeSet.from_dict(TINY_PROBES), policy=OK
    )
    assert (identity.mapping, negated.mapping) == ("identity", "negated")
    assert identity.package == str(maps["identity"])
    assert identity.source_site == Site("decoder", 1, "resid_post") == identity.target_site
    assert identity.concepts, "no probe concept moved the tiny model"
    for c in identity.concepts:
        assert (c.effect, c.damage) == (pytest.approx(1.0, abs=1e-9), pytest.approx(1.0, abs=1e-9))
    assert identity.score == pytest.approx(1.0, abs=1e-9)
    assert [c.concept for c in negated.concepts] == [c.concept for c in identity.concepts]
    assert all(c.effect < 0 for c in negated.concepts), negated
    assert best([negated, identity]) is identity


def test_the_ratios_are_those_of_a_plain_hook_at_the_maps_sites(
    tiny: tuple[LoadedModel, dict[str, Path]],
) -> None:
    """The negated map's ratios, recomputed with a plain torch hook on block 1's output (the
    map's target site) adding -u, then u: a probe that steered another layer, scaled the
    translation otherwise or measured another concept would not match."""
    import torch

    from mindvec.fit.effects import log_mass, perplexity, word_ids
    from mindvec.fit.vectors import extract_at_sites

    loaded, maps = tiny
    probes = ProbeSet.from_dict(TINY_PROBES)
    [negated] = probe_maps([maps["negated"]], loaded, loaded, probes=probes, policy=OK)
    model, tok = loaded.model, loaded.tokenizer
    site = Site("decoder", 1, "resid_post")

    def measured(delta: Any, concept: str) -> tuple[float, float]:
        def hook(_module: Any, _inputs: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (output[0] + delta, *output[1:])
            return output + delta

        handle = model.model.layers[1].register_forward_hook(hook)
        try:
            ids = word_ids(tok, probes.concepts[concept].words)
            return log_mass(model, tok, probes.prompts, ids), perplexity(model, tok, probes.neutral_text)
        finally:
            handle.remove()

    assert negated.concepts
    for ratio in negated.concepts:
        c = probes.concepts[ratio.concept]
        u = extract_at_sites(model, tok, c.positive, c.negative, [site], progress=False).sites[0].vector
        delta = torch.tensor(u, dtype=torch.float32)
        base_mass, base_ppl = measured(torch.zeros_like(delta), ratio.concept)
        (mass_n, ppl_n), (mass_t, ppl_t) = measured(delta, ratio.concept), measured(-delta, ratio.concept)
        assert ratio.effect == pytest.approx((mass_t - base_mass) / (mass_n - base_mass), rel=1e-5)
        assert ratio.damage == pytest.approx((ppl_t / base_ppl - 1) / (ppl_n / base_ppl - 1), rel=1e-5)


def test_the_policy_and_the_models_binding_are_enforced(
    tiny: tuple[LoadedModel, dict[str, Path]],
) -> None:
    loaded, maps = tiny
    with pytest.raises(UnverifiedError):
        probe_maps([maps["identity"]], loaded, loaded, probes=ProbeSet.from_dict(TINY_PROBES))
    other = _loaded(tiny_llama(hidden=48, layers=3, seed=0), word_tokenizer(), "other")
    with pytest.raises(InvalidError) as err:
        probe_maps([maps["identity"]], loaded, other, probes=ProbeSet.from_dict(TINY_PROBES), policy=OK)
    assert err.value.code == "model-mismatch"
    with pytest.raises(UsageError, match="no mappings"):
        probe_maps([], loaded, loaded, probes=ProbeSet.from_dict(TINY_PROBES), policy=OK)


def test_the_shipped_probes_load() -> None:
    probes = ProbeSet.load()
    assert sorted(probes.concepts) == [
        "finance",
        "garden",
        "medicine",
        "motoring",
        "music",
        "school",
        "sport",
        "weather",
    ]
    assert len(probes.prompts) >= 8 and len(probes.neutral_text) >= 4
    for c in probes.concepts.values():
        assert len(c.positive) == len(c.negative) >= 12 and len(c.words) >= 3


def _mutated(**change: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(TINY_PROBES))
    for path, value in change.items():
        *keys, last = path.split("__")
        node = data
        for key in keys:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected an object"),
        (_mutated(concepts={}), "expected an object"),
        (_mutated(prompts=None), "prompts must be"),
        (_mutated(neutral_text=[""]), "neutral_text must be"),
        (_mutated(concepts__pets__words=[3]), "pets.words must be"),
        (_mutated(concepts__pets__negative=["x y"] * 3), "as many negative as positive"),
        (_mutated(concepts__pets="music"), "must be an object"),
    ],
)
def test_a_bad_probe_file_is_a_usage_error(data: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        ProbeSet.from_dict(data)
    assert err.value.code == "argument"


def test_an_unreadable_probe_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read probe file"):
        ProbeSet.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="cannot read probe file"):
        ProbeSet.load(tmp_path / "bad.json")


def test_a_harmless_map_cannot_win_by_dividing_by_nothing() -> None:
    assert ConceptRatio("x", 1.0, 0.0).score == pytest.approx(1.0 / np.sqrt(DAMAGE_FLOOR))
    assert ConceptRatio("x", 0.5, 4.0).score == pytest.approx(0.25)
    site = Site("decoder", 1, "resid_post")
    score = ProbeScore("p", "m", site, site, (ConceptRatio("a", 1.0, 1.0), ConceptRatio("b", 0.5, 4.0)))
    assert (score.effect, score.damage, score.score) == (0.75, 2.5, pytest.approx(0.625))
    with pytest.raises(UsageError):
        best([])


@pytest.mark.realmodel
def test_smollm2_a_real_map_beats_the_rotation_control(tmp_path: Path) -> None:
    """SmolLM2 layer 8 -> layer 10 (a real map, two blocks apart) against the identity at layer
    10 and a random rotation of the same map, all with the shipped probes. Measured (eight
    probes): identity 1.000; the real map effect 0.62, damage 0.68, score 0.78; the rotation
    effect 0.09, score 0.16 (its damage, 0.38, is lower, as a direction the model does not
    read is)."""
    from mindvec.fit import models

    smol = models.load("smollm2")
    real = map_packages(smol, smol, (8, 10), tmp_path, real=lambda w: w, rotated=rotation())
    same = map_packages(smol, smol, (10, 10), tmp_path, identity=lambda w: np.eye(w.shape[0]))
    paths = [same["identity"], real["real"], real["rotated"]]
    identity, fitted, rotated = probe_maps(paths, smol, smol, policy=OK)
    assert len(identity.concepts) == 8
    assert identity.score == pytest.approx(1.0, abs=1e-6)
    assert fitted.score > 0.5, fitted
    assert abs(rotated.effect) < 0.3 and fitted.score > rotated.score + 0.3, (fitted, rotated)
