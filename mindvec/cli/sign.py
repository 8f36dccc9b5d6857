"""``mindvec sign FILE --key K [--detached]``: add a signature to a package.

The package is fully verified for structure and digests first (nobody should sign
damaged content). The signature covers the PAE of the exact manifest bytes, which
bind the payload through its digests. Signing again with another key adds a
co-signature; signing with a key that already signed replaces its entry. Only the
signature block is rewritten, so the manifest, the payload and the package identity
stay byte for byte the same. With ``--detached`` the package is not touched at all:
the signature goes to ``FILE.sig`` (the signature block bytes; merged with existing
entries there), which ``mindvec verify`` picks up automatically.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mindvec import container, limits
from mindvec import package as pkg
from mindvec._fs import atomic_write, locked, read_capped
from mindvec.cli.keys import add_passphrase_arguments, load_secret_key
from mindvec.container import SignatureEntry
from mindvec.errors import UsageError
from mindvec.verification import detached_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sign",
        help="sign (or co-sign) a package",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", help="the .mindvec file")
    parser.add_argument("--key", required=True, help="secret key file (from 'mindvec keygen')")
    parser.add_argument("--detached", action="store_true", help="write FILE.sig instead of changing FILE")
    add_passphrase_arguments(parser)
    parser.set_defaults(func=run)


def _merge(entries: list[SignatureEntry], new: SignatureEntry) -> list[SignatureEntry]:
    return sorted([e for e in entries if e.keyid != new.keyid] + [new], key=lambda e: e.keyid)


def run(args: argparse.Namespace) -> int:
    key = load_secret_key(args.key, args.passphrase_file)
    # everything from reading the signatures to writing them happens under the lock of the file
    # that changes, so two co-signers at once both land (the second sees the first's signature)
    target = detached_path(args.file) if args.detached else Path(args.file)
    with locked(target):
        with pkg.open(args.file) as package:
            package.check_integrity()
            entry = key.sign_manifest(package.manifest_bytes)
            embedded = package.signatures
            identity = package.identity.hex()
        if args.detached:
            existing: list[SignatureEntry] = []
            if os.path.lexists(target):
                data = read_capped(target, limits.MAX_SIG_BLOCK, what="signature file", code="bounds")
                existing = container.decode_signature_block(data)
            entries = _merge(existing, entry)
            _check_count(entries)
            atomic_write(target, container.encode_signature_block(entries), 0o644)
            where = f"detached signature file {target} ({len(entries)} signature(s)); {args.file} unchanged"
        else:
            entries = _merge(embedded, entry)
            _check_count(entries)
            container.rewrite_signatures(args.file, entries)
            where = f"{target} ({len(entries)} signature(s))"
    print(f"signed {where} with key {key.keyid.hex()}")
    print(f"identity {identity} (unchanged)")
    return 0


def _check_count(entries: list[SignatureEntry]) -> None:
    if len(entries) > limits.MAX_SIGNATURES:
        raise UsageError("argument", f"a package holds at most {limits.MAX_SIGNATURES} signatures")
