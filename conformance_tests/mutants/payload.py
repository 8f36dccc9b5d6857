"""Mutants of steps 5 and 6: the payload header, its digest, consistency and tensor values."""

from __future__ import annotations

from conformance_tests.mutants.mutant import Mutant

MUTANTS: list[Mutant] = [
    Mutant(
        "no-metadata-check",
        "mindvec.payload",
        "parse_header",
        'if "__metadata__" in obj:',
        "if False:",
        ("R-45",),
    ),
    Mutant(
        "no-tensor-count-bound",
        "mindvec.payload",
        "parse_header",
        "if len(obj) > MAX_TENSORS:",
        "if False:",
        ("R-46",),
    ),
    Mutant(
        "no-contiguity",
        "mindvec.payload",
        "_check_contiguous",
        "if info.begin != position:",
        "if False:",
        ("R-50",),
    ),
    Mutant(
        "no-dtype-check",
        "mindvec.payload",
        "_tensor_info",
        "if dtype not in DTYPES:",
        'if dtype not in DTYPES and dtype != "I32":',
        ("R-48",),
    ),
    Mutant(
        "no-numel-check",
        "mindvec.payload",
        "_tensor_info",
        "if not _numel_matches(shape, info.nbytes, DTYPES[dtype][0]):",
        "if not _numel_matches(shape, info.nbytes, DTYPES[dtype][0]) and False:",
        ("R-49",),
    ),
    Mutant(
        "dtype-after-shape",
        "mindvec.payload",
        "_tensor_info",
        "    if dtype not in DTYPES:\n        raise InvalidError(",
        "    if not isinstance(shape, list):\n        _bad('shape first')\n"
        "    if dtype not in DTYPES:\n        raise InvalidError(",
        ("R-47", "R-48"),
    ),
    Mutant(
        "no-header-bound",
        "mindvec.payload",
        "read_header_len",
        "if header_len > MAX_SAFETENSORS_HEADER:",
        "if False:",
        ("R-40",),
    ),
    Mutant(
        "no-header-alignment",
        "mindvec.payload",
        "read_header_len",
        "if (8 + header_len) % ALIGN:",
        "if False:",
        ("R-41",),
    ),
    Mutant(
        "no-header-digest",
        "mindvec.package",
        "Package.from_raw",
        'if not hmac.compare_digest(header_digest(header_bytes), manifest["payload"]["header_sha256"]):',
        "if False:",
        ("R-42",),
    ),
    Mutant(
        "header-digest-after-parse",
        "mindvec.package",
        "Package.from_raw",
        "    header_bytes = _read_header_bytes(raw)\n",
        "    header_bytes = _read_header_bytes(raw)\n"
        "    parse_header(header_bytes, raw.layout.payload_len)\n",
        ("R-42", "R-43"),
    ),
    Mutant(
        "no-header-brace",
        "mindvec.payload",
        "_load_json",
        'if not header_bytes.startswith(b"{"):',
        "if False:",
        ("R-43",),
    ),
    Mutant(
        "json-signed-integers",
        "mindvec.payload",
        "_load_json",
        "parse_int=_plain_int,",
        "parse_int=int,",
        ("R-43",),
    ),
    Mutant(
        "no-tail-spaces-check",
        "mindvec.payload",
        "_load_json",
        'if text[end:].strip(" "):',
        "if False:",
        ("R-43",),
    ),
    Mutant(
        "no-name-consistency",
        "mindvec.manifest",
        "check_header",
        "if set(tensors) != digested:",
        "if False:",
        ("R-51",),
    ),
    Mutant(
        "no-shape-check", "mindvec.manifest", "check_header", "if actual != shape:", "if False:", ("R-52",)
    ),
    Mutant(
        "non-finite-allowed",
        "mindvec.values",
        "check_values",
        "if values.size and not bool(np.isfinite(values).all()):",
        "if False:",
        ("R-54",),
    ),
    Mutant(
        "zero-vector-allowed",
        "mindvec.values",
        "check_values",
        "if vector and not bool(np.any(values)):",
        "if False:",
        ("R-54",),
    ),
]
