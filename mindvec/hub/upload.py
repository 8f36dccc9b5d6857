"""Publish a signed package, its signers' public keys and a model card in one commit."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindvec.errors import UnverifiedError, UsageError

if TYPE_CHECKING:
    from mindvec.keys import PublicKey

from mindvec.hub.card import render_model_card
from mindvec.hub.client import endpoint_url, hf_module, hub_error, hub_errors
from mindvec.hub.names import CARD_NAME, KEYS_DIR, check_filename, check_repo_id, check_revision


def _load_public_keys(public_key: Any) -> list[PublicKey]:
    from mindvec.keys import PublicKey

    if public_key is None:
        return []
    items = public_key if isinstance(public_key, (list, tuple)) else [public_key]
    keys: list[PublicKey] = []
    for item in items:
        if isinstance(item, PublicKey):
            keys.append(item)
        elif hasattr(item, "public_key") and isinstance(item.public_key, PublicKey):
            keys.append(item.public_key)  # a SecretKey: only its public half is used
        else:
            keys.append(PublicKey.load(item))
    return keys


def push(
    path: str | os.PathLike[str],
    repo_id: str,
    *,
    filename: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    allow_unsigned: bool = False,
    public_key: Any = None,
    create: bool = True,
    private: bool | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a package, its signers' public key files and a model card in one commit.

    ``public_key``: a public key file path, a :class:`~mindvec.keys.PublicKey` (or a
    list of them) for the package's signers; when omitted, keys are looked up by key id in
    the default trust store. Every signature is checked against its key before anything is
    uploaded; a package that does not verify, or is unsigned without ``allow_unsigned=True``,
    is refused. Returns the commit URL.
    """
    from mindvec import package as package_mod

    check_repo_id(repo_id)
    check_revision(revision)
    src = Path(path)
    name = check_filename(filename if filename is not None else src.name)
    with package_mod.open(src) as pkg:
        pkg.check_integrity()  # never publish a damaged file
        manifest, manifest_bytes, identity = pkg.manifest, pkg.manifest_bytes, pkg.identity
        signatures = list(pkg.signatures)
    keyids = [entry.keyid for entry in signatures]
    if not keyids and not allow_unsigned:
        raise UnverifiedError(
            "no-signature",
            f"{src} is unsigned; sign it first (mindvec sign {src} --key KEY) or pass "
            "allow_unsigned=True (--allow-unsigned) to publish it unsigned",
        )
    keys = _load_public_keys(public_key)
    if public_key is None and keyids:
        from mindvec.trust import TrustStore

        store = TrustStore.load()
        keys = [k for k in (store.key_for(kid) for kid in keyids) if k is not None]
    by_id: dict[bytes, PublicKey] = {k.keyid: k for k in keys}
    for key in keys:
        if key.keyid not in keyids:
            raise UsageError(
                "argument",
                f"public key {key.keyid_hex} did not sign {src}; pass the signer's public key file",
            )
    for entry in signatures:
        signer = by_id.get(entry.keyid)
        if signer is not None and not signer.verify_manifest(manifest_bytes, entry):
            raise UnverifiedError(
                "bad-signature",
                f"the signature by {entry.keyid.hex()} on {src} does not verify; re-sign the package before "
                "publishing it",
            )
    if keyids and not by_id:
        raise UsageError(
            "argument",
            f"no public key for the signer(s) {', '.join(k.hex() for k in keyids)} of {src}; pass "
            "public_key= (--public-key FILE.pub) so that pullers can find it",
        )

    card = render_model_card(
        manifest,
        identity=identity,
        keyids=keyids,
        repo_id=repo_id,
        filename=name,
        published_keys=list(by_id),
    )
    hf = hf_module()
    endpoint = endpoint_url(endpoint)
    api = hf.HfApi(endpoint=endpoint, token=token, library_name="mindvec")
    operations = [hf.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(src))]
    for kid, key in sorted(by_id.items()):
        line = key.to_line(f"mindvec signer of {name}") + "\n"
        operations.append(
            hf.CommitOperationAdd(path_in_repo=f"{KEYS_DIR}/{kid.hex()}.pub", path_or_fileobj=line.encode())
        )
    operations.append(hf.CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card.encode("utf-8")))
    pkg_meta = manifest.get("package", {})
    message = commit_message or f"mindvec push {name} (version {pkg_meta.get('version', '?')})"
    try:
        if create:
            api.create_repo(repo_id, exist_ok=True, private=private)
        info = api.create_commit(repo_id, operations=operations, commit_message=message, revision=revision)
    except hub_errors() as exc:
        raise hub_error(f"publishing {name} to {repo_id}", exc, endpoint) from None
    return str(info.commit_url)
