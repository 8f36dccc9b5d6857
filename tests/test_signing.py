"""Keys, key ids, PAE framing, key files and rotation records (mindvec.signing)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from pathlib import Path

import pytest

from mindvec.container import SignatureEntry
from mindvec.errors import UnverifiedError, UsageError
from mindvec.keys import PublicKey, SecretKey
from mindvec.rotation import ROTATION_PAYLOAD_TYPE, RotationRecord
from mindvec.signing import MANIFEST_PAYLOAD_TYPE, keyid, pae

SEED = bytes(range(32))


@pytest.mark.req("R-65")
def test_pae_bytes_are_exact() -> None:
    """The signed message is the PAE of the payload type and the exact manifest bytes. [R-65]"""
    assert MANIFEST_PAYLOAD_TYPE == b"application/vnd.mindvec.manifest.v1+msgpack"
    assert pae(b"") == b"MINDVECv1 43 application/vnd.mindvec.manifest.v1+msgpack 0 "
    manifest = b"\x81\xa1a\x01"
    assert pae(manifest) == b"MINDVECv1 43 application/vnd.mindvec.manifest.v1+msgpack 4 " + manifest
    assert pae(b"x" * 10, b"t") == b"MINDVECv1 1 t 10 " + b"x" * 10


@pytest.mark.req("R-64")
def test_keyid_is_domain_separated_sha256_prefix() -> None:
    """keyid = sha256(b"mindvec-ed25519\\0" + pk)[:16]. [R-64]"""
    key = SecretKey.from_seed(SEED)
    raw = key.public_key.raw
    assert keyid(raw) == hashlib.sha256(b"mindvec-ed25519\x00" + raw).digest()[:16]
    assert key.keyid == key.public_key.keyid == keyid(raw)
    with pytest.raises(UsageError):
        keyid(b"short")


def test_test_vector_is_stable() -> None:
    """A fixed seed gives fixed key id and signature (deterministic Ed25519)."""
    key = SecretKey.from_seed(SEED)
    entry = key.sign_manifest(b"\x80")
    assert entry.alg == "ed25519" and len(entry.keyid) == 16 and len(entry.sig) == 64
    assert entry == key.sign_manifest(b"\x80")
    assert key.public_key.verify_manifest(b"\x80", entry)


@pytest.mark.req("R-64", "R-65")
def test_verify_manifest_rejects_wrong_type_raw_and_wrong_keyid() -> None:
    """Domain separation: another payload type, or a raw signature, never verifies. [R-64] [R-65]"""
    key = SecretKey.from_seed(SEED)
    other = SecretKey.generate()
    manifest = b"\x81\xa1a\x01"
    pk = key.public_key
    good = key.sign_manifest(manifest)
    assert pk.verify_manifest(manifest, good)
    raw_sig = SignatureEntry("ed25519", key.keyid, key.sign(manifest))
    assert not pk.verify_manifest(manifest, raw_sig)
    other_type = SignatureEntry("ed25519", key.keyid, key.sign(pae(manifest, ROTATION_PAYLOAD_TYPE)))
    assert not pk.verify_manifest(manifest, other_type)
    wrong_id = SignatureEntry("ed25519", other.keyid, good.sig)
    assert not pk.verify_manifest(manifest, wrong_id)
    assert not pk.verify_manifest(manifest + b"\x00", good)
    assert not pk.verify(b"m", b"\x00" * 63)


def test_repr_never_shows_secret(tmp_path: Path) -> None:
    key = SecretKey.from_seed(SEED, comment="me")
    for text in (repr(key), str(key), f"{key}"):
        assert SEED.hex() not in text and "seed" not in text.lower()
        assert key.keyid.hex() in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(key)


def test_plain_key_file_roundtrip_mode_0600(tmp_path: Path) -> None:
    key = SecretKey.generate("alice@laptop")
    path = key.save(tmp_path / "k.key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = SecretKey.load(path)
    assert loaded.public_key == key.public_key and loaded.comment == "alice@laptop"
    doc = json.loads(path.read_text())
    assert doc["type"] == "mindvec-secret-key" and doc["kdf"] is None
    assert doc["keyid"] == key.keyid.hex()
    with pytest.raises(UsageError) as info:
        key.save(path)
    assert info.value.code == "io"
    key.save(path, overwrite=True)


def test_encrypted_key_file(tmp_path: Path) -> None:
    key = SecretKey.generate()
    path = key.save(tmp_path / "k.key", "correct horse", kdf="min")
    doc = json.loads(path.read_text())
    assert doc["kdf"]["name"] == "argon2id" and doc["kdf"]["opslimit"] >= 1 and doc["kdf"]["memlimit"] >= 8192
    assert doc["cipher"] == "xsalsa20poly1305" and len(doc["kdf"]["salt"]) == 24
    assert SecretKey.load(path, "correct horse").public_key == key.public_key
    assert SecretKey.load(path, b"correct horse").public_key == key.public_key
    with pytest.raises(UsageError) as info:
        SecretKey.load(path, "wrong")
    assert info.value.code == "passphrase" and "passphrase" in info.value.message
    with pytest.raises(UsageError) as info:
        SecretKey.load(path)
    assert info.value.code == "passphrase"


def test_default_kdf_is_moderate() -> None:
    import nacl.pwhash

    from mindvec.keys import DEFAULT_KDF, KDF_LIMITS

    assert DEFAULT_KDF == "moderate"
    assert KDF_LIMITS[DEFAULT_KDF] == (
        nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
        nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
    )


def test_loose_permissions_warn(tmp_path: Path) -> None:
    path = SecretKey.generate().save(tmp_path / "k.key")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SecretKey.load(path)
    os.chmod(path, 0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        SecretKey.load(path)


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"type": "mindvec-secret-key", "version": 9}', b"\xff\xfe"],
)
def test_bad_key_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(UsageError) as info:
        SecretKey.load(path)
    assert info.value.code == "key-file"


def test_key_file_with_mismatched_public_key(tmp_path: Path) -> None:
    path = SecretKey.generate().save(tmp_path / "k.key")
    doc = json.loads(path.read_text())
    doc["public_key"] = SecretKey.generate().public_key.base64
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="damaged"):
        SecretKey.load(path)


def test_public_key_file_line(tmp_path: Path) -> None:
    key = SecretKey.generate().public_key
    path = key.save(tmp_path / "k.pub", "alice  at\tlaptop")
    text = path.read_text()
    assert text == f"ed25519 {key.base64} alice at laptop\n"
    assert PublicKey.load(path) == key
    assert PublicKey.from_text(key.base64) == key
    assert PublicKey.from_text(key.raw.hex()) == key
    assert PublicKey.from_line(text) == (key, "alice at laptop")
    with pytest.raises(UsageError):
        PublicKey.from_line("ssh-rsa AAAA")
    with pytest.raises(UsageError):
        PublicKey.from_text("ed25519 AAAA")


@pytest.mark.req("R-79")
def test_rotation_record_roundtrip_and_tamper() -> None:
    """Both keys must sign a rotation record, under its own payload type. [R-79]"""
    old, new = SecretKey.generate(), SecretKey.generate()
    record = RotationRecord.create(old, new, "laptop stolen? no, routine", created="2026-01-01T00:00:00Z")
    record.verify()
    again = RotationRecord.from_bytes(record.to_bytes())
    assert again == record and again.old == old.public_key and again.new == new.public_key
    forged = RotationRecord(record.body, record.old_sig, SecretKey.generate().sign(record.message))
    with pytest.raises(UnverifiedError) as info:
        forged.verify()
    assert info.value.code == "bad-signature"
    # a rotation signature is not a manifest signature: different payload type
    assert not old.public_key.verify(pae(record.body), record.old_sig)
    with pytest.raises(UsageError):
        RotationRecord.create(old, old)
    with pytest.raises(UsageError):
        RotationRecord.from_bytes(b'{"type": "mindvec-rotation", "body": "gA==", "old_sig": ""}')


@pytest.mark.req("R-64", "R-65")
def test_spec_test_vector() -> None:
    """The spec's test vector (section 9.3): keyid, PAE, signature, signature block. [R-64] [R-65]"""
    from mindvec.container import encode_signature_block

    key = SecretKey.from_seed(bytes(range(1, 33)))
    assert key.public_key.raw.hex() == "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"
    assert key.public_key.base64 == "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
    assert key.keyid.hex() == "43280d09cc0c43c5bd40048e4ed4495b"
    manifest = bytes.fromhex("81a6666f726d6174a3312e30")
    assert (
        pae(manifest) == b"MINDVECv1 43 application/vnd.mindvec.manifest.v1+msgpack 12 \x81\xa6format\xa31.0"
    )
    entry = key.sign_manifest(manifest)
    assert entry.sig.hex() == (
        "df9defd21fe7173fb496726bcd8bc8d1508a051c3bcf5ae27564a4100f6fd742"
        "e7d4716d27dafd9be149dd64504da63ade95d64c005248296f4960a874c2e90e"
    )
    block = encode_signature_block([entry])
    assert len(block) == 108 and block.hex().startswith("9183a3616c67a765643235353139a56b65796964c410")


@pytest.mark.req("R-66")
def test_strict_ed25519_edge_cases() -> None:
    """libsodium strictness: S >= L, small-order keys and a flipped R are rejected. [R-66]"""
    ell = 2**252 + 27742317777372353535851937790883648493
    key = SecretKey.from_seed(SEED)
    message = pae(b"\x80")
    sig = key.sign(message)
    assert key.public_key.verify(message, sig)
    s_value = int.from_bytes(sig[32:], "little")
    malleable = sig[:32] + (s_value + ell).to_bytes(32, "little")
    assert not key.public_key.verify(message, malleable)
    identity_point = PublicKey(b"\x01" + b"\x00" * 31)  # small order (the neutral element)
    assert not identity_point.verify(message, b"\x01" + b"\x00" * 63)
    assert not identity_point.verify(message, sig)
    flipped_r = bytes([sig[0] ^ 1]) + sig[1:]
    assert not key.public_key.verify(message, flipped_r)


@pytest.mark.parametrize(
    "content",
    [
        "[" * 5000,
        '{"type": "mindvec-secret-key", "version": ' + "1" * 5000 + "}",
        '{"type": "mindvec-secret-key", "version": 1, "alg": "ed25519", "public_key": 5}',
        '{"type": "mindvec-secret-key", "version": 1, "alg": "ed25519", "public_key": "x", "keyid": "",'
        ' "comment": "", "kdf": {"name": "argon2id", "opslimit": "a"}, "cipher": null, "secret": ""}',
    ],
)
def test_damaged_key_files_and_rotation_records_are_typed_errors(tmp_path: Path, content: str) -> None:
    """Issue 13, finding 8: the key file and the rotation record are read by their schemas."""
    from mindvec.rotation import RotationRecord

    path = tmp_path / "k.key"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(UsageError) as err:
        SecretKey.load(path)
    assert err.value.code == "key-file"
    with pytest.raises(UsageError) as err:
        RotationRecord.from_bytes(content.replace("mindvec-secret-key", "mindvec-rotation").encode())
    assert err.value.code == "key-file"
