"""The spec and the code agree: requirement ids, error codes, constants, tables, example.

(a) every numbered requirement of spec/mindvec-1.1.md is claimed by some test under tests/,
    with ``@pytest.mark.req("R-n")`` on a ``test_*`` function (a mention in a docstring or a
    comment is not a claim);
(b) the spec's error-code table is exactly ``mindvec.errors.CODES`` (code and class);
(c) the layout constants in the spec are those of ``mindvec.limits``;
(d) the worked example's hex dump is what spec/tools/make_example.py produces now;
(e) the normative architecture tables are exactly the loader's tables.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "mindvec-1.1.md"
TESTS = ROOT / "tests"

# Built from parts so that this file's own source holds no citation-shaped text.
_ID = r"R-(\d+)"
DEFINITION = re.compile(r"\[" + _ID + r"\]")
KEYWORD = re.compile(r"\b(MUST|SHALL|REQUIRED)\b")


def spec_text() -> str:
    return SPEC.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of the section whose heading line starts with ``heading``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    level = len(heading) - len(heading.lstrip("#"))
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("#") and len(line) - len(line.lstrip("#")) <= level:
            break
        body.append(line)
    return "\n".join(body)


def table_rows(text: str) -> list[list[str]]:
    """Cells of each markdown table row, header and separator rows dropped."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [row for row in rows if row]


def spec_ids() -> list[int]:
    return [int(n) for n in DEFINITION.findall(spec_text())]


def marked_ids(source: str) -> list[tuple[str, int]]:
    """(test name, n) for every ``@pytest.mark.req("R-n", ...)`` on a ``test_*`` function."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or not node.name.startswith("test_"):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "pytest.mark.req":
                for arg in deco.args:
                    assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), ast.unparse(deco)
                    match = re.fullmatch(_ID, arg.value)
                    assert match, f"{node.name}: {arg.value!r} is not a requirement id"
                    found.append((node.name, int(match[1])))
    return found


def cited_ids() -> dict[int, set[str]]:
    """Requirement -> the tests that claim it with the ``req`` marker."""
    cited: dict[int, set[str]] = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        for name, n in marked_ids(path.read_text(encoding="utf-8")):
            cited.setdefault(n, set()).add(f"{path.relative_to(ROOT)}::{name}")
    return cited


def test_a_docstring_or_comment_is_not_a_claim() -> None:
    source = (
        "import pytest\n"
        "def test_a():\n    'checks [R-1]'\n    # and [R-2]\n"
        "@pytest.mark.req('R-3')\ndef test_b(): pass\n"
        "@pytest.mark.req('R-4')\ndef helper(): pass\n"
    )
    assert marked_ids(source) == [("test_b", 3)]


def load_make_example() -> ModuleType:
    path = ROOT / "spec" / "tools" / "make_example.py"
    spec = importlib.util.spec_from_file_location("mindvec_spec_make_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- (a) requirement ids


#: ids were numbered in order of appearance up to this one; later ones are never renumbered
IN_ORDER_UP_TO = 85


def test_ids_unique_and_consecutive() -> None:
    """Ids are 1..N with no gap or repeat; R-1..R-85 in order, later ones wherever they stand."""
    ids = spec_ids()
    assert ids, "the spec defines no requirement ids"
    assert len(ids) == len(set(ids)), f"ids defined twice: {sorted({i for i in ids if ids.count(i) > 1})}"
    assert sorted(ids) == list(range(1, len(ids) + 1)), "ids must be 1..N without gaps"
    first = [i for i in ids if i <= IN_ORDER_UP_TO]
    assert first == list(range(1, IN_ORDER_UP_TO + 1)), "R-1..R-85 keep their order"


def test_every_keyword_carries_an_id() -> None:
    """Every MUST / MUST NOT / SHALL / REQUIRED outside the conventions section has an id."""
    text = spec_text()
    body = text[text.index("## 1. Overview") :]
    missing = [
        line[:100] for line in body.splitlines() if KEYWORD.search(line) and not DEFINITION.search(line)
    ]
    assert not missing, "requirement keywords without an id:\n" + "\n".join(missing)


def test_references_in_spec_name_defined_ids() -> None:
    text = spec_text()
    defined = set(spec_ids())
    referenced = {int(n) for n in re.findall(r"(?<!\[)\b" + _ID + r"\b(?!\])", text)}
    assert referenced <= defined, f"the spec refers to undefined ids {sorted(referenced - defined)}"


def test_citations_name_defined_ids() -> None:
    defined = set(spec_ids())
    unknown = {n: files for n, files in cited_ids().items() if n not in defined}
    assert not unknown, f"tests cite ids the spec does not define: {unknown}"


def test_every_requirement_is_cited_by_a_test() -> None:
    cited = cited_ids()
    text = spec_text()
    uncovered = []
    for n in spec_ids():
        if n not in cited:
            line = next(ln for ln in text.splitlines() if f"[R-{n}]" in ln)
            uncovered.append(f"R-{n}: {line.strip()[:110]}")
    assert not uncovered, f"{len(uncovered)} requirement(s) no test cites:\n" + "\n".join(uncovered)


# ---------------------------------------------------------------- (b) error codes


@pytest.mark.req("R-82")
def test_error_table_equals_codes() -> None:
    """[R-82] the codes and classes are exactly those of mindvec.errors.CODES."""
    from mindvec.errors import CODES

    rows = table_rows(section(spec_text(), "## 14. Error codes"))
    assert rows[0] == ["code", "class", "meaning"]
    table = {row[0].strip("`"): row[1] for row in rows[1:]}
    assert len(table) == len(rows) - 1, "a code appears twice in the spec's table"
    assert table == {code: klass.value for code, (klass, _) in CODES.items()}


def test_error_table_is_grouped_by_class() -> None:
    rows = table_rows(section(spec_text(), "## 14. Error codes"))[1:]
    classes = [row[1] for row in rows]
    order = ["malformed", "invalid", "unverified", "usage"]
    assert classes == sorted(classes, key=order.index), (
        "codes must be grouped malformed/invalid/unverified/usage"
    )


# ---------------------------------------------------------------- (c) layout constants


def _spec_value(cell: str) -> bytes | int:
    cell = cell.strip("`").replace(",", "")
    if " " in cell:
        return bytes.fromhex(cell)
    return int(cell)


def test_layout_constants_match_limits() -> None:
    from mindvec import limits

    rows = table_rows(section(spec_text(), "### 2.1 Constants"))
    constants = {row[0].strip("`"): _spec_value(row[1]) for row in rows[1:]}
    assert set(constants) >= {"MAGIC", "TRAILER_MAGIC", "MAX_MANIFEST", "MAX_PAYLOAD", "KEYID_LEN"}
    for name, value in constants.items():
        assert getattr(limits, name) == value, f"{name}: spec {value!r}, limits {getattr(limits, name)!r}"


def test_layout_table_matches_constants() -> None:
    from mindvec import limits

    rows = table_rows(section(spec_text(), "## 2. File layout"))[1:]
    fields = {row[2].strip("`"): row for row in rows if len(row) == 4}
    assert bytes.fromhex(fields["magic"][3].split("(")[0].strip("` ")) == limits.MAGIC
    assert bytes.fromhex(fields["end_magic"][3].split("(")[0].strip("` ")) == limits.TRAILER_MAGIC
    assert fields["manifest_len"][3] == f"u64, 1 ≤ manifest_len ≤ {limits.MAX_MANIFEST}"
    assert fields["sig_len"][3] == f"u64, 1 ≤ sig_len ≤ {limits.MAX_SIG_BLOCK}"
    assert limits.MIN_PAYLOAD == 16 and limits.MAX_PAYLOAD == 2**48
    assert [row[0] for row in rows[:6]] == ["0", "8", "10", "12", "16", "24"]


# ---------------------------------------------------------------- (d) worked example


def test_worked_example_matches_the_writer() -> None:
    text = spec_text()
    begin, end = "<!-- example:begin -->\n", "<!-- example:end -->"
    in_spec = text[text.index(begin) + len(begin) : text.index(end)]
    tool = load_make_example()
    assert in_spec == tool.render(tool.example_bytes()), (
        "the worked example is stale: run `python spec/tools/make_example.py` and paste its output"
    )


def test_worked_example_reads_back(tmp_path: Path) -> None:
    import mindvec

    tool = load_make_example()
    path = tmp_path / "example.mindvec"
    tool.build(path)
    package = mindvec.open(path)
    package.check_integrity()
    assert package.tensor("t").tolist() == [1.0, -2.0]
    assert [e.keyid.hex() for e in package.signatures] == ["43280d09cc0c43c5bd40048e4ed4495b"]


# ---------------------------------------------------------------- (e) architecture tables


def test_stack_table_matches_loader() -> None:
    from mindvec.loader.stacks import STACK_TABLE

    rows = table_rows(section(spec_text(), "#### 8.2.1 Stacks"))[1:]
    in_spec: dict[str, dict[str, str]] = {}
    for types, decoder, encoder in rows:
        for model_type in re.findall(r"`([^`]+)`", types):
            entry = {"decoder": decoder.strip("`")}
            if encoder != "—":
                entry["encoder"] = encoder.strip("`")
            in_spec[model_type] = entry
    assert in_spec == STACK_TABLE


def test_term_table_matches_loader() -> None:
    from mindvec.loader.sites import BLOCK_TERMS, Term

    def cell(value: str) -> Term | None:
        if value == "—":
            return None
        module = re.match(r"`([^`]+)`", value)
        multiplier = re.search(r"× `([^`]+)`", value)
        assert module is not None
        extra = {"flat": True} if "(flat)" in value else {}
        return Term(module.group(1), multiplier.group(1) if multiplier else None, "(copy)" in value, **extra)

    rows = table_rows(section(spec_text(), "#### 8.2.2 Residual terms"))[1:]
    in_spec = {row[0].strip("`"): tuple(cell(c) for c in row[1:4]) for row in rows}
    in_code = {name: (t.attn_out, t.mlp_out, t.cross_attn_out) for name, t in BLOCK_TERMS.items()}
    assert in_spec == in_code


@pytest.mark.parametrize("point", ["resid_pre", "resid_post"])
def test_resid_points_listed(point: str) -> None:
    rows = table_rows(section(spec_text(), "### 8.2 Architecture table"))
    assert any(point in row[0] for row in rows)


# ---------------------------------------------------------------- (f) examples in the spec


@pytest.mark.req("R-77")
def test_trust_store_example_parses() -> None:
    """[R-77] the spec's trust-store example is a valid store with the scopes it shows."""
    from mindvec.trust import TrustStore

    text = spec_text()
    start = text.index("```\n", text.index("<!-- trust-store-example -->")) + 4
    example = text[start : text.index("```", start)]
    store = TrustStore.parse(example)
    alice, ci = store.entries
    assert alice.packages == ("acme/*",) and alice.valid_before is not None
    assert ci.repos == ("acme/*",) and ci.valid_after is not None
    assert len(store.revocations) == 1


@pytest.mark.req("R-64", "R-65")
def test_signing_test_vector_in_spec() -> None:
    """[R-64] [R-65] the keyid, PAE and signature printed in section 9.3 are what mindvec computes."""
    from mindvec.keys import SecretKey
    from mindvec.signing import pae

    section_text = section(spec_text(), "### 9.3 What is signed")
    block = section_text[section_text.index("**Test vector.**") :]

    def hex_after(label: str) -> str:
        tail = block[block.index(label) + len(label) :]
        digits = []
        for line in tail.splitlines()[0:6]:
            chunk = line.split("=")[0].split("(")[0].strip()
            if chunk and all(c in "0123456789abcdef" for c in chunk):
                digits.append(chunk)
            elif digits:
                break
        return "".join(digits)

    key = SecretKey.from_seed(bytes.fromhex(hex_after("secret seed")))
    assert key.public_key.raw.hex() == hex_after("public key")
    assert key.keyid.hex() == hex_after("keyid")
    manifest = bytes.fromhex(hex_after("M (12 bytes)"))
    assert pae(manifest).hex() == hex_after("PAE (72 bytes)")
    entry = key.sign_manifest(manifest)
    assert entry.sig.hex() == hex_after("signature\n")
    from mindvec.container import encode_signature_block

    assert encode_signature_block([entry]).hex() == hex_after("signature block (108 bytes)")


@pytest.mark.req("R-26")
def test_config_digest_vector_in_spec() -> None:
    """[R-26] the config digest test vector in section 4.5 is sha256 of the printed JSON."""
    import hashlib
    import json

    block = section(spec_text(), "### 4.5 Config digest")
    text = re.search(r"D = `([^`]+)`", block)
    digest = re.search(r"gives `([0-9a-f]{64})`", block)
    assert text is not None and digest is not None
    d = json.loads(text.group(1))
    canonical = json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical == text.group(1)
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == digest.group(1)


# ---------------------------------------------------------------- (g) a second reader


def load_mini_reader() -> ModuleType:
    path = ROOT / "spec" / "tools" / "mini_reader.py"
    spec = importlib.util.spec_from_file_location("mindvec_spec_mini_reader", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.req("R-69")
def test_independent_reader_agrees(tmp_path: Path) -> None:
    """A reader written from the spec alone gives mindvec's code for every damaged example.

    spec/tools/mini_reader.py imports nothing from mindvec. Every single-bit flip (bit 0)
    of the worked example and every truncation must give the same first-failure code from
    both readers, which shows the check order and the rules are specified completely;
    and none of them verifies (no free bytes). [R-69]
    """
    from mindvec.keys import SecretKey
    from mindvec.policy import Policy
    from mindvec.trust import TrustStore
    from mindvec.verification import verify

    mini = load_mini_reader()
    data = load_make_example().example_bytes()
    key = SecretKey.from_seed(bytes(range(1, 33)))
    store = TrustStore.parse(f"spec {key.public_key.to_line()}\n")
    path = tmp_path / "x.mindvec"

    def independent(blob: bytes) -> str | None:
        try:
            mini.read(blob, key.public_key.raw)
        except mini.Reject as exc:
            return str(exc.code)
        return None

    def reference(blob: bytes) -> str | None:
        path.write_bytes(blob)
        report = verify(path, detached=False, policy=Policy(trust=store, now="20260601"))
        return None if report.error is None else report.error.code

    variants = [data] + [data[:n] for n in range(len(data))]
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        variants.append(bytes(flipped))
    disagreements = []
    accepted = []
    for index, blob in enumerate(variants):
        a, b = independent(blob), reference(blob)
        if a != b:
            disagreements.append((len(blob), a, b))
        if index and b is None:
            accepted.append(index)
    assert independent(data) is None and reference(data) is None
    assert not disagreements, disagreements[:10]
    # no free bytes (spec section 16): every damaged variant fails verification
    assert not accepted, f"{len(accepted)} damaged variants verified"


def test_every_schema_property_is_documented() -> None:
    """Every property name of schemas/manifest.schema.json appears in the spec's manifest sections."""
    import json

    schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text(encoding="utf-8"))
    names: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    names.update(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    text = spec_text()
    manifest_part = text[text.index("## 4. Manifest") : text.index("## 5. Semantic rules")]
    missing = sorted(
        name for name in names if f"`{name}`" not in manifest_part and f"{{`{name}`" not in manifest_part
    )
    assert not missing, f"schema properties the spec does not describe: {missing}"


@pytest.mark.req("R-17")
def test_both_readers_refuse_a_msgpack_timestamp(tmp_path: Path) -> None:
    """Issue 13, finding 16: msgpack-python decodes ext -1 (a timestamp) without calling ext_hook,
    and it re-encodes to the same bytes, so spec/tools/mini_reader.py accepted it. The profile
    forbids every ext type; both readers now refuse it with `msgpack`."""
    import msgpack

    from mindvec import package
    from tests import factories

    mini = load_mini_reader()
    manifest, tensors = factories.vector_manifest()
    data = factories.unchecked_package(manifest, tensors)
    layout_manifest_len = int.from_bytes(data[16:24], "little")
    plain = msgpack.unpackb(data[32 : 32 + layout_manifest_len], raw=False)
    plain["extensions"] = {"org.example.when": msgpack.Timestamp(1_700_000_000, 0)}
    sorted_manifest = {k: plain[k] for k in sorted(plain, key=lambda k: k.encode())}
    manifest_bytes = msgpack.packb(sorted_manifest, use_bin_type=True)
    assert b"\xd6\xff" in manifest_bytes  # fixext 4, type -1: a timestamp
    payload_offset = (32 + layout_manifest_len + 63) // 64 * 64
    payload_len = int.from_bytes(data[24:32], "little")
    blob = factories.assemble(manifest_bytes, data[payload_offset : payload_offset + payload_len])
    with pytest.raises(mini.Reject) as err:
        mini.read(blob)
    assert err.value.code == "msgpack"
    path = tmp_path / "ts.mindvec"
    path.write_bytes(blob)
    with pytest.raises(Exception) as ours:
        package.open(path)
    assert getattr(ours.value, "code", None) == "msgpack"
