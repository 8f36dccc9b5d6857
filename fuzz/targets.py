"""What each fuzz target feeds an input to, and what counts as a finding.

A target takes bytes. A mindvec error (``MindvecError``) is a correct answer, whatever its
code; anything else escaping is a finding. So is a differential disagreement:

* a package mindvec accepts whose payload the ``safetensors`` library refuses, or reads as
  other tensors;
* a manifest mindvec decodes that a second msgpack decoder (``ormsgpack``) reads as another
  value.

mindvec may refuse more than either library (it is stricter by design), never less.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import mindvec
from mindvec.errors import MindvecError
from mindvec.keys import PublicKey, SecretKey
from mindvec.rotation import RotationRecord
from mindvec.state import State
from mindvec.trust import TrustEntry, TrustStore

#: the conformance suite's first test key (public, test-only): signs re-signed mutants
FUZZ_SEED = bytes.fromhex("193c889e259f53b6ccfb35536a826cba4139c8d424138d72fa7031d23abcff69")
FUZZ_KEY = SecretKey.from_seed(FUZZ_SEED, "fuzz")
TRUST = TrustStore([TrustEntry("fuzz", FUZZ_KEY.public_key)])
NOW = "2026-06-01T00:00:00Z"


class Finding(Exception):
    """An input that made mindvec misbehave (not merely refuse)."""


_scratch = Path(tempfile.mkdtemp(prefix="mindvec-fuzz-"))


def _file(name: str, data: bytes) -> Path:
    path = _scratch / name
    path.write_bytes(data)
    return path


def _tolerate(call: Callable[[], Any]) -> Any:
    """Run ``call``; a mindvec error is an answer (None), anything else propagates."""
    try:
        return call()
    except MindvecError:
        return None


def _check_payload_against_safetensors(package: mindvec.Package) -> None:
    import safetensors

    raw = package.raw
    with open(raw.path, "rb") as handle:
        handle.seek(raw.layout.payload_offset)
        payload = handle.read(raw.layout.payload_len)
    try:
        theirs = dict(safetensors.deserialize(payload))
    except Exception as exc:  # noqa: BLE001 - any refusal by the other library is the finding
        raise Finding(f"mindvec accepted a payload the safetensors library refuses: {exc}") from None
    if set(theirs) != set(package.tensor_names):
        raise Finding(f"tensor names differ: safetensors {sorted(theirs)} vs {package.tensor_names}")
    for name, entry in theirs.items():
        ours = package.tensor(name)
        data = bytes(entry["data"])
        if list(entry["shape"]) != list(ours.shape) or data != np.ascontiguousarray(ours).tobytes():
            raise Finding(f"tensor {name!r} reads differently in safetensors")


def _check_manifest_against_second_decoder(package: mindvec.Package) -> None:
    try:
        import ormsgpack
    except ImportError:  # the differential check needs the dev extra; the rest still runs
        return
    try:
        theirs = ormsgpack.unpackb(package.manifest_bytes)
    except Exception as exc:  # noqa: BLE001 - a refusal by the other decoder is the finding
        raise Finding(f"mindvec decoded a manifest ormsgpack refuses: {exc}") from None
    if theirs != package.manifest:
        raise Finding("ormsgpack decodes the manifest to another value")


def package_target(data: bytes) -> None:
    """open -> check_integrity -> every tensor -> verify, with both differential checks."""
    path = _file("input.mindvec", data)
    package = _tolerate(lambda: mindvec.open(path))
    if package is None:
        _tolerate(lambda: mindvec.verify(path, mindvec.Policy(trust=TRUST, now=NOW), detached=False))
        return
    with package:
        if not _integrity_ok(package):
            return
        for name in package.tensor_names:
            package.tensor(name)
        _check_payload_against_safetensors(package)
        _check_manifest_against_second_decoder(package)
    report = mindvec.verify(path, mindvec.Policy(trust=TRUST, now=NOW), detached=False)
    if report.verdict == "verified" and report.error is not None:
        raise Finding("a verified report carries an error")


def _integrity_ok(package: mindvec.Package) -> bool:
    try:
        package.check_integrity()
    except MindvecError:
        return False
    return True


def trust_target(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    store = _tolerate(lambda: TrustStore.parse(text, "fuzz"))
    if store is not None:  # what parses must write back to what parses the same
        again = TrustStore.parse(store.dumps(), "fuzz")
        if [e.to_line() for e in again.entries] != [e.to_line() for e in store.entries]:
            raise Finding("a trust store does not survive dumps() and parse()")


def state_target(data: bytes) -> None:
    path = _file("state.json", data)
    state = State(path)
    _tolerate(lambda: state.seen("acme/x"))
    _tolerate(lambda: state.pin("org/r"))


def key_file_target(data: bytes) -> None:
    # passphrase None: a hostile file cannot make us run Argon2 with its own limits
    _tolerate(lambda: SecretKey.from_file_bytes(data, None, source="fuzz"))
    _tolerate(lambda: PublicKey.from_text(data.decode("utf-8", "replace")))


def rotation_target(data: bytes) -> None:
    record = _tolerate(lambda: RotationRecord.from_bytes(data))
    if record is not None:
        _tolerate(record.verify)


def _import_target(name: str, fmt: str) -> Callable[[bytes], None]:
    """An importer of another tool's file: a typed error or a Source whose vectors are finite,
    non-zero and of one width (the checks every importer promises)."""

    def target(data: bytes) -> None:
        from mindvec.interop.sources import read

        got = _tolerate(lambda: read(_file(name, data), fmt))
        if got is not None:
            widths = {v.shape for v in got.vectors.values()}
            if len(widths) != 1 or not all(
                np.all(np.isfinite(v)) and np.any(v) for v in got.vectors.values()
            ):
                raise Finding(f"the {fmt} importer returned vectors it promises to refuse")

    return target


TARGETS: dict[str, Callable[[bytes], None]] = {
    "package": package_target,
    "trust": trust_target,
    "state": state_target,
    "key-file": key_file_target,
    "rotation": rotation_target,
    "import-gguf": _import_target("v.gguf", "llamacpp"),
    "import-json": _import_target("v.json", "neuronpedia"),
    "import-safetensors": _import_target("v.safetensors", "steering-vectors"),
}


def cleanup() -> None:
    for item in _scratch.iterdir():
        item.unlink()
    os.rmdir(_scratch)
