"""A second, independent reader written from spec/mindvec-1.1.md alone (no mindvec imports).

It exists to show that the spec is complete enough to reimplement: it follows the check
order of section 10 with plain ``msgpack``, ``json``, ``hashlib`` and PyNaCl, trusting one
Ed25519 key given by its raw bytes. The JSON Schema (step 4) is left out except for the
`format` rule; everything else a package's bytes can break is checked.

Usage: python spec/tools/mini_reader.py FILE [TRUSTED_PUBLIC_KEY_HEX]
Prints ``ok`` or the error code of the first failing check.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import sys
from typing import Any

import msgpack
import nacl.exceptions
import nacl.signing

MAGIC = b"\x89MVEC\r\n\n"
TRAILER_MAGIC = b"MVECEND\n"
PAYLOAD_TYPE = b"application/vnd.mindvec.manifest.v1+msgpack"
DTYPE_SIZE = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}


class Reject(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def align64(n: int) -> int:
    return (n + 63) // 64 * 64


# ---------------------------------------------------------------- section 3


def _pairs(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if not isinstance(k, str):
            raise Reject("msgpack")
        if k in out:
            raise Reject("duplicate-key")
        out[k] = v
    return out


def _ext(code: int, data: bytes) -> Any:
    raise Reject("msgpack")


_PROFILE_TYPES = (dict, list, str, bytes, int, float, bool, type(None))


def _normal(value: Any, depth: int) -> Any:
    # msgpack-python turns ext -1 into a Timestamp without calling ext_hook; the profile has no ext
    if not isinstance(value, _PROFILE_TYPES):
        raise Reject("msgpack")
    if isinstance(value, float) and not math.isfinite(value):
        raise Reject("msgpack")
    if isinstance(value, (dict, list)):
        if depth >= 32:
            raise Reject("depth")
        if isinstance(value, dict):
            return {k: _normal(value[k], depth + 1) for k in sorted(value, key=lambda k: k.encode())}
        return [_normal(v, depth + 1) for v in value]
    return value


def strict_decode(data: bytes) -> Any:
    budget = [max(1024, len(data) // 16)]  # maps and arrays together

    def spend(value: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise Reject("bounds")
        return value

    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            object_pairs_hook=lambda pairs: spend(_pairs(pairs)),
            list_hook=spend,
            ext_hook=_ext,
        )
    except Reject:
        raise
    except msgpack.StackError:
        raise Reject("depth") from None
    except Exception:  # noqa: BLE001 - any other unpacking failure is msgpack
        raise Reject("msgpack") from None
    value = _normal(value, 0)
    if msgpack.packb(value, use_bin_type=True, use_single_float=False) != data:
        raise Reject("non-canonical")
    return value


# ---------------------------------------------------------------- the reader


def read(data: bytes, trusted_key: bytes | None = None) -> dict[str, Any]:
    size = len(data)
    # step 1: structure and bounds
    head = data[:32]
    for start, expected, code in ((0, MAGIC, "magic"), (8, b"\x01\x00", "version"), (12, bytes(4), "flags")):
        have = head[start : start + len(expected)]
        if have != expected[: len(have)]:
            raise Reject(code)
    if size < 32:
        raise Reject("truncated")
    major, minor, _flags, manifest_len, payload_len = struct.unpack_from("<HHIQQ", data, 8)
    if not 1 <= manifest_len <= 16 * 2**20 or not 16 <= payload_len <= 2**48:
        raise Reject("bounds")
    payload_offset = align64(32 + manifest_len)
    if payload_offset + payload_len + 1 + 16 > size:
        raise Reject("bounds")
    sig_len, end_magic = struct.unpack_from("<Q8s", data, size - 16)
    if end_magic != TRAILER_MAGIC:
        raise Reject("signature-block")
    if not 1 <= sig_len <= 65536:
        raise Reject("bounds")
    sig_offset = payload_offset + payload_len
    if sig_offset + sig_len + 16 != size:
        raise Reject("truncated" if sig_offset + sig_len + 16 > size else "trailing")
    if any(data[32 + manifest_len : payload_offset]):
        raise Reject("padding")
    try:
        block = strict_decode(data[sig_offset : sig_offset + sig_len])
    except Reject:
        raise Reject("signature-block") from None
    if not isinstance(block, list) or len(block) > 16:
        raise Reject("signature-block")
    for entry in block:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"alg", "keyid", "sig"}
            or entry["alg"] != "ed25519"
            or not isinstance(entry["keyid"], bytes)
            or len(entry["keyid"]) != 16
            or not isinstance(entry["sig"], bytes)
            or len(entry["sig"]) != 64
        ):
            raise Reject("signature-block")
    keyids = [e["keyid"] for e in block]
    if keyids != sorted(keyids) or len(set(keyids)) != len(keyids):
        raise Reject("signature-block")
    # step 2: signatures by known keys over the PAE of the exact manifest bytes
    manifest_bytes = data[32 : 32 + manifest_len]
    pae = b" ".join(
        [b"MINDVECv1", b"%d" % len(PAYLOAD_TYPE), PAYLOAD_TYPE, b"%d" % len(manifest_bytes), manifest_bytes]
    )
    trusted = 0
    if trusted_key is not None:
        known = hashlib.sha256(b"mindvec-ed25519\x00" + trusted_key).digest()[:16]
        for entry in block:
            if entry["keyid"] == known:
                try:
                    nacl.signing.VerifyKey(trusted_key).verify(pae, entry["sig"])
                except nacl.exceptions.BadSignatureError:
                    raise Reject("bad-signature") from None
                trusted += 1
    # step 3: strict decode
    manifest = strict_decode(manifest_bytes)
    # step 4 (partial): only the format rule
    if not isinstance(manifest, dict) or "payload" not in manifest:
        raise Reject("schema")
    if manifest.get("format") != f"{major}.{minor}":
        raise Reject("version")
    # step 5: payload header
    (n,) = struct.unpack_from("<Q", data, payload_offset)
    if n > 100_000_000 or 8 + n > payload_len:
        raise Reject("bounds")
    if n % 64 != 56:
        raise Reject("payload")
    header_bytes = data[payload_offset + 8 : payload_offset + 8 + n]
    if hashlib.sha256(header_bytes).digest() != manifest["payload"]["header_sha256"]:
        raise Reject("digest-mismatch")
    header = _parse_header(header_bytes, payload_len - 8 - n)
    if set(header) != set(manifest["payload"]["tensors"]):
        raise Reject("tensor-reference")
    # step 6: every tensor, in data order: digest, then values
    data_start = payload_offset + 8 + n
    vectors = {s["tensor"] for v in manifest.get("vectors", []) for s in v["sites"]}
    for name, (dtype, _shape, begin, end) in sorted(header.items(), key=lambda kv: kv[1][2:]):
        raw = data[data_start + begin : data_start + end]
        if hashlib.sha256(raw).digest() != manifest["payload"]["tensors"][name]:
            raise Reject("digest-mismatch")
        values = _values(dtype, raw)
        if not all(math.isfinite(x) for x in values) or (name in vectors and not any(values)):
            raise Reject("value")
    # step 7: one trusted key, threshold 1
    if not block:
        raise Reject("no-signature")
    if not trusted:
        raise Reject("untrusted-key")
    return {"manifest": manifest, "tensors": {k: (v[0], v[1]) for k, v in header.items()}}


def _parse_header(header_bytes: bytes, data_len: int) -> dict[str, tuple[str, list[int], int, int]]:
    if not header_bytes.startswith(b"{"):
        raise Reject("payload")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise Reject("duplicate-key")
            out[k] = v
        return out

    def no_float(text: str) -> Any:
        raise Reject("payload")

    try:
        text = header_bytes.decode("utf-8")
        obj, end = json.JSONDecoder(
            object_pairs_hook=pairs, parse_float=no_float, parse_constant=no_float
        ).raw_decode(text)
    except (UnicodeDecodeError, ValueError):
        raise Reject("payload") from None
    if text[end:].strip(" ") or not isinstance(obj, dict) or "__metadata__" in obj:
        raise Reject("payload")
    if len(obj) > 65536:
        raise Reject("bounds")
    out = {}
    for name, e in obj.items():
        if (
            not isinstance(e, dict)
            or set(e) != {"dtype", "shape", "data_offsets"}
            or not isinstance(e["dtype"], str)
        ):
            raise Reject("payload")
        if e["dtype"] not in DTYPE_SIZE:
            raise Reject("dtype")
        ints = (
            [*e["shape"], *e["data_offsets"]]
            if isinstance(e["shape"], list) and isinstance(e["data_offsets"], list)
            else None
        )
        if (
            ints is None
            or len(e["data_offsets"]) != 2
            or not all(type(i) is int and 0 <= i < 2**64 for i in ints)
        ):
            raise Reject("payload")
        begin, end = e["data_offsets"]
        if end < begin or math.prod(e["shape"]) * DTYPE_SIZE[e["dtype"]] != end - begin:
            raise Reject("payload")
        out[name] = (e["dtype"], e["shape"], begin, end)
    position = 0
    for _dtype, _shape, begin, end in sorted(out.values(), key=lambda t: (t[2], t[3])):
        if begin != position:
            raise Reject("payload")
        position = end
    if position != data_len:
        raise Reject("payload")
    return out


def _values(dtype: str, raw: bytes) -> list[float]:
    if dtype == "BF16":
        return [struct.unpack("<f", b"\x00\x00" + raw[i : i + 2])[0] for i in range(0, len(raw), 2)]
    fmt = {"F16": "e", "F32": "f", "F64": "d"}[dtype]
    return list(struct.unpack(f"<{len(raw) // DTYPE_SIZE[dtype]}{fmt}", raw))


def main(argv: list[str]) -> int:
    with open(argv[0], "rb") as handle:
        data = handle.read()
    key = bytes.fromhex(argv[1]) if len(argv) > 1 else None
    try:
        read(data, key)
    except Reject as exc:
        print(exc.code)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
