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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance_tests.runner import Case, build_argv, judge, load_cases

CASES_DIR = Path(__file__).resolve().parent / "cases"


@dataclass(frozen=True)
class Mutant:
    """One rule dropped or one order changed, in function ``function`` of ``module``."""

    name: str
    module: str
    function: str  # "name" or "Class.name"
    old: str
    new: str
    requirements: tuple[str, ...]


def _swap(first: str, second: str) -> tuple[str, str]:
    return f"{first}\n    {second}", f"{second}\n    {first}"


SEMANTICS = "mindvec.manifest"
MUTANTS: list[Mutant] = [
    # step 1: structure
    Mutant(
        "no-magic",
        "mindvec.container",
        "_check_head",
        "if _prefix_differs(head, 0, MAGIC):",
        "if False:",
        ("R-1",),
    ),
    Mutant(
        "no-major",
        "mindvec.container",
        "_check_head",
        'if _prefix_differs(head, 8, struct.pack("<H", FORMAT_VERSION[0])):',
        "if False:",
        ("R-2",),
    ),
    Mutant(
        "no-flags",
        "mindvec.container",
        "_check_head",
        "if _prefix_differs(head, 12, bytes(4)):",
        "if False:",
        ("R-4",),
    ),
    Mutant(
        "truncation-before-flags",
        "mindvec.container",
        "_check_head",
        "    if _prefix_differs(head, 0, MAGIC):",
        '    if len(head) < PREAMBLE_SIZE:\n        raise MalformedError("truncated", "short")\n'
        "    if _prefix_differs(head, 0, MAGIC):",
        ("R-5",),
    ),
    Mutant(
        "no-manifest-bound",
        "mindvec.container",
        "_check_bounds",
        "if not 1 <= manifest_len <= MAX_MANIFEST:",
        "if manifest_len < 1:",
        ("R-6",),
    ),
    Mutant(
        "no-payload-bound",
        "mindvec.container",
        "_check_bounds",
        "if not MIN_PAYLOAD <= payload_len <= MAX_PAYLOAD:",
        "if payload_len > MAX_PAYLOAD:",
        ("R-7",),
    ),
    Mutant(
        "no-file-size-bound",
        "mindvec.container",
        "_check_bounds",
        "if needed > file_size:",
        "if False:",
        ("R-8",),
    ),
    Mutant(
        "no-trailer-magic",
        "mindvec.container",
        "_check_trailer",
        "if magic != TRAILER_MAGIC:",
        "if False:",
        ("R-9",),
    ),
    Mutant(
        "no-sig-bound",
        "mindvec.container",
        "_check_trailer",
        "if not 1 <= sig_len <= MAX_SIG_BLOCK:",
        "if sig_len < 1:",
        ("R-10",),
    ),
    Mutant(
        "no-trailing", "mindvec.container", "_check_trailer", "if end < file_size:", "if False:", ("R-11",)
    ),
    Mutant(
        "no-padding", "mindvec.container", "read_raw", 'if padding.strip(b"\\x00"):', "if False:", ("R-12",)
    ),
    Mutant(
        "unsorted-signatures",
        "mindvec.container",
        "_check_entries",
        "if keyids != sorted(keyids):",
        "if False:",
        ("R-63",),
    ),
    Mutant(
        "repeated-keyids",
        "mindvec.container",
        "_check_entries",
        "if len(set(keyids)) != len(keyids):",
        "if False:",
        ("R-63",),
    ),
    # steps 3-4: msgpack profile, schema
    Mutant(
        "no-canonical-check",
        "mindvec.canonical",
        "decode",
        "if encode(value) != bytes(data):",
        "if False:",
        ("R-22",),
    ),
    Mutant(
        "nan-allowed",
        "mindvec.canonical",
        "_check_scalar_or_container",
        "if isinstance(item, float) and not math.isfinite(item):",
        "if False:",
        ("R-18",),
    ),
    Mutant(
        "no-schema", "mindvec.manifest", "validate", "    validate_schema(manifest, version)\n", "", ("R-23",)
    ),
    Mutant(
        "no-format-check",
        SEMANTICS,
        "check_semantics",
        "    _check_format(manifest, version)\n",
        "",
        ("R-27",),
    ),
    Mutant(
        "no-critical-check", SEMANTICS, "check_semantics", "    _check_critical(manifest)\n", "", ("R-28",)
    ),
    Mutant("no-model-refs", SEMANTICS, "check_semantics", "    _check_model_refs(manifest)\n", "", ("R-29",)),
    Mutant(
        "no-unique-names", SEMANTICS, "check_semantics", "    _check_unique_names(manifest)\n", "", ("R-30",)
    ),
    Mutant("no-site-check", SEMANTICS, "check_semantics", "    _check_sites(manifest)\n", "", ("R-31",)),
    Mutant("no-form-check", SEMANTICS, "check_semantics", "    _check_forms(manifest)\n", "", ("R-32",)),
    Mutant("no-range-check", SEMANTICS, "check_semantics", "    _check_ranges(manifest)\n", "", ("R-33",)),
    Mutant(
        "no-reference-check", SEMANTICS, "check_semantics", "    _check_references(manifest)\n", "", ("R-34",)
    ),
    Mutant("no-layer-bound", SEMANTICS, "check_site", "if site.layer >= layers:", "if False:", ("R-56",)),
    Mutant(
        "resid-pre-anywhere",
        SEMANTICS,
        "check_site",
        'if site.point == "resid_pre" and site.layer > 0:',
        "if False:",
        ("R-58",),
    ),
    Mutant(
        "cross-attn-anywhere",
        SEMANTICS,
        "check_site",
        'if site.point == "cross_attn_out" and (site.stack != "decoder" or model.num_encoder_layers is None)'
        ":",
        "if False:",
        ("R-59",),
    ),
    Mutant(
        "duplicate-sites",
        SEMANTICS,
        "_check_sites",
        "if len(set(addresses)) != len(addresses):",
        "if False:",
        ("R-57",),
    ),
    # order inside step 4 (semantics): pairs of adjacent checks swapped
    Mutant(
        "order-refs-before-critical",
        SEMANTICS,
        "check_semantics",
        *_swap("_check_critical(manifest)", "_check_model_refs(manifest)"),
        ("R-28", "R-29"),
    ),
    Mutant(
        "order-sites-before-names",
        SEMANTICS,
        "check_semantics",
        *_swap("_check_unique_names(manifest)", "_check_sites(manifest)"),
        ("R-30", "R-31"),
    ),
    Mutant(
        "order-forms-before-sites",
        SEMANTICS,
        "check_semantics",
        *_swap("_check_sites(manifest)", "_check_forms(manifest)"),
        ("R-31", "R-32"),
    ),
    Mutant(
        "order-references-before-ranges",
        SEMANTICS,
        "check_semantics",
        *_swap("_check_ranges(manifest)", "_check_references(manifest)"),
        ("R-33", "R-34"),
    ),
    # step 5: the embedded safetensors header
    Mutant(
        "no-metadata-check",
        "mindvec.payload",
        "parse_header",
        'if "__metadata__" in obj:',
        "if False:",
        ("R-45",),
    ),
    Mutant(
        "no-tensor-count-bound",
        "mindvec.payload",
        "parse_header",
        "if len(obj) > MAX_TENSORS:",
        "if False:",
        ("R-46",),
    ),
    Mutant(
        "no-contiguity",
        "mindvec.payload",
        "_check_contiguous",
        "if info.begin != position:",
        "if False:",
        ("R-50",),
    ),
    Mutant(
        "no-dtype-check",
        "mindvec.payload",
        "_tensor_info",
        "if dtype not in DTYPES:",
        'if dtype not in DTYPES and dtype != "I32":',
        ("R-48",),
    ),
    Mutant(
        "no-numel-check",
        "mindvec.payload",
        "_tensor_info",
        "if not _numel_matches(shape, info.nbytes, DTYPES[dtype][0]):",
        "if not _numel_matches(shape, info.nbytes, DTYPES[dtype][0]) and False:",
        ("R-49",),
    ),
    Mutant(
        "dtype-after-shape",
        "mindvec.payload",
        "_tensor_info",
        "    if dtype not in DTYPES:\n        raise InvalidError(",
        "    if not isinstance(shape, list):\n        _bad('shape first')\n"
        "    if dtype not in DTYPES:\n        raise InvalidError(",
        ("R-47", "R-48"),
    ),
]


MUTANTS += [
    # step 2: signatures
    Mutant(
        "no-signature-check",
        "mindvec.policy",
        "check_signatures",
        "if not key.verify_manifest(manifest_bytes, entry):",
        "if False:",
        ("R-65",),
    ),
    # step 5: payload header
    Mutant(
        "no-header-bound",
        "mindvec.payload",
        "read_header_len",
        "if header_len > MAX_SAFETENSORS_HEADER:",
        "if False:",
        ("R-40",),
    ),
    Mutant(
        "no-header-alignment",
        "mindvec.payload",
        "read_header_len",
        "if (8 + header_len) % ALIGN:",
        "if False:",
        ("R-41",),
    ),
    Mutant(
        "no-header-digest",
        "mindvec.package",
        "Package.from_raw",
        'if not hmac.compare_digest(header_digest(header_bytes), manifest["payload"]["header_sha256"]):',
        "if False:",
        ("R-42",),
    ),
    Mutant(
        "header-digest-after-parse",
        "mindvec.package",
        "Package.from_raw",
        "    header_bytes = _read_header_bytes(raw)\n",
        "    header_bytes = _read_header_bytes(raw)\n"
        "    parse_header(header_bytes, raw.layout.payload_len)\n",
        ("R-42", "R-43"),
    ),
    Mutant(
        "no-header-brace",
        "mindvec.payload",
        "_load_json",
        'if not header_bytes.startswith(b"{"):',
        "if False:",
        ("R-43",),
    ),
    Mutant(
        "json-signed-integers",
        "mindvec.payload",
        "_load_json",
        "parse_int=_plain_int,",
        "parse_int=int,",
        ("R-43",),
    ),
    Mutant(
        "no-tail-spaces-check",
        "mindvec.payload",
        "_load_json",
        'if text[end:].strip(" "):',
        "if False:",
        ("R-43",),
    ),
    Mutant(
        "no-name-consistency",
        "mindvec.manifest",
        "check_header",
        "if set(tensors) != digested:",
        "if False:",
        ("R-51",),
    ),
    Mutant(
        "no-shape-check", "mindvec.manifest", "check_header", "if actual != shape:", "if False:", ("R-52",)
    ),
    # step 6: values
    Mutant(
        "non-finite-allowed",
        "mindvec.values",
        "check_values",
        "if values.size and not bool(np.isfinite(values).all()):",
        "if False:",
        ("R-54",),
    ),
    Mutant(
        "zero-vector-allowed",
        "mindvec.values",
        "check_values",
        "if vector and not bool(np.any(values)):",
        "if False:",
        ("R-54",),
    ),
    # step 7: trust policy and rollback
    Mutant(
        "revoked-counts", "mindvec.policy", "decide", "if store.is_revoked(keyid):", "if False:", ("R-74",)
    ),
    Mutant(
        "no-validity-window",
        "mindvec.policy",
        "decide",
        "window = [e for e in entries if e.in_window(now)]",
        "window = list(entries)",
        ("R-73",),
    ),
    Mutant(
        "no-rollback",
        "mindvec.state",
        "_check_rollback",
        "if version < previous.version:",
        "if False:",
        ("R-75",),
    ),
    Mutant(
        "same-version-new-content",
        "mindvec.state",
        "_check_rollback",
        "if version == previous.version and identity != previous.identity:",
        "if False:",
        ("R-75",),
    ),
]


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
    chosen = [m for m in MUTANTS if not names or m.name in names]
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
