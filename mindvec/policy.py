"""Trust policy: which signatures count, and the one function that decides on use.

:func:`enforce` is what the loader and the Hub call before a package is used. A bad
signature, a digest mismatch, a revoked key, a key outside its window or scope, a
TOFU pin mismatch and a rollback always refuse. An unsigned package refuses unless
``allow_unsigned=True``; an untrusted one unless ``allow_untrusted=True``.

Steps 2 and 7 of the fixed check order live here (:func:`check_signatures`,
:func:`decide`); :mod:`mindvec.verification` runs the whole order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from mindvec.errors import MindvecError, UnverifiedError, UsageError
from mindvec.keys import PublicKey
from mindvec.state import State
from mindvec.trust import TrustStore, parse_time

if TYPE_CHECKING:
    from mindvec.container import SignatureEntry
    from mindvec.package import Package
    from mindvec.verification import VerifyReport

#: reasons a signature result can carry
OK = "trusted"
UNKNOWN = "unknown-key"
BAD = "bad-signature"
REVOKED = "revoked"
EXPIRED = "expired"
SCOPE = "scope"
#: a valid signature whose trust step 7 never decided, because an earlier check failed
UNDECIDED = "undecided"


@dataclass
class SignatureResult:
    """What verification found about one signature entry."""

    keyid: str
    principal: str | None
    valid: bool | None  # None: not checked, its key is unknown
    trusted: bool
    reason: str
    source: str = "embedded"  # or "detached"

    def to_dict(self) -> dict[str, object]:
        return {
            "keyid": self.keyid,
            "principal": self.principal,
            "valid": self.valid,
            "trusted": self.trusted,
            "reason": self.reason,
            "source": self.source,
        }


def resolve_now(now: datetime | str | None) -> datetime:
    """``now`` as an aware UTC datetime; the system clock when None; naive means UTC."""
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, str):
        return parse_time(now)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def check_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= 16:
        raise UsageError("argument", f"threshold must be an integer from 1 to 16, not {threshold!r}")
    return threshold


def check_signatures(
    manifest_bytes: bytes,
    entries: Sequence[tuple[SignatureEntry, str]],
    store: TrustStore,
    out: list[SignatureResult],
) -> None:
    """Step 2: verify every signature whose key is known (trusted or revoked).

    Appends one result per entry to ``out``; raises ``bad-signature`` at the first
    known key whose signature does not verify over the PAE of the exact manifest.
    """
    for entry, source in entries:
        key = store.key_for(entry.keyid)
        if key is None:
            out.append(SignatureResult(entry.keyid.hex(), None, None, False, UNKNOWN, source))
            continue
        principal = _principal(store, key)
        if not key.verify_manifest(manifest_bytes, entry):
            out.append(SignatureResult(entry.keyid.hex(), principal, False, False, BAD, source))
            where = "the detached .sig file" if source == "detached" else "the package"
            raise UnverifiedError(
                "bad-signature",
                f"the signature by key {entry.keyid.hex()} ({principal}) in {where} does not verify: the "
                "manifest changed after signing or the signature belongs to another package; do not use it",
            )
        out.append(SignatureResult(entry.keyid.hex(), principal, True, False, UNDECIDED, source))


def _principal(store: TrustStore, key: PublicKey) -> str:
    entries = store.entries_for(key.keyid)
    if entries:
        return ",".join(dict.fromkeys(e.principal for e in entries))
    return "(revoked)" if store.is_revoked(key.keyid) else "(unknown)"


def decide(
    results: list[SignatureResult],
    store: TrustStore,
    *,
    package_id: str,
    repo: str | None,
    now: datetime,
    threshold: int,
) -> MindvecError | None:
    """Step 7: classify the valid signatures and return the policy error, if any."""
    if not results:
        return UnverifiedError(
            "no-signature",
            "the package carries no signature; sign it with 'mindvec sign', or opt in with "
            "allow_unsigned=True if you accept unsigned content",
        )
    trusted: set[str] = set()
    for result in results:
        if not result.valid:
            continue
        keyid = bytes.fromhex(result.keyid)
        if store.is_revoked(keyid):
            result.reason = REVOKED
            continue
        entries = store.entries_for(keyid)
        window = [e for e in entries if e.in_window(now)]
        scoped = [e for e in window if e.in_scope(package_id, repo)]
        if scoped:
            result.trusted, result.reason = True, OK
            result.principal = ",".join(dict.fromkeys(e.principal for e in scoped))
            trusted.add(result.keyid)
        elif window:
            result.reason = SCOPE
        elif entries:
            result.reason = EXPIRED
    reasons = {r.reason for r in results}
    if REVOKED in reasons:
        ids = ", ".join(r.keyid for r in results if r.reason == REVOKED)
        return UnverifiedError("revoked", f"signed by revoked key {ids}; do not use this package")
    if len(trusted) >= threshold:
        return None
    if EXPIRED in reasons:
        ids = ", ".join(r.keyid for r in results if r.reason == EXPIRED)
        return UnverifiedError(
            "expired",
            f"key {ids} is outside its validity window at {now.isoformat()}; get a package signed "
            "by a current key, or renew the key's trust entry",
        )
    if SCOPE in reasons:
        ids = ", ".join(r.keyid for r in results if r.reason == SCOPE)
        where = f"package {package_id!r}" + (f" from repo {repo!r}" if repo else "")
        return UnverifiedError(
            "scope", f"key {ids} is trusted, but not to sign {where}; check the packages=/repos= options"
        )
    if threshold > 1:
        return UnverifiedError(
            "threshold",
            f"{len(trusted)} trusted signature(s), the policy requires {threshold}; ask more trusted "
            "signers to co-sign ('mindvec sign')",
        )
    where = f" ({store.path})" if store.path else ""
    return UnverifiedError(
        "untrusted-key",
        f"no signature comes from a key in the trust store{where}; if you trust the signer, add "
        "their key with 'mindvec trust add', or opt in with allow_untrusted=True",
    )


def enforce(
    package: Package | str | os.PathLike[str],
    *,
    trust: TrustStore | str | os.PathLike[str] | None = None,
    state: State | str | os.PathLike[str] | None = None,
    threshold: int = 1,
    allow_unsigned: bool = False,
    allow_untrusted: bool = False,
    repo: str | None = None,
    now: datetime | str | None = None,
    tofu_key: PublicKey | None = None,
) -> VerifyReport:
    """Verify ``package`` fully and refuse it unless policy allows its use.

    Returns the :class:`~mindvec.verification.VerifyReport` (its ``package`` attribute is
    the opened :class:`~mindvec.package.Package`) or raises the first failure's
    :class:`~mindvec.errors.MindvecError`.

    * ``trust``: a TrustStore, a path, or None for the default path (a missing
      default file is an empty store).
    * ``state``: a :class:`~mindvec.state.State` or path; enables the rollback check
      (and TOFU pins with ``repo``). On a verified package the state is updated.
    * ``repo``: the Hub repo the package came from; checked against ``repos=``
      scopes and TOFU pins.
    * ``tofu_key``: the publisher key offered for trust on first use of ``repo``
      (needs ``state`` and ``repo``). A pinned key must have signed every later
      package from that repo (``key-pin``); the first time, the offered key is
      pinned once it has produced a valid signature.
    """
    from mindvec.verification import run_checks

    report = run_checks(
        package,
        trust=trust,
        threshold=threshold,
        state=state,
        now=now,
        repo=repo,
        allow_unsigned=allow_unsigned,
        allow_untrusted=allow_untrusted,
        tofu_key=tofu_key,
    )
    if report.error is not None and not report.allowed:
        raise report.error
    return report
