"""mindvec.state: the state file is read by its schema, so a damaged file is a typed error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mindvec.errors import UsageError
from mindvec.keys import SecretKey
from mindvec.state import State

GOOD = {"type": "mindvec-state", "version": 1, "packages": {}, "pins": {}}


@pytest.mark.parametrize(
    "content",
    [
        "[" * 5000,  # RecursionError before
        '{"type": "mindvec-state", "version": 1, "packages": {}, "pins": {}, "x": ' + "9" * 5000 + "}",
        json.dumps({**GOOD, "pins": {"org/r": {"public_key": 5, "keyid": "00" * 16}}}),  # AttributeError
        json.dumps({**GOOD, "packages": {"acme/x": {"version": True, "identity": "00" * 32}}}),
        json.dumps({**GOOD, "packages": {"acme/x": {"version": 1, "identity": "zz"}}}),
        json.dumps({**GOOD, "version": 2}),
        json.dumps([GOOD]),
        "\xff\xfe",
    ],
)
def test_damaged_state_files_are_typed_errors(tmp_path: Path, content: str) -> None:
    """Issue 13, finding 8: deep nesting, huge integers and wrong member types raised
    RecursionError, ValueError or AttributeError; the schema now names the defect."""
    path = tmp_path / "state.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape") if content != "\xff\xfe" else b"\xff\xfe")
    state = State(path)
    for call in (lambda: state.seen("acme/x"), lambda: state.pin("org/r")):
        with pytest.raises(UsageError) as err:
            call()
        assert err.value.code == "trust-store" and "state file" in err.value.message


def test_a_written_state_file_matches_its_schema(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    state.record("acme/x", 3, bytes(32))
    state.set_pin("org/r", SecretKey.generate().public_key)
    doc = json.loads((tmp_path / "state.json").read_text())
    from mindvec.schema import load_json_file

    assert (
        load_json_file(json.dumps(doc).encode(), "state.schema.json", source="s", code="trust-store") == doc
    )
    assert state.seen("acme/x").version == 3  # type: ignore[union-attr]


@pytest.mark.req("R-88")
def test_a_pin_whose_keyid_is_not_its_keys_is_refused_before_anything(tmp_path: Path) -> None:
    """[R-88] the whole state file is checked on read: a pin's keyid must be its key's id."""
    alice, bob = SecretKey.generate(), SecretKey.generate()
    doc = {
        "type": "mindvec-state",
        "version": 1,
        "packages": {},
        "pins": {"acme/v": {"public_key": alice.public_key.base64, "keyid": bob.public_key.keyid_hex}},
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError) as err:
        State(path).seen("another/package")  # not the pinned repo: the file is refused anyway
    assert err.value.code == "trust-store"
    doc["pins"]["acme/v"]["keyid"] = alice.public_key.keyid_hex
    path.write_text(json.dumps(doc))
    assert State(path).pin("acme/v") == alice.public_key
