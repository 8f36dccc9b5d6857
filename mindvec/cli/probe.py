"""``mindvec probe``: rank candidate maps by how well vectors translated through them steer.

Fit one map per candidate layer pair (``mindvec fit``), then probe them all: the probe concepts
are translated through each map and applied to the target for real (:mod:`mindvec.fit.probe`).
Held-out R² does not rank layers this way (spec 6.6), so choose the map by the score.
``mindvec fit --source-layer 4,6,8`` does both in one run, from one paired pass.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mindvec.cli.options import add_policy_arguments, device_arguments, load_models, policy_from_args, say


def register(subparsers: Any) -> None:
    pr = subparsers.add_parser(
        "probe", help="rank maps by the steering of probe concepts translated through them"
    )
    pr.add_argument("mapping_packages", nargs="+", metavar="MAP", help="mapping packages to compare")
    pr.add_argument("--source", required=True, help="the maps' source model")
    pr.add_argument("--target", required=True, help="the maps' target model")
    pr.add_argument(
        "--probes", help="probe concepts (default: the eight shipped topics, mindvec/fit/probes.json)"
    )
    pr.add_argument("--json", action="store_true", help="print the scores as JSON")
    pr.add_argument("--quiet", action="store_true", help="no progress lines")
    add_policy_arguments(pr)
    device_arguments(pr)
    pr.set_defaults(func=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    from mindvec.fit.distributed import SINGLE
    from mindvec.fit.probe import ProbeSet, best, probe_maps
    from mindvec.verification import enforce

    probes = ProbeSet.load(args.probes)  # a bad probe file or map fails before any model is loaded
    policy = policy_from_args(args)
    for path in args.mapping_packages:
        opened = enforce(path, policy).package
        if opened is not None:
            opened.close()
    say(args, f"loading {args.source} and {args.target} ...")
    src, tgt = load_models(args, SINGLE, args.source, args.target)
    scores = probe_maps(args.mapping_packages, src, tgt, probes=probes, policy=policy)
    top = best(scores)
    if args.json:
        rows = [
            {
                "package": s.package,
                "mapping": s.mapping,
                "source_site": str(s.source_site),
                "target_site": str(s.target_site),
                "effect": s.effect,
                "damage": s.damage,
                "score": s.score,
                "concepts": {c.concept: {"effect": c.effect, "damage": c.damage} for c in s.concepts},
            }
            for s in scores
        ]
        print(json.dumps({"scores": rows, "best": scores.index(top)}, indent=1))
        return 0
    print(f"{'package':32s} {'map':16s} {'source site':24s} {'effect':>7s} {'damage':>7s} {'score':>7s}")
    for s in scores:
        mark = "  <- best" if s is top else ""
        print(
            f"{Path(s.package).name:32s} {s.mapping:16s} {str(s.source_site):24s} "
            f"{s.effect:7.2f} {s.damage:7.2f} {s.score:7.2f}{mark}"
        )
    return 0
