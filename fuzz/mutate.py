"""Mutators: byte-level, and structure-aware for packages (it re-signs what it changes).

Random byte flips almost never get past the signature check (step 2), so they exercise the
structure and signature code only. :func:`resign` decodes a package's manifest, changes one
value, re-encodes it canonically, fixes the digests the change broke and signs the result with
the fuzz key, which the fuzz trust store trusts: the mutant reaches schema, semantics, header,
payload and trust code with a valid signature.
"""

from __future__ import annotations

import copy
import hashlib
import io
import random
from typing import Any

from fuzz.targets import FUZZ_KEY
from mindvec import canonical, container
from mindvec.errors import MindvecError

INTERESTING_INTS = (
    0,
    1,
    2,
    15,
    16,
    31,
    32,
    63,
    64,
    65,
    255,
    256,
    65535,
    65536,
    2**31,
    2**32,
    2**63 - 1,
    2**64 - 1,
    -1,
)
INTERESTING_BYTES = (
    b"\x00",
    b"\xff",
    b"\x80",
    b"\x7f",
    b"\xc1",
    b"\xd6\xff",
    b"\xdd\xff\xff\xff\xff",
    b"-0",
    b"1e2",
)


def bytes_mutation(data: bytes, rng: random.Random) -> bytes:
    """Flip, insert, delete, duplicate or overwrite a few bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(6)
        at = rng.randrange(len(out) + 1) if out else 0
        if choice == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif choice == 1:
            out[at:at] = rng.choice(INTERESTING_BYTES)
        elif choice == 2 and out:
            del out[at : at + rng.randint(1, 16)]
        elif choice == 3 and out:
            chunk = out[at : at + rng.randint(1, 64)]
            out[at:at] = chunk * rng.randint(1, 8)
        elif choice == 4 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        else:
            out = out[: max(0, len(out) - rng.randint(1, 64))]
    return bytes(out)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replacement(old: Any, rng: random.Random) -> Any:
    choices: list[Any] = [
        None,
        True,
        False,
        "",
        "decoder",
        "x" * rng.randint(1, 300),
        rng.choice(INTERESTING_INTS),
        rng.random() * 10 ** rng.randint(-5, 6),
        b"\x00" * rng.choice((0, 16, 31, 32, 33)),
        [],
        {},
        [old],
        {"k": old},
    ]
    if isinstance(old, int) and not isinstance(old, bool):
        choices += [old + 1, old - 1, old * 2, -old]
    if isinstance(old, str):
        choices += [old + "\u202e", old.upper(), old[:-1], old + "\n", "\u0085" + old]
    return rng.choice(choices)


def resign(data: bytes, rng: random.Random) -> bytes:
    """A re-signed structural mutant of a package; the input unchanged when it does not parse."""
    try:
        layout = container.read_layout(io.BytesIO(data), len(data))
        manifest = canonical.decode(data[layout.manifest_offset : layout.manifest_end])
    except MindvecError:
        return bytes_mutation(data, rng)
    if not isinstance(manifest, dict):
        return bytes_mutation(data, rng)
    mutated = copy.deepcopy(manifest)
    changes = rng.choice((0, 0, 1, 1, 2, 3))  # 0: the manifest stays, only the payload may change
    for _ in range(changes):
        paths = [p for p in _paths(mutated) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = mutated
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = _replacement(parent[path[-1]], rng)
    payload = data[layout.payload_offset : layout.sig_offset]
    if changes == 0 or rng.random() < 0.3:
        payload = bytes_mutation(payload, rng)
    if rng.random() < 0.7 and isinstance(mutated.get("payload"), dict):
        _restamp(mutated, payload)
    try:
        manifest_bytes = canonical.encode(mutated)
        block = container.encode_signature_block([FUZZ_KEY.sign_manifest(manifest_bytes)])
    except MindvecError:
        return bytes_mutation(data, rng)
    return b"".join(container.container_chunks(manifest_bytes, payload, block))


def _restamp(manifest: dict[str, Any], payload: bytes) -> None:
    """Fix the header and tensor digests a payload change broke, where the payload still parses."""
    from mindvec import payload as payload_mod

    try:
        header = payload_mod.parse_payload(payload)
    except MindvecError:
        return
    manifest["payload"] = {
        "header_sha256": hashlib.sha256(header.header_bytes).digest(),
        "tensors": payload_mod.tensor_digests(payload, header),
    }


def mutate(target: str, data: bytes, rng: random.Random) -> bytes:
    if target == "package" and rng.random() < 0.6:
        return resign(data, rng)
    return bytes_mutation(data, rng)
