"""Container structure: preamble, bounds, trailer, padding, signature block, co-signing.

Also the whole-file robustness properties: truncation at every offset, a flip of any
byte, and a tiny file declaring huge lengths.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mindvec
from mindvec import canonical, container, limits
from mindvec.container import SignatureEntry, decode_signature_block, encode_signature_block, read_raw
from mindvec.errors import MalformedError, MindvecError
from tests import factories


def _code(path: Path) -> str:
    with pytest.raises(MindvecError) as info:
        mindvec.open(path)
    return info.value.code


def _patched(tmp_path: Path, offset: int, new: bytes, name: str = "patched.mindvec") -> Path:
    data = bytearray(factories.tiny_package(tmp_path).read_bytes())
    data[offset : offset + len(new)] = new
    return factories.write_bytes(tmp_path, bytes(data), name)


_TINY: list[bytes] = []


def _tiny_bytes(tmp_path: Path) -> bytes:
    """The tiny package's bytes, built once per session (it is deterministic)."""
    if not _TINY:
        _TINY.append(factories.tiny_package(tmp_path, "tiny-cache.mindvec").read_bytes())
    return _TINY[0]


def _entry(keyid_byte: int) -> SignatureEntry:
    return SignatureEntry("ed25519", bytes([keyid_byte]) * 16, bytes(64))


# ---------------------------------------------------------------- layout


@pytest.mark.req("R-41", "R-55")
def test_layout_alignment_and_constants(tmp_path: Path) -> None:
    """Payload and tensor data start 64-aligned in the file; trailer closes it. [R-41] [R-55]"""
    path = factories.small_package(tmp_path)
    raw = read_raw(path)
    data = path.read_bytes()
    assert data[:8] == limits.MAGIC == b"\x89MVEC\r\n\n"
    assert data[-8:] == limits.TRAILER_MAGIC
    assert raw.layout.payload_offset % 64 == 0
    (header_len,) = struct.unpack_from("<Q", data, raw.layout.payload_offset)
    assert (raw.layout.payload_offset + 8 + header_len) % 64 == 0
    assert raw.layout.trailer_offset + 16 == raw.file_size == len(data)
    assert raw.signature_block == b"\x90" and raw.signatures == []


# ---------------------------------------------------------------- preamble and bounds


@pytest.mark.req("R-1", "R-5")
def test_magic(tmp_path: Path) -> None:
    """Wrong magic is `magic`; a short prefix of the magic is `truncated`. [R-1] [R-5]"""
    assert _code(_patched(tmp_path, 1, b"X")) == "magic"
    assert _code(factories.write_bytes(tmp_path, b"PK\x03\x04")) == "magic"
    assert _code(factories.write_bytes(tmp_path, limits.MAGIC[:5])) == "truncated"
    assert _code(factories.write_bytes(tmp_path, b"")) == "truncated"


@pytest.mark.req("R-2", "R-4")
def test_version_and_flags(tmp_path: Path) -> None:
    """Major other than 1 is `version`; nonzero flags are `flags`. [R-2] [R-4]"""
    assert _code(_patched(tmp_path, 8, struct.pack("<H", 2))) == "version"
    assert _code(_patched(tmp_path, 8, struct.pack("<H", 0))) == "version"
    assert _code(_patched(tmp_path, 12, struct.pack("<I", 1))) == "flags"
    assert _code(_patched(tmp_path, 15, b"\x80")) == "flags"


@pytest.mark.req("R-5")
def test_preamble_checked_on_existing_bytes(tmp_path: Path) -> None:
    """A file ending inside the preamble is `truncated`, after magic, major and flags. [R-5]"""
    head = container.encode_preamble(10, 100)
    for size in (9, 10, 12, 14, 16, 20, 31):
        assert _code(factories.write_bytes(tmp_path, head[:size])) == "truncated"
    bad_major = container.encode_preamble(10, 100, (3, 0))
    assert _code(factories.write_bytes(tmp_path, bad_major[:9])) == "version"
    assert _code(factories.write_bytes(tmp_path, bad_major[:10])) == "version"
    assert _code(factories.write_bytes(tmp_path, head[:13] + b"\x01")) == "flags"


@pytest.mark.req("R-6", "R-7", "R-8")
@pytest.mark.parametrize(
    ("offset", "value"),
    [(16, 0), (16, limits.MAX_MANIFEST + 1), (24, 15), (24, limits.MAX_PAYLOAD + 1), (24, 10**6)],
)
def test_declared_lengths_bounded(tmp_path: Path, offset: int, value: int) -> None:
    """Lengths outside their limits or beyond the file are `bounds`. [R-6] [R-7] [R-8]"""
    assert _code(_patched(tmp_path, offset, struct.pack("<Q", value))) == "bounds"


@pytest.mark.req("R-8")
def test_huge_lengths_fail_fast_without_allocating(tmp_path: Path) -> None:
    """A ~100-byte file declaring lengths near 2^63 fails with `bounds`, allocating nothing big. [R-8]"""
    for manifest_len, payload_len in [(2**63 - 1, 2**63 - 1), (1000, 2**63), (16, 2**48)]:
        data = container.encode_preamble(manifest_len, payload_len) + bytes(52) + b"\x90"
        data += container.encode_trailer(1)
        path = factories.write_bytes(tmp_path, data, "huge.mindvec")
        assert len(data) == 101
        tracemalloc.start()
        try:
            assert _code(path) == "bounds"
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 256 * 1024


@pytest.mark.req("R-9", "R-10", "R-11")
def test_trailer(tmp_path: Path) -> None:
    """Closing magic, sig_len bounds, exact file size. [R-9] [R-10] [R-11]"""
    data = factories.tiny_package(tmp_path).read_bytes()
    assert _code(factories.write_bytes(tmp_path, data[:-1] + b"X")) == "signature-block"
    assert _code(factories.write_bytes(tmp_path, data + b"\x00")) == "signature-block"
    body, trailer_magic = data[:-16], data[-8:]
    for sig_len in (0, limits.MAX_SIG_BLOCK + 1):
        bad = body + struct.pack("<Q", sig_len) + trailer_magic
        assert _code(factories.write_bytes(tmp_path, bad)) == "bounds"
    trailing = body + b"\x00\x00\x00" + data[-16:]
    assert _code(factories.write_bytes(tmp_path, trailing)) == "trailing"
    short = body + struct.pack("<Q", 40) + trailer_magic
    assert _code(factories.write_bytes(tmp_path, short)) == "truncated"


@pytest.mark.req("R-12")
def test_padding_must_be_zero(tmp_path: Path) -> None:
    """A nonzero padding byte is `padding`. [R-12]"""
    path = factories.tiny_package(tmp_path)
    layout = read_raw(path).layout
    assert layout.payload_offset > layout.manifest_end
    assert _code(_patched(tmp_path, layout.payload_offset - 1, b"\x01")) == "padding"


@pytest.mark.req("R-69")
def test_check_order_first_defect_wins(tmp_path: Path) -> None:
    """With several defects, the first check in the fixed order decides the code. [R-69]"""
    path = factories.tiny_package(tmp_path)
    data = bytearray(path.read_bytes())
    layout = read_raw(path).layout
    data[layout.payload_offset - 1] = 1  # padding
    data[layout.sig_offset] = 0x91  # signature block
    assert _code(factories.write_bytes(tmp_path, bytes(data))) == "padding"
    data[12] = 1  # flags come before both
    assert _code(factories.write_bytes(tmp_path, bytes(data))) == "flags"


# ---------------------------------------------------------------- signature block


@pytest.mark.req("R-62", "R-63")
def test_signature_block_round_trip() -> None:
    """Entries are sorted by keyid on encode and must be sorted on decode. [R-62] [R-63]"""
    entries = [_entry(3), _entry(1), _entry(2)]
    block = encode_signature_block(entries)
    assert decode_signature_block(block) == sorted(entries, key=lambda e: e.keyid)
    assert encode_signature_block([]) == b"\x90"


@pytest.mark.req("R-13", "R-62", "R-63")
@pytest.mark.parametrize(
    "obj",
    [
        {"alg": "ed25519"},
        [{"alg": "rsa", "keyid": b"\x01" * 16, "sig": bytes(64)}],
        [{"alg": "ed25519", "keyid": b"\x01" * 15, "sig": bytes(64)}],
        [{"alg": "ed25519", "keyid": b"\x01" * 16, "sig": bytes(63)}],
        [{"alg": "ed25519", "keyid": "01" * 16, "sig": bytes(64)}],
        [{"alg": "ed25519", "keyid": b"\x01" * 16, "sig": bytes(64), "x": 1}],
        [
            {"alg": "ed25519", "keyid": b"\x02" * 16, "sig": bytes(64)},
            {"alg": "ed25519", "keyid": b"\x01" * 16, "sig": bytes(64)},
        ],
        [{"alg": "ed25519", "keyid": b"\x01" * 16, "sig": bytes(64)}] * 2,
        [{"alg": "ed25519", "keyid": bytes([i]) * 16, "sig": bytes(64)} for i in range(17)],
    ],
)
def test_bad_signature_blocks(obj: object) -> None:
    """Malformed, unsorted, duplicate or too many entries are `signature-block`. [R-13] [R-62] [R-63]"""
    with pytest.raises(MalformedError) as info:
        decode_signature_block(canonical.encode(obj))
    assert info.value.code == "signature-block"


@pytest.mark.req("R-13")
def test_non_canonical_signature_block_in_file(tmp_path: Path) -> None:
    """A signature block that is not canonical msgpack is `signature-block`. [R-13]"""
    path = factories.tiny_package(tmp_path)
    data = path.read_bytes()
    bad = data[:-17] + b"\xdc\x00\x00" + container.encode_trailer(3)
    assert _code(factories.write_bytes(tmp_path, bad)) == "signature-block"


@pytest.mark.req("R-67")
def test_rewrite_signatures_keeps_everything_else(tmp_path: Path) -> None:
    """Co-signing rewrites only the block and trailer; identity is unchanged. [R-67]"""
    path = factories.small_package(tmp_path)
    before = path.read_bytes()
    identity = mindvec.open(path).identity
    sig_offset = read_raw(path).layout.sig_offset
    container.rewrite_signatures(path, [_entry(9), _entry(4)])
    after = path.read_bytes()
    assert after[:sig_offset] == before[:sig_offset]
    package = mindvec.open(path)
    assert package.identity == identity
    assert [s.keyid[0] for s in package.signatures] == [4, 9]
    package.check_integrity()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# ---------------------------------------------------------------- whole-file robustness


def test_truncation_at_every_offset(tmp_path: Path) -> None:
    """Every proper prefix of a package gives a typed error, never another exception."""
    data = factories.tiny_package(tmp_path).read_bytes()
    path = tmp_path / "cut.mindvec"
    for size in range(len(data)):
        path.write_bytes(data[:size])
        with pytest.raises(MindvecError):
            mindvec.open(path).check_integrity()


def _read_back(path: Path) -> tuple[object, ...]:
    """What a reader sees; the manifest re-encoded so -0.0 and 0.0 count as different."""
    package = mindvec.open(path)
    package.check_integrity()
    tensors = {name: package.tensor(name).tobytes() for name in package.tensor_names}
    return (canonical.encode(package.manifest), package.signatures, tensors)


@pytest.mark.req("R-12", "R-27", "R-42", "R-53")
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_any_byte_flip_is_rejected_or_visible(tmp_path: Path, mask: int) -> None:
    """No free bytes: flipping any byte (preamble, manifest, padding, payload, signatures,
    trailer) gives a typed error or changes what is read back. [R-12] [R-27] [R-42] [R-53]"""
    path = factories.tiny_package(tmp_path, "orig.mindvec")
    data = path.read_bytes()
    original = _read_back(path)
    target = tmp_path / "flip.mindvec"
    for offset in range(len(data)):
        flipped = bytearray(data)
        flipped[offset] ^= mask
        target.write_bytes(bytes(flipped))
        try:
            result = _read_back(target)
        except MindvecError:
            continue
        assert result != original, f"flip at byte {offset} was silently accepted"


@pytest.mark.req("R-70")
def test_tensor_data_read_lazily(tmp_path: Path) -> None:
    """Opening reads no tensor data; a tampered tensor fails only when used. [R-70]"""
    manifest, tensors = factories.vector_manifest(layers=(1, 2))
    path = mindvec.write(tmp_path / "two.mindvec", manifest, tensors)
    package = mindvec.open(path)
    info = package.tensor_info("v.2")
    offset = package.raw.layout.payload_offset + package.header.data_offset + info.begin
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    tampered = factories.write_bytes(tmp_path, bytes(data), "tampered.mindvec")
    opened = mindvec.open(tampered)
    np.testing.assert_array_equal(opened.tensor("v.1"), tensors["v.1"])
    with pytest.raises(MindvecError) as err:
        opened.tensor("v.2")
    assert err.value.code == "digest-mismatch"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 40),
)
def test_random_multi_byte_damage_gives_typed_errors(
    tmp_path: Path, edits: list[tuple[int, int]], cut: int
) -> None:
    """Several damaged bytes plus a cut end: still only typed errors (or an intact read)."""
    data = bytearray(_tiny_bytes(tmp_path))
    for position, value in edits:
        data[position % len(data)] = value
    path = factories.write_bytes(tmp_path, bytes(data[: len(data) - cut]), "fuzz.mindvec")
    try:
        _read_back(path)
    except MindvecError:
        pass
