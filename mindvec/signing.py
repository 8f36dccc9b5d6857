"""Key ids and the signed message (PAE) of a mindvec package.

All cryptography is PyNaCl (libsodium): this module only frames bytes.

* ``keyid(pk) = sha256(b"mindvec-ed25519\\x00" + pk)[:16]`` -- a hint for finding the
  key, never a reason to trust it.
* The signed message is the pre-authentication encoding ``pae(manifest_bytes)``::

      b"MINDVECv1 " + len(T) + b" " + T + b" " + len(M) + b" " + M

  with ``T = b"application/vnd.mindvec.manifest.v1+msgpack"`` and ``M`` the exact
  manifest bytes; lengths are ASCII decimal without leading zeros.

Keys and key files are :mod:`mindvec.keys`; rotation records :mod:`mindvec.rotation`.
"""

from __future__ import annotations

import hashlib

from mindvec.errors import UsageError
from mindvec.limits import KEYID_LEN, PUBLIC_KEY_LEN, SIGNATURE_ALG

ALG = SIGNATURE_ALG
KEYID_DOMAIN = b"mindvec-ed25519\x00"
PAE_PREFIX = b"MINDVECv1"
MANIFEST_PAYLOAD_TYPE = b"application/vnd.mindvec.manifest.v1+msgpack"


def keyid(public_key: bytes) -> bytes:
    """The 16-byte key id of a raw 32-byte Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_LEN:
        raise UsageError("argument", f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
    return hashlib.sha256(KEYID_DOMAIN + public_key).digest()[:KEYID_LEN]


def pae(message: bytes, payload_type: bytes = MANIFEST_PAYLOAD_TYPE) -> bytes:
    """Pre-authentication encoding of ``message`` under ``payload_type``.

    With the default type this is exactly what a package signature covers.
    """
    return b" ".join(
        (PAE_PREFIX, str(len(payload_type)).encode(), payload_type, str(len(message)).encode(), message)
    )
