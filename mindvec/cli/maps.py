"""``mindvec fit`` and ``mindvec correspond``: cross-model maps and layer correspondences."""

from __future__ import annotations

import argparse
from typing import Any

from mindvec.cli.options import (
    corpus_texts,
    load_models,
    meta_from_args,
    parse_layers,
    report_written,
    resolve_device,
    say,
    signers_from_args,
)
from mindvec.errors import UsageError


def _hyper(args: argparse.Namespace) -> dict[str, Any]:
    if args.method == "low_rank_ridge":
        return {"rank": args.rank}
    if args.method == "cca":
        return {"k": args.k, "reg": args.reg}
    if args.method == "procrustes":
        return {"with_scale": args.with_scale}
    return {}


def _part(args: argparse.Namespace) -> tuple[int, int] | None:
    """``--part K/N``: this shard reads corpus batches ``b`` with ``b % N == K``."""
    if not args.part:
        return None
    k, _, n = args.part.partition("/")
    if not (k.isdigit() and n.isdigit() and 0 <= int(k) < int(n)):
        raise UsageError("argument", f"--part {args.part!r}: use K/N with 0 <= K < N, e.g. 0/4")
    return int(k), int(n)


SHARD_KEY = ("source", "target", "pairing", "source_layer", "target_layer", "dataset", "batch_size", "seed")


def _shard_key(meta: dict[str, Any]) -> dict[str, Any]:
    """What every shard of one fit shares (the corpus by digest; sample counts differ)."""
    key = {k: meta.get(k) for k in SHARD_KEY}
    key["dataset"] = {k: v for k, v in (meta.get("dataset") or {}).items() if k != "samples"}
    return key


def _merge_shards(paths: list[str]) -> tuple[Any, dict[str, Any]]:
    from mindvec import canonical
    from mindvec.fit.pipeline import FitState

    state, meta = None, None
    parts: list[int] = []
    for path in paths:
        shard, raw = FitState.load(path)
        info = canonical.decode(raw)
        if meta is None:
            state, meta = shard, info
        elif _shard_key(info) != _shard_key(meta):
            raise UsageError(
                "argument",
                f"shard {path} was collected with other models, layers, pairing, corpus, batch size or seed",
            )
        else:
            assert state is not None
            state.merge_in(shard)
        parts.append(int(info["part"][0]))
    assert state is not None and meta is not None
    total = int(meta["part"][1])
    if sorted(parts) != list(range(total)):
        raise UsageError(
            "argument", f"the shards are parts {sorted(parts)} of {total}; pass each of 0..{total - 1} once"
        )
    meta["dataset"] = {**meta["dataset"], "samples": state.n}
    return state, meta


def run_fit(args: argparse.Namespace) -> int:
    from mindvec.fit.distributed import joined

    with joined(resolve_device(args.device)) as world:
        return _fit(args, world)


def _fit(args: argparse.Namespace, world: Any) -> int:
    from mindvec import canonical
    from mindvec.fit.build import MapSide, dataset_entry, mapping_package
    from mindvec.fit.pipeline import collect_state, finish_state

    signers = signers_from_args(args)  # a bad key fails before any model is loaded
    if args.source_layer == "all":
        raise UsageError("argument", "--source-layer all: name the candidate layers, e.g. 4,6,8 or 4-8")
    sources = parse_layers(args.source_layer, 1 << 20, "--source-layer")
    pair = (sources[0], args.target_layer)
    part = _part(args)
    if len(sources) > 1 and (part or args.shard or args.from_shards):
        raise UsageError(
            "argument",
            "shards fit one source layer; pass one --source-layer with --part/--shard/--from-shards",
        )
    probes = None
    if args.select == "probe" and len(sources) > 1:
        from mindvec.fit.probe import ProbeSet

        probes = ProbeSet.load(args.probes)  # a bad probe file fails before any model is loaded
    if part and world.active:
        raise UsageError(
            "argument", "--part is for runs without torchrun; under torchrun the ranks split the corpus"
        )
    if args.from_shards:
        state, meta = _merge_shards(args.from_shards)
        if (meta["source_layer"], meta["target_layer"]) != pair:
            raise UsageError(
                "argument", f"the shards fit layers {meta['source_layer']}->{meta['target_layer']}"
            )
    else:
        if not (args.corpus or args.corpus_asset):
            raise UsageError("argument", "pass --corpus FILE or --corpus-asset NAME (or --from-shards)")
        data_name, texts = corpus_texts(args)
        say(args, f"loading {args.source} and {args.target} ...", world)
        src, tgt = load_models(args, world, args.source, args.target)
        state = collect_state(
            src,
            tgt,
            texts,
            [(s, args.target_layer) for s in sources],
            pairing=args.pairing,
            max_pairs=args.max_pairs,
            batch_size=args.batch_size,
            max_tokens=args.max_tokens,
            seed=args.seed,
            progress=not args.quiet,
            world=world,
            part=part,
        )
        meta = {
            "source": src.ref(),
            "target": tgt.ref(),
            "labels": f"{src.label} -> {tgt.label}",
            "pairing": args.pairing,
            "source_layer": pair[0],
            "target_layer": pair[1],
            "dataset": dataset_entry(data_name, texts[: state.end], state.n),
            "batch_size": args.batch_size,
            "seed": args.seed,
            "part": list(part or (0, 1)),
        }
        if args.shard:
            if not part:
                raise UsageError("argument", "--shard needs --part K/N (use --part 0/1 for one shard)")
            out = state.save(args.output, canonical.encode(meta))
            print(f"wrote statistics shard {out} ({state.n} pairs from {state.texts} texts)")
            return 0
    fits = finish_state(state, method=args.method, **_hyper(args))
    if not world.main:
        return 0  # rank 0 writes the package
    chosen: dict[str, Any] = {}
    if len(fits) > 1:
        mf = _select(args, fits, src, tgt, meta, probes)
        chosen = {"candidate_layers": ",".join(map(str, sources)), "selected_by": args.select}
        pair = (mf.source_site.layer, args.target_layer)
    else:
        [mf] = fits
    r = mf.report
    say(
        args,
        f"held-out centered cosine {r.held_out.centered_cosine:.3f}, raw cosine {r.held_out.raw_cosine:.3f}, "
        f"R2 {r.held_out.r2:.3f}; shuffled centered cosine {r.baselines['shuffled'].centered_cosine:.3f}",
    )
    name = args.mapping_name or mf.name
    builder = mapping_package(
        [(name, r, mf.source_site, mf.target_site, mf.target_mean_norm, mf.target_tokens)],
        MapSide("source", meta["source"], mf.source_site),
        MapSide("target", meta["target"], mf.target_site),
        meta_from_args(
            args, "map", f"{args.method} map {meta['labels']}, layer {pair[0]} -> layer {pair[1]}"
        ),
        dataset=meta["dataset"],
        pairing=meta["pairing"],
        seed=args.seed,
        hyperparameters={
            "max_pairs": args.max_pairs,
            "chunk_chars": args.chunk_chars,
            "max_tokens": args.max_tokens,
            "texts": state.texts,
            "shards": len(args.from_shards or []) or 1,
            **world.provenance(),
            "device": args.device,
            "dtype": args.dtype,
            **chosen,
        },
    )
    return report_written(builder.write(args.output, signers=signers))


def _select(
    args: argparse.Namespace, fits: list[Any], src: Any, tgt: Any, meta: dict[str, Any], probes: Any
) -> Any:
    """The candidate map to keep: the best held-out R², or (``probes``) the best probe score of
    :mod:`mindvec.fit.probe`, whose candidates are written unsigned to a private folder, since
    they never left this process."""
    import tempfile
    from pathlib import Path

    from mindvec.fit.build import MapSide, Meta, mapping_package
    from mindvec.fit.probe import best, probe_maps
    from mindvec.policy import Policy

    if probes is None:
        top = max(fits, key=lambda mf: mf.report.held_out.r2)
        for mf in fits:
            say(args, f"  {mf.name}: R2 {mf.report.held_out.r2:.3f}" + ("  <- chosen" if mf is top else ""))
        return top
    with tempfile.TemporaryDirectory(prefix="mindvec-candidates-") as folder:
        paths = [
            mapping_package(
                [(mf.name, mf.report, mf.source_site, mf.target_site, mf.target_mean_norm, mf.target_tokens)],
                MapSide("source", meta["source"], mf.source_site),
                MapSide("target", meta["target"], mf.target_site),
                Meta("candidate/map"),
                dataset=meta["dataset"],
                pairing=meta["pairing"],
            ).write(Path(folder) / f"{mf.name}.mindvec")
            for mf in fits
        ]
        scores = probe_maps(paths, src, tgt, probes=probes, policy=Policy(allow_unsigned=True))
    top, by_name = best(scores), {mf.name: mf for mf in fits}
    for score in scores:
        say(
            args,
            f"  {score.mapping}: R2 {by_name[score.mapping].report.held_out.r2:.3f}, probe effect "
            f"{score.effect:.2f} damage {score.damage:.2f} score {score.score:.2f}"
            + ("  <- chosen" if score is top else ""),
        )
    return by_name[top.mapping]


def run_correspond(args: argparse.Namespace) -> int:
    from mindvec.fit.distributed import joined

    with joined(resolve_device(args.device)) as world:
        return _correspond(args, world)


def _correspond(args: argparse.Namespace, world: Any) -> int:
    from mindvec.fit.build import add_correspondences, dataset_entry
    from mindvec.fit.correspondence import heatmap
    from mindvec.fit.pipeline import screen_layers

    signers = signers_from_args(args)  # a bad key fails before any model is loaded
    data_name, texts = corpus_texts(args)
    say(args, f"loading {args.source} and {args.target} ...", world)
    src, tgt = load_models(args, world, args.source, args.target)
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
        world=world,
    )
    if not world.main:
        return 0  # rank 0 writes the package
    for t, cand in sorted(corr.best().items()):
        say(
            args,
            f"target layer {t:3d} <- source layer {cand.source_layer:3d}  (R2 {cand.r2}, CKA {cand.cka:.3f})",
        )
    dataset = dataset_entry(data_name, texts[: paired.end], paired.n)
    meta = meta_from_args(args, "correspondence", f"layer correspondence {src.label} -> {tgt.label}")
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
            **world.provenance(),
            "device": args.device,
            "dtype": args.dtype,
        },
    )
    out = builder.write(args.output, signers=signers)
    if args.heatmap:
        heatmap(corr, args.heatmap, source_name=src.label, target_name=tgt.label)
        say(args, f"heatmap {args.heatmap}")
    return report_written(out)
