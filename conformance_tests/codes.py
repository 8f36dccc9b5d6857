"""The stable error codes of mindvec 1.0 and their classes (stdlib only).

This is a copy of the table in ``spec/mindvec-1.1.md`` (and ``mindvec/errors.py``) so that
the runner needs nothing but the Python standard library. ``tests/test_conformance.py``
checks that the two tables agree.
"""

from __future__ import annotations

MALFORMED = "malformed"
INVALID = "invalid"
UNVERIFIED = "unverified"
USAGE = "usage"

#: the classes a rejection can have, in the order the spec checks them
REJECTION_CLASSES = (MALFORMED, INVALID, UNVERIFIED)

#: code -> class
CODES: dict[str, str] = {
    "magic": MALFORMED,
    "version": MALFORMED,
    "flags": MALFORMED,
    "bounds": MALFORMED,
    "truncated": MALFORMED,
    "trailing": MALFORMED,
    "padding": MALFORMED,
    "msgpack": MALFORMED,
    "non-canonical": MALFORMED,
    "duplicate-key": MALFORMED,
    "depth": MALFORMED,
    "payload": MALFORMED,
    "signature-block": MALFORMED,
    "schema": INVALID,
    "shape": INVALID,
    "dtype": INVALID,
    "site": INVALID,
    "tensor-reference": INVALID,
    "value": INVALID,
    "critical-extension": INVALID,
    "model-mismatch": INVALID,
    "no-signature": UNVERIFIED,
    "bad-signature": UNVERIFIED,
    "untrusted-key": UNVERIFIED,
    "revoked": UNVERIFIED,
    "expired": UNVERIFIED,
    "scope": UNVERIFIED,
    "threshold": UNVERIFIED,
    "rollback": UNVERIFIED,
    "digest-mismatch": UNVERIFIED,
    "key-pin": UNVERIFIED,
    "transfer": UNVERIFIED,
    "io": USAGE,
    "argument": USAGE,
    "not-found": USAGE,
    "key-file": USAGE,
    "passphrase": USAGE,
    "trust-store": USAGE,
    "architecture": USAGE,
    "device": USAGE,
    "foreign-file": USAGE,
    "hub": USAGE,
}


def class_of(code: str) -> str | None:
    """The class of ``code``, or None when the code is not a mindvec 1.0 code."""
    return CODES.get(code)
