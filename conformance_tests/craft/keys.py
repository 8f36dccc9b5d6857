"""The fixed test keys (``keys/``), trust-store lines and state files for the verify cases."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mindvec.keys import SecretKey
from mindvec.state import State
from mindvec.times import parse_time
from mindvec.trust import TrustEntry, TrustStore

KEY_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "ivan", "judy", "kate", "leo", "mallory", "nick", "olivia", "peggy",
)  # fmt: skip


def key_seed(name: str) -> bytes:
    return hashlib.sha256(b"mindvec conformance test key: " + name.encode()).digest()


KEYS: dict[str, SecretKey] = {name: SecretKey.from_seed(key_seed(name), comment=name) for name in KEY_NAMES}


def keyid_hex(name: str) -> str:
    return KEYS[name].keyid.hex()


def write_keys(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    listing = []
    for name in KEY_NAMES:
        key = KEYS[name]
        listing.append(
            {
                "name": name,
                "seed": key_seed(name).hex(),
                "public_key": key.public_key.raw.hex(),
                "keyid": key.keyid.hex(),
            }
        )
        (folder / f"{name}.key").write_bytes(key.to_file_bytes(None))
        (folder / f"{name}.pub").write_text(key.public_key.to_line(name) + "\n", encoding="utf-8")
    text = json.dumps({"note": "PUBLIC TEST KEYS: never trust them outside tests", "keys": listing}, indent=2)
    (folder / "keys.json").write_text(text + "\n", encoding="utf-8")


def trust_text(*entries: TrustEntry | str, revoked: Sequence[str] = ()) -> str:
    """A trust store: entries (or key names, trusted for anything), then revocations."""
    store = TrustStore(["# mindvec conformance suite: test keys only"])
    for item in entries:
        store.add(TrustEntry(item, KEYS[item].public_key, comment=item) if isinstance(item, str) else item)
    for name in revoked:
        store.revoke(KEYS[name].public_key, name)
    return store.dumps()


def entry(name: str, **options: Any) -> TrustEntry:
    for field_name in ("valid_after", "valid_before"):
        if field_name in options:
            options[field_name] = parse_time(options[field_name])
    return TrustEntry(name, KEYS[name].public_key, comment=name, **options)


def state_text(*records: tuple[str, int, bytes]) -> str:
    """A rollback state file with (package id, version, identity) records."""
    with tempfile.TemporaryDirectory() as tmp:
        state = State(Path(tmp) / "state.json")
        for package_id, version, identity in records:
            state.record(package_id, version, identity)
        return (Path(tmp) / "state.json").read_text(encoding="utf-8")
