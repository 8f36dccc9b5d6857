"""The conformance runner: drives any implementation through the CLI protocol in README.md.

Standard library only, and it never imports mindvec: the implementation under test is a
command, whatever its language.

    python -m conformance_tests run [--run GLOB] [--skip GLOB] [--timeout S] [--parallel N]
                                    [--json] [--strict-codes] [--cases DIR] -- IMPL...
    python -m conformance_tests list [--run GLOB] [--skip GLOB] [--json] [--cases DIR]
    python -m conformance_tests copy DEST
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance_tests.codes import REJECTION_CLASSES, class_of
from conformance_tests.recipes import case_file
from conformance_tests.tagged import compare

SUITE_DIR = Path(__file__).resolve().parent
DEFAULT_CASES = SUITE_DIR / "cases"
CASE_FILE = "case.json"

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Case:
    """One case: its metadata (see schemas/conformance-case.schema.json) and its folder."""

    id: str
    folder: Path
    meta: dict[str, Any]

    @property
    def requirements(self) -> list[str]:
        return list(self.meta.get("requirements", []))

    @property
    def expected(self) -> dict[str, Any]:
        return dict(self.meta["expected"])

    @property
    def result(self) -> str:
        return str(self.meta["expected"]["result"])


@dataclass
class Outcome:
    """What happened when one case ran."""

    id: str
    requirements: list[str]
    expected: str
    ok: bool
    got: str
    reason: str = ""
    seconds: float = 0.0
    argv: list[str] = field(default_factory=list)
    skipped: bool = False


class SuiteError(Exception):
    """The suite itself (not the implementation) is broken or was called wrongly."""


def load_cases(cases_dir: Path) -> list[Case]:
    """Every case under ``cases_dir``, sorted by id."""
    if not cases_dir.is_dir():
        raise SuiteError(f"no case folder at {cases_dir}; pass --cases DIR or regenerate the suite")
    cases = []
    for meta_path in sorted(cases_dir.glob(f"*/{CASE_FILE}")):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SuiteError(f"{meta_path}: unreadable case metadata ({exc})") from exc
        case_id = meta.get("id")
        if case_id != meta_path.parent.name:
            raise SuiteError(f"{meta_path}: id {case_id!r} must equal its folder name")
        cases.append(Case(id=case_id, folder=meta_path.parent, meta=meta))
    return cases


def select(cases: Sequence[Case], run: Sequence[str], skip: Sequence[str]) -> list[Case]:
    """Cases whose id matches any ``run`` glob (all when none) and no ``skip`` glob."""
    chosen = []
    for case in cases:
        if run and not any(fnmatch.fnmatchcase(case.id, pattern) for pattern in run):
            continue
        if any(fnmatch.fnmatchcase(case.id, pattern) for pattern in skip):
            continue
        chosen.append(case)
    return chosen


def build_argv(impl: Sequence[str], case: Case, scratch: Path) -> list[str]:
    """The command line for ``case``; a state file is copied (a recipe built) into ``scratch`` first."""
    command = case.meta["command"]
    op = command["op"]
    if op == "trust-check":
        argv = [*impl, op, "--trust", str(case.folder / command["trust"])]
        if "state" in command:
            argv += ["--state", str(case.folder / command["state"])]
        return argv
    argv = [*impl, op, str(case_file(case.folder, command, scratch))]
    if op == "verify":
        argv += ["--trust", str(case.folder / command["trust"])]
        if "state" in command:
            state_copy = scratch / Path(command["state"]).name
            shutil.copyfile(case.folder / command["state"], state_copy)
            argv += ["--state", str(state_copy)]
        if "now" in command:
            argv += ["--now", command["now"]]
        if "threshold" in command:
            argv += ["--threshold", str(command["threshold"])]
    elif op != "decode":
        raise SuiteError(f"case {case.id}: unknown op {op!r}")
    return argv


def _last_json_line(text: str) -> Any:
    for line in reversed(text.splitlines()):
        if line.strip():
            return json.loads(line)
    raise ValueError("nothing on the stream")


def _describe_signal(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def judge(case: Case, returncode: int, stdout: str, stderr: str, strict: bool) -> tuple[bool, str, str]:
    """(passed, what the implementation did, why it failed) for a finished run."""
    expected = case.expected
    result = expected["result"]
    if returncode < 0:
        return False, "crash", f"crashed: killed by {_describe_signal(returncode)}"
    if returncode not in (0, 1):
        return False, "crash", f"crashed: exit code {returncode} (only 0 and 1 are allowed)"
    if returncode == 0:
        try:
            report = json.loads(stdout)
        except ValueError as exc:
            return False, "accepted", f"exit 0 but stdout is not one JSON value ({exc})"
        if result == "acceptable":
            return True, "accepted", ""
        if result != "valid":
            return False, "accepted", f"accepted, expected {result} [{expected['code']}]"
        key = {"decode": "summary", "verify": "verdict", "trust-check": "trust"}[case.meta["command"]["op"]]
        want = expected[key]
        if not isinstance(report, dict):
            return False, "accepted", "stdout is not a JSON object"
        if key == "verdict":
            report = {name: report.get(name) for name in want}
        diff = compare(want, report)
        if diff:
            return False, "accepted", f"wrong {key}: {diff}"
        return True, "accepted", ""
    # returncode == 1: a rejection; its JSON is the last non-empty line of stderr
    try:
        error = _last_json_line(stderr)
        code = error["code"]
        if not isinstance(code, str) or not isinstance(error.get("message", ""), str):
            raise TypeError("code and message must be strings")
    except (ValueError, KeyError, TypeError) as exc:
        return False, "crash", f"exit 1 without a {{code, message}} JSON object on stderr ({exc})"
    klass = class_of(code) or str(error.get("class", "unknown"))
    got = f"{klass} [{code}]"
    if result == "valid":
        return False, got, f"rejected a valid case with {got}: {error.get('message', '')}"
    if result == "acceptable":
        allowed = expected.get("codes")
        if allowed is None:
            ok = klass in REJECTION_CLASSES
        elif strict:
            ok = code in allowed
        else:
            ok = klass in {class_of(c) for c in allowed}
        return ok, got, "" if ok else f"rejected with {got}, allowed only {allowed}"
    if strict and code != expected["code"]:
        return False, got, f"expected {result} [{expected['code']}], got {got}"
    if klass != result:
        return False, got, f"expected {result} [{expected['code']}], got {got}"
    return True, got, ""


def run_case(case: Case, impl: Sequence[str], timeout: float, strict: bool) -> Outcome:
    """Run ``case`` against ``impl`` and judge the result."""
    expected = case.result
    if expected not in ("valid", "acceptable"):
        expected += f" [{case.expected['code']}]"
    with tempfile.TemporaryDirectory(prefix="mvconf-") as scratch:
        argv = build_argv(impl, case, Path(scratch))
        start = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(
                case.id, case.requirements, expected, False, "timeout",
                f"crashed: still running after {timeout:g} s", time.monotonic() - start, argv,
            )  # fmt: skip
        except OSError as exc:
            raise SuiteError(f"cannot start the implementation {impl[0]!r}: {exc}") from exc
        seconds = time.monotonic() - start
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    ok, got, reason = judge(case, proc.returncode, stdout, stderr, strict)
    if not ok and got == "crash":
        tail = [line for line in stderr.splitlines() if line.strip()][-1:]
        if tail:
            reason += f" (stderr: {tail[0][:200]})"
    return Outcome(case.id, case.requirements, expected, ok, got, reason, seconds, argv)


#: what an implementation that does not answer ``capabilities`` supports (protocol 1)
PROTOCOL_1_OPS = frozenset({"decode", "verify"})


def capabilities(impl: Sequence[str], timeout: float) -> frozenset[str]:
    """The operations ``IMPL capabilities`` announces; protocol 1 when it does not answer."""
    try:
        proc = subprocess.run(
            [*impl, "capabilities"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        answer = json.loads(proc.stdout.decode("utf-8", errors="replace")) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        answer = None
    ops = answer.get("ops") if isinstance(answer, dict) else None
    if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
        return PROTOCOL_1_OPS
    return PROTOCOL_1_OPS | frozenset(ops)


def run_suite(
    cases: Sequence[Case], impl: Sequence[str], *, timeout: float, parallel: int, strict: bool
) -> list[Outcome]:
    """Run ``cases``, ``parallel`` at a time; outcomes come back in case order.

    A case whose operation the implementation does not announce is skipped, not failed.
    """
    supported = capabilities(impl, timeout)

    def one(case: Case) -> Outcome:
        op = case.meta["command"]["op"]
        if op not in supported:
            return Outcome(case.id, case.requirements, case.result, True, "skipped", f"no {op}", skipped=True)
        return run_case(case, impl, timeout, strict)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, cases))


def _print_outcomes(outcomes: Sequence[Outcome], verbose: bool) -> None:
    for outcome in outcomes:
        if outcome.ok and not verbose:
            continue
        status = "ok  " if outcome.ok else "FAIL"
        reqs = ", ".join(outcome.requirements) or "-"
        line = f"{status} {outcome.id} [{reqs}]"
        if not outcome.ok:
            line += f": {outcome.reason}"
        print(line)
    failed = sum(not outcome.ok for outcome in outcomes)
    skipped = sum(outcome.skipped for outcome in outcomes)
    ran = len(outcomes) - skipped
    note = f", {skipped} skipped (operations the implementation does not announce)" if skipped else ""
    print(f"{ran - failed} passed, {failed} failed, {len(outcomes)} cases{note}")
    if failed:
        failing_reqs = sorted(
            {req for outcome in outcomes if not outcome.ok for req in outcome.requirements},
            key=lambda req: (len(req), req),
        )
        print("requirements with a failing case: " + (", ".join(failing_reqs) or "-"))


def cmd_run(args: argparse.Namespace) -> int:
    impl = list(args.impl)
    if impl and impl[0] == "--":
        impl = impl[1:]
    if not impl:
        raise SuiteError("name the implementation after --, e.g. run -- ./my-reader")
    cases = select(load_cases(args.cases), args.run, args.skip)
    if not cases:
        raise SuiteError("no case matches --run/--skip")
    outcomes = run_suite(cases, impl, timeout=args.timeout, parallel=args.parallel, strict=args.strict_codes)
    if args.json:
        failed = sum(not outcome.ok for outcome in outcomes)
        report = {
            "strict_codes": args.strict_codes,
            "passed": len(outcomes) - failed - sum(o.skipped for o in outcomes),
            "skipped": sum(o.skipped for o in outcomes),
            "failed": failed,
            "outcomes": [asdict(outcome) for outcome in outcomes],
        }
        print(json.dumps(report, indent=2))
    else:
        _print_outcomes(outcomes, args.verbose)
    return EXIT_OK if all(outcome.ok for outcome in outcomes) else EXIT_FAILURES


def cmd_list(args: argparse.Namespace) -> int:
    cases = select(load_cases(args.cases), args.run, args.skip)
    if args.json:
        print(json.dumps([case.meta for case in cases], indent=2))
        return EXIT_OK
    for case in cases:
        expected = case.result
        if "code" in case.expected:
            expected += f" [{case.expected['code']}]"
        reqs = ",".join(case.requirements) or "-"
        print(f"{case.id}\t{case.meta['command']['op']}\t{expected}\t{reqs}")
    return EXIT_OK


def cmd_copy(args: argparse.Namespace) -> int:
    """Copy the cases, keys, README, untestable list and case schema into DEST."""
    dest: Path = args.dest
    if dest.exists() and any(dest.iterdir()):
        raise SuiteError(f"{dest} exists and is not empty; choose a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(args.cases, dest / "cases")
    for name in ("keys",):
        if (SUITE_DIR / name).is_dir():
            shutil.copytree(SUITE_DIR / name, dest / name)
    for name in ("README.md", "untestable.json"):
        if (SUITE_DIR / name).is_file():
            shutil.copyfile(SUITE_DIR / name, dest / name)
    schema = SUITE_DIR.parent / "schemas" / "conformance-case.schema.json"
    if schema.is_file():
        shutil.copyfile(schema, dest / schema.name)
    print(f"copied {len(load_cases(dest / 'cases'))} cases to {dest}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance_tests",
        description="mindvec 1.0 conformance suite: run it against any implementation's CLI.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run", action="append", default=[], metavar="GLOB", help="only these case ids")
        p.add_argument("--skip", action="append", default=[], metavar="GLOB", help="leave out these ids")
        p.add_argument("--cases", type=Path, default=DEFAULT_CASES, help="case folder (default: bundled)")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    run = sub.add_parser("run", help="run the cases against IMPL (after --)")
    selection(run)
    run.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds per case (30)")
    run.add_argument("--parallel", type=int, default=os.cpu_count() or 1, metavar="N")
    run.add_argument("--strict-codes", action="store_true", help="require the exact error code")
    run.add_argument("-v", "--verbose", action="store_true", help="print passing cases too")
    run.add_argument("impl", nargs=argparse.REMAINDER, metavar="-- IMPL...")
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="print the cases: id, op, expected result, requirements")
    selection(lst)
    lst.set_defaults(func=cmd_list)

    cp = sub.add_parser("copy", help="copy the cases and keys to DEST, for use without Python")
    cp.add_argument("dest", type=Path)
    cp.add_argument("--cases", type=Path, default=DEFAULT_CASES, help=argparse.SUPPRESS)
    cp.set_defaults(func=cmd_copy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except SuiteError as exc:
        print(f"conformance_tests: {exc}", file=sys.stderr)
        return EXIT_USAGE
