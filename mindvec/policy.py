"""Policy: which signatures count, and the one trust decision.

A :class:`Policy` is the one value every entry point takes (``verify``, ``enforce``,
``steer``, ``translate``, ``pull``): the trust store, the state file, the threshold, the
clock, the two opt-ins and the Hub repo. A bad signature, a digest mismatch, a revoked key,
a key outside its window or scope, a TOFU pin mismatch and a rollback always refuse; an
unsigned package refuses unless ``allow_unsigned``, an untrusted one unless
``allow_untrusted``.

Steps 2 and 7 of the fixed check order live here (:func:`check_signatures`, :func:`decide`);
:mod:`mindvec.verification` runs the whole order, on a whole file or, for the Hub, on the
prefix alone.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from mindvec.container import SignatureEntry
from mindvec.errors import MindvecError, UnverifiedError, UsageError
from mindvec.keys import PublicKey
from mindvec.state import State
from mindvec.times import resolve_now
from mindvec.trust import TrustEntry, TrustStore

TrustArg = TrustStore | str | os.PathLike[str] | None
StateArg = State | str | os.PathLike[str] | None


@dataclass(frozen=True)
class Policy:
    """What a caller accepts. The default is the safe one: signed by a trusted key, or refused.

    * ``trust``: a :class:`~mindvec.trust.TrustStore`, its path, or None for the default
      path (a missing default file is an empty store).
    * ``state``: a :class:`~mindvec.state.State` or its path; enables the rollback check and
      TOFU pins, and records every verified package.
    * ``threshold``: how many distinct trusted signatures are needed (1..16).
    * ``now``: the time validity windows are checked at (default: the system clock, UTC).
    * ``allow_unsigned`` / ``allow_untrusted``: separate opt-ins; nothing else can be allowed.
    * ``repo``: the Hub repo the package came from; checked against ``repos=`` scopes and pins.
    """

    trust: TrustArg = None
    state: StateArg = None
    threshold: int = 1
    now: datetime | str | None = None
    allow_unsigned: bool = False
    allow_untrusted: bool = False
    repo: str | None = None

    def __post_init__(self) -> None:
        check_threshold(self.threshold)

    def with_repo(self, repo: str | None) -> Policy:
        return replace(self, repo=repo)

    def store(self) -> TrustStore:
        return TrustStore.coerce(self.trust)

    def state_file(self) -> State | None:
        return State.coerce(self.state)

    def clock(self) -> datetime:
        return resolve_now(self.now)

    def allows(self, error: MindvecError) -> bool:
        """True for the two errors a caller may opt in to accept."""
        return (error.code == "no-signature" and self.allow_unsigned) or (
            error.code == "untrusted-key" and self.allow_untrusted
        )


_POLICY_FIELDS = frozenset(f.name for f in fields(Policy))


def from_legacy(policy: Policy | None, legacy: Mapping[str, Any], caller: str) -> Policy:
    """``policy``, or one built from the keywords that 0.1 took (deprecated until 0.3)."""
    unknown = sorted(set(legacy) - _POLICY_FIELDS)
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword argument(s) {', '.join(unknown)}")
    if not legacy:
        return policy if policy is not None else Policy()
    if policy is not None:
        names = ", ".join(sorted(legacy))
        raise UsageError("argument", f"give {caller}() either policy= or {names}, not both")
    warnings.warn(
        f"{caller}({', '.join(f'{k}=' for k in sorted(legacy))}) is deprecated; pass "
        f"policy=mindvec.Policy({', '.join(f'{k}=...' for k in sorted(legacy))})",
        DeprecationWarning,
        stacklevel=3,
    )
    return Policy(**legacy)


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


def with_tofu(
    store: TrustStore, state: State | None, repo: str | None, tofu_key: PublicKey | None
) -> tuple[TrustStore, PublicKey | None]:
    """The store with the repo's pinned key (or, first time, the offered one) trusted for that repo.

    Returns the store to decide with and the pinned key (None when the repo has no pin yet).
    """
    if state is None or repo is None:
        return store, None
    pinned = state.pin(repo)
    offered = pinned or tofu_key
    if offered is not None and not store.is_revoked(offered.keyid):
        store = store.with_entries([TrustEntry(f"tofu:{repo}", offered, repos=(repo,))])
    return store, pinned


def signed_by(results: Sequence[SignatureResult], key: PublicKey) -> bool:
    return any(r.valid and r.keyid == key.keyid_hex for r in results)


def judge(
    results: list[SignatureResult],
    store: TrustStore,
    policy: Policy,
    *,
    package_id: str,
    now: datetime,
    pinned: PublicKey | None,
) -> MindvecError | None:
    """Step 7 as a whole: :func:`decide`, then the TOFU pin. Full and prefix-only checks share it."""
    error = decide(
        results, store, package_id=package_id, repo=policy.repo, now=now, threshold=policy.threshold
    )
    if pinned is None or (error is not None and error.code in ("revoked", "expired", "scope")):
        return error
    if signed_by(results, pinned):
        return error
    signers = ", ".join(sorted(r.keyid for r in results)) or "nobody (it is unsigned)"
    return UnverifiedError(
        "key-pin",
        f"{policy.repo} is pinned on first use to the publisher key {pinned.keyid_hex}, but this "
        f"package is signed by {signers}: the publisher's key changed. If they rotated keys, apply "
        "their rotation record (mindvec trust rotate); otherwise do not use it",
    )
