"""Byte surgery on packages: split and rejoin sections, re-sign, raw msgpack, flips and splices."""

from __future__ import annotations

import copy
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgpack

from conformance_tests.craft.constants import END_MAGIC, MAGIC
from conformance_tests.craft.keys import KEYS
from mindvec import canonical, container


def align64(n: int) -> int:
    return (n + 63) // 64 * 64


@dataclass(frozen=True)
class Parts:
    """The sections of a package; ``build`` lays them out, overrides and all."""

    manifest: bytes
    payload: bytes
    sigblock: bytes
    magic: bytes = MAGIC
    major: int = 1
    minor: int = 0
    flags: int = 0
    manifest_len: int | None = None
    payload_len: int | None = None
    sig_len: int | None = None
    padding: bytes | None = None
    end_magic: bytes = END_MAGIC

    def build(self) -> bytes:
        manifest_len = len(self.manifest) if self.manifest_len is None else self.manifest_len
        payload_len = len(self.payload) if self.payload_len is None else self.payload_len
        sig_len = len(self.sigblock) if self.sig_len is None else self.sig_len
        pad = self.padding
        if pad is None:
            pad = b"\x00" * (align64(32 + len(self.manifest)) - 32 - len(self.manifest))
        preamble = struct.pack(
            "<8sHHIQQ", self.magic, self.major, self.minor, self.flags, manifest_len, payload_len
        )
        trailer = struct.pack("<Q", sig_len) + self.end_magic
        return preamble + self.manifest + pad + self.payload + self.sigblock + trailer


def split(data: bytes) -> Parts:
    """Cut a well-formed package into its sections."""
    magic, major, minor, flags, manifest_len, payload_len = struct.unpack_from("<8sHHIQQ", data)
    payload_offset = align64(32 + manifest_len)
    sig_offset = payload_offset + payload_len
    (sig_len,) = struct.unpack_from("<Q", data, len(data) - 16)
    parts = Parts(
        manifest=data[32 : 32 + manifest_len],
        payload=data[payload_offset:sig_offset],
        sigblock=data[sig_offset : sig_offset + sig_len],
        major=major,
        minor=minor,
    )
    assert magic == MAGIC and flags == 0 and parts.build() == data, "split() needs a well-formed package"
    return parts


def manifest_of(parts: Parts) -> dict[str, Any]:
    value = msgpack.unpackb(parts.manifest, raw=False, strict_map_key=True)
    assert isinstance(value, dict)
    return value


def sigblock(manifest_bytes: bytes, signers: Sequence[str]) -> bytes:
    entries = [KEYS[name].sign_manifest(manifest_bytes) for name in signers]
    return container.encode_signature_block(entries)


def with_manifest(parts: Parts, manifest: dict[str, Any], signers: Sequence[str] | None = None) -> Parts:
    """Replace the manifest (canonically encoded); re-sign when ``signers`` is given."""
    manifest_bytes = packb_sorted(manifest)
    block = sigblock(manifest_bytes, signers) if signers is not None else parts.sigblock
    return replace(parts, manifest=manifest_bytes, sigblock=block)


def with_raw_manifest(parts: Parts, manifest_bytes: bytes, signers: Sequence[str] | None = None) -> Parts:
    block = sigblock(manifest_bytes, signers) if signers is not None else parts.sigblock
    return replace(parts, manifest=manifest_bytes, sigblock=block)


def split_payload(payload: bytes) -> tuple[bytes, bytes]:
    """(header bytes with their padding, data section)."""
    (n,) = struct.unpack_from("<Q", payload)
    return payload[8 : 8 + n], payload[8 + n :]


def join_payload(header: bytes, data: bytes, *, pad: bool = True) -> bytes:
    if pad:
        header = header + b" " * ((56 - len(header)) % 64)
    return struct.pack("<Q", len(header)) + header + data


def restamp(man: dict[str, Any], payload: bytes) -> dict[str, Any]:
    """A copy of ``man`` whose payload.header_sha256 matches ``payload``'s header."""
    header, _ = split_payload(payload)
    out = copy.deepcopy(man)
    out["payload"]["header_sha256"] = hashlib.sha256(header).digest()
    return out


def mp_str(text: str) -> bytes:
    packed: bytes = msgpack.packb(text, use_bin_type=True)
    return packed


def mp_map_raw(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A fixmap/map16 with already-encoded keys and values, in the order given."""
    n = len(items)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(key + value for key, value in items)


def encode_map_unsorted(manifest: dict[str, Any], reverse_top: bool = True) -> bytes:
    """The manifest with its top-level keys in reverse order (everything else canonical)."""
    keys = sorted(manifest, key=lambda k: k.encode(), reverse=reverse_top)
    return mp_map_raw([(mp_str(key), canonical.encode(manifest[key])) for key in keys])


def packb_sorted(value: Any) -> bytes:
    """msgpack with map keys sorted as the profile wants, but no other check (ext, NaN pass)."""

    def sort(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: sort(item[k]) for k in sorted(item, key=lambda k: str(k).encode())}
        if isinstance(item, list):
            return [sort(x) for x in item]
        return item

    packed: bytes = msgpack.packb(sort(value), use_bin_type=True, strict_types=False, datetime=False)
    return packed


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


def splice(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the single occurrence of ``old``."""
    assert data.count(old) == 1, f"{old!r} occurs {data.count(old)} times"
    return data.replace(old, new)
