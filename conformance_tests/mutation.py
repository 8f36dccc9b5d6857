"""Mutation testing of the suite: does every case that cites a rule fail a reader without it?

A mutant is the reference reader with one rule dropped or two checks swapped, written as a
text edit of one function's source (``old`` -> ``new``, each found exactly once). The edited
function is compiled with the real module's globals and swapped in, in-process, for as long
as the mutant runs; every module that imported the function by name sees the mutant too.
Then the cases that cite the mutant's requirements run through the reference adapter, in this
process (a CLI run per case per mutant would take hours). A mutant is *killed* when at least
one of those cases fails; a survivor is a reading of the spec that the suite lets through.

    python -m conformance_tests.mutation            # every mutant: killed or survived
    python -m conformance_tests.mutation NAME ...   # some
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import io
import sys
import tempfile
import textwrap
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from conformance_tests.mutants import ALL, MUTANTS, Mutant
from conformance_tests.runner import Case, build_argv, judge, load_cases

CASES_DIR = Path(__file__).resolve().parent / "cases"


def _function_source(module: types.ModuleType, qualname: str) -> str:
    obj: Any = module
    for part in qualname.split("."):
        obj = inspect.getattr_static(obj, part)
    if isinstance(obj, (classmethod, staticmethod)):
        obj = obj.__func__
    return textwrap.dedent(inspect.getsource(obj))


def _compile(module: types.ModuleType, mutant: Mutant) -> types.FunctionType:
    source = _function_source(module, mutant.function)
    if source.count(mutant.old) != 1:
        raise LookupError(
            f"mutant {mutant.name}: its text is not found once in {mutant.module}.{mutant.function}"
        )
    edited = source.replace(mutant.old, mutant.new)
    tree = ast.parse(edited)
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    func.decorator_list = []
    scratch: dict[str, Any] = {}
    exec(compile(ast.Module([func], []), f"<mutant {mutant.name}>", "exec"), module.__dict__, scratch)
    new = scratch[func.name]
    assert isinstance(new, types.FunctionType)
    return new


@contextlib.contextmanager
def applied(mutant: Mutant) -> Iterator[None]:
    """Swap the mutated function in (the module and every module that imported it by name)."""
    module = importlib.import_module(mutant.module)
    new = _compile(module, mutant)
    owner: Any = module
    *path, name = mutant.function.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = inspect.getattr_static(owner, name)
    patched: list[tuple[Any, str, Any]] = [(owner, name, original)]
    if isinstance(original, (classmethod, staticmethod)):
        setattr(owner, name, type(original)(new))
    else:
        setattr(owner, name, new)
    if not path:
        for other in list(sys.modules.values()):
            if getattr(other, "__name__", "").startswith("mindvec") and other is not module:
                for attr, value in list(vars(other).items()):
                    if value is original:
                        patched.append((other, attr, value))
                        setattr(other, attr, new)
    try:
        yield
    finally:
        for target, attr, value in reversed(patched):
            setattr(target, attr, value)


def run_case(case: Case) -> tuple[bool, str]:
    """Run one case through the reference adapter in this process; (passed, why not)."""
    from conformance_tests.adapters import mindvec_ref

    with tempfile.TemporaryDirectory(prefix="mvmut-") as scratch:
        argv = build_argv([], case, Path(scratch))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = mindvec_ref.main(argv)
    ok, _, reason = judge(case, code, out.getvalue(), err.getvalue(), strict=True)
    return ok, reason


def cases_for(mutant: Mutant, cases: Sequence[Case]) -> list[Case]:
    wanted = set(mutant.requirements)
    return [c for c in cases if wanted & set(c.requirements)]


def killers(mutant: Mutant, cases: Sequence[Case]) -> list[str]:
    """The ids of the cases (citing the mutant's requirements) that the mutant fails."""
    chosen = cases_for(mutant, cases)
    with applied(mutant):
        return [case.id for case in chosen if not run_case(case)[0]]


def main(argv: Sequence[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:])
    cases = load_cases(CASES_DIR)
    chosen = [m for m in (ALL if names else MUTANTS) if not names or m.name in names]
    survivors = []
    for mutant in chosen:
        dead = killers(mutant, cases)
        n = len(cases_for(mutant, cases))
        verdict = f"killed by {len(dead)} of {n} cases" if dead else f"SURVIVED {n} cases"
        print(f"{mutant.name:<34} {','.join(mutant.requirements):<12} {verdict}")
        if not dead:
            survivors.append(mutant.name)
    print(f"# {len(chosen) - len(survivors)} of {len(chosen)} mutants killed; survivors: {survivors}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
