"""Conformance cases: limits that only a large file reaches, stored as recipes the runner builds."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from conformance_tests.craft.constants import END_MAGIC, MAGIC
from conformance_tests.craft.manifests import manifest, raw_package
from conformance_tests.craft.surgery import Parts, align64, join_payload, packb_sorted, sigblock
from conformance_tests.suite import Suite
from mindvec.limits import MAX_MANIFEST, MAX_SAFETENSORS_HEADER, MAX_TENSORS


def large_files(s: Suite) -> None:
    """Limits that only a large file reaches, written as recipes the runner expands."""
    count = MAX_TENSORS + 1
    entry = '"t{i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},'
    body = "".join(entry.replace("{i}", f"{i:06d}") for i in range(count)).encode()
    header = b"{" + body[:-1] + b"}"
    data = raw_package(manifest(vectors=[]), payload=join_payload(header, b""), digests={})
    start = data.index(b'{"t000000"') + 1
    end = start + len(body)
    recipe = {
        "parts": [
            {"hex": data[:start].hex()},
            {"repeat": entry, "count": count - 1},
            {"repeat": entry[:-1].replace("{i}", f"{count - 1:06d}"), "count": 1},
            {"hex": data[end - 1 :].hex()},
        ]
    }
    s.reject(
        "malformed-bounds-65537-tensors",
        "bounds",
        ["tensor-count"],
        f"A header of {count} zero-size tensor entries (about 3.7 MB, built by the runner from recipe.json):"
        f" one more than MAX_TENSORS. The manifest lists none of them, so a reader that skips R-46 fails"
        " later with tensor-reference instead.",
        ["Bounds", "Limits", "Safetensors"],
        data,
        recipe=recipe,
    )


ZEROS = "\x00" * 4096  # a recipe template: 4096 zero bytes
SPACES = " " * 4096


def _filled(prefix: bytes, template: str, size: int, suffix: bytes) -> tuple[bytes, dict[str, Any]]:
    """prefix + ``size`` bytes of the template's character + suffix, as bytes and as a recipe."""
    count, rest = divmod(size, len(template))
    data = prefix + template.encode() * count + template[:rest].encode() + suffix
    recipe = {
        "parts": [
            {"hex": prefix.hex()},
            {"repeat": template, "count": count},
            {"hex": (template[:rest].encode() + suffix).hex()},
        ]
    }
    return data, recipe


def huge_files(s: Suite) -> None:
    """Two-defect cases over a limit (16 MiB manifest, 100 MB header): the bound must come first."""
    two = ["MultipleDefects", "Bounds", "Limits"]
    manifest_len = MAX_MANIFEST + 1
    pad = b"\x07" + bytes((-(32 + manifest_len)) % 64 - 1)
    payload = struct.pack("<Q", 8) + b" " * 8
    tail = pad + payload + b"\x90" + struct.pack("<Q", 1) + END_MAGIC
    preamble = MAGIC + struct.pack("<HHIQQ", 1, 0, 0, manifest_len, len(payload))
    data, recipe = _filled(preamble, ZEROS, manifest_len, tail)
    s.reject(
        "malformed-multi-manifest-bound-before-padding",
        "bounds",
        ["order", "manifest-len", "padding"],
        f"manifest_len {manifest_len} (MAX_MANIFEST + 1) in a file large enough to hold it (16 MiB, built"
        " from recipe.json), and a non-zero padding byte: R-6 comes before R-12.",
        two,
        data,
        recipe=recipe,
    )
    n = MAX_SAFETENSORS_HEADER + 56  # 8 + N is a multiple of 64: R-41 holds
    header_prefix = struct.pack("<Q", n)
    man = manifest(vectors=[])
    man["format"] = "1.0"
    man["payload"] = {"header_sha256": hashlib.sha256(b"another header").digest(), "tensors": {}}
    manifest_bytes = packb_sorted(man)
    sig = sigblock(manifest_bytes, [])
    body_len = 8 + n
    head = Parts(manifest_bytes, b"", sig, payload_len=body_len).build()
    before = head[: align64(32 + len(manifest_bytes))] + header_prefix
    after = head[align64(32 + len(manifest_bytes)) :]
    data, recipe = _filled(before, SPACES, n, after)
    s.reject(
        "malformed-multi-header-bound-before-digest",
        "bounds",
        ["order", "nbound", "header-digest"],
        f"A safetensors header length N = {n} (over MAX_SAFETENSORS_HEADER, 56 mod 64) in a payload that"
        " holds it (100 MB of spaces, built from recipe.json), whose digest does not match: R-40 comes"
        " before R-42.",
        two,
        data,
        recipe=recipe,
    )
