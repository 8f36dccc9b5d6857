"""The ``mindvec`` command: a thin layer over the public API.

Each command group lives in its own module and exposes ``register(subparsers)``,
which adds its sub-commands and sets ``func`` (args -> exit code) on each.
Errors become one line on stderr (``error[code]: message``) and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mindvec.errors import MindvecError

# Modules are imported only when the command line is parsed, so a command group
# whose extra (torch, hub) is missing does not break the others.
COMMAND_MODULES = (
    "mindvec.cli.inspect",
    "mindvec.cli.keys",
    "mindvec.cli.sign",
    "mindvec.cli.trust",
    "mindvec.cli.verify",
    "mindvec.cli.make",
    "mindvec.cli.hub",
)

#: exit code for an error that is not a verification verdict
EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    from mindvec._version import __version__

    parser = argparse.ArgumentParser(prog="mindvec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mindvec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # the command group is not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except MindvecError as exc:
        print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; no partial output was left", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
