"""``Suite``: writes one case folder (package, trust, state, case.json) per call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance_tests.codes import CODES
from conformance_tests.craft.constants import NOW, PACKAGE_FILE
from conformance_tests.craft.keys import keyid_hex
from conformance_tests.craft.summary import identity_of, summarize
from conformance_tests.recipes import materialize
from conformance_tests.requirements import requirement_ids


@dataclass
class Suite:
    out: Path
    count: int = 0

    def _folder(self, case_id: str) -> Path:
        folder = self.out / "cases" / case_id
        if folder.exists():
            raise ValueError(f"duplicate case id {case_id}")
        folder.mkdir(parents=True)
        return folder

    def _write(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        expected: dict[str, Any],
        *,
        trust: str | None = None,
        state: str | None = None,
        now: str = NOW,
        threshold: int | None = None,
        recipe: dict[str, Any] | None = None,
    ) -> None:
        folder = self._folder(case_id)
        command: dict[str, Any] = {"op": "decode", "file": PACKAGE_FILE}
        if recipe is None:
            (folder / PACKAGE_FILE).write_bytes(data)
        else:  # a large file, described by recipe and built by the runner
            assert materialize(recipe) == data, f"{case_id}: the recipe does not build the package"
            (folder / "recipe.json").write_text(json.dumps(recipe, indent=1) + "\n", encoding="utf-8")
            command["recipe"] = "recipe.json"
        if trust is not None:
            command["op"] = "verify"
            (folder / "trust.txt").write_text(trust, encoding="utf-8")
            command["trust"] = "trust.txt"
            if state is not None:
                (folder / "state.json").write_text(state, encoding="utf-8")
                command["state"] = "state.json"
            command["now"] = now
            if threshold is not None:
                command["threshold"] = threshold
        self._finish(folder, case_id, topics, description, flags, command, expected)

    def _finish(
        self,
        folder: Path,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        command: dict[str, Any],
        expected: dict[str, Any],
    ) -> None:
        """Write the case.json of a case whose files are in ``folder``."""
        meta = {
            "id": case_id,
            "requirements": requirement_ids(topics),
            "description": description,
            "flags": sorted(set(flags)),
            "command": command,
            "expected": expected,
        }
        text = json.dumps(meta, indent=2, ensure_ascii=False)
        (folder / "case.json").write_text(text + "\n", encoding="utf-8")
        self.count += 1

    def valid(
        self, case_id: str, topics: Sequence[str], description: str, flags: Sequence[str], data: bytes
    ) -> None:
        """A package ``decode`` must accept, with its expected summary."""
        assert case_id.startswith("valid-")
        self._write(
            case_id, topics, description, flags, data, {"result": "valid", "summary": summarize(data)}
        )

    def verified(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        signers: Sequence[str],
        trust: str,
        **kw: Any,
    ) -> None:
        """A package ``verify`` must accept; ``signers`` are the counted keys."""
        assert case_id.startswith("valid-")
        verdict = {
            "identity": identity_of(data),
            "verified": True,
            "signers": sorted(keyid_hex(n) for n in signers),
        }
        self._write(
            case_id,
            topics,
            description,
            flags,
            data,
            {"result": "valid", "verdict": verdict},
            trust=trust,
            **kw,
        )

    def reject(
        self,
        case_id: str,
        code: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        **kw: Any,
    ) -> None:
        """A package that must be rejected with ``code`` (verify when ``trust`` is given)."""
        klass = CODES[code]
        assert case_id.startswith(klass + "-"), f"{case_id} must start with {klass}-"
        self._write(case_id, topics, description, flags, data, {"result": klass, "code": code}, **kw)

    def _write_trust(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        store: bytes,
        expected: dict[str, Any],
        state: str | None,
    ) -> None:
        folder = self._folder(case_id)
        (folder / "trust.txt").write_bytes(store)  # bytes: CRLF and odd characters stay as given
        command: dict[str, Any] = {"op": "trust-check", "trust": "trust.txt"}
        if state is not None:
            (folder / "state.json").write_text(state, encoding="utf-8")
            command["state"] = "state.json"
        self._finish(folder, case_id, topics, description, flags, command, expected)

    def trust_parses(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        store: bytes,
        report: dict[str, Any],
        *,
        state: str | None = None,
        flags: Sequence[str] = ("Trust",),
    ) -> None:
        """A trust store (and state file) ``trust-check`` must accept, with its effective entries."""
        assert case_id.startswith("valid-")
        self._write_trust(
            case_id, topics, description, flags, store, {"result": "valid", "trust": report}, state
        )

    def trust_refused(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        store: bytes,
        *,
        state: str | None = None,
        flags: Sequence[str] = ("Trust",),
    ) -> None:
        """A trust store (or state file) ``trust-check`` must refuse with ``trust-store``."""
        assert case_id.startswith("usage-")
        expected = {"result": "usage", "code": "trust-store"}
        self._write_trust(case_id, topics, description, flags, store, expected, state)

    def acceptable(
        self,
        case_id: str,
        topics: Sequence[str],
        description: str,
        flags: Sequence[str],
        data: bytes,
        *,
        codes: Sequence[str] | None = None,
        **kw: Any,
    ) -> None:
        """A package the spec allows to be accepted or rejected (with one of ``codes``)."""
        assert case_id.startswith("acceptable-") and flags
        expected: dict[str, Any] = {"result": "acceptable", "flag": flags[0]}
        if codes is not None:
            expected["codes"] = list(codes)
        self._write(case_id, topics, description, flags, data, expected, **kw)
