"""Mutants of steps 2 and 7 and of the trust store and state file (11.2, 11.3)."""

from __future__ import annotations

from conformance_tests.mutants.mutant import Mutant

MUTANTS: list[Mutant] = [
    Mutant(
        "no-signature-check",
        "mindvec.policy",
        "check_signatures",
        "if not key.verify_manifest(manifest_bytes, entry):",
        "if False:",
        ("R-65",),
    ),
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
    Mutant(
        "trust-odd-characters-allowed",
        "mindvec.trust",
        "store_lines",
        "if bad is not None:",
        "if False:",
        ("R-77",),
    ),
    Mutant(
        "trust-option-twice-allowed",
        "mindvec.trust",
        "TrustEntry.parse",
        "if name in values:",
        "if False:",
        ("R-77",),
    ),
    Mutant(
        "trust-unknown-option-allowed",
        "mindvec.trust",
        "TrustEntry.parse",
        "if name not in OPTION_NAMES:",
        "if False:",
        ("R-77",),
    ),
    Mutant(
        "trust-unclosed-quote-allowed",
        "mindvec.trust",
        "_split_tokens",
        "    if quoted:\n",
        "    if False:\n",
        ("R-77",),
    ),
    Mutant(
        "times-any-digits", "mindvec.times", "parse_time", "if not text.isascii():", "if False:", ("R-77",)
    ),
    Mutant(
        "times-any-iso-form",
        "mindvec.times",
        "parse_time",
        "if not _ISO_TIME.fullmatch(text):",
        "if False:",
        ("R-77",),
    ),
    Mutant(
        "state-pin-keyid-unchecked",
        "mindvec.state",
        "_parse_pin",
        'if item.get("keyid") != key.keyid_hex:',
        "if False:",
        ("R-88",),
    ),
]
