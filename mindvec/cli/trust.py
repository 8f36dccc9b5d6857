"""``mindvec trust add|list|remove|revoke|rotate``: edit the trust store.

The store is a text file like OpenSSH ``allowed_signers`` (see the spec's "Trust
store" section), by default ``$XDG_CONFIG_HOME/mindvec/allowed_signers``; ``--trust
PATH`` picks another. Every change takes a file lock and rewrites atomically.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from mindvec._fs import read_capped
from mindvec.errors import UsageError
from mindvec.keys import PublicKey
from mindvec.limits import MAX_KEY_FILE, MAX_ROTATION_FILE
from mindvec.rotation import RotationRecord
from mindvec.state import State
from mindvec.times import format_time, parse_time
from mindvec.trust import TrustEntry, TrustStore, default_trust_path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "trust",
        help="manage trusted and revoked signing keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="trust_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="trust a public key for a principal")
    add.add_argument("key", help="public key file (.pub), or the line 'ed25519 <base64> [comment]'")
    add.add_argument("--principal", help="who the key belongs to (default: the key's comment)")
    add.add_argument("--packages", help="comma-separated package id globs the key may sign (default any)")
    add.add_argument("--repos", help="comma-separated Hub repo globs the key may publish from")
    add.add_argument("--valid-after", help="start of validity, YYYYMMDD[HHMMSS]Z or ISO 8601 (UTC)")
    add.add_argument("--valid-before", help="end of validity (exclusive), same forms")
    add.set_defaults(func=run_add)

    lst = actions.add_parser("list", help="show trusted and revoked keys")
    lst.add_argument("--json", action="store_true", help="print as JSON")
    lst.set_defaults(func=run_list)

    remove = actions.add_parser("remove", help="drop the entries of a principal or key id")
    remove.add_argument("selector", help="principal, or key id (hex, at least 8 leading digits)")
    remove.set_defaults(func=run_remove)

    revoke = actions.add_parser("revoke", help="revoke a key: no signature by it is accepted again")
    revoke.add_argument("key", help="public key file, key line, or the key id of a key in the store")
    revoke.add_argument("--comment", default="", help="why (kept in the store)")
    revoke.set_defaults(func=run_revoke)

    rotate = actions.add_parser("rotate", help="apply a key rotation record (from keygen --rotate-from)")
    rotate.add_argument("record", help="the .rotation file")
    rotate.add_argument("--state", help="also move TOFU pins in this state file")
    rotate.set_defaults(func=run_rotate)

    for sub in (add, lst, remove, revoke, rotate):
        sub.add_argument(
            "--trust", "--store", dest="trust", help=f"trust store path (default {default_trust_path()})"
        )


def _read_key(text: str) -> tuple[PublicKey, str]:
    path = Path(text)
    if os.path.lexists(path):
        data = read_capped(path, MAX_KEY_FILE, what="public key file", code="key-file")
        try:
            content = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UsageError("key-file", f"{path} is not UTF-8 text") from None
        if content.startswith("{"):
            raise UsageError("key-file", f"{path} looks like a secret key file; give the .pub file")
        return PublicKey.from_line(content)
    if text.startswith("ed25519 "):
        return PublicKey.from_line(text)
    return PublicKey.from_text(text), ""


def run_add(args: argparse.Namespace) -> int:
    key, comment = _read_key(args.key)
    principal = args.principal or (comment.split()[0] if comment.split() else "")
    if not principal:
        raise UsageError("argument", "the key has no comment to name it; pass --principal NAME")
    entry = TrustEntry(
        principal=principal,
        key=key,
        packages=_globs(args.packages),
        repos=_globs(args.repos),
        valid_after=parse_time(args.valid_after) if args.valid_after else None,
        valid_before=parse_time(args.valid_before) if args.valid_before else None,
        comment=comment,
    )
    with TrustStore.edit(args.trust) as store:
        store.add(entry)
        where = store.path
    print(f"trusted key {key.keyid_hex} for {principal} in {where}")
    return 0


def _globs(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    globs = tuple(g.strip() for g in text.split(","))
    if any(not g or any(c.isspace() or c == '"' for c in g) for g in globs):
        raise UsageError("argument", f"{text!r} must be comma-separated globs without spaces or quotes")
    return globs


def run_list(args: argparse.Namespace) -> int:
    store = TrustStore.load(args.trust)
    if args.json:
        doc = {
            "path": str(store.path),
            "trusted": [
                {
                    "principal": e.principal,
                    "keyid": e.key.keyid_hex,
                    "public_key": e.key.base64,
                    "packages": list(e.packages),
                    "repos": list(e.repos),
                    "valid_after": format_time(e.valid_after) if e.valid_after else None,
                    "valid_before": format_time(e.valid_before) if e.valid_before else None,
                    "revoked": store.is_revoked(e.key.keyid),
                }
                for e in store.entries
            ],
            "revoked": [{"keyid": r.key.keyid_hex, "public_key": r.key.base64} for r in store.revocations],
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"trust store {store.path}")
    if not store.entries and not store.revocations:
        print("  (empty) add a key with: mindvec trust add KEY.pub --principal NAME")
    for e in store.entries:
        state = " REVOKED" if store.is_revoked(e.key.keyid) else ""
        print(f"  {e.key.keyid_hex}  {e.principal}  {e.options_text() or 'any package'}{state}")
    for r in store.revocations:
        print(f"  {r.key.keyid_hex}  @revoked  {r.comment}".rstrip())
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with TrustStore.edit(args.trust) as store:
        removed = store.remove(args.selector)
    if not removed:
        raise UsageError("not-found", f"no entry matches {args.selector!r}; see 'mindvec trust list'")
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    with TrustStore.edit(args.trust) as store:
        key: PublicKey | None = None
        selector = args.key.lower()
        if (
            len(selector) >= 8
            and all(c in "0123456789abcdef" for c in selector)
            and not Path(args.key).exists()
        ):
            matches = {e.key for e in store.entries if e.key.keyid_hex.startswith(selector)}
            if len(matches) == 1:
                key = matches.pop()
            elif len(matches) > 1:
                raise UsageError("argument", f"key id prefix {args.key} is ambiguous; give more digits")
        if key is None:
            key = _read_key(args.key)[0]
        store.revoke(key, args.comment)
    print(f"revoked key {key.keyid_hex}; no signature by it will be accepted")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    data = read_capped(args.record, MAX_ROTATION_FILE, what="rotation record", code="key-file")
    record = RotationRecord.from_bytes(data)
    record.verify()
    moved = 0
    try:
        with TrustStore.edit(args.trust) as store:
            moved = store.apply_rotation(record)
    except UsageError as exc:
        if exc.code != "not-found" or not args.state:
            raise
    plural = "y" if moved == 1 else "ies"
    print(f"moved {moved} trust entr{plural} from {record.old.keyid_hex} to {record.new.keyid_hex}")
    if args.state:
        pins = State(args.state).apply_rotation(record)
        print(f"moved {pins} TOFU pin(s) in {args.state}")
    return 0
