"""``mindvec export`` and ``mindvec import``: vectors to and from llama.cpp, repeng,
steering-vectors and Neuronpedia."""

from __future__ import annotations

import argparse
from typing import Any

from mindvec.cli.options import add_policy_arguments, output_arguments, policy_from_args


def register(subparsers: Any) -> None:
    ex = subparsers.add_parser(
        "export",
        help="write a package's vector as a llama.cpp/repeng GGUF, steering-vectors or Neuronpedia file",
    )
    ex.add_argument("package", help="the .mindvec package (verified first, as steer does)")
    ex.add_argument(
        "--format",
        required=True,
        choices=("llamacpp", "repeng", "steering-vectors", "neuronpedia"),
        help="llamacpp and repeng: a control vector GGUF (direction.N); steering-vectors: safetensors; "
        "neuronpedia: JSON",
    )
    ex.add_argument("-o", "--output", required=True, help="the file to write (atomically)")
    ex.add_argument("--vector", help="the vector's name (default: the only one)")
    ex.add_argument("--model", help="the vector's model name, in a package for several models")
    ex.add_argument("--layers", help="a subset of the vector's layers: '4,7' or '3-9'")
    add_policy_arguments(ex)
    ex.set_defaults(func=run_export)

    im = subparsers.add_parser(
        "import",
        help="make a package from a llama.cpp/repeng GGUF, steering-vectors safetensors or Neuronpedia JSON",
    )
    im.add_argument("file", help="the file to import (parsed as untrusted input)")
    im.add_argument(
        "--format", required=True, choices=("llamacpp", "repeng", "steering-vectors", "neuronpedia")
    )
    im.add_argument(
        "--model", required=True, help="the model it is for: smollm2 | gemma3 | FILE.gguf | FOLDER"
    )
    im.add_argument(
        "--corpus", help="texts, one per line, to measure the calibration on (default: the bundled corpus)"
    )
    im.add_argument(
        "--layer-shift",
        type=int,
        default=0,
        help="move every layer by this many blocks; -1 for files computed one block before llama.cpp"
        " adds them (cvector-generator)",
    )
    im.add_argument("--ignore-model-hint", action="store_true", help="import despite another model_hint")
    im.add_argument("--vector-name", default="imported", help="name of the vector (default imported)")
    output_arguments(im)
    im.set_defaults(func=run_import)


def run_export(args: argparse.Namespace) -> int:
    from mindvec.cli.options import parse_layers
    from mindvec.interop.export import export

    layers = parse_layers(args.layers, 1 << 20) if args.layers else None
    fmt = "llamacpp" if args.format == "repeng" else args.format  # repeng reads and writes the same GGUF
    out = export(
        args.package,
        args.output,
        format=fmt,
        policy=policy_from_args(args),
        vector=args.vector,
        model=args.model,
        layers=layers,
    )
    print(f"wrote {out} ({args.format})")
    return 0


#: lines of --corpus the calibration reads (one text per line)
CORPUS_LINES = 200


def run_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mindvec.cli.options import load_models, meta_from_args, report_written, signers_from_args
    from mindvec.fit.distributed import SINGLE
    from mindvec.interop.imports import import_vector
    from mindvec.interop.sources import read

    signers = signers_from_args(args)  # a bad key fails before anything is read
    source = read(args.file, args.format)  # a bad file fails before the model is loaded
    texts = None
    if args.corpus:
        from mindvec.fit.vectors import read_lines

        texts = read_lines(args.corpus)[:CORPUS_LINES]
    [lm] = load_models(args, SINGLE, args.model)
    meta = meta_from_args(args, "imported", f"{args.format} vector imported from {Path(args.file).name}")
    builder = import_vector(
        source,
        lm.model,
        lm.tokenizer,
        meta,
        model_ref=lm.ref(),
        name=args.vector_name,
        texts=texts,
        layer_shift=args.layer_shift,
        ignore_model_hint=args.ignore_model_hint,
        batch_size=args.batch_size,
        max_tokens=min(args.max_tokens, 128),
    )
    return report_written(builder.write(args.output, signers=signers))
