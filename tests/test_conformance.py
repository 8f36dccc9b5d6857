"""The conformance suite: cases, generator, runner and adapters (issue 7).

The reference adapter must pass every case with exact codes; each deliberately broken
adapter must fail the cases aimed at it; regenerating the cases must reproduce every
byte; every [R-n] of the spec must be covered by a case or listed, with a reason, in
conformance_tests/untestable.json; every case.json must match its JSON Schema.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance_tests import codes, runner, tagged
from mindvec import errors

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "conformance_tests"
CASES = SUITE / "cases"
SPEC = ROOT / "spec" / "mindvec-1.1.md"
SCHEMA = ROOT / "schemas" / "conformance-case.schema.json"
REF_ADAPTER = SUITE / "adapters" / "mindvec_ref.py"
BROKEN = ("skip_signatures", "ignore_trailing", "accept_noncanonical")
CONTROLS = ("valid-minimal-f32", "valid-verify-one-signature", "malformed-magic-first-byte")


def run_suite(*args: str, impl: Path) -> tuple[int, dict[str, Any]]:
    """Run the runner as a subprocess with --json and return (exit code, report)."""
    command = [sys.executable, "-m", "conformance_tests", "run", "--json", "--parallel", "2", *args]
    proc = subprocess.run(
        [*command, "--", sys.executable, str(impl)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def failures(report: dict[str, Any]) -> dict[str, str]:
    return {o["id"]: o["reason"] for o in report["outcomes"] if not o["ok"]}


def all_cases() -> list[runner.Case]:
    return runner.load_cases(CASES)


def spec_ids() -> set[str]:
    return set(re.findall(r"\[(R-\d+)\]", SPEC.read_text(encoding="utf-8")))


@pytest.mark.req("R-69", "R-82")
def test_reference_adapter_passes_every_case_strictly() -> None:
    """[R-69] [R-82] The project's reader gives the exact expected code or summary for every case."""
    code, report = run_suite("--strict-codes", impl=REF_ADAPTER)
    assert report["failed"] == 0, "\n".join(f"{k}: {v}" for k, v in failures(report).items())
    assert code == 0
    assert report["passed"] == len(all_cases()) >= 100


@pytest.mark.parametrize("name", BROKEN)
def test_broken_adapter_fails_its_cases(name: str) -> None:
    """Each broken reader fails every case aimed at it, yet passes unrelated controls."""
    module = importlib.import_module(f"conformance_tests.adapters.broken.{name}")
    targets = [case.id for case in runner.select(all_cases(), module.TARGETS, [])]
    assert len(targets) >= 3, f"{name}: too few targeted cases {targets}"
    selection = [arg for glob in (*module.TARGETS, *CONTROLS) for arg in ("--run", glob)]
    code, report = run_suite("--strict-codes", *selection, impl=SUITE / "adapters" / "broken" / f"{name}.py")
    failed = failures(report)
    assert code == 1
    assert sorted(failed) == sorted(targets), f"{name} should fail exactly {targets}, failed {failed}"
    for case_id, reason in failed.items():
        assert "crash" not in reason, f"{case_id}: the broken adapter must be wrong, not crash: {reason}"


def test_regenerating_is_byte_identical(tmp_path: Path) -> None:
    """Running the generator again reproduces every checked-in byte (cases and keys)."""
    from conformance_tests import generate

    generate.generate(tmp_path)
    for name in ("cases", "keys"):
        ours = {p.relative_to(SUITE / name) for p in (SUITE / name).rglob("*") if p.is_file()}
        fresh = {p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("*") if p.is_file()}
        assert ours == fresh, (
            f"{name}: only checked in {sorted(ours - fresh)[:5]}, only new {sorted(fresh - ours)[:5]}"
        )
        changed = [
            str(p)
            for p in sorted(ours)
            if (SUITE / name / p).read_bytes() != (tmp_path / name / p).read_bytes()
        ]
        assert not changed, f"regenerate with 'python -m conformance_tests.generate': {changed[:10]}"


def test_every_requirement_is_covered_or_justified() -> None:
    """Every [R-n] of the spec has a case, or a reason in untestable.json; no case cites a ghost."""
    ids = spec_ids()
    assert ids, "the spec has no [R-n] ids"
    covered = {req for case in all_cases() for req in case.requirements}
    untestable = json.loads((SUITE / "untestable.json").read_text(encoding="utf-8"))["requirements"]
    justified = {item["id"] for item in untestable}
    assert all(item["reason"].strip() for item in untestable)
    uncovered = sorted(ids - covered - justified, key=lambda r: int(r[2:]))
    assert not uncovered, f"requirements with no case and no reason in untestable.json: {uncovered}"
    assert not (covered | justified) - ids, f"ids not in the spec: {sorted((covered | justified) - ids)}"
    assert not covered & justified, f"covered yet listed untestable: {sorted(covered & justified)}"


def test_case_metadata_matches_schema() -> None:
    """Every case.json validates against schemas/conformance-case.schema.json and names real files."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    cases = all_cases()
    for case in cases:
        problems = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(case.meta)
        ]
        assert not problems, f"{case.id}: {problems}"
        command = case.meta["command"]
        for key in ("file", "trust", "state", "recipe"):
            if key in command and not (key == "file" and "recipe" in command):
                assert (case.folder / command[key]).is_file(), f"{case.id}: missing {command[key]}"
        if "code" in case.expected:
            assert case.id.startswith(codes.CODES[case.expected["code"]] + "-")
    results = {case.result for case in cases}
    assert results == {"valid", "malformed", "invalid", "unverified", "usage", "acceptable"}


@pytest.mark.req("R-82")
def test_every_byte_level_code_has_a_case() -> None:
    """[R-82] Each malformed, invalid and unverified code a reader can produce from bytes has a case."""
    expected = {case.expected["code"] for case in all_cases() if "code" in case.expected}
    not_from_bytes = {"model-mismatch", "key-pin", "transfer"}  # need a model, a Hub pin, a download
    byte_codes = {code for code, klass in codes.CODES.items() if klass != codes.USAGE} - not_from_bytes
    assert byte_codes - expected == set()


def test_code_table_matches_mindvec_errors() -> None:
    """The runner's stdlib copy of the code table equals mindvec/errors.py."""
    assert codes.CODES == {code: klass.value for code, (klass, _) in errors.CODES.items()}


def test_valid_cases_cover_dtypes_forms_operations() -> None:
    valid = [case for case in all_cases() if "summary" in case.expected]
    dtypes = {t["dtype"] for case in valid for t in case.expected["summary"]["tensors"].values()}
    assert dtypes == {"F16", "BF16", "F32", "F64"}
    forms, operations, tensor_sets = set(), set(), set()
    for case in valid:
        manifest = case.expected["summary"]["manifest"]
        for item in manifest.get("mappings", []):
            forms.add(item["form"])
            tensor_sets.add((item["form"], tuple(sorted(item["tensors"])), "scale" in item))
        operations.update(v["operation"] for v in manifest.get("vectors", []))
    assert forms == {"linear", "affine", "orthogonal", "low_rank"}
    assert operations == {"add", "project_out", "clamp"}
    assert ("affine", ("bias", "weight"), False) in tensor_sets
    assert ("affine", ("source_mean", "target_mean", "weight"), False) in tensor_sets
    assert any(form == "orthogonal" and scaled for form, _, scaled in tensor_sets)


def test_runner_is_stdlib_only() -> None:
    """The runner modules import nothing outside the standard library and conformance_tests."""
    for name in ("runner.py", "codes.py", "tagged.py", "__main__.py", "__init__.py"):
        tree = ast.parse((SUITE / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top == "conformance_tests", (
                    f"{name} imports {module}"
                )


def test_tagged_json_rules() -> None:
    assert tagged.tag({"a": 1, "b": 1.0, "c": b"\x01", "$d": None}) == {
        "a": 1,
        "b": {"$float": "1.0"},
        "c": {"$bytes": "01"},
        "$$d": None,
    }
    assert tagged.compare({"$float": "1.0"}, {"$float": "1"}) is None
    assert tagged.compare({"$float": "0.1"}, {"$float": "1e-1"}) is None
    assert tagged.compare({"$float": "0.0"}, {"$float": "-0.0"})
    assert tagged.compare(1, {"$float": "1.0"})
    assert tagged.compare(1, True)
    assert tagged.compare(1, 1.0)  # an untagged JSON float is never a manifest value
    assert tagged.compare({"$bytes": "ab"}, {"$bytes": "AB"})
    assert tagged.compare({"x": [1, 2]}, {"x": [1, 2, 3]})


def _case(expected: dict[str, Any], op: str = "decode") -> runner.Case:
    meta = {"id": "t", "requirements": ["R-1"], "command": {"op": op, "file": "p"}, "expected": expected}
    return runner.Case("t", Path("."), meta)


def test_runner_judges_classes_codes_and_crashes() -> None:
    reject = _case({"result": "malformed", "code": "trailing"})
    error = json.dumps({"code": "signature-block", "message": "x"})
    assert runner.judge(reject, 1, "", "log line\n" + error, strict=False)[0]
    assert not runner.judge(reject, 1, "", error, strict=True)[0]
    assert not runner.judge(reject, 1, "", json.dumps({"code": "schema", "message": "x"}), strict=False)[0]
    assert runner.judge(reject, 2, "", error, strict=False)[1] == "crash"
    assert runner.judge(reject, -11, "", "", strict=False)[1] == "crash"
    assert runner.judge(reject, 1, "", "Traceback ...", strict=False)[1] == "crash"
    assert not runner.judge(reject, 0, "{}", "", strict=False)[0]
    acceptable = _case({"result": "acceptable", "flag": "Mapping", "codes": ["value"]})
    assert runner.judge(acceptable, 0, "{}", "", strict=True)[0]
    assert runner.judge(acceptable, 1, "", json.dumps({"code": "value", "message": ""}), strict=True)[0]
    assert not runner.judge(acceptable, 1, "", json.dumps({"code": "shape", "message": ""}), strict=True)[0]


def test_list_and_copy(tmp_path: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "conformance_tests", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = listed.stdout.splitlines()
    assert len(lines) == len(all_cases())
    assert all(len(line.split("\t")) == 4 for line in lines)
    dest = tmp_path / "suite"
    subprocess.run(
        [sys.executable, "-m", "conformance_tests", "copy", str(dest)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert len(runner.load_cases(dest / "cases")) == len(all_cases())
    for name in ("README.md", "untestable.json", "conformance-case.schema.json", "keys/keys.json"):
        assert (dest / name).is_file(), name
    again = subprocess.run(
        [sys.executable, "-m", "conformance_tests", "copy", str(dest)], cwd=ROOT, capture_output=True
    )
    assert again.returncode == 2  # never overwrites


def test_generate_writes_into_the_suite_by_default() -> None:
    """`python -m conformance_tests.generate` with no --out rewrites conformance_tests/cases."""
    from conformance_tests import generate

    assert generate.SUITE_DIR == SUITE


def test_a_protocol_1_adapter_skips_trust_check_cases(tmp_path: Path) -> None:
    """trust-check is optional: an adapter that does not answer `capabilities` keeps passing."""
    old = tmp_path / "protocol1.py"
    old.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from conformance_tests.adapters import mindvec_ref\n"
        "if sys.argv[1:2] in (['capabilities'], ['trust-check']):\n"
        "    sys.exit(2)  # a 1.0 adapter knows neither\n"
        "sys.exit(mindvec_ref.main())\n"
    )
    code, report = run_suite(
        "--strict-codes",
        "--run",
        "usage-trust-store-*",
        "--run",
        "valid-trust-*",
        "--run",
        "valid-minimal-f32",
        impl=old,
    )
    assert code == 0 and report["failed"] == 0
    skipped = {o["id"] for o in report["outcomes"] if o["skipped"]}
    assert skipped and all(i.startswith(("usage-trust-store", "valid-trust")) for i in skipped)
    assert report["passed"] == 1  # the decode case still runs
    code, report = run_suite("--strict-codes", "--run", "usage-trust-store-*", impl=REF_ADAPTER)
    assert code == 0 and report["skipped"] == 0 and report["passed"] > 20
