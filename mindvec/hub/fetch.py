"""Step 1 and 2 of a pull: resolve the revision to a commit, then download pinned to it.

Downloads go into mindvec's own staging folder, never the shared Hugging Face cache, which
hands back a file for the same commit without any network call and checks only its size.
Nothing here decides trust: :mod:`mindvec.hub.download` verifies what these functions fetch.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindvec.errors import UnverifiedError, UsageError
from mindvec.hub.client import hub_error, hub_errors
from mindvec.hub.names import _COMMIT_RE, _SHA256_RE, KEYS_DIR, PACKAGE_SUFFIX, check_filename
from mindvec.keys import PublicKey

__all__ = ["Resolved", "download", "fetch_pinned", "publisher_keys", "resolve"]


@dataclass
class Resolved:
    commit: str
    filename: str
    etag: str
    size: int | None
    key_files: list[str]


def resolve(
    api: Any,
    hf: Any,
    repo_id: str,
    filename: str | None,
    revision: str | None,
    token: str | None,
    endpoint: str | None,
) -> Resolved:
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except hub_errors() as exc:
        raise hub_error(f"resolving {repo_id}@{revision or 'main'}", exc, endpoint) from None
    commit = info.sha
    if not isinstance(commit, str) or not _COMMIT_RE.match(commit):
        raise UnverifiedError(
            "transfer", f"the Hub answered a revision of {repo_id} that is not a 40-hex commit"
        )
    if revision is not None and _COMMIT_RE.match(revision) and commit != revision:
        raise UnverifiedError(
            "transfer", f"asked for commit {revision} of {repo_id}, the Hub answered {commit}"
        )
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    if filename is None:
        candidates = sorted(n for n in siblings if n.endswith(PACKAGE_SUFFIX))
        if len(candidates) != 1:
            listing = ", ".join(candidates[:10]) or "none"
            raise UsageError(
                "not-found",
                f"{repo_id}@{commit[:12]} holds {len(candidates)} .mindvec files ({listing}); "
                "name the one to pull",
            )
        filename = candidates[0]
    check_filename(filename)
    sibling = siblings.get(filename)
    if sibling is None:
        raise UsageError("not-found", f"{repo_id} has no file {filename} at commit {commit}; check the name")
    key_files = sorted(n for n in siblings if n.startswith(f"{KEYS_DIR}/") and n.endswith(".pub"))
    url = hf.hf_hub_url(repo_id, filename, revision=commit, endpoint=endpoint)
    try:
        meta = hf.get_hf_file_metadata(url, token=token, endpoint=endpoint)
    except hub_errors() as exc:
        raise hub_error(f"reading the metadata of {repo_id}/{filename}", exc, endpoint) from None
    etag = (meta.etag or "").lower()
    if meta.commit_hash is not None and meta.commit_hash != commit:
        raise UnverifiedError(
            "transfer", f"{repo_id}/{filename}: the Hub served commit {meta.commit_hash}, not {commit}; retry"
        )
    if not _SHA256_RE.match(etag):
        raise UnverifiedError(
            "transfer",
            f"{repo_id}/{filename} has no LFS sha256 etag, so its transfer cannot be checked; "
            "the publisher should upload it with mindvec push (which stores it in LFS)",
        )
    lfs = getattr(sibling, "lfs", None)
    lfs_sha = getattr(lfs, "sha256", None) if lfs is not None else None
    if lfs_sha is not None and str(lfs_sha).lower() != etag:
        raise UnverifiedError(
            "transfer",
            f"{repo_id}/{filename}: the repo listing and the download disagree on its sha256; retry",
        )
    return Resolved(commit, filename, etag, meta.size, key_files)


def fetch_pinned(
    hf: Any, repo_id: str, name: str, commit: str, cache: Path, token: str | None, endpoint: str | None
) -> Path:
    """hf_hub_download of ``name`` pinned to ``commit`` into a private ``cache`` (never HF's shared one)."""
    try:
        got = hf.hf_hub_download(
            repo_id,
            name,
            revision=commit,
            cache_dir=str(cache),
            force_download=True,
            token=token,
            endpoint=endpoint,
            library_name="mindvec",
        )
    except hub_errors() as exc:
        raise hub_error(f"downloading {repo_id}/{name}@{commit[:12]}", exc, endpoint) from None
    return Path(got).resolve()


def download(
    hf: Any,
    repo_id: str,
    filename: str,
    commit: str,
    staging: Path,
    token: str | None,
    endpoint: str | None,
) -> Path:
    """The package, pinned to ``commit``, moved out of the private cache to a plain file in ``staging``."""
    blob = fetch_pinned(hf, repo_id, filename, commit, staging / "hf", token, endpoint)
    target = staging / "file"
    os.replace(blob, target)
    return target


def publisher_keys(
    hf: Any,
    repo_id: str,
    commit: str,
    key_files: list[str],
    staging: Path,
    token: str | None,
    endpoint: str | None,
) -> dict[bytes, PublicKey]:
    """Public key files the repo publishes at ``commit`` (a hint for TOFU, never trust by themselves)."""
    keys: dict[bytes, PublicKey] = {}
    for name in key_files[:16]:
        got = fetch_pinned(hf, repo_id, name, commit, staging / "hf-keys", token, endpoint)
        with contextlib.suppress(UsageError):
            key = PublicKey.load(got)
            keys[key.keyid] = key
    return keys
