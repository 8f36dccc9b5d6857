"""Which candidate map carries steering best: probe concepts, translated and applied for real.

Held-out R² and the correspondence scores do not rank source layers by how well the vectors
translated from them steer (spec 6.6: Qwen2.5-Coder layers 6 and 8 into SmolLM2 layer 15 are
0.004 apart in R² and 0.87 against 0.79 of the native effect at equal norm). The probe
measures that itself, on concepts of its own. Each probe concept is extracted (difference of
means) in the source at the map's source site, giving ``v``, and in the target at its target
site, giving ``u``. Then ``W v``, scaled to ``|u|``, is applied to the target, and its effect
and damage (:mod:`mindvec.fit.effects`) are taken as fractions of ``u``'s.

A map's score is the mean over the probes of ``effect / √max(damage, 0.05)``. If effect grows
linearly and damage quadratically with the scale, that is the effect the translation has at the
native vector's damage. The identity map scores 1 and the negated one about -1. Equal norm
keeps the score apart from the recommended scale, which :mod:`mindvec.calibration` derives.

The shipped probes (``probes.json``, eight topics) share nothing with the concepts
``benchmarks/bench_transfer.py`` evaluates, which is how that bench chooses its layer pair
without tuning the choice to what it then measures.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mindvec.errors import InvalidError, UsageError
from mindvec.fit.effects import log_mass, perplexity, word_ids
from mindvec.fit.models import LoadedModel
from mindvec.fit.vectors import SiteVector, VectorFit, extract_at_sites
from mindvec.manifest import MappingSpec
from mindvec.package import PackageSource
from mindvec.policy import Policy
from mindvec.site import Site
from mindvec.verification import checked

#: the shipped probe concepts, prompts and neutral text
DEFAULT_PROBES = Path(__file__).with_name("probes.json")
#: a damage ratio is floored here before its square root, so a harmless map does not win by
#: dividing by almost nothing
DAMAGE_FLOOR = 0.05
#: sentence pairs a probe concept needs at least (a difference of means of fewer is mostly noise)
MIN_PAIRS = 4


@dataclass(frozen=True)
class ProbeConcept:
    """Contrastive sentences about one topic, and the held-out words that measure its effect."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]
    words: tuple[str, ...]


@dataclass(frozen=True)
class ProbeSet:
    """Probe concepts with the prompts (effect) and the neutral text (damage) they are measured on."""

    concepts: Mapping[str, ProbeConcept]
    prompts: tuple[str, ...]
    neutral_text: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path | None = None) -> ProbeSet:
        """Read a probe file (default: the shipped one); the shape of ``probes.json``."""
        where = Path(path) if path is not None else DEFAULT_PROBES
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError("argument", f"cannot read probe file {where}: {exc}") from exc
        return cls.from_dict(data, str(where))

    @classmethod
    def from_dict(cls, data: Any, where: str = "probes") -> ProbeSet:
        def texts(value: Any, what: str) -> tuple[str, ...]:
            if not isinstance(value, list) or not value or not all(isinstance(t, str) and t for t in value):
                raise UsageError("argument", f"{where}: {what} must be a non-empty list of non-empty strings")
            return tuple(value)

        if not isinstance(data, dict) or not isinstance(data.get("concepts"), dict) or not data["concepts"]:
            raise UsageError(
                "argument", f"{where}: expected an object with 'concepts', 'prompts', 'neutral_text'"
            )
        concepts = {}
        for name, c in data["concepts"].items():
            if not isinstance(c, dict):
                raise UsageError("argument", f"{where}: concept {name!r} must be an object")
            pos, neg = (
                texts(c.get("positive"), f"{name}.positive"),
                texts(c.get("negative"), f"{name}.negative"),
            )
            if len(pos) != len(neg) or len(pos) < MIN_PAIRS:
                raise UsageError(
                    "argument",
                    f"{where}: concept {name!r} needs paired sentences, as many negative as positive "
                    f"and at least {MIN_PAIRS} of each (it has {len(pos)} and {len(neg)})",
                )
            concepts[name] = ProbeConcept(pos, neg, texts(c.get("words"), f"{name}.words"))
        return cls(
            concepts, texts(data.get("prompts"), "prompts"), texts(data.get("neutral_text"), "neutral_text")
        )


@dataclass(frozen=True)
class ConceptRatio:
    """One probe concept through one map: the translation's effect and damage over the native's."""

    concept: str
    effect: float
    damage: float

    @property
    def score(self) -> float:
        return self.effect / math.sqrt(max(self.damage, DAMAGE_FLOOR))


@dataclass(frozen=True)
class ProbeScore:
    """One candidate map's probe result; ``score`` ranks the candidates."""

    package: str  # the path given, or ``identity:<hex>`` for a Package object
    mapping: str
    source_site: Site
    target_site: Site
    concepts: tuple[ConceptRatio, ...]

    @property
    def effect(self) -> float:
        return float(np.mean([c.effect for c in self.concepts]))

    @property
    def damage(self) -> float:
        return float(np.mean([c.damage for c in self.concepts]))

    @property
    def score(self) -> float:
        return float(np.mean([c.score for c in self.concepts]))


def best(scores: Sequence[ProbeScore]) -> ProbeScore:
    """The candidate with the highest score (the first of equals)."""
    if not scores:
        raise UsageError("argument", "no probe scores to choose from; probe at least one map")
    return max(scores, key=lambda s: s.score)


@dataclass(frozen=True)
class _Measured:
    effect: float
    damage: float


class _Target:
    """The target model with its unsteered baselines, measuring vectors added at one site."""

    def __init__(self, loaded: LoadedModel, probes: ProbeSet) -> None:
        self.loaded, self.probes = loaded, probes
        tok = loaded.tokenizer
        self.ids = {name: word_ids(tok, c.words) for name, c in probes.concepts.items()}
        self.base_mass = {name: self._mass(name) for name in probes.concepts}
        self.base_ppl = perplexity(loaded.model, tok, probes.neutral_text)

    def _mass(self, concept: str) -> float:
        return log_mass(self.loaded.model, self.loaded.tokenizer, self.probes.prompts, self.ids[concept])

    def measure(self, concept: str, site_vector: SiteVector, model_ref: Mapping[str, Any]) -> _Measured:
        from mindvec.fit.api import Vector
        from mindvec.fit.build import Meta, dataset_entry

        c = self.probes.concepts[concept]
        vec = Vector(
            VectorFit("mean_diff", [site_vector]),
            dict(model_ref),
            Meta(f"probe/{concept}", creator="mindvec.fit.probe"),
            dataset_entry(f"probe {concept}", c.positive + c.negative, 2 * len(c.positive)),
            name=concept,
        )
        with vec.apply(self.loaded.model, scale=1.0):
            effect = self._mass(concept) - self.base_mass[concept]
            ppl = perplexity(self.loaded.model, self.loaded.tokenizer, self.probes.neutral_text)
        return _Measured(effect, ppl / self.base_ppl - 1.0)


def _vectors(loaded: LoadedModel, c: ProbeConcept, sites: Sequence[Site]) -> dict[Site, SiteVector]:
    fit = extract_at_sites(loaded.model, loaded.tokenizer, c.positive, c.negative, sites, progress=False)
    return {sv.site: sv for sv in fit.sites}


@dataclass(frozen=True)
class _Candidate:
    package: str
    spec: MappingSpec
    weight: np.ndarray[Any, Any]  # W [d_out, d_in]
    target_entry: dict[str, Any]  # the mapping's target model, as its manifest binds it


def _candidates(
    mappings: Sequence[PackageSource], policy: Policy, source: LoadedModel, target: LoadedModel
) -> list[_Candidate]:
    """Every mapping of every package, once the policy accepted the package and both models
    are the ones it maps between."""
    from mindvec.loader.binding import check_binding
    from mindvec.translation import mapping_matrix

    out = []
    with contextlib.ExitStack() as opened:
        for source_pkg in mappings:
            pkg, _ = opened.enter_context(checked(source_pkg, policy))
            where = (
                str(source_pkg)
                if isinstance(source_pkg, (str, os.PathLike))
                else f"identity:{pkg.identity.hex()}"
            )
            for spec in pkg.mappings():
                check_binding(source.model, pkg.model(spec.source_model))
                check_binding(target.model, pkg.model(spec.target_model))
                entry = dict(pkg.manifest["models"][spec.target_model])
                out.append(_Candidate(where, spec, mapping_matrix(pkg, spec), entry))
    if not out:
        raise UsageError("argument", "no mappings to probe; pass packages that hold mappings")
    return out


def probe_maps(
    mappings: Sequence[PackageSource],
    source: LoadedModel,
    target: LoadedModel,
    *,
    probes: ProbeSet | None = None,
    policy: Policy | None = None,
) -> list[ProbeScore]:
    """Score every mapping in ``mappings`` (paths or packages, each passing ``policy``: default,
    signed by a trusted key) by the probe, in the order given.

    ``source`` and ``target`` are the models the maps are between, loaded
    (:func:`mindvec.fit.models.load`). A probe concept whose native vector does not raise its
    own words, or does no damage, says nothing about a map at that site and is left out; a map
    left with none is an error."""
    probes = probes or ProbeSet.load()
    candidates = _candidates(mappings, policy or Policy(), source, target)
    tgt = _Target(target, probes)
    source_sites = sorted({c.spec.source_site for c in candidates}, key=str)
    target_sites = sorted({c.spec.target_site for c in candidates}, key=str)
    ratios: list[list[ConceptRatio]] = [[] for _ in candidates]
    for name, c in probes.concepts.items():
        teacher, native = _vectors(source, c, source_sites), _vectors(target, c, target_sites)
        natives: dict[Site, _Measured] = {}
        for i, cand in enumerate(candidates):
            spec, entry = cand.spec, cand.target_entry
            u = native[spec.target_site]
            if spec.target_site not in natives:
                natives[spec.target_site] = tgt.measure(name, u, entry)
            nat = natives[spec.target_site]
            if nat.effect <= 0.0 or nat.damage <= 0.0:
                continue
            t = cand.weight @ teacher[spec.source_site].vector
            t_norm = float(np.linalg.norm(t))
            if not np.isfinite(t_norm) or t_norm == 0.0:
                raise InvalidError(
                    "value",
                    f"W v is zero or not finite for probe {name!r} through mapping {spec.name!r}; "
                    "the map loses it",
                )
            scaled = replace(u, vector=t * (float(np.linalg.norm(u.vector)) / t_norm))
            got = tgt.measure(name, scaled, entry)
            ratios[i].append(ConceptRatio(name, got.effect / nat.effect, got.damage / nat.damage))
    scores = []
    for cand, found in zip(candidates, ratios, strict=True):
        spec = cand.spec
        if not found:
            raise UsageError(
                "argument",
                f"no probe concept moves the target at {spec.target_site} (its own vectors raise no "
                "concept word or do no damage); pass --probes with concepts this model responds to",
            )
        scores.append(ProbeScore(cand.package, spec.name, spec.source_site, spec.target_site, tuple(found)))
    return scores
