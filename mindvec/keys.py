"""Ed25519 keys and secret-key files.

Secret key file (JSON, UTF-8, mode 0600, written atomically)::

    {"type": "mindvec-secret-key", "version": 1, "alg": "ed25519",
     "public_key": "<base64 32 bytes>", "keyid": "<32 lowercase hex>",
     "comment": "<text>",
     "kdf": null | {"name": "argon2id", "opslimit": N, "memlimit": N, "salt": "<base64 16>"},
     "cipher": null | "xsalsa20poly1305",
     "secret": "<base64: 32-byte seed, or SecretBox(nonce + ciphertext) of the seed>"}

Public key file: one line ``ed25519 <base64 32 bytes> <comment>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from mindvec._fs import atomic_write, read_capped
from mindvec.container import SignatureEntry
from mindvec.errors import UsageError
from mindvec.limits import MAX_KEY_FILE, PUBLIC_KEY_LEN, SIG_LEN
from mindvec.schema import load_json_file
from mindvec.signing import ALG, keyid, pae

KEY_FILE_TYPE = "mindvec-secret-key"
KEY_FILE_VERSION = 1
CIPHER = "xsalsa20poly1305"

#: Argon2id limits by name: (opslimit, memlimit). "min" is for tests only.
KDF_LIMITS: dict[str, tuple[int, int]] = {
    "min": (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN),
    "interactive": (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "sensitive": (nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE),
}
DEFAULT_KDF = "moderate"


def b64decode(text: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise UsageError("key-file", f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise UsageError("key-file", f"{what} is not valid base64") from exc
    if length is not None and len(raw) != length:
        raise UsageError("key-file", f"{what} must decode to {length} bytes, not {len(raw)}")
    return raw


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key (32 raw bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != PUBLIC_KEY_LEN:
            raise UsageError("key-file", "an Ed25519 public key has exactly 32 bytes")

    @property
    def keyid(self) -> bytes:
        return keyid(self.raw)

    @property
    def keyid_hex(self) -> str:
        return self.keyid.hex()

    @property
    def base64(self) -> str:
        return b64(self.raw)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid Ed25519 signature of ``message`` (libsodium rules)."""
        if len(signature) != SIG_LEN:
            return False
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
            return False
        return True

    def verify_manifest(self, manifest_bytes: bytes, entry: SignatureEntry) -> bool:
        """True when ``entry`` is this key's valid signature over ``pae(manifest_bytes)``.

        An entry whose alg is not ed25519, or whose keyid is not this key's, is invalid.
        """
        if entry.alg != ALG or entry.keyid != self.keyid:
            return False
        return self.verify(pae(manifest_bytes), entry.sig)

    def to_line(self, comment: str = "") -> str:
        """``ed25519 <base64> <comment>``: what a public key file holds."""
        comment = " ".join(comment.split())
        return f"{ALG} {self.base64} {comment}".rstrip()

    @classmethod
    def from_line(cls, line: str) -> tuple[PublicKey, str]:
        """Parse ``ed25519 <base64> [comment]`` into the key and its comment."""
        parts = re.split(r"[ \t]+", line.removesuffix("\n").removesuffix("\r").strip(" \t"), maxsplit=2)
        if len(parts) < 2 or parts[0] != ALG:
            raise UsageError("key-file", "a public key line reads 'ed25519 <base64 key> [comment]'")
        raw = b64decode(parts[1], "the public key", PUBLIC_KEY_LEN)
        return cls(raw), (parts[2] if len(parts) > 2 else "")

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """A key from a public key line, a bare base64 key or 64 hex digits."""
        text = text.strip()
        if text.startswith(ALG + " "):
            return cls.from_line(text)[0]
        if len(text) == 2 * PUBLIC_KEY_LEN:
            try:
                return cls(bytes.fromhex(text))
            except ValueError:
                pass
        return cls(b64decode(text, "the public key", PUBLIC_KEY_LEN))

    def save(self, path: str | os.PathLike[str], comment: str = "") -> Path:
        return atomic_write(path, (self.to_line(comment) + "\n").encode(), 0o644)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PublicKey:
        data = read_capped(path, MAX_KEY_FILE, what="public key file", code="key-file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError("key-file", f"public key file {path} is not UTF-8 text") from exc
        raw_lines = [ln.removesuffix("\r") for ln in text.split("\n")]  # LF (or CRLF) ends a line
        lines = [ln for ln in raw_lines if ln.strip(" \t") and not ln.lstrip(" \t").startswith("#")]
        if len(lines) != 1:
            raise UsageError(
                "key-file", f"{path} must hold exactly one line 'ed25519 <base64 key> [comment]'"
            )
        return cls.from_line(lines[0])[0]


@dataclass(frozen=True)
class SecretKey:
    """An Ed25519 signing key. Its repr and str never show secret material."""

    _signing_key: nacl.signing.SigningKey = field(repr=False)
    comment: str = ""

    def __repr__(self) -> str:
        return f"SecretKey(keyid={self.keyid.hex()}, comment={self.comment!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle a secret by accident
        raise TypeError("SecretKey cannot be pickled; save it with SecretKey.save")

    @classmethod
    def generate(cls, comment: str = "") -> SecretKey:
        return cls(nacl.signing.SigningKey.generate(), comment)

    @classmethod
    def from_seed(cls, seed: bytes, comment: str = "") -> SecretKey:
        """A key from its 32-byte seed (tests and test vectors only)."""
        return cls(nacl.signing.SigningKey(seed), comment)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(self._signing_key.verify_key))

    @property
    def keyid(self) -> bytes:
        return self.public_key.keyid

    def sign(self, message: bytes) -> bytes:
        """A raw 64-byte Ed25519 signature of ``message`` (no framing)."""
        return bytes(self._signing_key.sign(message).signature)

    def sign_manifest(self, manifest_bytes: bytes) -> SignatureEntry:
        """The signature-block entry for a package whose manifest is ``manifest_bytes``."""
        return SignatureEntry(alg=ALG, keyid=self.keyid, sig=self.sign(pae(manifest_bytes)))

    # -- key file -----------------------------------------------------------------------

    def to_file_bytes(self, passphrase: str | bytes | None = None, kdf: str = DEFAULT_KDF) -> bytes:
        seed = bytes(self._signing_key)
        doc: dict[str, Any] = {
            "type": KEY_FILE_TYPE,
            "version": KEY_FILE_VERSION,
            "alg": ALG,
            "public_key": self.public_key.base64,
            "keyid": self.keyid.hex(),
            "comment": self.comment,
            "kdf": None,
            "cipher": None,
        }
        if passphrase is None:
            doc["secret"] = b64(seed)
        else:
            if kdf not in KDF_LIMITS:
                raise UsageError(
                    "argument", f"unknown KDF limits {kdf!r}; use one of {', '.join(KDF_LIMITS)}"
                )
            opslimit, memlimit = KDF_LIMITS[kdf]
            salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
            box = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit))
            doc["kdf"] = {"name": "argon2id", "opslimit": opslimit, "memlimit": memlimit, "salt": b64(salt)}
            doc["cipher"] = CIPHER
            doc["secret"] = b64(bytes(box.encrypt(seed)))
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    def save(
        self,
        path: str | os.PathLike[str],
        passphrase: str | bytes | None = None,
        *,
        kdf: str = DEFAULT_KDF,
        overwrite: bool = False,
    ) -> Path:
        """Write the key file (mode 0600, atomic); refuses to replace a file unless ``overwrite``."""
        if not overwrite and os.path.lexists(path):
            raise UsageError("io", f"{path} exists; choose another path or pass overwrite=True (--force)")
        return atomic_write(path, self.to_file_bytes(passphrase, kdf), 0o600)

    @classmethod
    def load(cls, path: str | os.PathLike[str], passphrase: str | bytes | None = None) -> SecretKey:
        """Read a key file; warns when it is readable by group or others."""
        data = read_capped(path, MAX_KEY_FILE, what="key file", code="key-file")
        try:
            st = os.stat(path)
        except OSError as exc:
            raise UsageError("key-file", f"cannot read key file {path}: {exc.strerror}") from exc
        if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
            warnings.warn(
                f"secret key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
                f"run 'chmod 600 {path}' so only you can read it",
                stacklevel=2,
            )
        return cls.from_file_bytes(data, passphrase, source=str(path))

    @classmethod
    def from_file_bytes(
        cls, data: bytes, passphrase: str | bytes | None = None, source: str = "key file"
    ) -> SecretKey:
        doc = load_json_file(
            data,
            "secret-key.schema.json",
            source=f"{source} (a mindvec secret key file, as 'mindvec keygen' makes)",
            code="key-file",
        )
        public = PublicKey(b64decode(doc.get("public_key"), "public_key", PUBLIC_KEY_LEN))
        comment = doc.get("comment") or ""
        if not isinstance(comment, str):
            raise UsageError("key-file", f"{source}: comment must be a string")
        kdf = doc.get("kdf")
        if kdf is None:
            seed = b64decode(doc.get("secret"), "secret", 32)
        else:
            seed = _decrypt_seed(doc, kdf, passphrase, source)
        key = cls(nacl.signing.SigningKey(seed), comment)
        if key.public_key != public:
            raise UsageError(
                "key-file", f"{source}: the secret does not match its public key; the file is damaged"
            )
        return key


def _derive(passphrase: str | bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    return bytes(
        nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, secret, salt, opslimit=opslimit, memlimit=memlimit
        )
    )


def _decrypt_seed(doc: dict[str, Any], kdf: Any, passphrase: str | bytes | None, source: str) -> bytes:
    if not isinstance(kdf, dict) or kdf.get("name") != "argon2id" or doc.get("cipher") != CIPHER:
        raise UsageError("key-file", f"{source}: unsupported key encryption; expected argon2id + {CIPHER}")
    opslimit, memlimit = kdf.get("opslimit"), kdf.get("memlimit")
    lo_ops, lo_mem = KDF_LIMITS["min"]
    hi_ops, hi_mem = KDF_LIMITS["sensitive"]
    if not (isinstance(opslimit, int) and lo_ops <= opslimit <= 4 * hi_ops):
        raise UsageError("key-file", f"{source}: argon2id opslimit out of range")
    if not (isinstance(memlimit, int) and lo_mem <= memlimit <= 4 * hi_mem):
        raise UsageError("key-file", f"{source}: argon2id memlimit out of range")
    salt = b64decode(kdf.get("salt"), "salt", nacl.pwhash.argon2id.SALTBYTES)
    box_bytes = b64decode(doc.get("secret"), "secret")
    if passphrase is None:
        raise UsageError(
            "passphrase",
            f"{source} is encrypted; give its passphrase (--passphrase-file or MINDVEC_PASSPHRASE)",
        )
    try:
        seed = nacl.secret.SecretBox(_derive(passphrase, salt, opslimit, memlimit)).decrypt(box_bytes)
    except nacl.exceptions.CryptoError as exc:
        raise UsageError(
            "passphrase", f"the passphrase does not unlock {source}; check it and try again"
        ) from exc
    if len(seed) != 32:
        raise UsageError("key-file", f"{source}: the decrypted secret has the wrong length")
    return bytes(seed)
