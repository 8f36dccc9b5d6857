"""Which layer pair and which map transfer steering best (issue 11's study).

For every candidate teacher layer of ``bench_transfer.py`` (same cached paired statistics) and
every map method mindvec fits (ridge, lstsq, low_rank_ridge r=64, cca, procrustes), it prints the
held-out R², the least-squares map's R² on its own training rows (``R²in``, the most any
linear map from that layer reaches on them) and centered cosine (with the shuffled and
embedding baselines), and, for each
concept of ``benchmarks/data/concepts.json`` (all sentence pairs; ``--concepts``: another file of
the same shape, such as the layer probes ``mindvec/fit/probes.json``), the cosine of the
translated vector with the student's own, and the effect (``bench_transfer``'s measure) of
the translated package at its recommended scale (``rec``) and at the native vector's norm
(``eq``), as fractions of the native package's effect. The last column is the injected norm
at ``rec`` over the native norm. Means over the concepts.

``--ensemble`` studies instead a translation from several source layers: the concept is
extracted at every candidate teacher layer, each layer's vector goes through its own ridge map
into the student's layer, and the translations are averaged (``t = mean_i W_i v_i``, injected
at the mean of their target norms ``n*_i``). Layer groups: ``best`` (the bench's choice, best
held-out R²), ``near`` (R² within 0.02 of the best) and ``all``. Per concept, over the bench's
seeds (18 of the 24 pairs each), medians of ``bench_transfer``'s columns ``cos inj rec eq dmg
cap``. The format holds one mapping per translated vector, so this measures a lead.

``--deattenuate`` asks whether undoing the regression's attenuation direction by direction
(``u ≈ Σt Σp⁻¹ W v``, floored) lowers a translated vector's damage at the same norm; see its
function's docstring.

Run: ``python benchmarks/study_transfer.py [--pairs 120000] [--corpus lee+wiki]
[--teachers gemma3,qwen25-coder] [--methods ridge,lstsq,low_rank_ridge,cca,procrustes]
[--concepts mindvec/fit/probes.json] [--ensemble [--seeds 3] | --decompose | --deattenuate]``. It reuses
``bench_transfer``'s cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bench_transfer as bt
import numpy as np

METHODS = ("ridge", "lstsq", "low_rank_ridge", "cca", "procrustes")
HYPER = {"low_rank_ridge": {"rank": 64}}


def _student(concepts: Path = bt.DATA) -> tuple[dict[str, Any], bt.Student]:
    """The concepts, and the student with its unsteered baselines (no generation measure)."""
    from mindvec.fit import models

    data = json.loads(bt.DATA.read_text(encoding="utf-8"))
    data["concepts"] = json.loads(concepts.read_text(encoding="utf-8"))["concepts"]
    student = bt.Student(models.load(bt.STUDENT), data)
    student.base["ppl"] = student.perplexity()
    for concept in data["concepts"]:
        student.base[concept] = {"logp": student.logp(concept), "gen": 0.0}
    return data, student


def in_sample_r2(state: Any, layer: int) -> float:
    """R² of the least-squares map on the very rows it was fitted on (``R²in``): no linear map
    from this layer does better on them, so held-out R² near it means more pairs would not help."""
    from mindvec.fit.fitstate import source_block, target_block

    st = state.train.pair(source_block(layer), target_block(bt.STUDENT_LAYER))
    ridge = 1e-9 * np.trace(st.sxx) / len(st.sxx)  # only to keep the solve defined
    w = np.linalg.solve(st.sxx + ridge * np.eye(len(st.sxx)), st.sxy)
    return float(np.trace(st.sxy.T @ w) / np.trace(st.syy))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=bt.PAIRS)
    parser.add_argument("--corpus", choices=bt.CORPORA, default="lee+wiki")
    parser.add_argument("--teachers", default=",".join(bt.TEACHERS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--cache", default=None)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--ensemble", action="store_true", help="average translations over source layers")
    parser.add_argument("--seeds", type=int, default=3, help="--ensemble: sentence subsets per concept")
    parser.add_argument(
        "--concepts",
        type=Path,
        default=bt.DATA,
        help="concept file (or mindvec/fit/probes.json, the layer probes)",
    )
    parser.add_argument(
        "--decompose", action="store_true", help="the parts of W v along and across the native vector"
    )
    parser.add_argument(
        "--deattenuate",
        action="store_true",
        help="W v with the regression's attenuation undone per direction",
    )
    args = parser.parse_args(argv)
    if args.ensemble:
        return ensemble_study(args)
    if args.decompose:
        return decompose_study(args)
    if args.deattenuate:
        return deattenuate_study(args)
    import mindvec
    from mindvec.fit import models
    from mindvec.fit.pipeline import finish_state
    from mindvec.translation import translate_vector

    start = time.monotonic()
    data, student = _student(args.concepts)
    ok = mindvec.Policy(allow_unsigned=True)
    model = student.loaded.model
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        native: dict[str, tuple[Path, np.ndarray, float]] = {}
        for concept, c in data["concepts"].items():
            fit = bt.extract(student.loaded, bt.STUDENT_LAYER, c["positive"], c["negative"])
            path = bt.vector_file(fit, student.loaded, concept, work / f"{concept}-n.mindvec", c["positive"])
            effect = bt.measure(student, concept, mindvec.steer(model, path, policy=ok)).effect
            native[concept] = (path, fit.sites[0].vector, effect)
        head = f"{'teacher':13s} {'map':10s} {'method':10s} {'R²':>6s} {'R²in':>6s} {'ccos':>6s} {'shuf':>6s}"
        print(head + f" {'emb':>6s} {'cos':>6s} {'rec':>6s} {'eq':>6s} {'inj':>6s}", flush=True)
        for name in args.teachers.split(","):
            teacher = models.load(name)
            state, texts = bt.fit_state(teacher, student.loaded, bt.TEACHERS[name], args)
            vectors = {}
            for concept, c in data["concepts"].items():
                fits = {
                    layer: bt.extract(teacher, layer, c["positive"], c["negative"])
                    for layer in bt.TEACHERS[name]
                }
                vectors[concept] = fits
            for method in args.methods.split(","):
                for mf in finish_state(state, method=method, **HYPER.get(method, {})):
                    layer = mf.source_site.layer
                    map_path = bt.write_map(
                        mf, state, texts, teacher, student.loaded, work / "map.mindvec", args.corpus
                    )
                    cos, rec, eq, inj = [], [], [], []
                    for concept in data["concepts"]:
                        n_path, n_vec, n_eff = native[concept]
                        t_path = bt.vector_file(
                            vectors[concept][layer], teacher, concept, work / "t.mindvec", ["x"]
                        )
                        tr = mindvec.translate(t_path, map_path, work / "tr.mindvec", policy=ok)
                        tv = translate_vector(t_path, map_path)
                        w = float(np.linalg.norm(tv.tensor))
                        n = float(np.linalg.norm(n_vec))
                        cos.append(float(tv.tensor @ n_vec) / w / n)
                        inj.append(tv.scale * w / n)
                        steer = mindvec.steer
                        rec.append(bt.measure(student, concept, steer(model, tr, policy=ok)).effect / n_eff)
                        eq.append(
                            bt.measure(student, concept, steer(model, tr, scale=n / w, policy=ok)).effect
                            / n_eff
                        )
                    r, b, r2in = mf.report.held_out, mf.report.baselines, in_sample_r2(state, layer)
                    print(
                        f"{name:13s} {mf.name:10s} {method:10s} {r.r2:6.3f} {r2in:6.3f} "
                        f"{r.centered_cosine:6.3f} {b['shuffled'].centered_cosine:6.3f} "
                        f"{b['embedding'].centered_cosine:6.3f} "
                        f"{np.mean(cos):6.3f} {np.mean(rec):6.2f} {np.mean(eq):6.2f} {np.mean(inj):6.2f}",
                        flush=True,
                    )
            del teacher, state
    print(f"({time.monotonic() - start:.0f}s)")
    return 0


#: --ensemble's layer groups: R² within this of the best is "near"
NEAR_R2 = 0.02
ENSEMBLE_COLUMNS = ("cos", "inj", "rec", "eq", "dmg", "cap")


def _groups(r2: dict[int, float]) -> dict[str, list[int]]:
    best = max(r2, key=lambda layer: r2[layer])
    return {
        "best": [best],
        "near": [layer for layer in r2 if r2[layer] >= r2[best] - NEAR_R2],
        "all": list(r2),
    }


def _ensemble_cell(
    student: bt.Student, concept: str, t: np.ndarray, n_star: float, n_fit: Any, nat: bt.Measured, work: Path
) -> dict[str, float]:
    """bench_transfer's measures for the student-side vector ``t`` injected at norm ``n_star``,
    against the native vector of ``n_fit``, measured as ``nat``."""
    import mindvec

    ok, model = mindvec.Policy(allow_unsigned=True), student.loaded.model
    n_vec = n_fit.sites[0].vector
    t_norm, n_norm = float(np.linalg.norm(t)), float(np.linalg.norm(n_vec))
    path = bt.vector_file(
        bt.replaced(n_fit, t, "translated"), student.loaded, "ens", work / "e.mindvec", ["x"]
    )

    def at(norm: float) -> bt.Measured:
        return bt.measure(student, concept, mindvec.steer(model, path, scale=norm / t_norm, policy=ok))

    scan = {m: at(m * n_star) for m in bt.SCAN}
    rec = scan[1.0]
    cap = bt.at_damage(bt.DAMAGE_CAP * nat.damage, list(scan.values()))
    return {
        "cos": float(t @ n_vec) / t_norm / n_norm,
        "inj": n_star / n_norm,
        "rec": rec.effect / nat.effect,
        "eq": at(n_norm).effect / nat.effect,
        "dmg": rec.damage / nat.damage,
        "cap": cap / nat.effect,
    }


def _per_layer(
    teacher: Any, maps: dict[int, Path], pos: list[str], neg: list[str], work: Path
) -> dict[int, tuple[np.ndarray, float]]:
    """Each candidate layer's translation ``W_i v_i`` and the norm its package injects (``n*_i``)."""
    from mindvec.fit.activations import layer_sites
    from mindvec.fit.vectors import VectorFit, extract_at_sites
    from mindvec.translation import translate_vector

    sites = layer_sites(teacher.model, list(maps))
    t_fit = extract_at_sites(teacher.model, teacher.tokenizer, pos, neg, sites, progress=False)
    out = {}
    for sv in t_fit.sites:
        one = bt.vector_file(VectorFit("mean_diff", [sv]), teacher, "t", work / "t.mindvec", pos)
        tv = translate_vector(one, maps[sv.site.layer])
        out[sv.site.layer] = (tv.tensor.astype(np.float64), tv.scale * float(np.linalg.norm(tv.tensor)))
    return out


def _fitted(
    args: argparse.Namespace, student: bt.Student
) -> Iterator[tuple[str, Any, Any, list[str], list[Any]]]:
    """Each teacher with its cached paired statistics and their ridge maps (one at a time)."""
    from mindvec.fit import models
    from mindvec.fit.pipeline import finish_state

    for name in args.teachers.split(","):
        teacher = models.load(name)
        state, texts = bt.fit_state(teacher, student.loaded, bt.TEACHERS[name], args)
        yield name, teacher, state, texts, finish_state(state)


def ensemble_study(args: argparse.Namespace) -> int:
    import mindvec

    ok = mindvec.Policy(allow_unsigned=True)

    start = time.monotonic()
    data, student = _student(args.concepts)
    table: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, teacher, state, texts, fits in _fitted(args, student):
            by_name = bt.write_maps(fits, state, texts, teacher, student.loaded, work, args.corpus)
            maps = {mf.source_site.layer: by_name[mf.name] for mf in fits}
            groups = _groups({mf.source_site.layer: mf.report.held_out.r2 for mf in fits})
            print(f"{name}: layer groups {groups}", flush=True)
            cells: dict[tuple[str, str], list[dict[str, float]]] = {}
            for concept, c in data["concepts"].items():
                for seed in range(args.seeds):
                    pos, neg, _ = bt.subset(c, seed)  # the bench's subsets
                    per = _per_layer(teacher, maps, pos, neg, work)
                    n_fit = bt.extract(student.loaded, bt.STUDENT_LAYER, pos, neg)
                    n_path = bt.vector_file(n_fit, student.loaded, "native", work / "n.mindvec", pos + neg)
                    nat = bt.measure(student, concept, mindvec.steer(student.loaded.model, n_path, policy=ok))
                    for group, layers in groups.items():
                        t = np.mean([per[layer][0] for layer in layers], axis=0)
                        n_star = float(np.mean([per[layer][1] for layer in layers]))
                        cell = _ensemble_cell(student, concept, t, n_star, n_fit, nat, work)
                        cells.setdefault((group, concept), []).append(cell)
                        print(
                            f"  {concept} seed {seed} {group:4s} "
                            + " ".join(f"{k} {cell[k]:.3f}" for k in ENSEMBLE_COLUMNS),
                            flush=True,
                        )
            for (group, concept), rows in cells.items():
                table.append(
                    f"{name:13s} {group:4s} {concept:7s} "
                    + " ".join(f"{bt.spread([r[k] for r in rows]):>18s}" for k in ENSEMBLE_COLUMNS)
                )
    print(f"\nmedian over {args.seeds} seed(s) [min-max] ({time.monotonic() - start:.0f}s)")
    print(f"{'teacher':13s} {'grp':4s} {'concept':7s} " + " ".join(f"{c:>18s}" for c in ENSEMBLE_COLUMNS))
    for line in table:
        print(line)
    return 0


def _concept_at(
    student: bt.Student, teacher: Any, layer: int, map_path: Path, concept: str, work: Path
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], bt.Measured], bt.Measured]:
    """One concept from all its sentence pairs: the student's own vector u, the translation t
    from the teacher's ``layer`` at its recommended norm, a function that injects any student
    vector at scale 1 and measures it, and u's own measure."""
    import mindvec
    from mindvec.translation import translate_vector

    ok, model = mindvec.Policy(allow_unsigned=True), student.loaded.model
    c = student.data["concepts"][concept]
    n_fit = bt.extract(student.loaded, bt.STUDENT_LAYER, c["positive"], c["negative"])

    def injected(vector: np.ndarray) -> bt.Measured:
        path = bt.vector_file(bt.replaced(n_fit, vector), student.loaded, "x", work / "x.mindvec", ["x"])
        return bt.measure(student, concept, mindvec.steer(model, path, scale=1.0, policy=ok))

    u = n_fit.sites[0].vector.astype(np.float64)
    t_fit = bt.extract(teacher, layer, c["positive"], c["negative"])
    tv = translate_vector(bt.vector_file(t_fit, teacher, concept, work / "t.mindvec", ["x"]), map_path)
    return u, tv.scale * tv.tensor.astype(np.float64), injected, injected(u)


#: --decompose's parts of the injected translation t: along the native u, across it, and a
#: random direction across u of the across part's norm, alone and in place of it
PARTS = ("t", "along", "across", "along+random", "random")


def decompose_study(args: argparse.Namespace) -> int:
    """Where a translated vector's side effects come from (``--decompose``).

    At each teacher's layer of ``bench_transfer`` (its probe choice), each concept (all
    sentence pairs) is translated and injected at its recommended scale, t; t splits into its
    part along the native vector u and the part across it. Each part, and the along part with
    a random direction across u of the same norm in place of the across part, is injected alone;
    effect and damage are fractions of the native package's."""

    start = time.monotonic()
    data, student = _student(args.concepts)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, teacher, state, texts, fits in _fitted(args, student):
            maps = bt.write_maps(fits, state, texts, teacher, student.loaded, work, args.corpus)
            score = bt.probe_layers(student, teacher, maps)
            best = max(fits, key=lambda mf: score[mf.name].score)
            layer, map_path = best.source_site.layer, maps[best.name]
            for concept in data["concepts"]:
                u, t, injected, native = _concept_at(student, teacher, layer, map_path, concept, work)
                unit = u / np.linalg.norm(u)
                along = float(t @ unit) * unit
                across = t - along
                rnd = np.random.default_rng(0).standard_normal(len(u))
                rnd -= float(rnd @ unit) * unit
                rnd *= np.linalg.norm(across) / np.linalg.norm(rnd)
                parts = dict(zip(PARTS, (t, along, across, along + rnd, rnd), strict=True))
                got = {k: injected(v) for k, v in parts.items()}
                norms = " ".join(
                    f"|{k}| {np.linalg.norm(parts[k]) / np.linalg.norm(u):.2f}" for k in PARTS[:3]
                )
                print(
                    f"{name} l{layer} {concept:8s} {norms} | "
                    + "  ".join(
                        f"{k}: effect {m.effect / native.effect:.2f} damage {m.damage / native.damage:.2f}"
                        for k, m in got.items()
                    ),
                    flush=True,
                )
    print(f"({time.monotonic() - start:.0f}s)")
    return 0


#: --deattenuate: floors on the per-direction share ρ² that the attenuation is undone by
FLOORS = (0.2, 0.3)


def _sym_pow(c: np.ndarray, p: float) -> np.ndarray:
    vals, vecs = np.linalg.eigh((c + c.T) / 2.0)
    vals = np.maximum(vals, 1e-9 * vals[-1])
    out: np.ndarray = (vecs * vals**p) @ vecs.T
    return out


def deattenuate_study(args: argparse.Namespace) -> int:
    """Does undoing the regression's attenuation direction by direction lower the damage?

    A regression image is ``t ≈ Σp Σt⁻¹ u`` if the source sees the target's concept through its
    own noise (``Σt`` the target covariance, ``Σp`` the covariance the map predicts), so
    ``u ≈ Σt Σp⁻¹ t``: in the generalised eigenbasis ``Σp q = ρ² Σt q`` each component of t
    is divided by ``max(ρ², floor)``. ``exact``: ``Σt`` and ``Σp`` from the paired
    statistics (1.1 mappings store neither); ``iso``: from what a 1.1 mapping stores,
    ``Σp = W Σs Wᵀ`` and an isotropic residual ``τ / d_out``. Each variant is injected at the
    recommended norm (the same as t's), at the bench's layer 6 of each teacher; effect and
    damage are fractions of the native package's (all sentence pairs)."""
    from mindvec.fit.fitstate import source_block, target_block

    start = time.monotonic()
    data, student = _student(args.concepts)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, teacher, state, texts, fits in _fitted(args, student):
            mf = next(m for m in fits if m.source_site.layer == 6)
            map_path = bt.write_map(
                mf, state, texts, teacher, student.loaded, work / "m.mindvec", args.corpus
            )
            st = state.train.pair(source_block(6), target_block(bt.STUDENT_LAYER))
            cov, sxx, sxy = st.syy / st.n, st.sxx / st.n, st.sxy / st.n
            pred = sxy.T @ np.linalg.solve(sxx + 1e-9 * np.trace(sxx) / len(sxx) * np.eye(len(sxx)), sxy)
            half, inv_half = _sym_pow(cov, 0.5), _sym_pow(cov, -0.5)
            rho2, q = np.linalg.eigh(inv_half @ pred @ inv_half)
            lm = mf.report.mapping
            lam, e = np.linalg.eigh(lm.weight @ lm.source_covariance @ lm.weight.T)
            sigma2 = float(lm.shrinkage["residual_variance"]) / lm.weight.shape[0]
            for concept in data["concepts"]:
                u, t, injected, native = _concept_at(student, teacher, 6, map_path, concept, work)
                variants = {"t": t}
                for floor in FLOORS:
                    exact = half @ (q @ ((q.T @ (inv_half @ t)) / np.maximum(rho2, floor)))
                    iso = e @ (np.minimum((lam + sigma2) / np.maximum(lam, 1e-12), 1 / floor) * (e.T @ t))
                    variants[f"exact{floor}"] = exact * np.linalg.norm(t) / np.linalg.norm(exact)
                    variants[f"iso{floor}"] = iso * np.linalg.norm(t) / np.linalg.norm(iso)
                cells = []
                for key, x in variants.items():
                    m = injected(x)
                    cos = float(x @ u) / float(np.linalg.norm(x) * np.linalg.norm(u))
                    cells.append(
                        f"{key}: cos {cos:.2f} effect {m.effect / native.effect:.2f} "
                        f"damage {m.damage / native.damage:.2f}"
                    )
                print(f"{name} l6 {concept:6s} " + "  ".join(cells), flush=True)
    print(f"({time.monotonic() - start:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
