"""mindvec.verification: the fixed check order, verdicts, signatures, detached files, rollback."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from factories import vector_manifest

from mindvec import container, package
from mindvec.container import SignatureEntry
from mindvec.keys import SecretKey
from mindvec.policy import Policy
from mindvec.rotation import ROTATION_PAYLOAD_TYPE
from mindvec.signing import pae
from mindvec.state import State
from mindvec.trust import Revocation, TrustEntry, TrustStore
from mindvec.verification import EXIT_CODES, detached_path, verify

UTC = timezone.utc
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def build(
    path: Path, *signers: SecretKey, pkg_id: str = "acme/steer", version: int = 1, description: str = "d"
) -> Path:
    manifest, tensors = vector_manifest()
    manifest["package"].update(id=pkg_id, version=version, description=description)
    return package.write(path, manifest, tensors, signers=signers)


def trust_of(*keys: SecretKey, **options: object) -> TrustStore:
    return TrustStore([TrustEntry(f"p{i}", k.public_key, **options) for i, k in enumerate(keys)])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def alice() -> SecretKey:
    return SecretKey.generate("alice")


@pytest.fixture(scope="module")
def bob() -> SecretKey:
    return SecretKey.generate("bob")


def test_verified_report(tmp_path: Path, alice: SecretKey) -> None:
    path = build(tmp_path / "x.mindvec", alice)
    report = verify(path, policy=Policy(trust=trust_of(alice), now=NOW))
    assert report.verdict == "verified" and report.ok and report.error is None
    assert report.exit_code == 0 and EXIT_CODES == {
        "verified": 0,
        "invalid": 1,
        "unsigned": 3,
        "untrusted": 4,
    }
    assert report.payload_ok is True
    assert report.package_id == "acme/steer" and report.package_version == 1
    assert report.identity == package.open(path).identity.hex()
    [sig] = report.signatures
    assert sig.keyid == alice.keyid.hex() and sig.principal == "p0" and sig.valid and sig.trusted
    assert report.package is not None
    assert report.to_dict()["signatures"][0]["reason"] == "trusted"
    # an opened Package verifies the same way
    assert verify(package.open(path), policy=Policy(trust=trust_of(alice), now=NOW)).verdict == "verified"


def test_unsigned(tmp_path: Path, alice: SecretKey) -> None:
    report = verify(build(tmp_path / "x.mindvec"), policy=Policy(trust=trust_of(alice)))
    assert report.verdict == "unsigned" and report.error is not None
    assert report.error.code == "no-signature" and report.exit_code == 3


@pytest.mark.req("R-64")
def test_untrusted_key(tmp_path: Path, alice: SecretKey, bob: SecretKey) -> None:
    """A key that is not in the trust store gives untrusted-key; its signature is never checked. [R-64]"""
    report = verify(build(tmp_path / "x.mindvec", alice), policy=Policy(trust=trust_of(bob)))
    assert report.verdict == "untrusted" and report.error is not None
    assert report.error.code == "untrusted-key" and report.exit_code == 4
    [sig] = report.signatures
    assert sig.valid is None and sig.reason == "unknown-key"


@pytest.mark.req("R-74")
def test_revoked(tmp_path: Path, alice: SecretKey, bob: SecretKey) -> None:
    """A revoked key gives revoked, even beside a trusted signature. [R-74]"""
    path = build(tmp_path / "x.mindvec", alice, bob)
    store = trust_of(bob)
    store.revoke(alice.public_key, "lost")
    report = verify(path, policy=Policy(trust=store))
    assert report.error is not None and report.error.code == "revoked" and report.verdict == "invalid"
    only_revoked = TrustStore([Revocation(alice.public_key)])
    report = verify(build(tmp_path / "y.mindvec", alice), policy=Policy(trust=only_revoked))
    assert report.error is not None and report.error.code == "revoked"


@pytest.mark.req("R-73")
def test_expired_window(tmp_path: Path, alice: SecretKey) -> None:
    """A key outside its validity window is rejected as expired; `now` is settable. [R-73]"""
    path = build(tmp_path / "x.mindvec", alice)
    store = trust_of(
        alice, valid_after=datetime(2026, 1, 1, tzinfo=UTC), valid_before=datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert verify(path, policy=Policy(trust=store, now=NOW)).verdict == "verified"
    for when in ("2025-12-31T23:59:59Z", "20270101Z", datetime(2030, 1, 1)):
        report = verify(path, policy=Policy(trust=store, now=when))
        assert report.error is not None and report.error.code == "expired", when


def test_scope(tmp_path: Path, alice: SecretKey) -> None:
    """A key used outside its package or repo scope is rejected as scope."""
    path = build(tmp_path / "x.mindvec", alice, pkg_id="acme/steer")
    assert verify(path, policy=Policy(trust=trust_of(alice, packages=("acme/*",)))).verdict == "verified"
    report = verify(path, policy=Policy(trust=trust_of(alice, packages=("other/*", "acme"))))
    assert report.error is not None and report.error.code == "scope"
    repo_scoped = trust_of(alice, repos=("acme/*",))
    assert verify(path, policy=Policy(trust=repo_scoped, repo="acme/vectors")).verdict == "verified"
    report = verify(path, policy=Policy(trust=repo_scoped, repo="evil/vectors"))
    assert report.error is not None and report.error.code == "scope"


@pytest.mark.req("R-65")
def test_signature_copied_between_packages_fails(tmp_path: Path, alice: SecretKey) -> None:
    """A signature copied from package X onto package Y fails as bad-signature. [R-65]"""
    x = build(tmp_path / "x.mindvec", alice, pkg_id="acme/x")
    y = build(tmp_path / "y.mindvec", pkg_id="acme/y")
    container.rewrite_signatures(y, container.read_raw(x).signatures)
    report = verify(y, policy=Policy(trust=trust_of(alice)))
    assert report.error is not None and report.error.code == "bad-signature"
    assert report.signatures[0].valid is False


@pytest.mark.req("R-65")
def test_domain_separation(tmp_path: Path, alice: SecretKey) -> None:
    """Same bytes under another payload type, or a raw signature without PAE, fail. [R-65]"""
    path = build(tmp_path / "x.mindvec")
    manifest = container.read_raw(path).manifest_bytes
    store = trust_of(alice)
    for forged in (
        alice.sign(manifest),
        alice.sign(pae(manifest, ROTATION_PAYLOAD_TYPE)),
        alice.sign(pae(manifest, b"application/vnd.mindvec.manifest.v2+msgpack")),
    ):
        container.rewrite_signatures(path, [SignatureEntry("ed25519", alice.keyid, forged)])
        report = verify(path, policy=Policy(trust=store))
        assert report.error is not None and report.error.code == "bad-signature"
    container.rewrite_signatures(path, [alice.sign_manifest(manifest)])
    assert verify(path, policy=Policy(trust=store)).verdict == "verified"


@pytest.mark.req("R-64")
def test_keyid_must_name_the_verifying_key(tmp_path: Path, alice: SecretKey, bob: SecretKey) -> None:
    """A signature is verified only with the key its keyid names. [R-64]"""
    path = build(tmp_path / "x.mindvec")
    manifest = container.read_raw(path).manifest_bytes
    swapped = SignatureEntry("ed25519", alice.keyid, bob.sign(pae(manifest)))
    container.rewrite_signatures(path, [swapped])
    report = verify(path, policy=Policy(trust=trust_of(alice, bob)))
    assert report.error is not None and report.error.code == "bad-signature"


@pytest.mark.req("R-74")
def test_threshold(tmp_path: Path, alice: SecretKey, bob: SecretKey) -> None:
    """Threshold 2 with one valid trusted signature fails; two distinct keys pass. [R-74]"""
    one = build(tmp_path / "one.mindvec", alice)
    report = verify(one, policy=Policy(trust=trust_of(alice, bob), threshold=2))
    assert report.error is not None and report.error.code == "threshold" and report.exit_code == 1
    two = build(tmp_path / "two.mindvec", alice, bob)
    assert verify(two, policy=Policy(trust=trust_of(alice, bob), threshold=2)).verdict == "verified"
    report = verify(two, policy=Policy(trust=trust_of(alice), threshold=2))
    assert report.error is not None and report.error.code == "threshold"


@pytest.mark.req("R-69")
def test_digest_mismatch_and_check_order(tmp_path: Path, alice: SecretKey) -> None:
    """A tensor byte fails as digest-mismatch; with a bad signature too, step 2 wins. [R-69]"""
    path = build(tmp_path / "x.mindvec", alice)
    raw = container.read_raw(path)
    tensor_end = raw.layout.sig_offset
    data = bytearray(path.read_bytes())
    data[tensor_end - 1] ^= 0x80  # the last tensor byte: covered by its digest only
    path.write_bytes(bytes(data))
    report = verify(path, policy=Policy(trust=trust_of(alice)))
    assert report.error is not None and report.error.code == "digest-mismatch" and report.payload_ok is False
    # with a bad signature as well, the signature (step 2) is the reported failure
    sig = bytearray(raw.signatures[0].sig)
    sig[0] ^= 1
    container.rewrite_signatures(path, [SignatureEntry("ed25519", alice.keyid, bytes(sig))])
    report = verify(path, policy=Policy(trust=trust_of(alice)))
    assert report.error is not None and report.error.code == "bad-signature"


@pytest.mark.req("R-67", "R-68")
def test_cosign_and_detached(tmp_path: Path, alice: SecretKey, bob: SecretKey) -> None:
    """FILE.mindvec.sig is merged and checked alike; co-signing keeps the identity. [R-67] [R-68]"""
    path = build(tmp_path / "x.mindvec", alice)
    identity = package.open(path).identity
    manifest = container.read_raw(path).manifest_bytes
    # a detached co-signature is merged when FILE.sig exists
    sig_file = detached_path(path)
    assert sig_file.name == "x.mindvec.sig"
    sig_file.write_bytes(container.encode_signature_block([bob.sign_manifest(manifest)]))
    report = verify(path, policy=Policy(trust=trust_of(alice, bob), threshold=2))
    assert report.verdict == "verified" and report.detached == str(sig_file)
    assert {r.source for r in report.signatures} == {"embedded", "detached"}
    assert (
        verify(path, detached=False, policy=Policy(trust=trust_of(alice, bob), threshold=2)).error is not None
    )
    # a bad detached signature is a bad signature
    forged = SignatureEntry("ed25519", bob.keyid, bob.sign(manifest))
    sig_file.write_bytes(container.encode_signature_block([forged]))
    report = verify(path, policy=Policy(trust=trust_of(alice, bob)))
    assert report.error is not None and report.error.code == "bad-signature"
    sig_file.write_bytes(b"\x91\xc0")
    report = verify(path, policy=Policy(trust=trust_of(alice)))
    assert report.error is not None and report.error.code == "signature-block"
    sig_file.unlink()
    # co-signing in place keeps the identity
    container.rewrite_signatures(path, [alice.sign_manifest(manifest), bob.sign_manifest(manifest)])
    assert package.open(path).identity == identity
    assert verify(path, policy=Policy(trust=trust_of(alice, bob), threshold=2)).verdict == "verified"


@pytest.mark.req("R-75")
def test_rollback(tmp_path: Path, alice: SecretKey) -> None:
    """With a state file, v3 is accepted, then v2 of the same id is rejected; other ids unaffected. [R-75]"""
    state = State(tmp_path / "state.json")
    store = trust_of(alice)
    v3 = build(tmp_path / "v3.mindvec", alice, version=3)
    v2 = build(tmp_path / "v2.mindvec", alice, version=2)
    other = build(tmp_path / "o.mindvec", alice, pkg_id="acme/other", version=1)
    report = verify(v3, policy=Policy(trust=store, state=state))
    assert report.verdict == "verified" and report.state_updated
    report = verify(v2, policy=Policy(trust=store, state=state))
    assert report.error is not None and report.error.code == "rollback" and report.exit_code == 1
    assert verify(other, policy=Policy(trust=store, state=str(state.path))).verdict == "verified"
    assert (
        verify(v3, policy=Policy(trust=store, state=state)).verdict == "verified"
    )  # same package again is fine
    same_version = build(tmp_path / "v3b.mindvec", alice, version=3, description="other content")
    report = verify(same_version, policy=Policy(trust=store, state=state))
    assert report.error is not None and report.error.code == "rollback"
    # an untrusted package never moves the state
    v9 = build(tmp_path / "v9.mindvec", SecretKey.generate(), version=9)
    assert verify(v9, policy=Policy(trust=store, state=state)).verdict == "untrusted"
    seen = state.seen("acme/steer")
    assert seen is not None and seen.version == 3


@pytest.mark.req("R-82")
def test_malformed_file_is_invalid(tmp_path: Path, alice: SecretKey) -> None:
    """A malformed file is reported with its code and class, not raised. [R-82]"""
    path = tmp_path / "junk.mindvec"
    path.write_bytes(b"not a package at all" * 4)
    report = verify(path, policy=Policy(trust=trust_of(alice)))
    assert report.verdict == "invalid" and report.error is not None and report.error.code == "magic"
    assert report.to_dict()["error"]["class"] == "malformed"


def test_bad_threshold_argument(tmp_path: Path, alice: SecretKey) -> None:
    from mindvec.errors import UsageError

    with pytest.raises(UsageError):
        verify(build(tmp_path / "x.mindvec", alice), policy=Policy(threshold=0))
