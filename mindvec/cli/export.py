"""``mindvec export``: a verified package's vector for llama.cpp, repeng, steering-vectors or Neuronpedia."""

from __future__ import annotations

import argparse
from typing import Any

from mindvec.cli.options import add_policy_arguments, policy_from_args


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
