"""Which layer pair and which map transfer steering best (issue 11's study).

For every candidate teacher layer of ``bench_transfer.py`` (same cached paired statistics) and
every map method mindvec fits (ridge, lstsq, low_rank_ridge r=64, cca, procrustes), it prints the
held-out R² and centered cosine (with the shuffled and embedding baselines), and, for each
concept of ``benchmarks/data/concepts.json`` (all 24 sentence pairs), the cosine of the
translated vector with the student's own, and the effect (``bench_transfer``'s measure) of
the translated package at its recommended scale (``rec``) and at the native vector's norm
(``eq``), as fractions of the native package's effect. The last column is the injected norm
at ``rec`` over the native norm. Means over the concepts.

Run: ``python benchmarks/study_transfer.py [--pairs 60000] [--teachers gemma3,qwen25-coder]
[--methods ridge,lstsq,low_rank_ridge,cca,procrustes]``. It reuses ``bench_transfer``'s cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import bench_transfer as bt
import numpy as np

METHODS = ("ridge", "lstsq", "low_rank_ridge", "cca", "procrustes")
HYPER = {"low_rank_ridge": {"rank": 64}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=60000)
    parser.add_argument("--teachers", default=",".join(bt.TEACHERS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--cache", default=None)
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    import mindvec
    from mindvec.fit import models
    from mindvec.fit.pipeline import finish_state
    from mindvec.translation import translate_vector

    start = time.monotonic()
    data = json.loads(bt.DATA.read_text(encoding="utf-8"))
    student = bt.Student(models.load(bt.STUDENT), data)
    student.base["ppl"] = student.perplexity()
    for concept in data["concepts"]:
        student.base[concept] = {"logp": student.logp(concept), "gen": 0.0}
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
        head = f"{'teacher':13s} {'map':10s} {'method':10s} {'R²':>6s} {'ccos':>6s} {'shuf':>6s} {'emb':>6s}"
        print(head + f" {'cos':>6s} {'rec':>6s} {'eq':>6s} {'inj':>6s}", flush=True)
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
                    map_path = bt.write_map(mf, state, texts, teacher, student.loaded, work / "map.mindvec")
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
                    r, b = mf.report.held_out, mf.report.baselines
                    print(
                        f"{name:13s} {mf.name:10s} {method:10s} {r.r2:6.3f} {r.centered_cosine:6.3f} "
                        f"{b['shuffled'].centered_cosine:6.3f} {b['embedding'].centered_cosine:6.3f} "
                        f"{np.mean(cos):6.3f} {np.mean(rec):6.2f} {np.mean(eq):6.2f} {np.mean(inj):6.2f}",
                        flush=True,
                    )
            del teacher, state
    print(f"({time.monotonic() - start:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
