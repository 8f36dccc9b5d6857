"""Mutants of step 1 (structure and bounds) and step 3 (the msgpack profile)."""

from __future__ import annotations

from conformance_tests.mutants.mutant import Mutant

MUTANTS: list[Mutant] = [
    Mutant(
        "no-magic",
        "mindvec.container",
        "_check_head",
        "if _prefix_differs(head, 0, MAGIC):",
        "if False:",
        ("R-1",),
    ),
    Mutant(
        "no-major",
        "mindvec.container",
        "_check_head",
        'if _prefix_differs(head, 8, struct.pack("<H", FORMAT_VERSION[0])):',
        "if False:",
        ("R-2",),
    ),
    Mutant(
        "no-flags",
        "mindvec.container",
        "_check_head",
        "if _prefix_differs(head, 12, bytes(4)):",
        "if False:",
        ("R-4",),
    ),
    Mutant(
        "truncation-before-flags",
        "mindvec.container",
        "_check_head",
        "    if _prefix_differs(head, 0, MAGIC):",
        '    if len(head) < PREAMBLE_SIZE:\n        raise MalformedError("truncated", "short")\n'
        "    if _prefix_differs(head, 0, MAGIC):",
        ("R-5",),
    ),
    Mutant(
        "no-manifest-bound",
        "mindvec.container",
        "_check_bounds",
        "if not 1 <= manifest_len <= MAX_MANIFEST:",
        "if manifest_len < 1:",
        ("R-6",),
    ),
    Mutant(
        "no-payload-bound",
        "mindvec.container",
        "_check_bounds",
        "if not MIN_PAYLOAD <= payload_len <= MAX_PAYLOAD:",
        "if payload_len > MAX_PAYLOAD:",
        ("R-7",),
    ),
    Mutant(
        "no-file-size-bound",
        "mindvec.container",
        "_check_bounds",
        "if needed > file_size:",
        "if False:",
        ("R-8",),
    ),
    Mutant(
        "no-trailer-magic",
        "mindvec.container",
        "_check_trailer",
        "if magic != TRAILER_MAGIC:",
        "if False:",
        ("R-9",),
    ),
    Mutant(
        "no-sig-bound",
        "mindvec.container",
        "_check_trailer",
        "if not 1 <= sig_len <= MAX_SIG_BLOCK:",
        "if sig_len < 1:",
        ("R-10",),
    ),
    Mutant(
        "no-trailing", "mindvec.container", "_check_trailer", "if end < file_size:", "if False:", ("R-11",)
    ),
    Mutant(
        "no-padding", "mindvec.container", "read_raw", 'if padding.strip(b"\\x00"):', "if False:", ("R-12",)
    ),
    Mutant(
        "unsorted-signatures",
        "mindvec.container",
        "_check_entries",
        "if keyids != sorted(keyids):",
        "if False:",
        ("R-63",),
    ),
    Mutant(
        "repeated-keyids",
        "mindvec.container",
        "_check_entries",
        "if len(set(keyids)) != len(keyids):",
        "if False:",
        ("R-63",),
    ),
    Mutant(
        "no-canonical-check",
        "mindvec.canonical",
        "decode",
        "if encode(value) != bytes(data):",
        "if False:",
        ("R-22",),
    ),
    Mutant(
        "nan-allowed",
        "mindvec.canonical",
        "_check_scalar_or_container",
        "if isinstance(item, float) and not math.isfinite(item):",
        "if False:",
        ("R-18",),
    ),
    Mutant(
        "extra-bytes-ignored-while-decoding",
        "mindvec.canonical",
        "_unpack",
        '    except msgpack.ExtraData:\n        _fail("bytes follow the end of the msgpack value")',
        "    except msgpack.ExtraData as extra:\n        return extra.unpacked",
        ("R-21",),
    ),
]
