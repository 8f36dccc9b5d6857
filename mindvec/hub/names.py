"""Repo ids, file names, revisions and ``hf://org/repo[@rev]/file`` URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from mindvec.errors import UsageError

if TYPE_CHECKING:
    pass

from mindvec.text import plain

HF_SCHEME = "hf://"
KEYS_DIR = "keys"
CARD_NAME = "README.md"
PACKAGE_SUFFIX = ".mindvec"

REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\Z")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}\Z")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}\Z")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")


# ---------------------------------------------------------------------------- names and URLs


@dataclass(frozen=True)
class HfUrl:
    """``hf://org/repo[@revision][/path/file.mindvec]``, parsed."""

    repo_id: str
    filename: str | None = None
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{quote(self.revision, safe='')}" if self.revision else ""
        tail = f"/{self.filename}" if self.filename else ""
        return f"{HF_SCHEME}{self.repo_id}{rev}{tail}"


def check_repo_id(repo_id: str) -> str:
    if not isinstance(repo_id, str) or not REPO_RE.match(repo_id) or ".." in repo_id:
        raise UsageError(
            "argument",
            f"repo id {plain(repo_id)} must read 'namespace/name' (letters, digits, '_', '.', '-')",
        )
    return repo_id


def check_filename(filename: str) -> str:
    """A path inside a repo: '/'-separated safe segments, no '..', ending in ``.mindvec``."""
    segments = filename.split("/") if isinstance(filename, str) else []
    if (
        not segments
        or not all(_SEGMENT_RE.match(s) and s not in (".", "..") for s in segments)
        or not filename.endswith(PACKAGE_SUFFIX)
        or len(filename) > 255
    ):
        raise UsageError(
            "argument",
            f"file name {plain(filename)} must be a relative path of plain segments "
            f"(letters, digits, '_', '.', '-') ending in {PACKAGE_SUFFIX}",
        )
    return filename


def check_revision(revision: str | None) -> str | None:
    if revision is None:
        return None
    if not isinstance(revision, str) or not _REVISION_RE.match(revision) or ".." in revision:
        raise UsageError("argument", f"revision {plain(revision)} is not a branch, tag or commit name")
    return revision


def parse_hf_url(url: str) -> HfUrl:
    """Parse ``hf://org/repo[@rev]/file.mindvec`` (the file may be omitted when the repo holds one).

    A revision holding '/' (``refs/pr/1``) is written percent-encoded: ``@refs%2Fpr%2F1``.
    """
    if not isinstance(url, str) or not url.startswith(HF_SCHEME):
        raise UsageError(
            "argument", f"{plain(url)} is not an hf:// URL; write hf://org/repo[@rev]/file.mindvec"
        )
    rest = url[len(HF_SCHEME) :]
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UsageError("argument", f"{plain(url)} must name a repo: hf://org/repo[@rev]/file.mindvec")
    name, _, rev = parts[1].partition("@")
    revision = unquote(rev) if rev else None
    if rev == "" and "@" in parts[1]:
        raise UsageError("argument", f"{plain(url)} has an empty revision after '@'")
    repo_id = check_repo_id(f"{parts[0]}/{name}")
    filename = "/".join(parts[2:]) or None
    return HfUrl(repo_id, check_filename(filename) if filename else None, check_revision(revision))


def is_hf_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(HF_SCHEME)
