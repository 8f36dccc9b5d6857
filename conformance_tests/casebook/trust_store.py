"""Conformance cases: the trust-store grammar and the state file, through ``trust-check``.

Every expected report is written out here by hand (principals, globs, UTC times) and every key
id is computed with hashlib from the public key bytes, not by the reader under test. The last
cases go through ``verify``: which keys count as signers, and the reach of ``*``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from conformance_tests.craft.keys import KEYS, entry, trust_text
from conformance_tests.craft.manifests import minimal
from conformance_tests.suite import Suite


def _raw(name: str) -> bytes:
    return base64.b64decode(KEYS[name].public_key.base64)


def b64(name: str) -> str:
    return KEYS[name].public_key.base64


def keyid(name: str) -> str:
    """sha256("mindvec-ed25519" NUL key)[:16] (spec 9.2), from first principles."""
    return hashlib.sha256(b"mindvec-ed25519\x00" + _raw(name)).digest()[:16].hex()


def row(
    principal: str,
    name: str,
    packages: list[str] | None = None,
    repos: list[str] | None = None,
    after: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    return {
        "principal": principal,
        "keyid": keyid(name),
        "packages": packages or [],
        "repos": repos or [],
        "valid_after": after,
        "valid_before": before,
    }


def trust_grammar(s: Suite) -> None:
    topics = ["trust-grammar"]
    s.trust_parses(
        "valid-trust-hex-key-iso-times-quoted-commas",
        topics,
        "A 64-hex key, ISO 8601 times (one with a +02:00 offset, converted to UTC) and a quoted"
        " packages= value holding a comma.",
        (
            'alice packages="acme/*,beta/x",repos="org/*",valid-after=2026-01-01T00:00:00Z,'
            f"valid-before=2027-06-30T12:00:00+02:00 ed25519 {_raw('alice').hex()} alice at acme\n"
        ).encode(),
        {
            "entries": [
                row(
                    "alice",
                    "alice",
                    ["acme/*", "beta/x"],
                    ["org/*"],
                    "2026-01-01T00:00:00Z",
                    "2027-06-30T10:00:00Z",
                )
            ],
            "revoked": [],
        },
    )
    s.trust_parses(
        "valid-trust-crlf-tabs-blank-and-comment-lines",
        topics,
        "CR LF line ends, tabs between tokens, blank and comment lines, compact times with and without"
        " the time of day, and a last line without an end of line.",
        (
            "# the team\r\n\r\n  \t\r\n"
            f"bob\tvalid-after=20260101Z\t ed25519\t{b64('bob')}\r\n"
            f"  carol valid-before=20261231235959Z ed25519 {b64('carol')} # not a comment: free text"
        ).encode(),
        {
            "entries": [
                row("bob", "bob", after="2026-01-01T00:00:00Z"),
                row("carol", "carol", before="2026-12-31T23:59:59Z"),
            ],
            "revoked": [],
        },
    )
    s.trust_parses(
        "valid-trust-key-only-on-a-revoked-line",
        topics,
        "A key that appears only on an @revoked line is still a known (revoked) key.",
        f"@revoked ed25519 {b64('dave')} leaked\n".encode(),
        {"entries": [], "revoked": [keyid("dave")]},
    )
    s.trust_parses(
        "valid-trust-principal-characters",
        topics,
        "Principals may hold any non-space character but DQUOTE and '=' (and not start with '#' or"
        " '@'): a#b and zoë are principals.",
        f"a#b ed25519 {b64('erin')}\nzoë ed25519 {b64('frank')}\n".encode(),
        {"entries": [row("a#b", "erin"), row("zoë", "frank")], "revoked": []},
    )
    good = f"alice ed25519 {b64('alice')}\n"
    refused: list[tuple[str, str, bytes]] = [
        (
            "option-twice",
            "valid-after given twice.",
            f"alice valid-after=20260101Z,valid-after=20260102Z ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "unknown-option",
            "An option name the grammar does not list.",
            f"alice colour=blue ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "unclosed-quote",
            "A quoted value that never closes.",
            f'alice packages="acme/* ed25519 {b64("alice")}\n'.encode(),
        ),
        (
            "impossible-date",
            "valid-after=20260230Z: there is no 30 February.",
            f"alice valid-after=20260230Z ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "fraction-of-a-second",
            "A time with a fraction of a second.",
            f"alice valid-after=2026-01-01T00:00:00.5Z ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "non-ascii-digits",
            "A time written with ARABIC-INDIC digits, which are not ASCII 0-9.",
            (
                "alice valid-after=\u0662\u0660\u0662\u0666\u0660\u0661\u0660\u0661Z ed25519 "
                + b64("alice")
                + "\n"
            ).encode(),
        ),
        (
            "iso-hour-only",
            "valid-after=2026-01-01T00Z: an ISO time needs minutes (the grammar's ISO forms are a date, or a"
            " date and time to the minute or second, with an optional zone).",
            f"alice valid-after=2026-01-01T00Z ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "iso-week-date",
            "valid-after=2026-W01-1: ISO week dates are not among the accepted forms.",
            f"alice valid-after=2026-W01-1 ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "time-beyond-utc",
            "9999-12-31T23:59:59-01:00 is after the last instant a UTC time can hold.",
            f"alice valid-before=9999-12-31T23:59:59-01:00 ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "unknown-at-line",
            "A line starting with @ other than @revoked.",
            f"@trusted ed25519 {b64('alice')}\n".encode(),
        ),
        (
            "principal-with-equals",
            "packages=acme/* is not a principal (it holds '=').",
            f"packages=acme/* ed25519 {b64('alice')}\n".encode(),
        ),
        ("short-key", "A base64 key of 43 characters.", f"alice ed25519 {b64('alice')[:43]}\n".encode()),
        (
            "hex-key-on-revoked-line",
            "@revoked takes a base64 key only.",
            f"@revoked ed25519 {_raw('alice').hex()}\n".encode(),
        ),
        ("no-key", "An entry without a key.", b"alice ed25519\n"),
        (
            "quote-in-comment",
            'A DQUOTE in the free text of an entry opens a quoted run that never closes: it"s mine.',
            f'alice ed25519 {b64("alice")} it"s mine\n'.encode(),
        ),
        ("invalid-utf8", "A comment holding the byte ff.", b"# \xff\n" + good.encode()),
    ]
    for suffix, why, data in refused:
        s.trust_refused(f"usage-trust-store-{suffix}", topics, why, data)
    chars = {
        "cr-alone": ("\r", "a CR not followed by LF"),
        "vt": ("\x0b", "VT (U+000B)"),
        "ff": ("\x0c", "FF (U+000C)"),
        "file-separator": ("\x1c", "U+001C"),
        "record-separator": ("\x1e", "U+001E"),
        "nel": ("\x85", "NEL (U+0085)"),
        "nbsp": ("\xa0", "NBSP (U+00A0)"),
        "line-separator": ("\u2028", "LINE SEPARATOR (U+2028)"),
        "paragraph-separator": ("\u2029", "PARAGRAPH SEPARATOR (U+2029)"),
        "ideographic-space": ("\u3000", "IDEOGRAPHIC SPACE (U+3000)"),
        "bidi-override": ("\u202e", "RIGHT-TO-LEFT OVERRIDE (U+202E)"),
        "zero-width-space": ("\u200b", "ZERO WIDTH SPACE (U+200B, Cf)"),
        "private-use": ("\ue000", "a private-use character (U+E000, Co)"),
    }
    for suffix, (char, name) in chars.items():
        s.trust_refused(
            f"usage-trust-store-char-{suffix}",
            topics,
            f"A comment line holding {name}: a reader that splits lines or tokens another way would read"
            " the store differently, so the whole store is refused.",
            f"# see{char}mallory ed25519 {b64('mallory')}\n{good}".encode(),
        )


def state_file(s: Suite) -> None:
    topics = ["state-file"]
    store = f"alice ed25519 {b64('alice')}\n".encode()
    identity = hashlib.sha256(b"some manifest").hexdigest()
    doc = {
        "type": "mindvec-state",
        "version": 1,
        "packages": {"conformance/minimal": {"version": 3, "identity": identity}},
        "pins": {"acme/vectors": {"public_key": b64("alice"), "keyid": keyid("alice")}},
    }
    s.trust_parses(
        "valid-trust-state-file",
        topics,
        "A state file with one package record and one TOFU pin.",
        store,
        {
            "entries": [row("alice", "alice")],
            "revoked": [],
            "state": {
                "packages": {"conformance/minimal": {"version": 3, "identity": identity}},
                "pins": {"acme/vectors": {"keyid": keyid("alice")}},
            },
        },
        state=json.dumps(doc),
    )
    bad: list[tuple[str, str, Any]] = [
        ("not-json", "The state file is not JSON.", "{packages"),
        ("wrong-type", "type is not mindvec-state.", {**doc, "type": "other"}),
        ("extra-key", "A key the state schema does not list.", {**doc, "colour": "blue"}),
        (
            "uppercase-identity",
            "An identity in uppercase hex.",
            {**doc, "packages": {"p": {"version": 1, "identity": identity.upper()}}},
        ),
        (
            "negative-version",
            "A negative package version.",
            {**doc, "packages": {"p": {"version": -1, "identity": identity}}},
        ),
        (
            "pin-key-and-id-disagree",
            "A pin whose keyid is not the key id of its public key.",
            {**doc, "pins": {"acme/vectors": {"public_key": b64("alice"), "keyid": keyid("bob")}}},
        ),
    ]
    for suffix, why, value in bad:
        text = value if isinstance(value, str) else json.dumps(value)
        s.trust_refused(f"usage-trust-store-state-{suffix}", topics, why, store, state=text)


def signers(s: Suite) -> None:
    both = minimal(signers=["alice", "bob"])
    s.verified(
        "valid-verify-signers-exclude-out-of-scope-keys",
        ["policy-order"],
        "Signed by alice (trusted for anything) and bob (trusted only for other/*): both signatures"
        " verify, but only alice counts, so signers lists alice alone.",
        ["Signature", "Trust"],
        both,
        ["alice"],
        trust_text("alice", entry("bob", packages=("other/*",))),
    )
    s.verified(
        "valid-verify-star-matches-slash",
        ["policy-order"],
        "packages=\"*\" matches the id conformance/minimal: fnmatch's * also matches '/'.",
        ["Trust"],
        minimal(signers=["alice"]),
        ["alice"],
        trust_text(entry("alice", packages=("*",))),
    )
