"""Verification of a package, in the fixed check order, as a report; and ``enforce``.

1. structure and bounds (``container.read_raw``);
2. every signature whose key the trust store knows (trusted or revoked) is checked
   over the PAE of the exact manifest bytes (``bad-signature``);
3-5. strict decode, schema, header digest and consistency (``Package.from_raw``);
6. every tensor digest (``Package.check_integrity``, ``digest-mismatch``);
7. trust policy (``no-signature``, ``revoked``, ``expired``, ``scope``, ``key-pin``,
   ``threshold``, ``untrusted-key``), then rollback against the state file.

The first failure is the report's error. ``prefix_only`` (what the Hub runs before it parses
a downloaded payload) stops after step 3: it decides signatures, trust, pins and rollback
from the preamble, manifest and signatures alone. It only refuses earlier; the full check
stays the one that accepts. A detached signature file ``FILE.sig``
(for ``x.mindvec`` that is ``x.mindvec.sig``) is merged with the embedded signatures
when it exists; its entries are checked exactly like embedded ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindvec import canonical, container, limits
from mindvec._fs import read_capped
from mindvec.container import SignatureEntry
from mindvec.errors import InvalidError, MalformedError, MindvecError, UnverifiedError, UsageError
from mindvec.keys import PublicKey
from mindvec.package import Package
from mindvec.policy import (
    Policy,
    SignatureResult,
    check_signatures,
    from_legacy,
    judge,
    signed_by,
    with_tofu,
)

VERIFIED = "verified"
UNSIGNED = "unsigned"
UNTRUSTED = "untrusted"
INVALID = "invalid"

#: ``mindvec verify`` exit code for each verdict (2 is a usage error)
EXIT_CODES = {VERIFIED: 0, INVALID: 1, UNSIGNED: 3, UNTRUSTED: 4}
DETACHED_SUFFIX = ".sig"


def detached_path(path: str | os.PathLike[str]) -> Path:
    """Where the detached signature file of ``path`` lives: ``FILE.sig``."""
    return Path(str(path) + DETACHED_SUFFIX)


@dataclass
class VerifyReport:
    """What verification found. ``error`` is the first failure (None when verified)."""

    path: str | None
    verdict: str = INVALID
    error: MindvecError | None = None
    signatures: list[SignatureResult] = field(default_factory=list)
    payload_ok: bool | None = None
    identity: str | None = None
    package_id: str | None = None
    package_version: int | None = None
    package_name: str | None = None
    threshold: int = 1
    detached: str | None = None
    allowed: bool = False  # the error is one the caller opted in to accept
    state_updated: bool = False
    prefix_only: bool = False  # only steps 1-3 and 7 ran (the Hub's early gate)
    package: Package | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def trusted_signers(self) -> list[str]:
        return [r.principal or r.keyid for r in self.signatures if r.trusted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "error": self.error.to_dict() if self.error else None,
            "signatures": [r.to_dict() for r in self.signatures],
            "payload_ok": self.payload_ok,
            "identity": self.identity,
            "package": {"id": self.package_id, "version": self.package_version, "name": self.package_name},
            "threshold": self.threshold,
            "detached": self.detached,
            "state_updated": self.state_updated,
        }


def verdict_for(error: MindvecError | None) -> str:
    if error is None:
        return VERIFIED
    return {"no-signature": UNSIGNED, "untrusted-key": UNTRUSTED}.get(error.code, INVALID)


def verify(
    path_or_package: Package | str | os.PathLike[str],
    policy: Policy | None = None,
    *legacy_args: Any,
    detached: str | os.PathLike[str] | bool | None = None,
    **legacy: Any,
) -> VerifyReport:
    """Verify a package file (or an opened Package) and return the report.

    Never raises for a bad package, only for bad arguments or an unreadable trust store
    (``UsageError``). ``detached``: None picks up ``FILE.sig`` when it exists, False ignores
    it, a path names the detached file. With ``policy.state``, a verified package is recorded.
    The 0.1 form ``verify(path, trust, threshold, state, now, repo=...)`` still works, with a
    DeprecationWarning.
    """
    if policy is not None and not isinstance(policy, Policy):
        legacy_args = (policy, *legacy_args)
        policy = None
    for name, value in zip(("trust", "threshold", "state", "now"), legacy_args, strict=False):
        legacy[name] = value
    if len(legacy_args) > 4:
        raise TypeError("verify() takes a package and a Policy")
    return run_checks(path_or_package, from_legacy(policy, legacy, "verify"), detached=detached)


def enforce(
    package: Package | str | os.PathLike[str],
    policy: Policy | None = None,
    *,
    tofu_key: PublicKey | None = None,
    prefix_only: bool = False,
    **legacy: Any,
) -> VerifyReport:
    """Verify ``package`` and refuse it unless ``policy`` allows its use.

    What the loader, the translator and the Hub call before a package is used. Returns the
    :class:`VerifyReport` (its ``package`` is the opened :class:`~mindvec.package.Package`)
    or raises the first failure. ``tofu_key``: the publisher key offered for trust on first use
    of ``policy.repo`` (needs ``policy.state``); it is pinned once it produced a valid signature.
    """
    report = run_checks(
        package, from_legacy(policy, legacy, "enforce"), tofu_key=tofu_key, prefix_only=prefix_only
    )
    if report.error is not None and not report.allowed:
        raise report.error
    return report


@contextlib.contextmanager
def checked(
    source: Package | str | os.PathLike[str], policy: Policy
) -> Iterator[tuple[Package, VerifyReport]]:
    """The package ``source`` once :func:`enforce` accepted it, with the report.

    A package opened here (from a path) is closed on exit; one the caller handed in is not.
    """
    if isinstance(source, Package):
        yield source, enforce(source, policy)
        return
    if not isinstance(source, (str, os.PathLike)):
        kind = type(source).__name__
        raise UsageError("argument", f"expected a package path or a mindvec.Package, not {kind}")
    report = enforce(source, policy)
    assert report.package is not None  # a full check that passed opened it
    with report.package as package:
        yield package, report


def _detached_entries(
    path: Path | None, detached: str | os.PathLike[str] | bool | None
) -> tuple[Path | None, list[SignatureEntry]]:
    if detached is False or (detached is None and path is None):
        return None, []
    if detached is None or detached is True:
        assert path is not None
        sig_path = detached_path(path)
        if not sig_path.exists():
            return None, []
    else:
        sig_path = Path(detached)
    data = read_capped(sig_path, limits.MAX_SIG_BLOCK, what="detached signature file", code="bounds")
    return sig_path, container.decode_signature_block(data)


def _merge(embedded: list[SignatureEntry], extra: list[SignatureEntry]) -> list[tuple[SignatureEntry, str]]:
    merged = [(e, "embedded") for e in embedded]
    merged += [(e, "detached") for e in extra if e not in embedded]
    return merged


def run_checks(
    source: Package | str | os.PathLike[str],
    policy: Policy,
    *,
    detached: str | os.PathLike[str] | bool | None = None,
    tofu_key: PublicKey | None = None,
    prefix_only: bool = False,
) -> VerifyReport:
    """The whole check order (or its prefix); :func:`verify` and :func:`enforce` share it."""
    store = policy.store()
    state = policy.state_file()
    when = policy.clock()
    path = None if isinstance(source, Package) else Path(source)
    report = VerifyReport(str(path) if path is not None else None, threshold=policy.threshold)
    report.prefix_only = prefix_only
    try:
        # 1. structure
        pkg: Package | None = None
        raw: container.RawPackage | None = None
        if isinstance(source, Package):
            pkg, path = source, Path(source.path)
            report.path = str(source.path)
            manifest_bytes, embedded = source.manifest_bytes, list(source.signatures)
        else:
            raw = container.read_raw(source)
            manifest_bytes, embedded = raw.manifest_bytes, list(raw.signatures)
        sig_path, extra = _detached_entries(path, False if prefix_only else detached)
        report.detached = str(sig_path) if sig_path else None
        store, pinned = with_tofu(store, state, policy.repo, tofu_key)
        # 2. signatures over the exact manifest bytes
        check_signatures(manifest_bytes, _merge(embedded, extra), store, report.signatures)
        identity = hashlib.sha256(manifest_bytes).digest()
        report.identity = identity.hex()
        if prefix_only:
            # 3. strict decode only: id and version for the trust decision and the rollback check
            meta = _prefix_meta(canonical.decode(manifest_bytes))
            if meta is None:
                return report  # the full check names the defect
        else:
            # 3-5. decode, schema, header; 6. every tensor digest
            if pkg is None:
                assert raw is not None
                pkg = Package.from_raw(raw)
            report.package = pkg
            meta = pkg.manifest["package"]
            report.package_name = meta.get("name")
            report.payload_ok = False
            pkg.check_integrity()
            report.payload_ok = True
        report.package_id, report.package_version = meta["id"], meta["version"]
        # 7. trust policy and pin, then rollback
        error = judge(report.signatures, store, policy, package_id=meta["id"], now=when, pinned=pinned)
        if error is not None:
            if not policy.allows(error):
                raise error
            report.error, report.allowed = error, True
        if state is not None:
            if report.error is None and not prefix_only:
                state.record(meta["id"], meta["version"], identity)
                report.state_updated = True
                repo = policy.repo
                if repo is not None and pinned is None and tofu_key is not None:
                    if signed_by(report.signatures, tofu_key):
                        state.set_pin(repo, tofu_key)
            else:
                state.check(meta["id"], meta["version"], identity)
    except (MalformedError, InvalidError, UnverifiedError) as exc:
        report.error, report.allowed = exc, False
    report.verdict = verdict_for(report.error)
    return report


def _prefix_meta(manifest: Any) -> dict[str, Any] | None:
    meta = manifest.get("package") if isinstance(manifest, dict) else None
    if not isinstance(meta, dict):
        return None
    package_id, version = meta.get("id"), meta.get("version")
    if not isinstance(package_id, str) or not isinstance(version, int) or isinstance(version, bool):
        return None
    return meta
