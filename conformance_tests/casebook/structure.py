"""Conformance cases: preamble, bounds, trailer."""

from __future__ import annotations

import struct
from dataclasses import replace

from conformance_tests.craft.manifests import minimal
from conformance_tests.craft.surgery import flip, split
from conformance_tests.suite import Suite


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def set_u64(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + u64(value) + data[offset + 8 :]


def structure(s: Suite) -> None:
    base = minimal()
    signed = minimal(signers=["alice"])
    parts = split(base)
    size = len(base)
    s.reject(
        "malformed-magic-first-byte",
        "magic",
        ["magic"],
        "The first byte is 0x88 instead of 0x89.",
        ["Structure"],
        flip(base, 0),
    )
    s.reject(
        "malformed-magic-text-mode",
        "magic",
        ["magic"],
        "The magic after a text-mode transfer turned CR LF into LF (one byte shorter everywhere).",
        ["Structure"],
        base.replace(b"\r\n", b"\n"),
    )
    s.reject(
        "malformed-magic-short-file",
        "magic",
        ["magic"],
        "A 4-byte file that is not a prefix of the magic.",
        ["Structure", "Truncation"],
        b"MVEC",
    )
    s.reject(
        "malformed-truncated-empty-file",
        "truncated",
        ["short-file"],
        "An empty file: a prefix of the magic, shorter than the smallest package.",
        ["Truncation"],
        b"",
    )
    s.reject(
        "malformed-truncated-in-preamble",
        "truncated",
        ["short-file"],
        "The first 20 bytes of a package: the file ends inside the preamble.",
        ["Truncation"],
        base[:20],
    )
    s.reject(
        "malformed-bounds-48-bytes",
        "bounds",
        ["fit", "short-file"],
        "The first 48 bytes of a package: a whole preamble and 16 bytes more, far short of the smallest"
        " possible package (97 bytes: preamble 32, manifest padded to 64, payload 16, signature block 1,"
        " trailer 16), so the declared lengths cannot fit.",
        ["Truncation"],
        base[:48],
    )
    for label, major in (("2", 2), ("0", 0)):
        s.reject(
            f"malformed-version-major-{label}",
            "version",
            ["major", "major-reject"],
            f"Preamble major version {major}.",
            ["Structure"],
            replace(parts, major=major).build(),
        )
    for label, flags in (("bit-31", 1 << 31),):
        s.reject(
            f"malformed-flags-{label}",
            "flags",
            ["flags"],
            f"Preamble flags {flags:#x}; they must be zero.",
            ["Structure"],
            replace(parts, flags=flags).build(),
        )
    for label, offset, value, why, topic in (
        ("manifest-len-zero", 16, 0, "manifest_len 0", "manifest-len"),
        ("manifest-len-over-limit", 16, 16 * 2**20 + 1, "manifest_len one past 16 MiB", "manifest-len"),
        ("manifest-len-2pow63", 16, 2**63 - 1, "manifest_len 2^63-1", "manifest-len"),
        ("payload-len-15", 24, 15, "payload_len 15, below the minimum 16", "payload-len"),
        ("payload-len-over-2pow48", 24, 2**48 + 1, "payload_len 2^48+1", "payload-len"),
        ("payload-len-u64-max", 24, 2**64 - 1, "payload_len 2^64-1", "payload-len"),
        ("manifest-beyond-file", 16, size, "manifest_len equal to the file size (within the limit)", "fit"),
        (
            "payload-beyond-file",
            24,
            len(parts.payload) + 64,
            "payload_len 64 bytes past the real payload",
            "fit",
        ),
    ):
        s.reject(
            f"malformed-bounds-{label}",
            "bounds",
            [topic, "fit"],
            f"A 300-byte-scale file whose preamble declares {why}: rejected before any allocation.",
            ["Bounds", "HostileLength"] if value >= 2**48 else ["Bounds"],
            set_u64(base, offset, value),
        )
    s.reject(
        "malformed-bounds-cut-in-manifest",
        "bounds",
        ["fit"],
        "The file is cut in the middle of the manifest: the declared lengths exceed the file.",
        ["Truncation", "Bounds"],
        base[: 32 + len(parts.manifest) // 2],
    )
    payload_offset = size - 16 - len(parts.sigblock) - len(parts.payload)
    s.reject(
        "malformed-bounds-cut-in-payload",
        "bounds",
        ["fit"],
        "The file is cut in the middle of the payload.",
        ["Truncation", "Bounds"],
        base[: payload_offset + len(parts.payload) // 2],
    )
    s.reject(
        "malformed-signature-block-cut-in-signature-block",
        "signature-block",
        ["end-magic"],
        "A signed file cut in the middle of its signature block: the last 8 bytes are not the end magic.",
        ["Truncation", "SignatureBlock"],
        signed[: len(signed) - 16 - 40],
    )
    s.reject(
        "malformed-bounds-cut-in-trailer",
        "bounds",
        ["fit"],
        "An unsigned file without its last byte: the declared lengths no longer fit the file.",
        ["Truncation", "Bounds"],
        base[:-1],
    )
    s.reject(
        "malformed-signature-block-cut-in-trailer",
        "signature-block",
        ["end-magic"],
        "A signed file without its last byte: the lengths still fit, but the end magic is gone.",
        ["Truncation", "SignatureBlock"],
        signed[:-1],
    )
    s.reject(
        "malformed-signature-block-end-magic",
        "signature-block",
        ["end-magic"],
        "The end magic reads MVECEND\\r instead of MVECEND\\n.",
        ["SignatureBlock"],
        base[:-1] + b"\r",
    )
    for label, value in (("zero", 0), ("over-limit", 65537)):
        s.reject(
            f"malformed-bounds-sig-len-{label}",
            "bounds",
            ["sig-len"],
            f"sig_len {value} in the trailer.",
            ["SignatureBlock", "Bounds"],
            set_u64(base, size - 16, value),
        )
    s.reject(
        "malformed-truncated-signature-block",
        "truncated",
        ["exact"],
        "Bytes removed from inside a signature block while the trailer keeps the old sig_len:"
        " the layout ends past the end of the file.",
        ["Truncation"],
        signed[: len(signed) - 16 - 10] + signed[-16:],
    )
    trailer = base[-16:]
    s.reject(
        "malformed-trailing-duplicate-trailer",
        "trailing",
        ["exact"],
        "A second copy of the 16-byte trailer appended: the file ends in a valid trailer but is longer than "
        "the layout.",
        ["Trailing"],
        base + trailer,
    )
    s.reject(
        "malformed-trailing-appended-package",
        "trailing",
        ["exact"],
        "Two packages concatenated.",
        ["Trailing"],
        base + base,
    )
    s.reject(
        "malformed-signature-block-appended-zero-byte",
        "signature-block",
        ["end-magic"],
        "One 0x00 byte appended: the file no longer ends with the end magic.",
        ["Trailing", "SignatureBlock"],
        base + b"\x00",
    )
    pad_len = payload_offset - 32 - len(parts.manifest)
    assert pad_len > 1
    for label, padding, why in (
        ("last-byte", b"\x00" * (pad_len - 1) + b"\x01", "The last padding byte is 0x01."),
    ):
        s.reject(
            f"malformed-padding-{label}",
            "padding",
            ["padding"],
            why,
            ["Padding"],
            replace(parts, padding=padding).build(),
        )
