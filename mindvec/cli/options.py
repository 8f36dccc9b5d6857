"""Options that several commands share: the policy flags, and the producers' output, corpus and key flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindvec.errors import UsageError
from mindvec.policy import Policy
from mindvec.trust import default_trust_path

if TYPE_CHECKING:
    from mindvec.fit.build import Meta


def add_policy_arguments(parser: argparse.ArgumentParser, *, repo: bool = True, opt_ins: bool = True) -> None:
    """``--trust --state --threshold --now [--repo] [--allow-unsigned --allow-untrusted]``."""
    parser.add_argument("--trust", help=f"trust store (default {default_trust_path()})")
    parser.add_argument("--state", help="rollback/TOFU state file; a verified package is recorded there")
    parser.add_argument("--threshold", type=int, default=1, help="trusted signatures required (default 1)")
    parser.add_argument("--now", help="check validity windows at this UTC time (ISO 8601); default: now")
    if repo:
        parser.add_argument("--repo", help="the Hub repo the file came from (for repos= scopes and pins)")
    if opt_ins:
        parser.add_argument("--allow-unsigned", action="store_true", help="accept an unsigned package")
        parser.add_argument(
            "--allow-untrusted", action="store_true", help="accept a valid signature by an unknown key"
        )


def policy_from_args(args: argparse.Namespace) -> Policy:
    return Policy(
        trust=args.trust,
        state=args.state,
        threshold=args.threshold,
        now=args.now,
        allow_unsigned=getattr(args, "allow_unsigned", False),
        allow_untrusted=getattr(args, "allow_untrusted", False),
        repo=getattr(args, "repo", None),
    )


DEFAULT_LICENSE = "CC-BY-4.0"


def output_arguments(p: argparse.ArgumentParser, *, models: bool = True) -> None:
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
    device_arguments(p)


def device_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N (default auto)"
    )
    p.add_argument(
        "--dtype",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="model weights and activations (default fp32)",
    )
    p.add_argument(
        "--device-map",
        choices=("auto", "balanced", "sequential"),
        help="spread each model over every visible device (transformers device_map), instead of --device",
    )


def resolve_device(name: str | None) -> str:
    from mindvec.fit.device import resolve_device as resolve

    return resolve(name)


def load_models(args: argparse.Namespace, world: Any, *specs: str) -> list[Any]:
    """Load each model on this rank's device (or over a device map), in ``--dtype``."""
    from mindvec.fit import models
    from mindvec.fit.distributed import local_device

    device = local_device(world, resolve_device(args.device))
    return [models.load(spec, dtype=args.dtype, device=device, device_map=args.device_map) for spec in specs]


def corpus_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--corpus", help="a UTF-8 text file (one document per line)")
    g.add_argument(
        "--corpus-asset",
        help="a gensim test corpus, e.g. lee_background.cor, or 'wikipedia' (its Wikipedia sample's prose)",
    )
    p.add_argument("--chunk-chars", type=int, default=600, help="characters per text chunk (default 600)")
    p.add_argument("--pairing", choices=("aligned", "chunk"), default="aligned", help="token pairing mode")


def parse_layers(text: str, n_layers: int, flag: str = "--layers") -> list[int]:
    """``all``, ``4,7`` or ``3-9`` -> sorted layer indices within ``n_layers``."""
    if text == "all":
        return list(range(n_layers))
    out: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    except ValueError as exc:
        raise UsageError("argument", f"{flag} {text!r}: use 'all', '4,7' or '3-9'") from exc
    bad = [x for x in out if not 0 <= x < n_layers]
    if bad:
        raise UsageError("argument", f"{flag} {bad} out of range: the model has {n_layers} layers")
    return sorted(out)


def signers_from_args(args: argparse.Namespace) -> list[Any]:
    if not args.sign:
        return []
    from mindvec.cli.keys import load_secret_key

    return [load_secret_key(args.sign, args.passphrase_file)]


def package_id(args: argparse.Namespace, default: str) -> str:
    if args.package_id:
        return str(args.package_id)
    stem = Path(args.output).name.removesuffix(".mindvec").lower()
    clean = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip("-._")
    return f"local/{clean or default}"


def meta_from_args(args: argparse.Namespace, default: str, description: str) -> Meta:
    from mindvec.fit.build import Meta

    return Meta(
        package_id=package_id(args, default),
        name=args.name,
        description=args.description or description,
        intended_effect=args.effect,
        creator=args.creator,
        license=args.license,
    )


def corpus_texts(args: argparse.Namespace) -> tuple[str, list[str]]:
    from mindvec import assets
    from mindvec.fit.pairing import split_chunks

    if args.corpus_asset == "wikipedia":
        name, text = "wikipedia", assets.wikipedia()
    elif args.corpus_asset:
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


def say(args: argparse.Namespace, text: str, world: Any = None) -> None:
    """Progress for people: on stderr, and only from rank 0 of a torchrun job."""
    if not getattr(args, "quiet", False) and (world is None or world.main):
        print(text, file=sys.stderr)


def report_written(path: Path) -> int:
    from mindvec.package import open as open_package

    with open_package(path) as pkg:
        print(f"wrote {path} (identity {pkg.identity.hex()})")
    return 0
