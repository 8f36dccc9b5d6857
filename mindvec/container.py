"""The .mindvec container: preamble, sections, signature block, trailer and bounds.

This module knows bytes, not meaning. :func:`read_raw` is step 1 of reading: it
checks the structure and every declared length against the limits *and* the real
file size before it reads (and so allocates) anything, then reads only the preamble,
the manifest, the padding and the signature block. The payload is left on disk.

Check order (fixed, so a file with several defects always gets the same code):
magic -> version -> flags -> bounds -> trailer magic and ``sig_len`` -> total size
(``truncated``/``trailing``) -> zero padding -> signature block.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mindvec import canonical
from mindvec._fs import atomic_writer, open_regular
from mindvec.errors import MalformedError, UsageError
from mindvec.limits import (
    ALIGN,
    FORMAT_VERSION,
    KEYID_LEN,
    MAGIC,
    MAX_MANIFEST,
    MAX_PAYLOAD,
    MAX_SIG_BLOCK,
    MAX_SIGNATURES,
    MIN_PAYLOAD,
    PREAMBLE_SIZE,
    SIG_LEN,
    SIGNATURE_ALG,
    TRAILER_MAGIC,
    TRAILER_SIZE,
)

_PREAMBLE = struct.Struct("<8sHHIQQ")
_TRAILER = struct.Struct("<Q8s")
_COPY_CHUNK = 1 << 20


def align64(n: int) -> int:
    """Round ``n`` up to the next multiple of :data:`ALIGN`."""
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class SignatureEntry:
    """One entry of the signature block; the bytes are checked, never trusted, here."""

    alg: str
    keyid: bytes
    sig: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"alg": self.alg, "keyid": self.keyid, "sig": self.sig}


@dataclass(frozen=True)
class Layout:
    """Where each section lies in the file; all offsets are absolute."""

    major: int
    minor: int
    flags: int
    manifest_len: int
    payload_len: int
    sig_len: int
    file_size: int

    manifest_offset = PREAMBLE_SIZE

    @property
    def version(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def manifest_end(self) -> int:
        return PREAMBLE_SIZE + self.manifest_len

    @property
    def payload_offset(self) -> int:
        return align64(self.manifest_end)

    @property
    def sig_offset(self) -> int:
        return self.payload_offset + self.payload_len

    @property
    def trailer_offset(self) -> int:
        return self.sig_offset + self.sig_len


@dataclass(frozen=True)
class RawPackage:
    """The result of step 1: structure checked, manifest and signatures read as bytes."""

    path: Path
    layout: Layout
    manifest_bytes: bytes
    signatures: list[SignatureEntry]
    file_size: int
    signature_block: bytes = b"\x90"


# ---------------------------------------------------------------- signature block


def _sig_error(message: str) -> MalformedError:
    return MalformedError("signature-block", message)


def _entry_from_obj(obj: Any) -> SignatureEntry:
    if not isinstance(obj, dict) or set(obj) != {"alg", "keyid", "sig"}:
        raise _sig_error("each signature entry must be a map with exactly alg, keyid and sig")
    alg, keyid, sig = obj["alg"], obj["keyid"], obj["sig"]
    if alg != SIGNATURE_ALG:
        raise _sig_error(f"signature algorithm must be {SIGNATURE_ALG!r}")
    if not isinstance(keyid, bytes) or len(keyid) != KEYID_LEN:
        raise _sig_error(f"keyid must be {KEYID_LEN} bytes of msgpack bin")
    if not isinstance(sig, bytes) or len(sig) != SIG_LEN:
        raise _sig_error(f"sig must be {SIG_LEN} bytes of msgpack bin")
    return SignatureEntry(alg=alg, keyid=keyid, sig=sig)


def _check_entries(entries: Sequence[SignatureEntry]) -> None:
    if len(entries) > MAX_SIGNATURES:
        raise _sig_error(f"{len(entries)} signatures; at most {MAX_SIGNATURES} are allowed")
    keyids = [entry.keyid for entry in entries]
    if keyids != sorted(keyids):
        raise _sig_error("signature entries must be sorted by keyid bytes")
    if len(set(keyids)) != len(keyids):
        raise _sig_error("two signature entries have the same keyid")


def encode_signature_block(entries: Sequence[SignatureEntry]) -> bytes:
    """Encode entries (sorted here by keyid) as the canonical signature block."""
    ordered = sorted(entries, key=lambda entry: entry.keyid)
    for entry in ordered:
        _entry_from_obj(entry.to_dict())
    _check_entries(ordered)
    data = canonical.encode([entry.to_dict() for entry in ordered])
    if len(data) > MAX_SIG_BLOCK:
        raise MalformedError("bounds", f"signature block of {len(data)} bytes exceeds {MAX_SIG_BLOCK}")
    return data


def decode_signature_block(data: bytes) -> list[SignatureEntry]:
    """Decode and check a signature block (also the content of a detached ``.sig`` file)."""
    if not 1 <= len(data) <= MAX_SIG_BLOCK:
        raise MalformedError("bounds", f"signature block must be 1..{MAX_SIG_BLOCK} bytes, got {len(data)}")
    try:
        obj = canonical.decode(data)
    except MalformedError as exc:
        raise _sig_error(
            f"the signature block is not canonical msgpack ({exc.code}: {exc.message})"
        ) from None
    if not isinstance(obj, list):
        raise _sig_error("the signature block must be a msgpack array")
    if len(obj) > MAX_SIGNATURES:
        raise _sig_error(f"{len(obj)} signatures; at most {MAX_SIGNATURES} are allowed")
    entries = [_entry_from_obj(item) for item in obj]
    _check_entries(entries)
    return entries


# ---------------------------------------------------------------- encoding


def encode_preamble(manifest_len: int, payload_len: int, version: tuple[int, int] = FORMAT_VERSION) -> bytes:
    return _PREAMBLE.pack(MAGIC, version[0], version[1], 0, manifest_len, payload_len)


def encode_trailer(sig_len: int) -> bytes:
    return _TRAILER.pack(sig_len, TRAILER_MAGIC)


def container_chunks(
    manifest_bytes: bytes, payload: bytes, signature_block: bytes, version: tuple[int, int] = FORMAT_VERSION
) -> list[bytes]:
    """The byte pieces of a whole file, in order (the writer concatenates or streams them)."""
    pad = align64(PREAMBLE_SIZE + len(manifest_bytes)) - PREAMBLE_SIZE - len(manifest_bytes)
    return [
        encode_preamble(len(manifest_bytes), len(payload), version),
        manifest_bytes,
        b"\x00" * pad,
        payload,
        signature_block,
        encode_trailer(len(signature_block)),
    ]


# ---------------------------------------------------------------- reading


def _read_exact(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    data = handle.read(size)
    if len(data) != size:
        raise MalformedError("truncated", "the file ended while reading; it may have changed or be truncated")
    return data


def _prefix_differs(head: bytes, start: int, expected: bytes) -> bool:
    """Compare a field on the bytes of it that exist (the file may end inside it)."""
    have = head[start : start + len(expected)]
    return have != expected[: len(have)]


def _check_head(head: bytes) -> tuple[int, int, int, int, int]:
    """Check magic, major and flags on however many preamble bytes exist, then truncation."""
    if _prefix_differs(head, 0, MAGIC):
        raise MalformedError("magic", "this is not a .mindvec file (wrong magic bytes)")
    if _prefix_differs(head, 8, struct.pack("<H", FORMAT_VERSION[0])):
        major = struct.unpack_from("<H", head, 8)[0] if len(head) >= 10 else head[8]
        raise MalformedError("version", f"format major version {major} is not supported (this reader: 1)")
    if _prefix_differs(head, 12, bytes(4)):
        raise MalformedError("flags", "preamble flags are not zero; version 1 requires 0")
    if len(head) < PREAMBLE_SIZE:
        raise MalformedError("truncated", f"the file ends inside the preamble ({len(head)} of 32 bytes)")
    _, major, minor, flags, manifest_len, payload_len = _PREAMBLE.unpack(head)
    return major, minor, flags, manifest_len, payload_len


def _check_bounds(manifest_len: int, payload_len: int, file_size: int) -> None:
    if not 1 <= manifest_len <= MAX_MANIFEST:
        raise MalformedError("bounds", f"manifest length {manifest_len} is outside 1..{MAX_MANIFEST}")
    if not MIN_PAYLOAD <= payload_len <= MAX_PAYLOAD:
        raise MalformedError(
            "bounds", f"payload length {payload_len} is outside {MIN_PAYLOAD}..{MAX_PAYLOAD}"
        )
    needed = align64(PREAMBLE_SIZE + manifest_len) + payload_len + 1 + TRAILER_SIZE
    if needed > file_size:
        raise MalformedError(
            "bounds",
            f"the preamble declares at least {needed} bytes but the file has {file_size}; "
            "the file is truncated or damaged",
        )


def _check_trailer(trailer: bytes, sig_offset: int, file_size: int) -> int:
    sig_len, magic = _TRAILER.unpack(trailer)
    if magic != TRAILER_MAGIC:
        raise MalformedError(
            "signature-block", "the closing magic is missing; the file is truncated or extended"
        )
    if not 1 <= sig_len <= MAX_SIG_BLOCK:
        raise MalformedError("bounds", f"signature block length {sig_len} is outside 1..{MAX_SIG_BLOCK}")
    end = sig_offset + sig_len + TRAILER_SIZE
    if end > file_size:
        raise MalformedError("truncated", f"the layout ends at byte {end} but the file has {file_size}")
    if end < file_size:
        raise MalformedError("trailing", f"{file_size - end} bytes follow the end of the layout; remove them")
    return int(sig_len)


def read_layout(handle: BinaryIO, file_size: int) -> Layout:
    """Check the preamble, bounds and trailer of an open file and return its layout."""
    head = _read_exact(handle, 0, min(PREAMBLE_SIZE, file_size))
    major, minor, flags, manifest_len, payload_len = _check_head(head)
    _check_bounds(manifest_len, payload_len, file_size)
    sig_offset = align64(PREAMBLE_SIZE + manifest_len) + payload_len
    trailer = _read_exact(handle, file_size - TRAILER_SIZE, TRAILER_SIZE)
    sig_len = _check_trailer(trailer, sig_offset, file_size)
    return Layout(major, minor, flags, manifest_len, payload_len, sig_len, file_size)


def _open_for_read(path: Path) -> BinaryIO:
    """A regular file only: a FIFO would block and a device would never end (``_fs.open_regular``)."""
    return open_regular(path, what="package")


def read_raw(path: str | os.PathLike[str]) -> RawPackage:
    """Step 1 of reading: structure and bounds; returns manifest and signature bytes."""
    path = Path(path)
    with _open_for_read(path) as handle:
        try:
            file_size = os.fstat(handle.fileno()).st_size
            layout = read_layout(handle, file_size)
            manifest = _read_exact(handle, PREAMBLE_SIZE, layout.manifest_len)
            padding = _read_exact(handle, layout.manifest_end, layout.payload_offset - layout.manifest_end)
            if padding.strip(b"\x00"):
                raise MalformedError("padding", "the padding after the manifest must be zero bytes")
            block = _read_exact(handle, layout.sig_offset, layout.sig_len)
        except OSError as exc:
            raise UsageError("io", f"cannot read {path}: {exc.strerror or exc}") from None
    signatures = decode_signature_block(block)
    return RawPackage(path, layout, manifest, signatures, file_size, block)


# ---------------------------------------------------------------- co-signing


def _copy_prefix(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    src.seek(0)
    remaining = size
    while remaining:
        chunk = src.read(min(_COPY_CHUNK, remaining))
        if not chunk:
            raise MalformedError("truncated", "the file shrank while it was being rewritten")
        dst.write(chunk)
        remaining -= len(chunk)


def rewrite_signatures(path: str | os.PathLike[str], entries: Sequence[SignatureEntry]) -> None:
    """Atomically replace only the signature block and trailer (co-signing).

    The preamble, manifest and payload are copied byte for byte, so the package's
    identity (the manifest digest) does not change.
    """
    raw = read_raw(path)
    block = encode_signature_block(entries)

    def same_package(tmp: Path) -> None:
        if read_raw(tmp).manifest_bytes != raw.manifest_bytes:
            raise MalformedError("truncated", f"{raw.path} changed while it was being co-signed; try again")

    with _open_for_read(raw.path) as src, atomic_writer(raw.path, check=same_package) as dst:
        _copy_prefix(src, dst, raw.layout.sig_offset)
        dst.write(block)
        dst.write(encode_trailer(len(block)))
