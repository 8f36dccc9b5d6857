"""The state file: the highest version seen per package id (rollback) and TOFU key pins.

Kept apart from the trust store: the store is configuration a person edits and reviews,
the state is what mindvec learned on its own while pulling and verifying.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindvec._fs import atomic_write, locked, read_capped
from mindvec.errors import UnverifiedError, UsageError
from mindvec.keys import PublicKey
from mindvec.limits import MAX_STATE_FILE
from mindvec.rotation import RotationRecord
from mindvec.schema import load_json_file

STATE_TYPE = "mindvec-state"
STATE_VERSION = 1


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/mindvec/state.json``, or ``~/.local/state/...`` when unset."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "mindvec" / "state.json"


@dataclass(frozen=True)
class Seen:
    """The highest version seen for one package id, and that version's identity."""

    version: int
    identity: bytes


class State:
    """Rollback state and TOFU pins, one JSON file, changed only under ``<path>.lock``.

    File format::

        {"type": "mindvec-state", "version": 1,
         "packages": {"<package id>": {"version": N, "identity": "<64 hex>"}},
         "pins": {"<repo>": {"public_key": "<base64>", "keyid": "<32 hex>"}}}

    Every change re-reads the file under the lock and rewrites it atomically, so
    concurrent processes lose nothing.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_state_path()

    def __repr__(self) -> str:
        return f"State({str(self.path)!r})"

    @classmethod
    def coerce(cls, state: State | str | os.PathLike[str] | None) -> State | None:
        if state is None or isinstance(state, State):
            return state
        return cls(state)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with locked(self.path):
            doc = self._read()
            yield doc
            data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
            atomic_write(self.path, data)

    def _read(self) -> dict[str, Any]:
        if not os.path.lexists(self.path):
            return {"type": STATE_TYPE, "version": STATE_VERSION, "packages": {}, "pins": {}}
        data = read_capped(self.path, MAX_STATE_FILE, what="state file", code="trust-store")
        doc = load_json_file(
            data,
            "state.schema.json",
            source=f"state file {self.path} (move it away to start over)",
            code="trust-store",
        )
        for item in doc["pins"].values():  # spec R-88: the whole file, before anything is decided
            _parse_pin(item, self.path)
        return doc

    # -- rollback -------------------------------------------------------------------------

    def seen(self, package_id: str) -> Seen | None:
        item = self._read()["packages"].get(package_id)
        return _parse_seen(item, self.path) if item is not None else None

    def check(self, package_id: str, version: int, identity: bytes) -> None:
        _check_rollback(self.seen(package_id), package_id, version, identity)

    def record(self, package_id: str, version: int, identity: bytes) -> None:
        """Check for rollback and record ``version`` as seen, atomically under the lock."""
        with self._locked() as doc:
            item = doc["packages"].get(package_id)
            previous = _parse_seen(item, self.path) if item is not None else None
            _check_rollback(previous, package_id, version, identity)
            if previous is None or version > previous.version:
                doc["packages"][package_id] = {"version": version, "identity": identity.hex()}

    # -- TOFU pins ------------------------------------------------------------------------

    def pin(self, repo: str) -> PublicKey | None:
        item = self._read()["pins"].get(repo)
        return _parse_pin(item, self.path) if item is not None else None

    def set_pin(self, repo: str, key: PublicKey, *, replace: bool = False) -> None:
        """Pin ``key`` for ``repo``; a different existing pin raises ``key-pin`` unless ``replace``."""
        with self._locked() as doc:
            item = doc["pins"].get(repo)
            if item is not None and not replace:
                current = _parse_pin(item, self.path)
                if current != key:
                    raise UnverifiedError(
                        "key-pin",
                        f"{repo} was pinned to key {current.keyid_hex}, not {key.keyid_hex}; "
                        "if the publisher rotated keys, apply their rotation record",
                    )
            doc["pins"][repo] = {"public_key": key.base64, "keyid": key.keyid_hex}

    def apply_rotation(self, record: RotationRecord) -> int:
        """Move every pin of ``record.old`` to ``record.new``; returns how many moved."""
        record.verify()
        moved = 0
        with self._locked() as doc:
            for repo, item in doc["pins"].items():
                if _parse_pin(item, self.path) == record.old:
                    doc["pins"][repo] = {"public_key": record.new.base64, "keyid": record.new.keyid_hex}
                    moved += 1
        return moved


def _parse_seen(item: Any, path: Path) -> Seen:
    try:
        version, identity = item["version"], bytes.fromhex(item["identity"])
        if isinstance(version, int) and not isinstance(version, bool) and len(identity) == 32:
            return Seen(version, identity)
    except (TypeError, KeyError, ValueError):
        pass
    raise UsageError("trust-store", f"{path}: a package entry is damaged; move the file away to start over")


def _parse_pin(item: Any, path: Path) -> PublicKey:
    try:
        key = PublicKey.from_text(item["public_key"])
    except (TypeError, KeyError, UsageError):
        raise UsageError(
            "trust-store", f"{path}: a pin is damaged; move the file away to start over"
        ) from None
    if item.get("keyid") != key.keyid_hex:
        raise UsageError(
            "trust-store", f"{path}: a pin's keyid is not the key id of its public key; move the file away"
        )
    return key


def _check_rollback(previous: Seen | None, package_id: str, version: int, identity: bytes) -> None:
    if previous is None:
        return
    if version < previous.version:
        raise UnverifiedError(
            "rollback",
            f"{package_id} version {version} is older than version {previous.version} already seen; "
            "refusing a downgrade (get the current version)",
        )
    if version == previous.version and identity != previous.identity:
        raise UnverifiedError(
            "rollback",
            f"{package_id} version {version} was seen with different content; a publisher must bump the "
            "version for new content",
        )
