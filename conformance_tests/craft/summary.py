"""The expected summary of a valid case, from an independent minimal parser (struct, msgpack, json)."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import msgpack

from conformance_tests.craft.surgery import align64, split_payload
from conformance_tests.tagged import tag


def summarize(data: bytes) -> dict[str, Any]:
    """The decode summary of a valid package, from a minimal parser independent of mindvec."""
    _, major, minor, _, manifest_len, payload_len = struct.unpack_from("<8sHHIQQ", data)
    manifest_bytes = data[32 : 32 + manifest_len]
    payload_offset = align64(32 + manifest_len)
    payload = data[payload_offset : payload_offset + payload_len]
    (sig_len,) = struct.unpack_from("<Q", data, len(data) - 16)
    block = data[payload_offset + payload_len : payload_offset + payload_len + sig_len]
    header, body = split_payload(payload)
    tensors = {}
    for name, info in json.loads(header).items():
        begin, end = info["data_offsets"]
        tensors[name] = {
            "dtype": info["dtype"],
            "shape": info["shape"],
            "sha256": hashlib.sha256(body[begin:end]).hexdigest(),
        }
    return {
        "format": f"{major}.{minor}",
        "identity": hashlib.sha256(manifest_bytes).hexdigest(),
        "manifest": tag(msgpack.unpackb(manifest_bytes, raw=False)),
        "tensors": dict(sorted(tensors.items())),
        "signatures": [
            {"alg": item["alg"], "keyid": item["keyid"].hex()} for item in msgpack.unpackb(block, raw=False)
        ],
    }


def identity_of(data: bytes) -> str:
    (manifest_len,) = struct.unpack_from("<Q", data, 16)
    return hashlib.sha256(data[32 : 32 + manifest_len]).hexdigest()
