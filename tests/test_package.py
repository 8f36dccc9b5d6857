"""Package: open, lazy tensors with digest checks, integrity, atomic deterministic writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mindvec
from mindvec import container
from mindvec import package as pkg
from mindvec.container import SignatureEntry
from mindvec.errors import MindvecError
from mindvec.payload import TensorData, as_float32
from tests import factories

DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64}


def _code(fn: Any, *args: Any) -> str:
    with pytest.raises(MindvecError) as info:
        fn(*args)
    return info.value.code


def _tensor(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> Any:
    values = rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    if dtype == "BF16":
        bits = (values.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        return TensorData.bf16(bits)
    return values.astype(DTYPES[dtype])


def _as_bytes(value: Any) -> bytes:
    return value.data if isinstance(value, TensorData) else np.ascontiguousarray(value).tobytes()


text = st.text(max_size=30)
extension_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.binary(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)


@st.composite
def packages(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A manifest with a multi-layer vector and one mapping of a random form and dtypes."""
    d_in, d_out = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    layers = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = st.sampled_from(["F16", "BF16", "F32", "F64"])
    manifest = factories.minimal_manifest(
        src=factories.model_entry(hidden_size=d_in, num_layers=6),
        tgt=factories.model_entry(hidden_size=d_out, num_layers=6),
    )
    manifest["package"].update(
        version=draw(st.integers(0, 2**53 - 1)), description=draw(text), name=draw(text)
    )
    vector = factories.vector_entry(model="src", layers=tuple(layers))
    vector["scale"] = draw(st.floats(-100, 100))
    manifest["vectors"] = [vector]
    tensors = {e["tensor"]: _tensor(rng, draw(dtype), (d_in,)) for e in vector["sites"]}
    form = draw(st.sampled_from(["linear", "affine", "low_rank"]))
    roles = {
        "linear": ["weight"],
        "affine": ["weight", "source_mean", "target_mean"],
        "low_rank": ["u", "v"],
    }[form]
    rank = draw(st.integers(1, min(d_in, d_out)))
    shapes = {
        "weight": (d_out, d_in),
        "source_mean": (d_in,),
        "target_mean": (d_out,),
        "u": (d_out, rank),
        "v": (d_in, rank),
    }
    mapping = factories.mapping_entry(form=form, tensors={role: f"map.{role}" for role in roles})
    manifest["mappings"] = [mapping]
    tensors.update({f"map.{role}": _tensor(rng, draw(dtype), shapes[role]) for role in roles})
    if draw(st.booleans()):
        manifest["extensions"] = {"org.example.data": draw(extension_values)}
    return manifest, tensors


@pytest.mark.req("R-14", "R-55", "R-84")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packages())
def test_round_trip_property(tmp_path: Path, case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """What is read back equals what was written, for every dtype and many shapes, and a
    second write is byte-identical. [R-14] [R-55] [R-84]"""
    manifest, tensors = case
    first = mindvec.write(tmp_path / "a.mindvec", manifest, tensors)
    second = mindvec.write(tmp_path / "b.mindvec", factories.clone(manifest), tensors)
    assert first.read_bytes() == second.read_bytes()
    with mindvec.open(first) as package:
        package.check_integrity()
        for name, value in tensors.items():
            assert package.tensor(name).tobytes() == _as_bytes(value)
        read = dict(package.manifest)
        assert read.pop("format") == "1.0" and set(read.pop("payload")) == {"header_sha256", "tensors"}
        assert read == manifest


def test_round_trip_small_package(tmp_path: Path) -> None:
    manifest, tensors = factories.full_manifest()
    path = mindvec.write(tmp_path / "a.mindvec", manifest, tensors)
    package = mindvec.open(path)
    for name, array in tensors.items():
        np.testing.assert_array_equal(package.tensor(name), array)
    assert package.vector().name == "v" and package.mapping().form == "affine"
    assert package.model("src").hidden_size == 6
    assert package.identity == hashlib.sha256(package.manifest_bytes).digest()


def test_tensors_are_zero_copy_and_read_only(tmp_path: Path) -> None:
    package = mindvec.open(factories.small_package(tmp_path))
    array = package.tensor("map.weight")
    assert not array.flags.writeable
    with pytest.raises(ValueError):
        array[0, 0] = 1.0
    assert array.base is not None and not array.flags.owndata


def test_bf16_returned_as_uint16_bits(tmp_path: Path) -> None:
    """Without ml_dtypes, BF16 comes back as its raw uint16 bits."""
    manifest, _ = factories.vector_manifest(hidden=2)
    bits = np.array([0x3F80, 0xC000], dtype=np.uint16)
    path = mindvec.write(tmp_path / "bf.mindvec", manifest, {"v.1": TensorData.bf16(bits)})
    array = mindvec.open(path).tensor("v.1")
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        assert array.dtype == np.uint16 and array.tolist() == [0x3F80, 0xC000]
    assert as_float32(array, "BF16").tolist() == [1.0, -2.0]


# ---------------------------------------------------------------- digests


def _tamper_tensor(tmp_path: Path, name: str) -> Path:
    path = factories.small_package(tmp_path, "orig.mindvec")
    package = mindvec.open(path)
    info = package.tensor_info(name)
    offset = package.raw.layout.payload_offset + package.header.data_offset + info.begin
    data = bytearray(path.read_bytes())
    data[offset + 1] ^= 0x01
    return factories.write_bytes(tmp_path, bytes(data), "tampered.mindvec")


@pytest.mark.req("R-53", "R-70")
def test_tensor_digest_checked_on_first_access(tmp_path: Path) -> None:
    """A tampered tensor fails only when it (or check_integrity) is used. [R-53] [R-70]"""
    package = mindvec.open(_tamper_tensor(tmp_path, "map.bias"))
    package.tensor("v.1")
    package.tensor("map.weight")
    assert _code(package.tensor, "map.bias") == "digest-mismatch"
    assert _code(package.check_integrity) == "digest-mismatch"
    assert _code(mindvec.open(_tamper_tensor(tmp_path, "v.1")).check_integrity) == "digest-mismatch"


@pytest.mark.req("R-42")
def test_header_digest_checked_at_open(tmp_path: Path) -> None:
    """A changed safetensors header byte is `digest-mismatch` before the header is parsed. [R-42]"""
    path = factories.small_package(tmp_path)
    raw = container.read_raw(path)
    data = bytearray(path.read_bytes())
    data[raw.layout.payload_offset + 8 + 2] ^= 0x01
    assert _code(mindvec.open, factories.write_bytes(tmp_path, bytes(data))) == "digest-mismatch"


@pytest.mark.req("R-53")
def test_check_integrity_hashes_every_payload_byte_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Full verification hashes the header and each tensor exactly once. [R-53]"""
    path = factories.small_package(tmp_path)
    package = mindvec.open(path)
    hashed: list[int] = []
    real = hashlib.sha256

    def counting(data: Any = b"") -> Any:
        hashed.append(len(memoryview(data).cast("B")))
        return real(data)

    monkeypatch.setattr(pkg.hashlib, "sha256", counting)
    package.check_integrity()
    header_len, data_len = package.header.header_len, package.header.data_len
    assert sum(hashed) == header_len + data_len
    assert len(hashed) == 1 + len(package.tensor_names)


def test_check_integrity_uses_threads_for_large_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large packages hash their tensors on a thread pool (hashlib releases the GIL)."""
    used: list[int] = []
    real_pool = pkg.ThreadPoolExecutor

    def spy(max_workers: int) -> Any:
        used.append(max_workers)
        return real_pool(max_workers=max_workers)

    monkeypatch.setattr(pkg, "ThreadPoolExecutor", spy)
    monkeypatch.setattr(pkg, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(pkg.os, "cpu_count", lambda: 4)
    package = mindvec.open(factories.small_package(tmp_path))
    used.clear()
    package.check_integrity()
    assert used == [3]
    assert _code(mindvec.open(_tamper_tensor(tmp_path, "map.weight")).check_integrity, 2) == "digest-mismatch"


@pytest.mark.req("R-54", "R-83")
def test_vector_values_checked_after_digest(tmp_path: Path) -> None:
    """Zero-norm or non-finite vectors are `value`, on access; the writer refuses them. [R-54] [R-83]"""
    manifest, tensors = factories.vector_manifest()
    for bad in (np.zeros(8, dtype=np.float32), np.full(8, np.nan, dtype=np.float32)):
        assert _code(mindvec.write, tmp_path / "w.mindvec", manifest, {"v.1": bad}) == "value"
        path = factories.write_bytes(tmp_path, factories.unchecked_package(manifest, {"v.1": bad}))
        package = mindvec.open(path)
        assert _code(package.tensor, "v.1") == "value"
    assert not (tmp_path / "w.mindvec").exists()


# ---------------------------------------------------------------- writer


class _Signer:
    def __init__(self, byte: int) -> None:
        self.byte = byte
        self.seen: list[bytes] = []

    def sign_manifest(self, manifest_bytes: bytes) -> SignatureEntry:
        self.seen.append(manifest_bytes)
        return SignatureEntry("ed25519", bytes([self.byte]) * 16, bytes([self.byte]) * 64)


def test_signers_sign_exact_manifest_bytes_sorted(tmp_path: Path) -> None:
    signers = [_Signer(7), _Signer(3)]
    path = factories.small_package(tmp_path, signers=signers)
    package = mindvec.open(path)
    assert signers[0].seen == [package.manifest_bytes]
    assert [s.keyid[0] for s in package.signatures] == [3, 7]


@pytest.mark.req("R-85")
def test_write_is_atomic_on_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupted write leaves nothing at the destination and no temp file. [R-85]"""
    manifest, tensors = factories.full_manifest()

    def interrupt(path: Path) -> None:
        assert path.exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(pkg, "_reader_check", interrupt)
    with pytest.raises(KeyboardInterrupt):
        mindvec.write(tmp_path / "a.mindvec", manifest, tensors)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    path = factories.small_package(tmp_path)
    before = path.read_bytes()
    manifest, tensors = factories.full_manifest()
    manifest["vectors"][0]["scale_range"] = [5.0, 1.0]
    assert _code(mindvec.write, path, manifest, tensors) == "value"
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.req("R-83")
def test_writer_refuses_invalid_input(tmp_path: Path) -> None:
    """The writer raises the reader's codes instead of writing a bad package. [R-83]"""
    manifest, tensors = factories.vector_manifest()
    assert _code(mindvec.write, tmp_path / "x", manifest, {"v.1": np.ones(3, np.float32)}) == "shape"
    assert _code(mindvec.write, tmp_path / "x", manifest, {**tensors, "extra": np.ones(3, np.float32)}) == (
        "tensor-reference"
    )
    assert _code(mindvec.write, tmp_path / "x", manifest, {"v.1": np.ones(8, np.int32)}) == "dtype"
    bad = factories.clone(manifest)
    bad["package"]["colour"] = "red"
    assert _code(mindvec.write, tmp_path / "x", bad, tensors) == "schema"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- usage errors and imports


def test_usage_errors(tmp_path: Path) -> None:
    assert _code(mindvec.open, tmp_path / "missing.mindvec") == "io"
    assert _code(mindvec.open, tmp_path) == "io"
    package = mindvec.open(factories.small_package(tmp_path))
    assert _code(package.tensor, "nope") == "not-found"
    assert _code(package.vector, "nope") == "not-found"
    assert _code(package.model, "nope") == "not-found"
    manifest, tensors = factories.full_manifest()
    manifest["vectors"].append(factories.vector_entry(name="w", model="m"))
    tensors["w.1"] = np.ones(8, np.float32)
    package = mindvec.open(mindvec.write(tmp_path / "two.mindvec", manifest, tensors))
    assert _code(package.vector) == "argument"


def test_open_and_verify_never_import_torch(tmp_path: Path) -> None:
    path = factories.small_package(tmp_path)
    script = (
        "import sys, mindvec\n"
        f"p = mindvec.open({str(path)!r})\n"
        "p.check_integrity(); [p.tensor(n) for n in p.tensor_names]\n"
        "from mindvec.cli import inspect\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + script], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_file_changed_after_open_is_detected(tmp_path: Path) -> None:
    """A file that grew or shrank between open() and the first tensor access is refused."""
    path = factories.small_package(tmp_path)
    package = mindvec.open(path)
    with path.open("ab") as handle:
        handle.write(b"extra")
    assert _code(package.tensor, "v.1") == "truncated"
    package.close()
