"""mindvec.policy: enforce() secure defaults, opt-ins, TOFU pins, and decide() precedence."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from pathlib import Path

import pytest
from factories import vector_manifest

from mindvec import container, package
from mindvec.container import SignatureEntry
from mindvec.errors import UnverifiedError, UsageError
from mindvec.keys import SecretKey
from mindvec.policy import Policy, SignatureResult, decide
from mindvec.rotation import RotationRecord
from mindvec.state import State
from mindvec.times import resolve_now
from mindvec.trust import TrustEntry, TrustStore
from mindvec.verification import enforce

UTC = timezone.utc
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def build(path: Path, *signers: SecretKey, pkg_id: str = "acme/steer", version: int = 1) -> Path:
    manifest, tensors = vector_manifest()
    manifest["package"].update(id=pkg_id, version=version)
    return package.write(path, manifest, tensors, signers=signers)


@pytest.fixture(scope="module")
def alice() -> SecretKey:
    return SecretKey.generate("alice")


def store_with(key: SecretKey, **options: object) -> TrustStore:
    return TrustStore([TrustEntry("alice", key.public_key, **options)])  # type: ignore[arg-type]


def code_of(call: object) -> str:
    assert callable(call)
    with pytest.raises(UnverifiedError) as info:
        call()
    return info.value.code


def test_enforce_returns_report_with_package(tmp_path: Path, alice: SecretKey) -> None:
    report = enforce(build(tmp_path / "x.mindvec", alice), policy=Policy(trust=store_with(alice)))
    assert report.verdict == "verified" and report.package is not None
    assert report.package.manifest["package"]["id"] == "acme/steer"


@pytest.mark.req("R-71", "R-72")
def test_unsigned_needs_its_own_opt_in(tmp_path: Path, alice: SecretKey) -> None:
    """allow_unsigned accepts only no-signature. [R-71] [R-72]"""
    path = build(tmp_path / "x.mindvec")
    store = store_with(alice)
    assert code_of(lambda: enforce(path, policy=Policy(trust=store))) == "no-signature"
    assert code_of(lambda: enforce(path, policy=Policy(trust=store, allow_untrusted=True))) == "no-signature"
    report = enforce(path, policy=Policy(trust=store, allow_unsigned=True))
    assert report.verdict == "unsigned" and report.allowed and report.package is not None


@pytest.mark.req("R-71", "R-72")
def test_untrusted_needs_its_own_opt_in(tmp_path: Path, alice: SecretKey) -> None:
    """allow_untrusted accepts only untrusted-key. [R-71] [R-72]"""
    path = build(tmp_path / "x.mindvec", SecretKey.generate())
    store = store_with(alice)
    assert code_of(lambda: enforce(path, policy=Policy(trust=store))) == "untrusted-key"
    assert code_of(lambda: enforce(path, policy=Policy(trust=store, allow_unsigned=True))) == "untrusted-key"
    assert enforce(path, policy=Policy(trust=store, allow_untrusted=True)).verdict == "untrusted"


@pytest.mark.req("R-71", "R-74")
def test_nothing_allows_bad_signature_digest_revoked_expired_scope(tmp_path: Path, alice: SecretKey) -> None:
    """No opt-in relaxes a bad signature, a digest mismatch, revoked, expired or scope. [R-71] [R-74]"""
    both = {"allow_unsigned": True, "allow_untrusted": True}
    path = build(tmp_path / "x.mindvec", alice)
    manifest = container.read_raw(path).manifest_bytes
    container.rewrite_signatures(path, [SignatureEntry("ed25519", alice.keyid, alice.sign(manifest))])
    assert code_of(lambda: enforce(path, Policy(trust=store_with(alice), **both))) == "bad-signature"

    tampered = build(tmp_path / "t.mindvec", alice)
    data = bytearray(tampered.read_bytes())
    data[container.read_raw(tampered).layout.sig_offset - 1] ^= 1
    tampered.write_bytes(bytes(data))
    assert code_of(lambda: enforce(tampered, Policy(trust=store_with(alice), **both))) == "digest-mismatch"

    good = build(tmp_path / "g.mindvec", alice)
    revoked = store_with(alice)
    revoked.revoke(alice.public_key)
    assert code_of(lambda: enforce(good, Policy(trust=revoked, **both))) == "revoked"
    late = store_with(alice, valid_before=datetime(2026, 1, 1, tzinfo=UTC))
    assert code_of(lambda: enforce(good, Policy(trust=late, now=NOW, **both))) == "expired"
    scoped = store_with(alice, packages=("other/*",))
    assert code_of(lambda: enforce(good, Policy(trust=scoped, **both))) == "scope"


def test_trust_as_path_or_default(tmp_path: Path, alice: SecretKey, monkeypatch: pytest.MonkeyPatch) -> None:
    path = build(tmp_path / "x.mindvec", alice)
    store_file = tmp_path / "allowed_signers"
    store_with(alice).save(store_file)
    assert enforce(path, policy=Policy(trust=store_file)).verdict == "verified"
    assert enforce(path, policy=Policy(trust=str(store_file))).verdict == "verified"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty-config"))
    assert code_of(lambda: enforce(path)) == "untrusted-key"  # missing default store = empty
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    store_with(alice).save(tmp_path / "cfg" / "mindvec" / "allowed_signers")
    assert enforce(path).verdict == "verified"
    (tmp_path / "cfg" / "mindvec" / "allowed_signers").write_text("broken line\n")
    with pytest.raises(UsageError) as info:
        enforce(path)
    assert info.value.code == "trust-store"


@pytest.mark.req("R-75")
def test_rollback_checked_even_when_untrusted_is_allowed(tmp_path: Path, alice: SecretKey) -> None:
    """Rollback applies to accepted untrusted packages, which never move the state. [R-75]"""
    state = State(tmp_path / "state.json")
    enforce(
        build(tmp_path / "v3.mindvec", alice, version=3), policy=Policy(trust=store_with(alice), state=state)
    )
    stranger = SecretKey.generate()
    old = build(tmp_path / "v2.mindvec", stranger, version=2)
    assert (
        code_of(
            lambda: enforce(old, policy=Policy(trust=store_with(alice), state=state, allow_untrusted=True))
        )
        == "rollback"
    )
    newer = build(tmp_path / "v5.mindvec", stranger, version=5)
    assert (
        enforce(newer, policy=Policy(trust=store_with(alice), state=state, allow_untrusted=True)).verdict
        == "untrusted"
    )
    seen = state.seen("acme/steer")
    assert seen is not None and seen.version == 3  # untrusted content never moves the state


def test_tofu_pin(tmp_path: Path) -> None:
    publisher, attacker, successor = SecretKey.generate(), SecretKey.generate(), SecretKey.generate()
    state = State(tmp_path / "state.json")
    empty = TrustStore()
    first = build(tmp_path / "v1.mindvec", publisher, version=1)
    report = enforce(
        first, tofu_key=publisher.public_key, policy=Policy(trust=empty, state=state, repo="acme/vec")
    )
    assert report.verdict == "verified" and report.signatures[0].principal == "tofu:acme/vec"
    assert state.pin("acme/vec") == publisher.public_key
    # later packages must carry the pinned key's signature, whatever key is offered
    evil = build(tmp_path / "v2.mindvec", attacker, version=2)
    for offered in (None, attacker.public_key):
        assert (
            code_of(
                lambda o=offered: enforce(
                    evil, tofu_key=o, policy=Policy(trust=empty, state=state, repo="acme/vec")
                )
            )
            == "key-pin"
        )
    # a rotation record signed by both keys moves the pin
    state.apply_rotation(RotationRecord.create(publisher, successor))
    rotated = build(tmp_path / "v3.mindvec", successor, version=3)
    assert enforce(rotated, policy=Policy(trust=empty, state=state, repo="acme/vec")).verdict == "verified"
    # without a pin or an offered key, TOFU does nothing
    assert (
        code_of(lambda: enforce(rotated, policy=Policy(trust=empty, state=state, repo="other/repo")))
        == "untrusted-key"
    )


@pytest.mark.req("R-82")
def test_unsigned_package_from_pinned_repo_is_key_pin(tmp_path: Path) -> None:
    """[R-82] step 6: a pinned repo serving an unsigned package is a changed key, not 'unsigned'."""
    publisher = SecretKey.generate()
    state = State(tmp_path / "state.json")
    enforce(
        build(tmp_path / "v1.mindvec", publisher),
        tofu_key=publisher.public_key,
        policy=Policy(state=state, repo="acme/vec"),
    )
    unsigned = build(tmp_path / "v2.mindvec", version=2)
    for allow in (False, True):
        policy = Policy(trust=TrustStore(), state=state, repo="acme/vec", allow_unsigned=allow)
        call = functools.partial(enforce, unsigned, policy)
        assert code_of(call) == "key-pin"
    # the same unsigned package from a repo with no pin is just unsigned, and the opt-in accepts it
    assert (
        code_of(lambda: enforce(unsigned, policy=Policy(trust=TrustStore(), repo="other/repo")))
        == "no-signature"
    )
    assert enforce(
        unsigned, policy=Policy(trust=TrustStore(), repo="other/repo", allow_unsigned=True)
    ).allowed


def _result(keyid: bytes, valid: bool | None = True) -> SignatureResult:
    return SignatureResult(keyid.hex(), None, valid, False, "valid" if valid else "unknown-key")


def test_decide_precedence(alice: SecretKey) -> None:
    bob = SecretKey.generate()
    window = {"valid_before": datetime(2026, 1, 1, tzinfo=UTC)}
    store = TrustStore(
        [TrustEntry("alice", alice.public_key, **window), TrustEntry("bob", bob.public_key, packages=("x",))]  # type: ignore[arg-type]
    )

    def run(results: list[SignatureResult], threshold: int = 1) -> str | None:
        error = decide(results, store, package_id="acme/steer", repo=None, now=NOW, threshold=threshold)
        return error.code if error else None

    assert run([]) == "no-signature"
    assert run([_result(alice.keyid)]) == "expired"
    assert run([_result(bob.keyid)]) == "scope"
    assert run([_result(alice.keyid), _result(bob.keyid)]) == "expired"
    assert run([_result(b"\x01" * 16, None)]) == "untrusted-key"
    fine = TrustStore([TrustEntry("alice", alice.public_key)])
    assert decide([_result(alice.keyid)], fine, package_id="a", repo=None, now=NOW, threshold=2) is not None
    assert decide([_result(alice.keyid)], fine, package_id="a", repo=None, now=NOW, threshold=1) is None


@pytest.mark.req("R-89")
def test_only_trusted_keys_count_toward_the_threshold(alice: SecretKey) -> None:
    """[R-89] a verified but out-of-scope (or revoked-elsewhere) key never counts, and is not trusted."""
    bob, carol = SecretKey.generate(), SecretKey.generate()
    store = TrustStore(
        [
            TrustEntry("team", alice.public_key),
            TrustEntry("team", bob.public_key, packages=("other/*",)),  # same principal, other scope
            TrustEntry("carol", carol.public_key, valid_before=datetime(2026, 1, 1, tzinfo=UTC)),
        ]
    )
    results = [_result(alice.keyid), _result(bob.keyid), _result(carol.keyid)]
    assert decide(results, store, package_id="acme/steer", repo=None, now=NOW, threshold=1) is None
    assert [r.trusted for r in results] == [True, False, False]
    error = decide(
        [_result(k.keyid) for k in (alice, bob, carol)],
        store,
        package_id="acme/steer",
        repo=None,
        now=NOW,
        threshold=2,
    )
    assert error is not None and error.code == "expired"  # item 5: expired before scope before threshold


def test_resolve_now() -> None:
    assert resolve_now("2026-06-01T00:00:00Z") == NOW
    assert resolve_now(datetime(2026, 6, 1)) == NOW
    assert resolve_now(None).tzinfo is not None


# ---------------------------------------------------------------- one Policy value for every entry point


def test_every_entry_point_takes_the_same_policy_parameter() -> None:
    import inspect

    import mindvec
    from mindvec import hub, translation, verification

    for fn in (mindvec.verify, verification.enforce, mindvec.steer, translation.translate, hub.pull):
        param = inspect.signature(fn).parameters["policy"]
        assert param.default is None and "Policy" in str(param.annotation), fn.__qualname__


def test_policy_rejects_a_bad_threshold() -> None:
    for bad in (0, 17, True, 1.0):
        with pytest.raises(UsageError):
            Policy(threshold=bad)  # type: ignore[arg-type]


def test_old_keywords_still_work_with_a_deprecation_warning(tmp_path: Path, alice: SecretKey) -> None:
    from mindvec.verification import verify

    path = build(tmp_path / "x.mindvec", alice)
    with pytest.warns(DeprecationWarning, match="policy=mindvec.Policy"):
        assert verify(path, trust=store_with(alice), now=NOW).verdict == "verified"
    with pytest.warns(DeprecationWarning):  # the 0.1 positional form verify(path, trust, threshold)
        assert verify(path, store_with(alice), 2).error.code == "threshold"  # type: ignore[union-attr]
    with pytest.warns(DeprecationWarning):
        assert enforce(path, trust=store_with(alice)).verdict == "verified"
    with pytest.raises(UsageError, match="either policy= or trust"):
        enforce(path, Policy(), trust=store_with(alice))
    with pytest.raises(TypeError, match="trusts"):
        enforce(path, trusts=store_with(alice))


def test_prefix_only_decides_trust_without_reading_the_payload(tmp_path: Path, alice: SecretKey) -> None:
    """The Hub's early gate: signatures and trust from preamble + manifest; a damaged payload is not seen."""
    path = build(tmp_path / "x.mindvec", alice)
    data = bytearray(path.read_bytes())
    raw = container.read_raw(path)
    data[raw.layout.payload_offset + raw.layout.payload_len - 1] ^= 0xFF  # last tensor byte
    path.write_bytes(bytes(data))
    early = enforce(path, Policy(trust=store_with(alice)), prefix_only=True)
    assert early.prefix_only and early.payload_ok is None and early.package is None
    assert early.trusted_signers == ["alice"]
    assert code_of(lambda: enforce(path, Policy(trust=TrustStore()), prefix_only=True)) == "untrusted-key"
    assert code_of(lambda: enforce(path, Policy(trust=store_with(alice)))) == "digest-mismatch"


def test_prefix_only_checks_rollback_but_records_nothing(tmp_path: Path, alice: SecretKey) -> None:
    state = State(tmp_path / "state.json")
    policy = Policy(trust=store_with(alice), state=state)
    enforce(build(tmp_path / "v2.mindvec", alice, version=2), policy)
    v1 = build(tmp_path / "v1.mindvec", alice, version=1)
    assert code_of(lambda: enforce(v1, policy, prefix_only=True)) == "rollback"
    v3 = build(tmp_path / "v3.mindvec", alice, version=3)
    enforce(v3, policy, prefix_only=True)
    assert state.seen("acme/steer").version == 2  # type: ignore[union-attr]
