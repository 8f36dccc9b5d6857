"""Every error mindvec raises, with its stable code.

Codes are part of the format (spec section "Error codes") and of the conformance
suite, so they never change meaning. Each code belongs to exactly one class, in the
spirit of the WebAssembly spec tests: bytes that cannot be parsed (``malformed``),
parsed content that breaks a rule (``invalid``), content that cannot be trusted
(``unverified``), and problems with how mindvec was called (``usage``).
"""

from __future__ import annotations

from enum import Enum


class ErrorClass(str, Enum):
    MALFORMED = "malformed"
    INVALID = "invalid"
    UNVERIFIED = "unverified"
    USAGE = "usage"


#: code -> (class, one-line meaning). The spec's error table is generated from, and
#: tested against, this dictionary.
CODES: dict[str, tuple[ErrorClass, str]] = {
    # malformed: the bytes do not parse
    "magic": (ErrorClass.MALFORMED, "the file does not start with the mindvec magic"),
    "version": (ErrorClass.MALFORMED, "unsupported major version, or preamble and manifest disagree"),
    "flags": (ErrorClass.MALFORMED, "reserved preamble flags are not zero"),
    "bounds": (ErrorClass.MALFORMED, "a declared length or count exceeds its limit or the file"),
    "truncated": (ErrorClass.MALFORMED, "the file ends before the layout says it should"),
    "trailing": (ErrorClass.MALFORMED, "bytes follow the end of the layout"),
    "padding": (ErrorClass.MALFORMED, "a padding byte is not the value the spec fixes"),
    "msgpack": (ErrorClass.MALFORMED, "msgpack that does not decode under the profile"),
    "non-canonical": (ErrorClass.MALFORMED, "msgpack that is not in canonical form"),
    "duplicate-key": (ErrorClass.MALFORMED, "a map or JSON object repeats a key"),
    "depth": (ErrorClass.MALFORMED, "nesting deeper than the limit"),
    "payload": (ErrorClass.MALFORMED, "the embedded safetensors payload breaks a structural rule"),
    "signature-block": (ErrorClass.MALFORMED, "the signature block or trailer is malformed"),
    # invalid: parses, but the content breaks a rule
    "schema": (ErrorClass.INVALID, "the manifest does not match the JSON Schema"),
    "shape": (ErrorClass.INVALID, "a tensor shape disagrees with the manifest or the models"),
    "dtype": (ErrorClass.INVALID, "a tensor dtype is not allowed"),
    "site": (ErrorClass.INVALID, "a site address is invalid or cannot be resolved"),
    "tensor-reference": (ErrorClass.INVALID, "manifest and payload disagree on which tensors exist"),
    "value": (ErrorClass.INVALID, "a tensor or number has a forbidden value (zero norm, non-finite)"),
    "critical-extension": (ErrorClass.INVALID, "an extension listed as critical is not understood"),
    "model-mismatch": (ErrorClass.INVALID, "the package is bound to a different model"),
    # unverified: well formed, but not proven
    "no-signature": (ErrorClass.UNVERIFIED, "the package carries no signature"),
    "bad-signature": (ErrorClass.UNVERIFIED, "a signature does not verify"),
    "untrusted-key": (ErrorClass.UNVERIFIED, "no signature comes from a trusted key"),
    "revoked": (ErrorClass.UNVERIFIED, "a signing key is revoked"),
    "expired": (ErrorClass.UNVERIFIED, "a signing key is outside its validity window"),
    "scope": (ErrorClass.UNVERIFIED, "a signing key is not allowed to sign this package or repo"),
    "threshold": (ErrorClass.UNVERIFIED, "fewer trusted signatures than the policy requires"),
    "rollback": (ErrorClass.UNVERIFIED, "an older version than one already seen"),
    "digest-mismatch": (ErrorClass.UNVERIFIED, "payload bytes do not match their signed digest"),
    "key-pin": (ErrorClass.UNVERIFIED, "the publisher key differs from the one pinned on first use"),
    "transfer": (ErrorClass.UNVERIFIED, "downloaded bytes do not match what the server announced"),
    # usage: how mindvec was called or configured
    "io": (ErrorClass.USAGE, "a file cannot be read or written"),
    "argument": (ErrorClass.USAGE, "an argument is invalid"),
    "not-found": (ErrorClass.USAGE, "a named vector, mapping, tensor or key does not exist"),
    "key-file": (ErrorClass.USAGE, "a key file is unreadable or malformed"),
    "passphrase": (ErrorClass.USAGE, "the passphrase does not unlock the key"),
    "trust-store": (ErrorClass.USAGE, "the trust store or state file is malformed"),
    "architecture": (ErrorClass.USAGE, "the model's block stacks or sublayers cannot be found"),
    "hub": (ErrorClass.USAGE, "the Hub request failed"),
    "device": (ErrorClass.USAGE, "the device cannot run this: no such device, out of memory, or overflow"),
    "foreign-file": (
        ErrorClass.USAGE,
        "another tool's file (control vector GGUF, JSON, safetensors) is malformed",
    ),
}


class MindvecError(Exception):
    """Base of every mindvec error; ``code`` is stable, ``message`` says what to do."""

    error_class: ErrorClass = ErrorClass.USAGE

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown mindvec error code {code!r}")
        expected = CODES[code][0]
        if type(self) is not MindvecError and expected is not self.error_class:
            raise ValueError(f"code {code!r} belongs to class {expected.value}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def klass(self) -> ErrorClass:
        return CODES[self.code][0]

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "class": self.klass.value, "message": self.message}


class MalformedError(MindvecError):
    error_class = ErrorClass.MALFORMED


class InvalidError(MindvecError):
    error_class = ErrorClass.INVALID


class UnverifiedError(MindvecError):
    error_class = ErrorClass.UNVERIFIED


class UsageError(MindvecError):
    error_class = ErrorClass.USAGE


def error_for(code: str, message: str) -> MindvecError:
    """Build the error of the right class for ``code``."""
    klass = CODES[code][0]
    cls: type[MindvecError] = {
        ErrorClass.MALFORMED: MalformedError,
        ErrorClass.INVALID: InvalidError,
        ErrorClass.UNVERIFIED: UnverifiedError,
        ErrorClass.USAGE: UsageError,
    }[klass]
    return cls(code, message)
