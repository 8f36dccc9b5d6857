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

from mindvec.cli.signals import Terminated, terminate_as_interrupt
from mindvec.errors import ErrorClass, MindvecError

# Modules are imported only when the command line is parsed, so a command group
# whose extra (torch, hub) is missing does not break the others.
COMMAND_MODULES = (
    "mindvec.cli.inspect",
    "mindvec.cli.keys",
    "mindvec.cli.sign",
    "mindvec.cli.trust",
    "mindvec.cli.verify",
    "mindvec.cli.make",
    "mindvec.cli.probe",
    "mindvec.cli.export",
    "mindvec.cli.hub",
)

#: exit codes: 1 for a bad input (malformed, invalid, unverified), 2 for a usage error
#: (arguments, files that cannot be read, configuration), as `mindvec verify` has always done
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
        with terminate_as_interrupt():
            return int(args.func(args))
    except MindvecError as exc:
        print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.klass is ErrorClass.USAGE else EXIT_ERROR
    except OSError as exc:  # a file-system failure no layer below turned into an error of its own
        print(f"error[io]: {exc.strerror or exc} ({exc.filename or 'no file name'})", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Terminated):
        print("interrupted; no partial output was left", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
