"""Full verification of a package, in the fixed check order, as a report.

1. structure and bounds (``container.read_raw``);
2. every signature whose key the trust store knows (trusted or revoked) is checked
   over the PAE of the exact manifest bytes (``bad-signature``);
3-5. strict decode, schema, header digest and consistency (``Package.from_raw``);
6. every tensor digest (``Package.check_integrity``, ``digest-mismatch``);
7. trust policy (``no-signature``, ``revoked``, ``expired``, ``scope``, ``key-pin``,
   ``threshold``, ``untrusted-key``), then rollback against the state file.

The first failure is the report's error. A detached signature file ``FILE.sig``
(for ``x.mindvec`` that is ``x.mindvec.sig``) is merged with the embedded signatures
when it exists; its entries are checked exactly like embedded ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mindvec import limits
from mindvec.errors import InvalidError, MalformedError, MindvecError, UnverifiedError, UsageError
from mindvec.keys import PublicKey
from mindvec.policy import SignatureResult, check_signatures, check_threshold, decide, resolve_now
from mindvec.state import State
from mindvec.trust import TrustEntry, TrustStore

if TYPE_CHECKING:
    from mindvec.container import SignatureEntry
    from mindvec.package import Package

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
    trust: TrustStore | str | os.PathLike[str] | None = None,
    threshold: int = 1,
    state: State | str | os.PathLike[str] | None = None,
    now: datetime | str | None = None,
    *,
    repo: str | None = None,
    detached: str | os.PathLike[str] | bool | None = None,
) -> VerifyReport:
    """Verify a package file (or an opened Package) and return the report; never raises
    for a bad package, only for bad arguments or an unreadable trust store (``UsageError``).

    ``now`` (default: system clock, UTC) is the time validity windows are checked at.
    ``detached``: None picks up ``FILE.sig`` when it exists, False ignores it, a path
    names the detached file. With ``state``, a verified package is recorded there.
    """
    return run_checks(
        path_or_package, trust=trust, threshold=threshold, state=state, now=now, repo=repo, detached=detached
    )


def _detached_entries(
    path: Path | None, detached: str | os.PathLike[str] | bool | None
) -> tuple[Path | None, list[SignatureEntry]]:
    from mindvec import container

    if detached is False or (detached is None and path is None):
        return None, []
    if detached is None or detached is True:
        assert path is not None
        sig_path = detached_path(path)
        if not sig_path.exists():
            return None, []
    else:
        sig_path = Path(detached)
    try:
        size = sig_path.stat().st_size
        if size > limits.MAX_SIG_BLOCK:
            raise MalformedError("bounds", f"{sig_path} is {size} bytes; a signature block is at most 65536")
        data = sig_path.read_bytes()
    except OSError as exc:
        raise UsageError("io", f"cannot read detached signatures {sig_path}: {exc.strerror}") from None
    return sig_path, container.decode_signature_block(data)


def _merge(embedded: list[SignatureEntry], extra: list[SignatureEntry]) -> list[tuple[SignatureEntry, str]]:
    merged = [(e, "embedded") for e in embedded]
    merged += [(e, "detached") for e in extra if e not in embedded]
    return merged


def run_checks(
    source: Package | str | os.PathLike[str],
    *,
    trust: TrustStore | str | os.PathLike[str] | None = None,
    threshold: int = 1,
    state: State | str | os.PathLike[str] | None = None,
    now: datetime | str | None = None,
    repo: str | None = None,
    detached: str | os.PathLike[str] | bool | None = None,
    allow_unsigned: bool = False,
    allow_untrusted: bool = False,
    tofu_key: PublicKey | None = None,
) -> VerifyReport:
    """The whole check order; :func:`verify` and :func:`mindvec.policy.enforce` share it."""
    from mindvec import container
    from mindvec.package import Package

    threshold = check_threshold(threshold)
    store = TrustStore.coerce(trust)
    state_obj = State.coerce(state)
    when = resolve_now(now)
    path = None if isinstance(source, Package) else Path(source)
    report = VerifyReport(str(path) if path is not None else None, threshold=threshold)
    pinned: PublicKey | None = None
    try:
        # 1. structure
        if isinstance(source, Package):
            pkg: Package | None = source
            report.path = str(source.path) if source.path is not None else None
            manifest_bytes, embedded = source.manifest_bytes, list(source.signatures)
            raw = None
            path = Path(source.path) if source.path is not None else None
        else:
            pkg = None
            raw = container.read_raw(source)
            manifest_bytes, embedded = raw.manifest_bytes, list(raw.signatures)
        sig_path, extra = _detached_entries(path, detached)
        report.detached = str(sig_path) if sig_path else None
        entries = _merge(embedded, extra)
        # trust on first use: a pinned key (or the offered one) counts as trusted for this repo
        if state_obj is not None and repo is not None:
            pinned = state_obj.pin(repo)
            offered = pinned or tofu_key
            if offered is not None and not store.is_revoked(offered.keyid):
                store = store.with_entries([TrustEntry(f"tofu:{repo}", offered, repos=(repo,))])
        # 2. signatures over the exact manifest bytes
        check_signatures(manifest_bytes, entries, store, report.signatures)
        # 3-5. decode, schema, header
        if pkg is None:
            assert raw is not None
            pkg = Package.from_raw(raw)
        report.package = pkg
        report.identity = pkg.identity.hex()
        meta = pkg.manifest["package"]
        report.package_id, report.package_version = meta["id"], meta["version"]
        report.package_name = meta.get("name")
        # 6. every tensor digest
        report.payload_ok = False
        pkg.check_integrity()
        report.payload_ok = True
        # 7. trust policy, then rollback
        error = decide(
            report.signatures, store, package_id=meta["id"], repo=repo, now=when, threshold=threshold
        )
        if pinned is not None and (error is None or error.code not in ("revoked", "expired", "scope")):
            error = _check_pin(report.signatures, pinned, repo) or error
        if error is not None:
            allowed = (error.code == "no-signature" and allow_unsigned) or (
                error.code == "untrusted-key" and allow_untrusted
            )
            if not allowed:
                raise error
            report.error, report.allowed = error, True
        if state_obj is not None:
            if report.error is None:
                state_obj.record(meta["id"], meta["version"], pkg.identity)
                report.state_updated = True
                if (
                    repo is not None
                    and pinned is None
                    and tofu_key is not None
                    and _signed_by(report.signatures, tofu_key)
                ):
                    state_obj.set_pin(repo, tofu_key)
            else:
                state_obj.check(meta["id"], meta["version"], pkg.identity)
    except (MalformedError, InvalidError, UnverifiedError) as exc:
        report.error, report.allowed = exc, False
    report.verdict = verdict_for(report.error)
    return report


def _signed_by(results: list[SignatureResult], key: PublicKey) -> bool:
    return any(r.valid and r.keyid == key.keyid_hex for r in results)


def _check_pin(results: list[SignatureResult], pinned: PublicKey, repo: str | None) -> MindvecError | None:
    if _signed_by(results, pinned):
        return None
    return UnverifiedError(
        "key-pin",
        f"{repo} was pinned on first use to key {pinned.keyid_hex}, and this package has no valid "
        "signature by it; if the publisher rotated keys, apply their rotation record",
    )
