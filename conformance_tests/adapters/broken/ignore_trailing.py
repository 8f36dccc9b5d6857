"""BROKEN ON PURPOSE: the reference adapter behind a reader that ignores trailing bytes.

It finds the end of the layout by parsing the signature block that follows the payload
and reading the trailer after it; whatever follows is silently dropped. The
malformed-*trailing* cases must catch it.
"""

from __future__ import annotations

import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

TARGETS = (
    "malformed-trailing-*",
    "malformed-signature-block-appended-zero-byte",
    "malformed-multi-trailing-*",
)
END_MAGIC = b"MVECEND\n"


def layout_end(data: bytes) -> int | None:
    """Where a lenient reader thinks the file ends, or None when it cannot tell."""
    import msgpack

    if len(data) < 32:
        return None
    manifest_len, payload_len = struct.unpack_from("<QQ", data, 16)
    sig_offset = (32 + manifest_len + 63) // 64 * 64 + payload_len
    if sig_offset >= len(data):
        return None
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data[sig_offset : sig_offset + 65536])
    try:
        unpacker.unpack()
    except (msgpack.OutOfData, ValueError, msgpack.UnpackException):
        return None
    end = sig_offset + unpacker.tell() + 16
    return end if data[end - 8 : end] == END_MAGIC else None


def main() -> int:
    from conformance_tests.adapters import mindvec_ref

    argv = sys.argv[1:]
    data = Path(argv[1]).read_bytes()
    end = layout_end(data)
    if end is None or end >= len(data):
        return mindvec_ref.main(argv)
    with tempfile.TemporaryDirectory() as tmp:
        trimmed = Path(tmp) / "trimmed.mindvec"
        trimmed.write_bytes(data[:end])
        return mindvec_ref.main([argv[0], str(trimmed), *argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
