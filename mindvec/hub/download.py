"""Pull a package from the Hub, verifying it before anything uses it.

``pull`` works in a fixed order, and nothing that failed is ever left where a later
``pull`` or :func:`mindvec.open` would pick it up:

1. resolve the revision to a 40-hex commit (``model_info``) and record it;
2. download with ``hf_hub_download`` pinned to that commit, into mindvec's own staging
   folder (never the shared Hugging Face cache, which hands back a file for the same
   commit without any network call and checks only its size);
3. check the file's sha256 against the Hub's LFS etag (this protects the transfer only);
4. verify structure and signatures, then trust, scope and rollback
   (:func:`mindvec.verification.enforce`), before anything beyond the preamble, the manifest
   and the signatures is parsed; then the schema, the header and every tensor digest;
5. only then move the file into mindvec's cache
   (``<cache>/hub/<org>/<repo>/<commit>/<file>``). A file already in the cache is
   verified again, exactly as a download is, every time it is used.

A file that fails any step is moved to ``<cache>/quarantine/`` (renamed so that it no
longer ends in ``.mindvec``), with a ``.reason.txt`` beside it; the error says where (or
that it was deleted, when it could not be moved).

When the Hub cannot be reached, a cached file for the requested commit (or for a branch or
tag that an earlier pull resolved, ``<cache>/hub/<org>/<repo>/refs/``) is used only after the
same full verification; ``PullResult.offline`` says so. ``endpoint`` defaults to
``$HF_ENDPOINT`` read at call time, the cache to ``$MINDVEC_CACHE``.

``huggingface_hub`` is imported only when a Hub call is made (extra ``mindvec[hub]``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mindvec import container
from mindvec._fs import sha256_file
from mindvec.errors import MindvecError, UnverifiedError, UsageError
from mindvec.hub.cache import cache_root, cached_path, quarantine
from mindvec.hub.client import HubUnreachable, endpoint_url, hf_module
from mindvec.hub.fetch import download, publisher_keys, resolve
from mindvec.hub.names import (
    _COMMIT_RE,
    PACKAGE_SUFFIX,
    check_filename,
    check_repo_id,
    check_revision,
    is_hf_url,
    parse_hf_url,
)
from mindvec.keys import PublicKey
from mindvec.package import Package
from mindvec.package import open as open_package
from mindvec.policy import Policy, from_legacy
from mindvec.state import State
from mindvec.verification import VerifyReport, enforce


@dataclass
class PullResult:
    """What a verified pull produced."""

    package: Package
    repo_id: str
    filename: str
    revision: str | None
    commit: str
    sha256: str
    path: Path
    from_cache: bool
    report: VerifyReport
    offline: bool = False  # the Hub was unreachable: the cached copy was verified, not re-compared


def _sha256_hex(path: Path) -> str:
    return sha256_file(path).hex()


def _offered_key(path: Path, offered: dict[bytes, PublicKey]) -> PublicKey | None:
    """The published key (``keys/<keyid>.pub``) of the first signer of ``path``, for TOFU.

    Reads step 1 only (preamble, manifest, signature block). The key is a candidate, never
    trust by itself: the policy pins it only after it produced a valid signature, and refuses a
    key other than the pinned one later.
    """
    for entry in container.read_raw(path).signatures:
        key = offered.get(entry.keyid)
        if key is not None:
            return key
    return None


def _verify_file(path: Path, policy: Policy, offered: dict[bytes, PublicKey]) -> VerifyReport:
    """Verify a local file completely; returns the report, or raises the first failure.

    First the prefix only (preamble, manifest, signatures): signature, trust, scope, pin and
    rollback are decided before any payload byte is parsed. Then the whole fixed check order,
    which records the version in the state file and pins the publisher key on first use.
    Both are the one decision of :mod:`mindvec.policy`, run by :func:`enforce`.
    """
    tofu_key = _offered_key(path, offered)
    enforce(path, policy, tofu_key=tofu_key, prefix_only=True)
    return enforce(path, policy, tofu_key=tofu_key)


@contextlib.contextmanager
def _staging(root: Path) -> Iterator[Path]:
    base = root / "staging"
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="pull-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _reject(
    exc: MindvecError, root: Path, repo_id: str, commit: str, filename: str, source: Path
) -> MindvecError:
    """Quarantine ``source`` and re-raise ``exc`` with where the file went."""
    reason = f"{exc.code}: {exc.message}"
    where = quarantine(root, repo_id, commit, filename, source, reason)
    if where is not None:
        note = f" The rejected file was quarantined at {where} (it will never be used); delete it when done."
    else:
        note = " The rejected file was deleted."
    return type(exc)(exc.code, exc.message.rstrip(".") + "." + note)


def pull_verified(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    policy: Policy | None = None,
    tofu: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **legacy: Any,
) -> PullResult:
    """:func:`pull`, returning the package together with the commit, sha256 and verification report."""
    check_repo_id(repo_id)
    if filename is not None:
        check_filename(filename)
    check_revision(revision)
    policy = from_legacy(policy, legacy, "pull").with_repo(repo_id)
    if tofu and policy.state is None:
        policy = replace(policy, state=State())  # TOFU pins live in the state file (default path)
    root = cache_root(cache_dir)
    hf = hf_module()
    endpoint = endpoint_url(endpoint)
    api = hf.HfApi(endpoint=endpoint, token=token, library_name="mindvec")

    # 1. resolve the revision to a commit, and record it
    try:
        resolved = resolve(api, hf, repo_id, filename, revision, token, endpoint)
    except HubUnreachable:
        cached = _offline_candidate(root, repo_id, filename, revision)
        if cached is None:
            raise
        return _verify_cached_offline(cached, root, repo_id, revision, policy)
    commit, name = resolved.commit, resolved.filename
    final = cached_path(root, repo_id, commit, name)
    _record_ref(root, repo_id, revision, commit)

    with _staging(root) as staging:
        offered: dict[bytes, PublicKey] = {}
        if tofu and resolved.key_files:
            offered = publisher_keys(hf, repo_id, commit, resolved.key_files, staging, token, endpoint)

        # a file already in mindvec's cache is verified again, exactly like a download
        if final.is_file():
            if _sha256_hex(final) == resolved.etag:
                try:
                    report = _verify_file(final, policy, offered if tofu else {})
                except MindvecError as exc:
                    raise _reject(exc, root, repo_id, commit, name, final) from None
                return _result(report, final, repo_id, name, revision, commit, resolved.etag, from_cache=True)
            damaged = UnverifiedError(
                "transfer", f"the cached copy of {repo_id}/{name}@{commit[:12]} differs from the Hub's sha256"
            )
            _reject(damaged, root, repo_id, commit, name, final)  # then download it again

        # 2. download pinned to the commit, into mindvec's own staging folder
        staged = download(hf, repo_id, name, commit, staging, token, endpoint)
        try:
            # 3. the transfer: size and sha256 against the Hub's LFS etag
            size = staged.stat().st_size
            if resolved.size is not None and size != resolved.size:
                raise UnverifiedError(
                    "transfer",
                    f"{repo_id}/{name}: downloaded {size} bytes, the Hub announced {resolved.size}; "
                    "retry the pull",
                )
            got = _sha256_hex(staged)
            if got != resolved.etag:
                raise UnverifiedError(
                    "transfer",
                    f"{repo_id}/{name}@{commit[:12]}: the downloaded bytes hash to {got}, not the Hub's LFS "
                    f"sha256 {resolved.etag}; the transfer was corrupted or tampered with, retry the pull",
                )
            # 4. structure and signatures first, then the rest, then trust, scope, pin and rollback
            report = _verify_file(staged, policy, offered if tofu else {})
        except MindvecError as exc:
            raise _reject(exc, root, repo_id, commit, name, staged) from None
        verified = report.package
        assert verified is not None  # a full check that passed opened it
        manifest_bytes, signatures = verified.manifest_bytes, list(verified.signatures)
        verified.close()

        # 5. only now into mindvec's cache
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        with contextlib.suppress(OSError):
            os.chmod(final, 0o444)

    # hand out the cached file: same manifest and signatures as verified, tensors checked on access
    try:
        package = open_package(final)
    except MindvecError as exc:
        raise _reject(exc, root, repo_id, commit, name, final) from None
    if package.manifest_bytes != manifest_bytes or list(package.signatures) != signatures:
        package.close()
        changed = UnverifiedError(
            "digest-mismatch", f"{final} changed between verification and use; pull again"
        )
        raise _reject(changed, root, repo_id, commit, name, final)
    report.package = package
    return _result(report, final, repo_id, name, revision, commit, got, from_cache=False)


def _result(
    report: VerifyReport,
    path: Path,
    repo_id: str,
    name: str,
    revision: str | None,
    commit: str,
    sha: str,
    *,
    from_cache: bool,
) -> PullResult:
    assert report.package is not None
    return PullResult(
        package=report.package,
        repo_id=repo_id,
        filename=name,
        revision=revision,
        commit=commit,
        sha256=sha,
        path=path,
        from_cache=from_cache,
        report=report,
    )


def _offline_candidate(root: Path, repo_id: str, filename: str | None, revision: str | None) -> Path | None:
    """The cached file for ``revision`` (a commit, or a branch/tag resolved by an earlier pull)."""
    if revision is not None and _COMMIT_RE.match(revision):
        commit = revision
    else:
        try:
            ref = root / "hub" / repo_id / "refs" / quote(revision or "main", safe="")
            commit = ref.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        if not _COMMIT_RE.match(commit):
            return None
    folder = root / "hub" / repo_id / commit
    if filename is not None:
        path = folder / filename
        return path if path.is_file() else None
    found = sorted(p for p in folder.glob(f"**/*{PACKAGE_SUFFIX}") if p.is_file())
    return found[0] if len(found) == 1 else None


def _verify_cached_offline(
    path: Path, root: Path, repo_id: str, revision: str | None, policy: Policy
) -> PullResult:
    """Without the Hub, a cached file is used only after the full verification (no etag to compare)."""
    commit = path.relative_to(root / "hub" / repo_id).parts[0]
    name = path.relative_to(root / "hub" / repo_id / commit).as_posix()
    try:
        report = _verify_file(path, policy, {})
    except MindvecError as exc:
        raise _reject(exc, root, repo_id, commit, name, path) from None
    result = _result(report, path, repo_id, name, revision, commit, _sha256_hex(path), from_cache=True)
    result.offline = True
    return result


def _record_ref(root: Path, repo_id: str, revision: str | None, commit: str) -> None:
    """Remember which commit ``revision`` resolved to (``<cache>/hub/<repo>/refs/<revision>``)."""
    refs = root / "hub" / repo_id / "refs"
    try:
        refs.mkdir(parents=True, exist_ok=True)
        (refs / quote(revision or "main", safe="")).write_text(commit + "\n", encoding="ascii")
    except OSError:
        pass


def pull(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    policy: Policy | None = None,
    tofu: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    **legacy: Any,
) -> Package:
    """Download a package from the Hub and return it only once it is proven (see the module doc).

    ``repo_id`` may also be an ``hf://org/repo[@rev][/file.mindvec]`` URL. ``policy``: the
    :class:`~mindvec.policy.Policy` (its ``repo`` is set to ``repo_id``). ``tofu=True`` pins
    the publisher's key for this repo in the state file on first use and refuses a different key
    later (``key-pin``); a pinned key counts as trusted for this repo only.
    """
    if is_hf_url(repo_id):
        url = parse_hf_url(repo_id)
        if (filename is not None and url.filename) or (revision is not None and url.revision):
            raise UsageError("argument", "give the file and revision either in the hf:// URL or as arguments")
        repo_id, filename, revision = url.repo_id, filename or url.filename, revision or url.revision
    return pull_verified(
        repo_id,
        filename,
        revision=revision,
        policy=from_legacy(policy, legacy, "pull"),
        tofu=tofu,
        endpoint=endpoint,
        token=token,
        cache_dir=cache_dir,
    ).package
