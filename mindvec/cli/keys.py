"""``mindvec keygen OUT``: make an Ed25519 signing key.

Writes the secret key file ``OUT`` (JSON, mode 0600, created atomically) and the
public key file ``OUT.pub`` (one line ``ed25519 <base64> <comment>`` to paste into a
trust store or a README). The secret is encrypted with Argon2id + SecretBox when a
passphrase is given (``--passphrase-file``, ``--ask-passphrase`` or the
``MINDVEC_PASSPHRASE`` environment variable). ``--rotate-from OLD`` also writes
``OUT.rotation``: a record signed by the old and the new key that moves trust to the
new key (apply it with ``mindvec trust rotate``). Secret material is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from mindvec._fs import atomic_write, read_capped
from mindvec.errors import UsageError
from mindvec.keys import DEFAULT_KDF, KDF_LIMITS, SecretKey
from mindvec.rotation import RotationRecord

PASSPHRASE_ENV = "MINDVEC_PASSPHRASE"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="make an Ed25519 signing key (OUT and OUT.pub)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", help="secret key file to write; the public key goes to OUT.pub")
    parser.add_argument("--comment", default="", help="a label stored with the key, e.g. you@host")
    add_passphrase_arguments(parser)
    parser.add_argument("--ask-passphrase", action="store_true", help="prompt for a passphrase (twice)")
    parser.add_argument(
        "--kdf",
        choices=list(KDF_LIMITS),
        default=DEFAULT_KDF,
        help=f"Argon2id limits for an encrypted key (default {DEFAULT_KDF}; 'min' is for tests only)",
    )
    parser.add_argument("--force", action="store_true", help="replace existing key files")
    parser.add_argument("--rotate-from", metavar="OLD", help="also write OUT.rotation moving trust from OLD")
    parser.set_defaults(func=run)


def add_passphrase_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help=f"read the passphrase from FILE ('-' for stdin); else ${PASSPHRASE_ENV} or a prompt",
    )


#: a passphrase is a line of text; anything longer is not one
MAX_PASSPHRASE = 4096


def _read_file_passphrase(name: str) -> str:
    # a pipe is fine here (--passphrase-file <(pass show key)); the read is capped either way
    if name == "-":
        data = sys.stdin.buffer.read(MAX_PASSPHRASE + 1)
    else:
        data = read_capped(name, MAX_PASSPHRASE, what="passphrase file", code="io", allow_pipe=True)
    if len(data) > MAX_PASSPHRASE:
        raise UsageError("io", f"the passphrase from {name} is longer than {MAX_PASSPHRASE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("io", f"the passphrase file {name} is not UTF-8 text") from None
    return text[:-1] if text.endswith("\n") else text


def passphrase_for_new_key(args: argparse.Namespace) -> str | None:
    """The passphrase to encrypt a new key with, or None for an unencrypted key."""
    if args.passphrase_file:
        secret = _read_file_passphrase(args.passphrase_file)
    elif os.environ.get(PASSPHRASE_ENV):
        secret = os.environ[PASSPHRASE_ENV]
    elif args.ask_passphrase:
        secret = getpass.getpass("passphrase for the new key: ")
        if getpass.getpass("repeat it: ") != secret:
            raise UsageError("passphrase", "the two passphrases differ; run keygen again")
    else:
        return None
    if not secret:
        raise UsageError("passphrase", "the passphrase is empty; give a non-empty one or none at all")
    return secret


def load_secret_key(path: str, passphrase_file: str | None) -> SecretKey:
    """Load a key file, asking for the passphrase only when the file is encrypted."""
    if passphrase_file:
        return SecretKey.load(path, _read_file_passphrase(passphrase_file))
    try:
        return SecretKey.load(path)
    except UsageError as exc:
        if exc.code != "passphrase":
            raise
    if os.environ.get(PASSPHRASE_ENV):
        return SecretKey.load(path, os.environ[PASSPHRASE_ENV])
    if sys.stdin.isatty():
        return SecretKey.load(path, getpass.getpass(f"passphrase for {path}: "))
    raise UsageError(
        "passphrase", f"{path} is encrypted; pass --passphrase-file FILE or set {PASSPHRASE_ENV}"
    )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    pub = Path(str(out) + ".pub")
    rotation = Path(str(out) + ".rotation")
    targets = [out, pub] + ([rotation] if args.rotate_from else [])
    if not args.force:
        for target in targets:
            if target.exists():
                raise UsageError("io", f"{target} exists; choose another name or pass --force")
    old = load_secret_key(args.rotate_from, None) if args.rotate_from else None
    passphrase = passphrase_for_new_key(args)
    key = SecretKey.generate(args.comment)
    key.save(out, passphrase, kdf=args.kdf, overwrite=args.force)
    key.public_key.save(pub, args.comment)
    print(f"wrote secret key {out} (mode 0600, {'encrypted' if passphrase else 'NOT encrypted'})")
    print(f"wrote public key {pub}")
    print(f"key id {key.keyid.hex()}")
    if old is not None:
        record = RotationRecord.create(old, key, args.comment)
        atomic_write(rotation, record.to_bytes(), 0o644)
        print(f"wrote rotation record {rotation}: {old.keyid.hex()} -> {key.keyid.hex()}")
        print(f"apply it with: mindvec trust rotate {rotation}")
    print(f"trust it with: mindvec trust add {pub} --principal NAME")
    return 0
