"""Key rotation: a record, signed by both keys, that hands an old key's trust to a new one.

It moves a TOFU pin (:mod:`mindvec.state`) or a trust-store entry (:mod:`mindvec.trust`)
from the old key to the new one. Its payload type differs from the manifest's, so a rotation
signature can never pass as a package signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mindvec import canonical
from mindvec.errors import MindvecError, UnverifiedError, UsageError
from mindvec.keys import PublicKey, SecretKey, b64, b64decode
from mindvec.limits import MAX_ROTATION_FILE, PUBLIC_KEY_LEN, SIG_LEN
from mindvec.schema import load_json_file
from mindvec.signing import pae

ROTATION_PAYLOAD_TYPE = b"application/vnd.mindvec.rotation.v1+msgpack"
ROTATION_TYPE = "mindvec-rotation"


@dataclass(frozen=True)
class RotationRecord:
    """A statement, signed by both keys, that ``old`` hands its trust on to ``new``.

    Signed bytes: ``pae(body, ROTATION_PAYLOAD_TYPE)`` where ``body`` is the canonical
    msgpack map ``{"comment": str, "created": "YYYY-MM-DDTHH:MM:SSZ", "new": bin32,
    "old": bin32, "type": "mindvec-rotation"}``. The payload type differs from the
    manifest's, so a rotation signature can never pass as a package signature.
    File form (JSON): ``{"type": "mindvec-rotation", "body": b64, "old_sig": b64,
    "new_sig": b64}``.
    """

    body: bytes
    old_sig: bytes
    new_sig: bytes

    @property
    def fields(self) -> dict[str, Any]:
        try:
            value = canonical.decode(self.body)
        except MindvecError as exc:
            raise UsageError(
                "key-file", f"the rotation record body is not canonical msgpack ({exc.code})"
            ) from None
        keys = {"comment", "created", "new", "old", "type"}
        if not isinstance(value, dict) or set(value) != keys or value["type"] != ROTATION_TYPE:
            raise UsageError("key-file", "the rotation record body lacks comment/created/new/old/type")
        for name in ("old", "new"):
            if not isinstance(value[name], bytes) or len(value[name]) != PUBLIC_KEY_LEN:
                raise UsageError("key-file", f"the rotation record's {name} key must be 32 bytes")
        if not isinstance(value["created"], str) or not isinstance(value["comment"], str):
            raise UsageError("key-file", "the rotation record's created and comment must be strings")
        return value

    @property
    def old(self) -> PublicKey:
        return PublicKey(self.fields["old"])

    @property
    def new(self) -> PublicKey:
        return PublicKey(self.fields["new"])

    @property
    def message(self) -> bytes:
        return pae(self.body, ROTATION_PAYLOAD_TYPE)

    @classmethod
    def create(
        cls, old: SecretKey, new: SecretKey, comment: str = "", created: str | None = None
    ) -> RotationRecord:
        if old.public_key == new.public_key:
            raise UsageError("argument", "a rotation needs two different keys")
        stamp = created or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = canonical.encode(
            {
                "comment": comment,
                "created": stamp,
                "new": new.public_key.raw,
                "old": old.public_key.raw,
                "type": ROTATION_TYPE,
            }
        )
        message = pae(body, ROTATION_PAYLOAD_TYPE)
        return cls(body, old.sign(message), new.sign(message))

    def verify(self) -> None:
        """Raise ``bad-signature`` unless both keys signed this record."""
        fields = self.fields
        for name, sig in (("old", self.old_sig), ("new", self.new_sig)):
            if not PublicKey(fields[name]).verify(self.message, sig):
                raise UnverifiedError(
                    "bad-signature",
                    f"the rotation record's {name}-key signature does not verify; do not apply it",
                )

    def to_bytes(self) -> bytes:
        doc = {
            "type": ROTATION_TYPE,
            "body": b64(self.body),
            "old_sig": b64(self.old_sig),
            "new_sig": b64(self.new_sig),
        }
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RotationRecord:
        if len(data) > MAX_ROTATION_FILE:
            raise UsageError("key-file", "a rotation record is a few hundred bytes; this file is far larger")
        doc = load_json_file(
            data,
            "rotation.schema.json",
            source="the rotation record (as 'mindvec keygen --rotate-from' makes)",
            code="key-file",
        )
        record = cls(
            b64decode(doc.get("body"), "body"),
            b64decode(doc.get("old_sig"), "old_sig", SIG_LEN),
            b64decode(doc.get("new_sig"), "new_sig", SIG_LEN),
        )
        _ = record.fields  # validates the body
        return record
