"""Write the worked example of spec/mindvec-1.1.md section 18 and print its hex dump.

Usage: python spec/tools/make_example.py [OUT.mindvec]

The package is built with the reference writer (``mindvec.write``) and signed with
the test key of spec section 9.3 (Ed25519 seed 01 02 ... 20). Ed25519 signatures are
deterministic and the writer is byte-reproducible, so the dump never changes unless
the format or the writer does; tests/test_spec_requirements.py checks that the spec
holds exactly this output.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import nacl.signing
import numpy as np

import mindvec
from mindvec.container import SignatureEntry

SEED = bytes(range(1, 33))
PAYLOAD_TYPE = b"application/vnd.mindvec.manifest.v1+msgpack"


class SpecSigner:
    """Signs exactly as spec section 9 says, with PyNaCl only (independent of mindvec.signing)."""

    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        public = bytes(self._key.verify_key)
        self.keyid = hashlib.sha256(b"mindvec-ed25519\x00" + public).digest()[:16]

    def sign_manifest(self, manifest_bytes: bytes) -> SignatureEntry:
        pae = b" ".join(
            [
                b"MINDVECv1",
                str(len(PAYLOAD_TYPE)).encode(),
                PAYLOAD_TYPE,
                str(len(manifest_bytes)).encode(),
                manifest_bytes,
            ]
        )
        return SignatureEntry("ed25519", self.keyid, bytes(self._key.sign(pae).signature))


def example_manifest() -> dict[str, Any]:
    return {
        "package": {
            "id": "ex/tiny",
            "version": 1,
            "name": "tiny",
            "description": "d",
            "intended_effect": "e",
        },
        "models": {
            "m": {
                "model_type": "llama",
                "hidden_size": 2,
                "num_layers": 1,
                "source": {"kind": "local", "note": "n"},
            }
        },
        "vectors": [
            {
                "name": "v",
                "model": "m",
                "operation": "add",
                "scale": 1.0,
                "scale_range": [0.0, 2.0],
                "positions": "all",
                "sites": [
                    {
                        "site": {"stack": "decoder", "layer": 0, "point": "resid_post"},
                        "tensor": "t",
                        "calibration": {"mean_norm": 1.0, "tokens": 1},
                    }
                ],
                "method": {"kind": "manual"},
            }
        ],
        "provenance": {
            "creator": "spec",
            "created": "2026-01-01T00:00:00Z",
            "tool": {"name": "mindvec", "version": "1.0"},
            "license": "CC0-1.0",
        },
    }


def example_tensors() -> dict[str, Any]:
    return {"t": np.array([1.0, -2.0], dtype=np.float32)}


def build(path: Path) -> bytes:
    mindvec.write(path, example_manifest(), example_tensors(), signers=[SpecSigner(SEED)])
    return path.read_bytes()


def hexdump(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{off:08x}  {hexes:<47}  |{text}|")
    return "\n".join(lines)


def regions(data: bytes) -> str:
    """A table of the sections of ``data`` (offsets in hex), from the layout fields."""
    manifest_len = int.from_bytes(data[16:24], "little")
    payload_len = int.from_bytes(data[24:32], "little")
    payload_offset = (32 + manifest_len + 63) // 64 * 64
    header_len = int.from_bytes(data[payload_offset : payload_offset + 8], "little")
    sig_offset = payload_offset + payload_len
    sig_len = int.from_bytes(data[-16:-8], "little")
    rows = [
        ("preamble", 0, 32),
        ("manifest", 32, manifest_len),
        ("padding", 32 + manifest_len, payload_offset - 32 - manifest_len),
        ("payload: u64 N", payload_offset, 8),
        ("payload: JSON header", payload_offset + 8, header_len),
        ("payload: tensor data", payload_offset + 8 + header_len, payload_len - 8 - header_len),
        ("signature block", sig_offset, sig_len),
        ("trailer", len(data) - 16, 16),
    ]
    out = ["| section | offset | length |", "|---|---|---|"]
    out += [f"| {name} | 0x{off:04x} | {size} |" for name, off, size in rows]
    return "\n".join(out)


def render(data: bytes) -> str:
    """What the spec's worked example holds: the hex dump, then the section table."""
    manifest_len = int.from_bytes(data[16:24], "little")
    identity = hashlib.sha256(data[32 : 32 + manifest_len]).hexdigest()
    return (
        "```\n"
        + hexdump(data)
        + "\n```\n\n"
        + regions(data)
        + "\n\n"
        + f"Identity (sha256 of the {manifest_len} manifest bytes): `{identity}`\n"
    )


def example_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return build(Path(tmp) / "tiny.mindvec")


def main(argv: list[str]) -> int:
    if argv:
        data = build(Path(argv[0]))
    else:
        data = example_bytes()
    print(render(data), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
