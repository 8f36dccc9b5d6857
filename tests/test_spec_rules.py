"""One test (or more) per numbered requirement of spec/mindvec-1.1.md, through the public API.

Each test builds a small package with the reference writer, or assembles one by hand when
the writer would refuse it, breaks exactly one rule, and asserts the exact error code. The
docstring of each test cites the requirement(s) it checks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import struct
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mindvec
from mindvec import canonical, container, limits, package
from mindvec import manifest as mf
from mindvec.errors import MindvecError, UsageError
from mindvec.keys import SecretKey
from mindvec.payload import (
    TensorData,
    build_payload,
    header_digest,
    parse_payload,
    tensor_digests,
    to_tensor_data,
)
from mindvec.policy import Policy
from mindvec.signing import keyid, pae
from mindvec.state import State
from mindvec.trust import TrustStore
from mindvec.verification import verify
from tests import factories

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
L_ED25519 = 2**252 + 27742317777372353535851937790883648493


# ---------------------------------------------------------------- helpers


def code(fn: Callable[[], Any]) -> str:
    """The stable code of the MindvecError ``fn`` raises (fails if it raises nothing)."""
    with pytest.raises(MindvecError) as info:
        fn()
    return info.value.code


def put(tmp_path: Path, data: bytes | bytearray, name: str = "x.mindvec") -> Path:
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def open_code(tmp_path: Path, data: bytes | bytearray) -> str:
    path = put(tmp_path, data)
    return code(lambda: package.open(path))


def verify_code(path: Path, **options: Any) -> str | None:
    report = verify(path, Policy(now=NOW, **options), detached=False)
    return None if report.error is None else report.error.code


def tiny_bytes(tmp_path: Path, signers: Any = ()) -> bytearray:
    manifest = factories.minimal_manifest(m=factories.model_entry(hidden_size=2, num_layers=2))
    manifest["vectors"] = [factories.vector_entry(layers=(1,))]
    path = package.write(
        tmp_path / "tiny.mindvec", manifest, {"v.1": np.array([1.0, -2.0], np.float32)}, signers=signers
    )
    return bytearray(path.read_bytes())


def layout(data: bytes | bytearray) -> dict[str, int]:
    manifest_len, payload_len = struct.unpack_from("<QQ", data, 16)
    payload_offset = container.align64(32 + manifest_len)
    header_len = struct.unpack_from("<Q", data, payload_offset)[0]
    return {
        "manifest_len": manifest_len,
        "payload_len": payload_len,
        "payload_offset": payload_offset,
        "header_offset": payload_offset + 8,
        "header_len": header_len,
        "data_offset": payload_offset + 8 + header_len,
        "sig_offset": payload_offset + payload_len,
    }


def make_payload(header: bytes | dict[str, Any], data: bytes, *, pad: bool = True) -> bytes:
    """A payload with a hand-written header (JSON bytes or a dict), space-padded to N ≡ 56 mod 64."""
    raw = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        raw += b" " * ((56 - len(raw)) % 64)
    return struct.pack("<Q", len(raw)) + raw + data


def assemble(
    manifest: dict[str, Any],
    payload: bytes | None = None,
    *,
    tensors: dict[str, Any] | None = None,
    digests: dict[str, bytes] | None = None,
    version: tuple[int, int] = (1, 0),
    fill: bool = True,
    manifest_bytes: bytes | None = None,
    signers: Any = (),
) -> bytes:
    """A whole file, bypassing the writer's validation; ``fill`` adds format and digests."""
    if payload is None:
        payload = build_payload({k: to_tensor_data(v) for k, v in (tensors or {}).items()})
    full = dict(manifest)
    if fill:
        full.setdefault("format", f"{version[0]}.{version[1]}")
        n = struct.unpack_from("<Q", payload)[0]
        if digests is None:
            digests = tensor_digests(payload, parse_payload(payload))
        full["payload"] = {"header_sha256": header_digest(payload[8 : 8 + n]), "tensors": digests}
    mbytes = manifest_bytes if manifest_bytes is not None else canonical.encode(full)
    block = container.encode_signature_block([s.sign_manifest(mbytes) for s in signers])
    data = bytearray(b"".join(container.container_chunks(mbytes, payload, block)))
    struct.pack_into("<HH", data, 8, *version)
    return bytes(data)


def vec_case(hidden: int = 4, **vector_changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    manifest, tensors = factories.vector_manifest(hidden=hidden)
    manifest["vectors"][0].update(vector_changes)
    return manifest, tensors


def key(n: int) -> SecretKey:
    return SecretKey.from_seed(bytes([n]) * 32)


def store(*lines: str) -> TrustStore:
    return TrustStore.parse("\n".join(lines) + "\n")


def trust_line(k: SecretKey, principal: str = "alice", options: str = "") -> str:
    return " ".join(p for p in (principal, options, k.public_key.to_line()) if p)


# ---------------------------------------------------------------- section 2: layout


@pytest.mark.req("R-1")
def test_magic(tmp_path: Path) -> None:
    """[R-1] a wrong first byte, or a short file that is not a prefix of MAGIC, is magic."""
    data = tiny_bytes(tmp_path)
    data[0] ^= 0xFF
    assert open_code(tmp_path, data) == "magic"
    assert open_code(tmp_path, b"GIF89a") == "magic"
    assert open_code(tmp_path, b"\x89MVEC\r\n\n"[:5]) == "truncated"


@pytest.mark.req("R-2")
def test_major_version(tmp_path: Path) -> None:
    """[R-2] major 2 is rejected with version."""
    data = tiny_bytes(tmp_path)
    struct.pack_into("<H", data, 8, 2)
    assert open_code(tmp_path, data) == "version"


@pytest.mark.req("R-3")
def test_minor_written_zero_and_higher_minor_read(tmp_path: Path) -> None:
    """[R-3] writers write minor 0; a reader accepts a higher minor of major 1."""
    data = tiny_bytes(tmp_path)
    assert struct.unpack_from("<HH", data, 8) == (1, 0)
    manifest, tensors = factories.vector_manifest()
    path = put(tmp_path, assemble(manifest, tensors=tensors, version=(1, 7)))
    assert package.open(path).manifest["format"] == "1.7"


@pytest.mark.req("R-4")
def test_flags(tmp_path: Path) -> None:
    """[R-4] non-zero flags are rejected with flags."""
    data = tiny_bytes(tmp_path)
    struct.pack_into("<I", data, 12, 1)
    assert open_code(tmp_path, data) == "flags"


@pytest.mark.req("R-5")
def test_truncated_preamble(tmp_path: Path) -> None:
    """[R-5] a file ending inside the preamble is truncated, after magic/major/flags."""
    data = tiny_bytes(tmp_path)
    for size in (8, 11, 12, 20, 31):
        assert open_code(tmp_path, data[:size]) == "truncated"
    bad_major = bytearray(data[:20])
    struct.pack_into("<H", bad_major, 8, 9)
    assert open_code(tmp_path, bad_major) == "version"


@pytest.mark.req("R-6")
@pytest.mark.parametrize("manifest_len", [0, limits.MAX_MANIFEST + 1, 2**63])
def test_manifest_len_bounds(tmp_path: Path, manifest_len: int) -> None:
    """[R-6] manifest_len outside 1..16 MiB is bounds."""
    data = tiny_bytes(tmp_path)
    struct.pack_into("<Q", data, 16, manifest_len)
    assert open_code(tmp_path, data) == "bounds"


@pytest.mark.req("R-7")
@pytest.mark.parametrize("payload_len", [0, 15, limits.MAX_PAYLOAD + 1, 2**64 - 1])
def test_payload_len_bounds(tmp_path: Path, payload_len: int) -> None:
    """[R-7] payload_len outside 16..2^48 is bounds."""
    data = tiny_bytes(tmp_path)
    struct.pack_into("<Q", data, 24, payload_len)
    assert open_code(tmp_path, data) == "bounds"


@pytest.mark.req("R-8")
def test_lengths_checked_against_file_size(tmp_path: Path) -> None:
    """[R-8] a 100-byte file declaring huge sections fails with bounds before allocating."""
    head = bytearray(container.encode_preamble(1000, 2**40)) + bytes(68)
    assert len(head) == 100
    assert open_code(tmp_path, head) == "bounds"
    data = tiny_bytes(tmp_path)
    struct.pack_into("<Q", data, 24, layout(data)["payload_len"] + 10_000)
    assert open_code(tmp_path, data) == "bounds"


@pytest.mark.req("R-9")
def test_trailer_magic(tmp_path: Path) -> None:
    """[R-9] the last 8 bytes must be MVECEND\\n."""
    data = tiny_bytes(tmp_path)
    data[-1] ^= 0x01
    assert open_code(tmp_path, data) == "signature-block"


@pytest.mark.req("R-10")
@pytest.mark.parametrize("sig_len", [0, limits.MAX_SIG_BLOCK + 1])
def test_sig_len_bounds(tmp_path: Path, sig_len: int) -> None:
    """[R-10] sig_len outside 1..65536 is bounds."""
    data = tiny_bytes(tmp_path)
    struct.pack_into("<Q", data, len(data) - 16, sig_len)
    assert open_code(tmp_path, data) == "bounds"


@pytest.mark.req("R-11")
def test_exact_file_size(tmp_path: Path) -> None:
    """[R-11] appended bytes are trailing; a sig_len reaching past the end is truncated."""
    data = tiny_bytes(tmp_path)
    assert open_code(tmp_path, data[:-16] + b"\x00" + data[-16:]) == "trailing"
    longer = bytearray(data)
    struct.pack_into("<Q", longer, len(longer) - 16, 2)
    assert open_code(tmp_path, longer) == "truncated"


@pytest.mark.req("R-12")
def test_padding_zero(tmp_path: Path) -> None:
    """[R-12] a non-zero padding byte is padding."""
    data = tiny_bytes(tmp_path)
    lay = layout(data)
    assert lay["payload_offset"] > 32 + lay["manifest_len"], "the test package needs padding"
    data[32 + lay["manifest_len"]] = 0x01
    assert open_code(tmp_path, data) == "padding"


@pytest.mark.req("R-13")
def test_signature_block_must_decode(tmp_path: Path) -> None:
    """[R-13] a signature block that is not an array of entries is signature-block."""
    data = tiny_bytes(tmp_path)
    assert data[layout(data)["sig_offset"]] == 0x90
    data[layout(data)["sig_offset"]] = 0xC0  # nil instead of the empty array
    assert open_code(tmp_path, data) == "signature-block"


# ---------------------------------------------------------------- section 3: canonical msgpack


@pytest.mark.req("R-14")
def test_writer_emits_profile_encoding() -> None:
    """[R-14] shortest integers, float64 only, bin for bytes, keys sorted by UTF-8 bytes."""
    assert canonical.encode(1) == b"\x01"
    assert canonical.encode(255) == b"\xcc\xff"
    assert canonical.encode(-33) == b"\xd0\xdf"
    assert canonical.encode(2**32) == b"\xcf" + (2**32).to_bytes(8, "big")
    assert canonical.encode(1.5) == b"\xcb" + struct.pack(">d", 1.5)
    assert canonical.encode(b"\x00") == b"\xc4\x01\x00"
    assert (
        canonical.encode({"b": 1, "a": 2, "é": 3, "aa": 4})
        == b"\x84\xa1a\x02\xa2aa\x04\xa1b\x01\xa2\xc3\xa9\x03"
    )


@pytest.mark.req("R-15")
def test_package_with_non_string_key(tmp_path: Path) -> None:
    """[R-15] a manifest map with an integer key is msgpack."""
    manifest, tensors = factories.vector_manifest()
    good = canonical.encode(manifest)
    bad = b"\x81\x01\x01"  # {1: 1}
    assert code(lambda: canonical.decode(bad)) == "msgpack"
    assert open_code(tmp_path, assemble(manifest, tensors=tensors, manifest_bytes=bad)) == "msgpack"
    assert canonical.decode(good) == manifest


@pytest.mark.req("R-16")
def test_duplicate_key(tmp_path: Path) -> None:
    """[R-16] a repeated map key is duplicate-key, also inside a package."""
    dup = b"\x82\xa1a\x01\xa1a\x02"
    assert code(lambda: canonical.decode(dup)) == "duplicate-key"
    manifest, tensors = factories.vector_manifest()
    assert open_code(tmp_path, assemble(manifest, tensors=tensors, manifest_bytes=dup)) == "duplicate-key"


@pytest.mark.req("R-17")
def test_ext_types() -> None:
    """[R-17] ext types, the timestamp ext -1 included, are msgpack."""
    assert code(lambda: canonical.decode(b"\xd6\xff\x00\x00\x00\x00")) == "msgpack"
    assert code(lambda: canonical.decode(b"\xd4\x05\x00")) == "msgpack"


@pytest.mark.req("R-18")
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_float(value: float) -> None:
    """[R-18] NaN and infinities are msgpack, when decoding and when encoding."""
    assert code(lambda: canonical.decode(b"\xcb" + struct.pack(">d", value))) == "msgpack"
    assert code(lambda: canonical.encode({"x": value})) == "msgpack"


@pytest.mark.req("R-19")
def test_invalid_utf8() -> None:
    """[R-19] a str that is not UTF-8 is msgpack."""
    assert code(lambda: canonical.decode(b"\xa2\xc3\x28")) == "msgpack"


@pytest.mark.req("R-20")
def test_depth_limit() -> None:
    """[R-20] 32 levels of nesting decode; 33 are depth."""
    assert canonical.decode(b"\x91" * 31 + b"\x90") is not None
    assert code(lambda: canonical.decode(b"\x91" * 32 + b"\x90")) == "depth"


@pytest.mark.req("R-21")
def test_object_occupies_section(tmp_path: Path) -> None:
    """[R-21] bytes after the object, or a cut object, are msgpack."""
    assert code(lambda: canonical.decode(b"\x01\x01")) == "msgpack"
    assert code(lambda: canonical.decode(b"\xa5ab")) == "msgpack"
    manifest, tensors = factories.vector_manifest()
    mbytes = canonical.encode({**manifest, "format": "1.0"})
    assert (
        open_code(tmp_path, assemble(manifest, tensors=tensors, manifest_bytes=mbytes + b"\xc0")) == "msgpack"
    )


@pytest.mark.req("R-22")
def test_non_canonical_manifest(tmp_path: Path) -> None:
    """[R-22] an unsorted map, a long integer form or a float32 is non-canonical."""
    for blob in (b"\x82\xa1b\x01\xa1a\x02", b"\xcc\x01", b"\xca\x3f\x80\x00\x00", b"\xd9\x01a"):
        assert code(functools.partial(canonical.decode, blob)) == "non-canonical"
    manifest, tensors = factories.vector_manifest()
    good = assemble(manifest, tensors=tensors)
    mbytes = bytearray(good[32 : 32 + layout(good)["manifest_len"]])
    version_at = mbytes.index(b"\xa7version\x01")  # package.version = 1 as positive fixint
    longer = mbytes[: version_at + 8] + b"\xcc\x01" + mbytes[version_at + 9 :]
    assert (
        open_code(tmp_path, assemble(manifest, tensors=tensors, manifest_bytes=bytes(longer)))
        == "non-canonical"
    )


# ---------------------------------------------------------------- sections 4-5: manifest


@pytest.mark.req("R-23")
def test_schema_closed_and_required(tmp_path: Path) -> None:
    """[R-23] an unknown core key, a missing required key and a non-map manifest are schema."""
    manifest, tensors = factories.vector_manifest()
    assert open_code(tmp_path, assemble({**manifest, "colour": "red"}, tensors=tensors)) == "schema"
    missing = {k: v for k, v in manifest.items() if k != "provenance"}
    assert open_code(tmp_path, assemble(missing, tensors=tensors)) == "schema"
    assert open_code(tmp_path, assemble(manifest, tensors=tensors, manifest_bytes=b"\x90")) == "schema"


@pytest.mark.req("R-24")
def test_integer_and_number_types(tmp_path: Path) -> None:
    """[R-24] 8.0 and True are not integers; True is not a number."""
    for bad in (8.0, True):
        manifest, tensors = factories.vector_manifest(hidden=8)
        manifest["models"]["m"]["hidden_size"] = bad
        assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"
    manifest, tensors = vec_case(hidden=8, scale=True)
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"


@pytest.mark.req("R-25")
def test_bytes_type_and_byte_length(tmp_path: Path) -> None:
    """[R-25] a sha256 must be bin of exactly 32 bytes; a hex string is not bytes."""
    for bad in (bytes(31), hashlib.sha256(b"").hexdigest()):
        manifest, tensors = factories.vector_manifest()
        manifest["models"]["m"]["config_sha256"] = bad
        assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"


@pytest.mark.req("R-26")
def test_config_digest_test_vector() -> None:
    """[R-26] config_sha256 is sha256 of the canonical JSON of the listed config attributes."""
    transformers = pytest.importorskip("transformers")
    from mindvec.loader.binding import config_sha256, digest_fields

    config = transformers.LlamaConfig(
        hidden_size=576,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        intermediate_size=1536,
        vocab_size=49152,
    )
    expected = "386dc69a66db4e349c67bf09b3c426bcee7ab66e52fc35aa369a3eb65009274b"
    assert config_sha256(config).hex() == expected
    gpt2 = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4)
    fields = digest_fields(gpt2)
    assert fields["hidden_size"] == 64 and fields["num_hidden_layers"] == 2  # aliases resolve
    assert "intermediate_size" not in fields  # None is left out
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert config_sha256(gpt2) == hashlib.sha256(text.encode()).digest()


@pytest.mark.req("R-27")
def test_format_equals_preamble(tmp_path: Path) -> None:
    """[R-27] format "1.1" in a 1.0 preamble is version."""
    manifest, tensors = factories.vector_manifest()
    assert open_code(tmp_path, assemble({**manifest, "format": "1.1"}, tensors=tensors)) == "version"


@pytest.mark.req("R-28")
def test_critical_extensions(tmp_path: Path) -> None:
    """[R-28] an unknown critical extension, or a critical name missing from extensions, is rejected."""
    manifest, tensors = factories.vector_manifest()
    known = {**manifest, "extensions": {"org.example.x": 1}, "critical": ["org.example.x"]}
    assert open_code(tmp_path, assemble(known, tensors=tensors)) == "critical-extension"
    absent = {**manifest, "critical": ["org.example.y"]}
    assert open_code(tmp_path, assemble(absent, tensors=tensors)) == "critical-extension"


@pytest.mark.req("R-29")
def test_model_references(tmp_path: Path) -> None:
    """[R-29] a vector or mapping naming a model that is not in models is schema."""
    manifest, tensors = vec_case(model="ghost")
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"
    manifest, tensors = factories.mapping_manifest()
    manifest["mappings"][0]["target"]["model"] = "ghost"
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"


@pytest.mark.req("R-30")
def test_unique_names(tmp_path: Path) -> None:
    """[R-30] two vectors with the same name are schema."""
    manifest, tensors = factories.vector_manifest()
    second = factories.vector_entry(layers=(2,))
    manifest["vectors"].append(second)
    tensors["v.2"] = np.ones(8, np.float32)
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"
    manifest["vectors"][1]["name"] = "w"
    assert package.open(put(tmp_path, assemble(manifest, tensors=tensors))).vector("w").name == "w"


@pytest.mark.req("R-31")
def test_sites_checked_in_semantics(tmp_path: Path) -> None:
    """[R-31] a mapping site beyond the model's layers is site."""
    manifest, tensors = factories.mapping_manifest()
    manifest["mappings"][0]["source"]["site"]["layer"] = 4
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "site"


@pytest.mark.req("R-32")
def test_mapping_forms(tmp_path: Path) -> None:
    """[R-32] tensors must fit the form; scale only on orthogonal."""
    manifest, tensors = factories.mapping_manifest()
    manifest["mappings"][0]["form"] = "linear"
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"
    manifest, tensors = factories.mapping_manifest()
    manifest["mappings"][0]["scale"] = 2.0
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"
    manifest, tensors = factories.mapping_manifest()
    manifest["mappings"][0]["form"] = "low_rank"
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "schema"


@pytest.mark.req("R-33")
def test_scale_range_order(tmp_path: Path) -> None:
    """[R-33] scale_range [hi, lo] is value."""
    manifest, tensors = vec_case(hidden=8, scale_range=[8.0, 0.0])
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "value"


@pytest.mark.req("R-34")
def test_tensor_referenced_once_and_digested(tmp_path: Path) -> None:
    """[R-34] a tensor used twice, or a digest for an unreferenced tensor, is tensor-reference."""
    manifest, tensors = factories.vector_manifest(layers=(1, 2))
    manifest["vectors"][0]["sites"][1]["tensor"] = "v.1"
    assert open_code(tmp_path, assemble(manifest, tensors={"v.1": tensors["v.1"]})) == "tensor-reference"
    manifest, tensors = factories.vector_manifest()
    payload = build_payload({k: to_tensor_data(v) for k, v in tensors.items()})
    digests = {**tensor_digests(payload, parse_payload(payload)), "extra": bytes(32)}
    assert open_code(tmp_path, assemble(manifest, payload, digests=digests)) == "tensor-reference"


# ---------------------------------------------------------------- section 6: equations


def _mapping_package(
    tmp_path: Path, form: str, tensors: dict[str, np.ndarray[Any, Any]], **extra: Any
) -> Path:
    d_in, d_out = 6, 4
    manifest = factories.minimal_manifest(
        src=factories.model_entry(hidden_size=d_in), tgt=factories.model_entry(hidden_size=d_out)
    )
    entry = factories.mapping_entry(form=form, tensors={role: f"map.{role}" for role in tensors})
    entry.update(extra)
    manifest["mappings"] = [entry]
    return package.write(
        tmp_path / f"map-{form}.mindvec", manifest, {f"map.{r}": t for r, t in tensors.items()}
    )


def _vector_package(tmp_path: Path, v: np.ndarray[Any, Any]) -> Path:
    manifest = factories.minimal_manifest(src=factories.model_entry(hidden_size=v.shape[0]))
    entry = factories.vector_entry(model="src", layers=(1,))
    manifest["vectors"] = [entry]
    return package.write(tmp_path / "vec.mindvec", manifest, {"v.1": v.astype(np.float32)})


@pytest.mark.req("R-35")
def test_translated_vector_is_w_v(tmp_path: Path) -> None:
    """[R-35] W v for affine (bias ignored), c·W v for orthogonal, U Vᵀ v for low_rank."""
    from mindvec.translation import translate_vector

    rng = np.random.default_rng(3)
    v = rng.standard_normal(6).astype(np.float32)
    vec = _vector_package(tmp_path, v)
    w = rng.standard_normal((4, 6)).astype(np.float32)
    affine = _mapping_package(tmp_path, "affine", {"weight": w, "bias": np.ones(4, np.float32) * 100})
    np.testing.assert_allclose(translate_vector(vec, affine).tensor, w @ v, rtol=1e-5)
    q = np.linalg.qr(rng.standard_normal((6, 4)))[0].T.astype(np.float32)  # orthonormal rows
    ortho = _mapping_package(tmp_path, "orthogonal", {"weight": q}, scale=2.5)
    np.testing.assert_allclose(translate_vector(vec, ortho).tensor, 2.5 * (q @ v), rtol=1e-5)
    u, vv = rng.standard_normal((4, 2)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)
    means = {"source_mean": np.ones(6, np.float32), "target_mean": np.ones(4, np.float32)}
    low = _mapping_package(tmp_path, "low_rank", {"u": u, "v": vv, **means})
    np.testing.assert_allclose(translate_vector(vec, low).tensor, u @ (vv.T @ v), rtol=1e-4)


@pytest.mark.req("R-36")
def test_translated_activation(tmp_path: Path) -> None:
    """[R-36] an activation maps as W(a − source_mean) + target_mean, W a + bias, or W a, by form."""
    from mindvec.fit.mapping import LinearMap
    from mindvec.translation import translate_activations

    rng = np.random.default_rng(4)
    a = rng.standard_normal((7, 6))
    w = rng.standard_normal((4, 6)).astype(np.float32)
    w64 = w.astype(np.float64)
    b, mu_s, mu_t = (rng.standard_normal(n).astype(np.float32) for n in (4, 6, 4))
    cases = {
        "linear": ({"weight": w}, a @ w64.T),
        "affine-bias": ({"weight": w, "bias": b}, a @ w64.T + b),
        "affine-means": (
            {"weight": w, "source_mean": mu_s, "target_mean": mu_t},
            (a - mu_s) @ w64.T + mu_t,
        ),
    }
    for label, (tensors, expected) in cases.items():
        form = label.split("-")[0]
        (tmp_path / label).mkdir()
        path = _mapping_package(tmp_path / label, form, tensors)
        np.testing.assert_allclose(translate_activations(path, a), expected, rtol=1e-6, atol=1e-6)
    u, vv = rng.standard_normal((4, 2)).astype(np.float32), rng.standard_normal((6, 2)).astype(np.float32)
    (tmp_path / "low").mkdir()
    low = _mapping_package(tmp_path / "low", "low_rank", {"u": u, "v": vv, "bias": b})
    expected_low = a @ (u.astype(np.float64) @ vv.T.astype(np.float64)).T + b
    np.testing.assert_allclose(translate_activations(low, a), expected_low, rtol=1e-6, atol=1e-6)
    with pytest.raises(UsageError) as info:
        translate_activations(low, a[:, :5])
    assert info.value.code == "argument"
    # the fitter's own prediction follows the same equation
    fitted = LinearMap("ridge", w64, mu_s.astype(np.float64), mu_t.astype(np.float64))
    np.testing.assert_allclose(fitted.predict(a), cases["affine-means"][1], rtol=1e-6, atol=1e-6)


@pytest.mark.req("R-37")
def test_orthogonal_is_semi_orthogonal(tmp_path: Path) -> None:
    """[R-37] Procrustes gives orthonormal rows (d_out ≤ d_in) or columns; the writer refuses others."""
    from mindvec.fit.mapping import fit_procrustes
    from mindvec.fit.stats import PairStats

    rng = np.random.default_rng(5)
    for d_in, d_out in ((6, 4), (4, 6)):
        x = rng.standard_normal((50, d_in))
        y = x @ rng.standard_normal((d_in, d_out)) + 0.1 * rng.standard_normal((50, d_out))
        w = fit_procrustes(PairStats.from_arrays(x, y)).weight
        gram = w @ w.T if d_out <= d_in else w.T @ w
        np.testing.assert_allclose(gram, np.eye(min(d_in, d_out)), atol=1e-9)
    bad = np.full((4, 6), 0.5, np.float32)
    assert code(lambda: _mapping_package(tmp_path, "orthogonal", {"weight": bad})) == "value"
    assert not (tmp_path / "map-orthogonal.mindvec").exists()


@pytest.mark.req("R-38")
def test_cca_formula_and_storage(tmp_path: Path) -> None:
    """[R-38] CCA's W = Σyy^½ V diag(ρ) Uᵀ Σxx^-½, stored affine with both means."""
    from mindvec.fit.mapping import fit_cca
    from mindvec.fit.stats import PairStats

    rng = np.random.default_rng(6)
    x = rng.standard_normal((200, 5)) * 3 + 1
    y = x[:, :4] @ rng.standard_normal((4, 4)) + rng.standard_normal((200, 4)) + 2
    fitted = fit_cca(PairStats.from_arrays(x, y), k=3, reg=1e-3)
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = len(x)
    sxx, syy, sxy = xc.T @ xc / (n - 1), yc.T @ yc / (n - 1), xc.T @ yc / (n - 1)
    sxx += 1e-3 * np.trace(sxx) / 5 * np.eye(5)
    syy += 1e-3 * np.trace(syy) / 4 * np.eye(4)

    def power(m: np.ndarray[Any, Any], p: float) -> np.ndarray[Any, Any]:
        vals, vecs = np.linalg.eigh(m)
        return np.asarray((vecs * vals**p) @ vecs.T)

    u, rho, vt = np.linalg.svd(power(sxx, -0.5) @ sxy @ power(syy, -0.5))
    w = power(syy, 0.5) @ vt[:3].T @ np.diag(rho[:3]) @ u[:, :3].T @ power(sxx, -0.5)
    # the covariance normalisation (n or n-1) cancels in W
    np.testing.assert_allclose(fitted.weight, w, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fitted.source_mean, x.mean(0))
    assert fitted.form == "affine" and set(fitted.tensors()) == {"weight", "source_mean", "target_mean"}
    manifest = factories.minimal_manifest(
        src=factories.model_entry(hidden_size=5), tgt=factories.model_entry(hidden_size=4)
    )
    entry = factories.mapping_entry(form="affine", tensors={"weight": "w", "bias": "b"})
    entry["fit"]["method"] = "cca"
    manifest["mappings"] = [entry]
    tensors = {"w": w.astype(np.float32), "b": np.zeros(4, np.float32)}
    assert code(lambda: package.write(tmp_path / "cca.mindvec", manifest, tensors)) == "schema"


@pytest.mark.req("R-39")
def test_operations() -> None:
    """[R-39] add h+s·v, project_out h−(h·v̂)v̂, clamp h+(s−h·v̂)v̂."""
    torch = pytest.importorskip("torch")
    from mindvec.loader.hooks import Operation

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(2, 3, 8, generator=gen)
    v = torch.randn(8, generator=gen) * 3
    unit = v / v.norm()
    add = Operation("add", v, 1.5, "all", like=h).apply(h, None)
    torch.testing.assert_close(add, h + 1.5 * v)
    out = Operation("project_out", v, 9.0, "all", like=h).apply(h, None)
    torch.testing.assert_close(out, h - (h @ unit).unsqueeze(-1) * unit)
    torch.testing.assert_close(out @ unit, torch.zeros(2, 3), atol=1e-5, rtol=0)
    clamp = Operation("clamp", v, 2.0, "all", like=h).apply(h, None)
    torch.testing.assert_close(clamp, h + (2.0 - h @ unit).unsqueeze(-1) * unit)
    torch.testing.assert_close(clamp @ unit, torch.full((2, 3), 2.0), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- section 7: payload


@pytest.mark.req("R-40")
def test_header_length_bounds(tmp_path: Path) -> None:
    """[R-40] N above the limit or past the payload is bounds."""
    data = tiny_bytes(tmp_path)
    lay = layout(data)
    for n in (limits.MAX_SAFETENSORS_HEADER + 1, lay["payload_len"] - 8 + 56):
        broken = bytearray(data)
        struct.pack_into("<Q", broken, lay["payload_offset"], n)
        assert open_code(tmp_path, broken) == "bounds"


@pytest.mark.req("R-41")
def test_header_length_alignment(tmp_path: Path) -> None:
    """[R-41] N not ≡ 56 mod 64 is payload (checked before the digest)."""
    data = tiny_bytes(tmp_path)
    lay = layout(data)
    struct.pack_into("<Q", data, lay["payload_offset"], lay["header_len"] - 1)
    assert open_code(tmp_path, data) == "payload"


@pytest.mark.req("R-42")
def test_header_digest(tmp_path: Path) -> None:
    """[R-42] a changed header byte (a padding space included) is digest-mismatch."""
    manifest, tensors = factories.vector_manifest()
    data = bytearray(assemble(manifest, tensors=tensors))
    lay = layout(data)
    header = data[lay["header_offset"] : lay["data_offset"]]
    assert header.endswith(b" "), "the test header needs padding"
    data[lay["data_offset"] - 1] = ord("\t")
    assert open_code(tmp_path, data) == "digest-mismatch"


def _payload_case(
    header: bytes | dict[str, Any], data: bytes, digests: dict[str, bytes] | None = None
) -> bytes:
    manifest, tensors = factories.vector_manifest(hidden=2)
    digests = digests or {"v.1": hashlib.sha256(data[:8]).digest()}
    return assemble(manifest, make_payload(header, data), digests=digests)


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.req("R-43")
def test_header_json_form(tmp_path: Path) -> None:
    """[R-43] leading space, a non-JSON header, a float or a non-space pad byte is payload."""
    good = json.dumps({"v.1": F32_2}, separators=(",", ":")).encode()
    assert package.open(put(tmp_path, _payload_case(good, bytes(8))))
    for header in (b" " + good, good.replace(b"}}", b"}", 1), good.replace(b"[2]", b"[2.0]"), good + b"\n"):
        assert open_code(tmp_path, _payload_case(header, bytes(8))) == "payload"


@pytest.mark.req("R-44")
def test_header_duplicate_key(tmp_path: Path) -> None:
    """[R-44] a repeated key in the header JSON is duplicate-key."""
    header = b'{"v.1":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    assert open_code(tmp_path, _payload_case(header, bytes(8))) == "duplicate-key"


@pytest.mark.req("R-45")
def test_no_metadata(tmp_path: Path) -> None:
    """[R-45] __metadata__ in the header is payload."""
    header = {"__metadata__": {"a": "b"}, "v.1": F32_2}
    assert open_code(tmp_path, _payload_case(header, bytes(8))) == "payload"


@pytest.mark.req("R-46")
def test_tensor_count_limit(tmp_path: Path) -> None:
    """[R-46] more than MAX_TENSORS header entries is bounds."""
    header = {f"t{i}": F32_2 for i in range(limits.MAX_TENSORS + 1)}
    assert open_code(tmp_path, _payload_case(header, bytes(8))) == "bounds"


@pytest.mark.req("R-47")
def test_header_entry_form(tmp_path: Path) -> None:
    """[R-47] extra keys, negative dims or reversed offsets are payload."""
    for entry in (
        {**F32_2, "extra": 1},
        {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]},
        {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]},
        {"dtype": 5, "shape": [2], "data_offsets": [0, 8]},
    ):
        assert open_code(tmp_path, _payload_case({"v.1": entry}, bytes(8))) == "payload"


@pytest.mark.req("R-48")
def test_dtypes(tmp_path: Path) -> None:
    """[R-48] I32 is dtype; the writer refuses an int array with dtype too."""
    entry = {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}
    assert open_code(tmp_path, _payload_case({"v.1": entry}, bytes(8))) == "dtype"
    manifest, _ = factories.vector_manifest(hidden=2)
    assert (
        code(lambda: package.write(tmp_path / "i.mindvec", manifest, {"v.1": np.ones(2, np.int32)}))
        == "dtype"
    )


@pytest.mark.req("R-49")
def test_byte_count_matches_shape(tmp_path: Path) -> None:
    """[R-49] end − begin must be numel × itemsize."""
    entry = {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}
    assert open_code(tmp_path, _payload_case({"v.1": entry}, bytes(12))) == "payload"


@pytest.mark.req("R-50")
def test_contiguous_data(tmp_path: Path) -> None:
    """[R-50] a gap, an overlap or data past the last tensor is payload."""
    gap = {"v.1": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    assert open_code(tmp_path, _payload_case(gap, bytes(12))) == "payload"
    overlap = {"v.1": F32_2, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
    assert open_code(tmp_path, _payload_case(overlap, bytes(8))) == "payload"
    assert open_code(tmp_path, _payload_case({"v.1": F32_2}, bytes(16))) == "payload"


@pytest.mark.req("R-51")
def test_header_names_equal_digests(tmp_path: Path) -> None:
    """[R-51] a header tensor without a digest entry is tensor-reference."""
    header = {"v.1": F32_2, "w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
    assert open_code(tmp_path, _payload_case(header, bytes(16))) == "tensor-reference"


@pytest.mark.req("R-52")
def test_shapes_follow_models(tmp_path: Path) -> None:
    """[R-52] a vector of the wrong width, or a transposed weight, is shape."""
    manifest, _ = factories.vector_manifest(hidden=4)
    assert open_code(tmp_path, assemble(manifest, tensors={"v.1": np.ones(5, np.float32)})) == "shape"
    manifest, tensors = factories.mapping_manifest()
    tensors["map.weight"] = tensors["map.weight"].T.copy()
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "shape"
    manifest, tensors = factories.mapping_manifest()
    assert (
        code(
            lambda: package.write(
                tmp_path / "t.mindvec", manifest, {**tensors, "map.bias": np.ones(5, np.float32)}
            )
        )
        == "shape"
    )


@pytest.mark.req("R-53")
def test_tensor_digest_on_access(tmp_path: Path) -> None:
    """[R-53] a changed data byte fails tensor() and check_integrity() with digest-mismatch."""
    data = tiny_bytes(tmp_path)
    data[layout(data)["data_offset"]] ^= 0x01
    path = put(tmp_path, data)
    opened = package.open(path)
    assert code(lambda: opened.tensor("v.1")) == "digest-mismatch"
    assert code(lambda: package.open(path).check_integrity()) == "digest-mismatch"


@pytest.mark.req("R-54")
@pytest.mark.parametrize("values", [[0.0, 0.0], [1.0, math.nan], [math.inf, 1.0]])
def test_tensor_values(tmp_path: Path, values: list[float]) -> None:
    """[R-54] a zero or non-finite vector is value on access; the writer refuses it."""
    manifest, _ = factories.vector_manifest(hidden=2)
    tensors = {"v.1": np.array(values, np.float32)}
    opened = package.open(put(tmp_path, assemble(manifest, tensors=tensors)))
    assert code(lambda: opened.tensor("v.1")) == "value"
    assert code(lambda: package.write(tmp_path / "w.mindvec", manifest, tensors)) == "value"


@pytest.mark.req("R-55")
def test_writer_pads_header(tmp_path: Path) -> None:
    """[R-55] written headers are space padded to N ≡ 56 mod 64 with no __metadata__."""
    for width in (1, 3, 17, 100):
        manifest, tensors = factories.vector_manifest(hidden=width)
        data = package.write(tmp_path / f"p{width}.mindvec", manifest, tensors).read_bytes()
        lay = layout(data)
        assert lay["header_len"] % 64 == 56 and lay["data_offset"] % 64 == 0
        header = data[lay["header_offset"] : lay["data_offset"]]
        text = header.rstrip(b" ")
        assert text.endswith(b"}") and b"__metadata__" not in header
        assert set(json.loads(text)) == set(tensors)


# ---------------------------------------------------------------- section 8: sites


def _site_case(tmp_path: Path, site: dict[str, Any], **model: Any) -> str:
    manifest, tensors = factories.vector_manifest(hidden=8)
    manifest["models"]["m"].update(model)
    manifest["vectors"][0]["sites"][0]["site"] = site
    return open_code(tmp_path, assemble(manifest, tensors=tensors))


@pytest.mark.req("R-56")
def test_site_layer_range(tmp_path: Path) -> None:
    """[R-56] a layer ≥ num_layers, or stack encoder without num_encoder_layers, is site."""
    assert _site_case(tmp_path, factories.site(4)) == "site"
    assert _site_case(tmp_path, factories.site(1, stack="encoder")) == "site"
    assert _site_case(tmp_path, factories.site(2, stack="encoder"), num_encoder_layers=2) == "site"


@pytest.mark.req("R-57")
def test_site_listed_once(tmp_path: Path) -> None:
    """[R-57] a vector with the same site twice is site."""
    manifest, tensors = factories.vector_manifest(layers=(1, 2))
    manifest["vectors"][0]["sites"][1]["site"] = factories.site(1)
    assert open_code(tmp_path, assemble(manifest, tensors=tensors)) == "site"


@pytest.mark.req("R-58")
def test_resid_pre_only_at_layer_zero(tmp_path: Path) -> None:
    """[R-58] resid_pre at layer 1 is site; at layer 0 it is valid."""
    assert _site_case(tmp_path, factories.site(1, "resid_pre")) == "site"
    manifest, tensors = factories.vector_manifest(hidden=8)
    manifest["vectors"][0]["sites"][0]["site"] = factories.site(0, "resid_pre")
    assert package.open(put(tmp_path, assemble(manifest, tensors=tensors)))


@pytest.mark.req("R-59")
def test_cross_attention_only_in_seq2seq_decoder(tmp_path: Path) -> None:
    """[R-59] cross_attn_out needs the decoder of a model with num_encoder_layers."""
    assert _site_case(tmp_path, factories.site(1, "cross_attn_out")) == "site"
    point = factories.site(1, "cross_attn_out", stack="encoder")
    assert _site_case(tmp_path, point, num_encoder_layers=2) == "site"
    manifest, tensors = factories.vector_manifest(hidden=8)
    manifest["models"]["m"]["num_encoder_layers"] = 2
    manifest["vectors"][0]["sites"][0]["site"] = factories.site(1, "cross_attn_out")
    assert package.open(put(tmp_path, assemble(manifest, tensors=tensors)))


@pytest.mark.req("R-60")
def test_sites_resolve_by_the_table() -> None:
    """[R-60] points resolve to the modules of table 8.2; an unknown block class is architecture."""
    pytest.importorskip("torch")
    from mindvec.loader.sites import resolve
    from tests import tiny_models

    llama = tiny_models.build("llama")
    assert resolve(llama, ("decoder", 1, "attn_out")).path == "model.layers.1.self_attn"
    assert resolve(llama, ("decoder", 0, "resid_pre")).kind == "pre"
    gemma = tiny_models.build("gemma3_text")
    assert resolve(gemma, ("decoder", 1, "mlp_out")).path == "model.layers.1.post_feedforward_layernorm"
    gpt2 = tiny_models.build("gpt2")
    assert resolve(gpt2, ("decoder", 2, "resid_post")).path == "transformer.h.2"
    import torch

    class Odd(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([Odd(), Odd()])

    assert code(lambda: resolve(Wrapper(), ("decoder", 0, "attn_out"))) == "architecture"


@pytest.mark.req("R-61")
def test_binding_checked_before_install(tmp_path: Path) -> None:
    """[R-61] a package bound to another width is model-mismatch, unless relaxed."""
    pytest.importorskip("torch")
    from mindvec.loader.binding import check_binding, model_ref
    from tests import tiny_models

    model = tiny_models.build("llama")
    ref = model_ref(model, source={"kind": "local", "note": "tiny"})
    assert check_binding(model, ref) == []
    assert code(lambda: check_binding(model, {**ref, "hidden_size": 64})) == "model-mismatch"
    assert code(lambda: check_binding(model, {**ref, "config_sha256": bytes(32)})) == "model-mismatch"
    with pytest.warns(UserWarning):
        assert check_binding(model, {**ref, "num_layers": 9}, strict=False)


# ---------------------------------------------------------------- section 9: signatures


def _with_block(data: bytearray, block: bytes) -> bytearray:
    lay = layout(data)
    out = data[: lay["sig_offset"]] + block + container.encode_trailer(len(block))
    return bytearray(out)


@pytest.mark.req("R-62")
def test_signature_block_entries(tmp_path: Path) -> None:
    """[R-62] alg, keyid length, sig length, extra keys and entry count are checked."""
    data = tiny_bytes(tmp_path)
    entry = {"alg": "ed25519", "keyid": bytes(16), "sig": bytes(64)}
    assert package.open(put(tmp_path, _with_block(data, canonical.encode([entry]))))
    for bad in (
        {**entry, "alg": "rsa"},
        {**entry, "keyid": bytes(15)},
        {**entry, "sig": bytes(63)},
        {**entry, "extra": 1},
        {"alg": "ed25519", "keyid": bytes(16)},
    ):
        assert open_code(tmp_path, _with_block(data, canonical.encode([bad]))) == "signature-block"
    many = [{**entry, "keyid": bytes([i]) * 16} for i in range(limits.MAX_SIGNATURES + 1)]
    assert open_code(tmp_path, _with_block(data, canonical.encode(many))) == "signature-block"


@pytest.mark.req("R-63")
def test_signature_entries_sorted_unique(tmp_path: Path) -> None:
    """[R-63] entries out of keyid order, or sharing a keyid, are signature-block."""
    data = tiny_bytes(tmp_path)
    a = {"alg": "ed25519", "keyid": b"\x01" * 16, "sig": bytes(64)}
    b = {**a, "keyid": b"\x02" * 16}
    assert package.open(put(tmp_path, _with_block(data, canonical.encode([a, b]))))
    assert open_code(tmp_path, _with_block(data, canonical.encode([b, a]))) == "signature-block"
    assert (
        open_code(tmp_path, _with_block(data, canonical.encode([a, {**a, "sig": b"\x01" * 64}])))
        == "signature-block"
    )


@pytest.mark.req("R-64")
def test_keyid_binds_the_key(tmp_path: Path) -> None:
    """[R-64] keyid = sha256(domain || pk)[:16]; a signature under another known key's id is bad."""
    seed_key = SecretKey.from_seed(bytes(range(1, 33)))
    assert seed_key.keyid.hex() == "43280d09cc0c43c5bd40048e4ed4495b"
    assert (
        keyid(seed_key.public_key.raw)
        == hashlib.sha256(b"mindvec-ed25519\x00" + seed_key.public_key.raw).digest()[:16]
    )
    alice, bob = key(1), key(2)
    path = put(tmp_path, tiny_bytes(tmp_path))
    raw = container.read_raw(path)
    forged = container.SignatureEntry("ed25519", bob.keyid, alice.sign(pae(raw.manifest_bytes)))
    container.rewrite_signatures(path, [forged])
    assert verify_code(path, trust=store(trust_line(alice), trust_line(bob, "bob"))) == "bad-signature"


@pytest.mark.req("R-65")
def test_pae_test_vector_and_domain_separation(tmp_path: Path) -> None:
    """[R-65] the spec's PAE test vector; a raw or other-type signature of M does not verify."""
    seed_key = SecretKey.from_seed(bytes(range(1, 33)))
    m = bytes.fromhex("81a6666f726d6174a3312e30")
    expected = b"MINDVECv1 43 application/vnd.mindvec.manifest.v1+msgpack 12 " + m
    assert pae(m) == expected
    assert seed_key.sign_manifest(m).sig.hex() == (
        "df9defd21fe7173fb496726bcd8bc8d1508a051c3bcf5ae27564a4100f6fd742"
        "e7d4716d27dafd9be149dd64504da63ade95d64c005248296f4960a874c2e90e"
    )
    alice = key(1)
    trust = store(trust_line(alice))
    path = put(tmp_path, tiny_bytes(tmp_path, signers=[alice]))
    assert verify_code(path, trust=trust) is None
    m_file = container.read_raw(path).manifest_bytes
    for message in (m_file, pae(m_file, b"application/vnd.mindvec.other+msgpack")):
        container.rewrite_signatures(
            path, [container.SignatureEntry("ed25519", alice.keyid, alice.sign(message))]
        )
        assert verify_code(path, trust=trust) == "bad-signature"


@pytest.mark.req("R-66")
def test_strict_verification(tmp_path: Path) -> None:
    """[R-66] a signature with S + L (non-canonical scalar) is bad-signature."""
    alice = key(1)
    path = put(tmp_path, tiny_bytes(tmp_path, signers=[alice]))
    entry = container.read_raw(path).signatures[0]
    s = int.from_bytes(entry.sig[32:], "little") + L_ED25519
    malleated = entry.sig[:32] + s.to_bytes(32, "little")
    container.rewrite_signatures(path, [container.SignatureEntry("ed25519", alice.keyid, malleated)])
    assert verify_code(path, trust=store(trust_line(alice))) == "bad-signature"


@pytest.mark.req("R-67")
def test_cosigning_keeps_prefix(tmp_path: Path) -> None:
    """[R-67] adding a signature changes only the signature block and trailer."""
    path = put(tmp_path, tiny_bytes(tmp_path, signers=[key(1)]))
    before = path.read_bytes()
    raw = container.read_raw(path)
    container.rewrite_signatures(path, [*raw.signatures, key(2).sign_manifest(raw.manifest_bytes)])
    after = path.read_bytes()
    sig_offset = layout(before)["sig_offset"]
    assert after[:sig_offset] == before[:sig_offset]
    assert len(container.read_raw(path).signatures) == 2
    assert package.open(path).identity == hashlib.sha256(raw.manifest_bytes).digest()


@pytest.mark.req("R-68")
def test_detached_signature_file(tmp_path: Path) -> None:
    """[R-68] `mindvec sign --detached` writes exactly a signature block next to the file."""
    from mindvec.cli import main

    alice = key(1)
    key_file = alice.save(tmp_path / "alice.key", kdf="min")
    path = put(tmp_path, tiny_bytes(tmp_path))
    before = path.read_bytes()
    assert main(["sign", str(path), "--key", str(key_file), "--detached"]) == 0
    assert path.read_bytes() == before
    sig_file = Path(str(path) + ".sig")
    entries = container.decode_signature_block(sig_file.read_bytes())
    assert sig_file.read_bytes() == container.encode_signature_block(entries)
    assert [e.keyid for e in entries] == [alice.keyid]
    report = verify(path, policy=Policy(trust=store(trust_line(alice)), now=NOW))
    assert report.ok


# ---------------------------------------------------------------- section 10: order of checks


@pytest.mark.req("R-69")
def test_first_failure_decides(tmp_path: Path) -> None:
    """[R-69] with two defects the earlier check's code wins."""
    data = tiny_bytes(tmp_path)
    lay = layout(data)
    both = bytearray(data)
    both[32 + lay["manifest_len"]] = 1  # padding (step 1, late)
    struct.pack_into("<I", both, 12, 1)  # flags (step 1, early)
    assert open_code(tmp_path, both) == "flags"
    alice = key(1)
    signed = tiny_bytes(tmp_path, signers=[alice])
    broken = bytearray(signed)
    broken[40] ^= 0x01  # manifest byte: bad signature (2) and maybe non-canonical (3)
    broken[layout(signed)["data_offset"]] ^= 0x01  # tensor digest (6)
    assert verify_code(put(tmp_path, broken), trust=store(trust_line(alice))) == "bad-signature"
    manifest, tensors = factories.vector_manifest()
    digest_and_schema = bytearray(assemble({**manifest, "colour": 1}, tensors=tensors))
    digest_and_schema[layout(digest_and_schema)["data_offset"]] ^= 0x01
    assert open_code(tmp_path, digest_and_schema) == "schema"


@pytest.mark.req("R-70")
def test_open_reads_no_tensor_data(tmp_path: Path) -> None:
    """[R-70] open() passes with corrupted tensor bytes; the digest fails on first access."""
    manifest, tensors = factories.vector_manifest(layers=(1, 2))
    data = bytearray(package.write(tmp_path / "two.mindvec", manifest, tensors).read_bytes())
    opened_header = package.open(put(tmp_path, data, "ok.mindvec")).header
    first = min(opened_header.tensors.values(), key=lambda i: i.begin)
    data[layout(data)["data_offset"] + first.begin] ^= 0x01
    opened = package.open(put(tmp_path, data))
    other = next(n for n in opened.tensor_names if n != first.name)
    assert opened.tensor(other).shape == (8,)
    assert code(lambda: opened.tensor(first.name)) == "digest-mismatch"


# ---------------------------------------------------------------- section 11: trust


@pytest.mark.req("R-71")
def test_bad_signature_and_digest_never_allowed(tmp_path: Path) -> None:
    """[R-71] allow_unsigned/allow_untrusted accept only no-signature/untrusted-key."""
    from mindvec.policy import Policy
    from mindvec.verification import enforce

    alice = key(1)
    trust = store(trust_line(alice))
    good = tiny_bytes(tmp_path, signers=[alice])
    bad_sig = bytearray(good)
    bad_sig[layout(good)["sig_offset"] + 50] ^= 0x01  # inside the 64 signature bytes
    bad_data = bytearray(good)
    bad_data[layout(good)["data_offset"]] ^= 0x01
    for data, expected in ((bad_sig, "bad-signature"), (bad_data, "digest-mismatch")):
        path = put(tmp_path, data)
        call = functools.partial(
            enforce, path, Policy(trust=trust, allow_unsigned=True, allow_untrusted=True, now=NOW)
        )
        assert code(call) == expected
    unsigned = put(tmp_path, tiny_bytes(tmp_path), "unsigned.mindvec")
    assert (
        code(lambda: enforce(unsigned, policy=Policy(trust=trust, allow_untrusted=True, now=NOW)))
        == "no-signature"
    )
    assert enforce(unsigned, policy=Policy(trust=trust, allow_unsigned=True, now=NOW)).allowed
    stranger = put(tmp_path, tiny_bytes(tmp_path, signers=[key(9)]), "stranger.mindvec")
    assert (
        code(lambda: enforce(stranger, policy=Policy(trust=trust, allow_unsigned=True, now=NOW)))
        == "untrusted-key"
    )


@pytest.mark.req("R-72")
def test_applier_runs_policy(tmp_path: Path) -> None:
    """[R-72] steer() refuses an unsigned package unless allow_unsigned is set."""
    pytest.importorskip("torch")
    from mindvec.loader.binding import model_ref
    from mindvec.loader.steer import steer
    from tests import tiny_models

    model = tiny_models.build("llama")
    manifest = factories.minimal_manifest(m=model_ref(model, source={"kind": "local", "note": "tiny"}))
    manifest["vectors"] = [factories.vector_entry(layers=(1,))]
    path = package.write(tmp_path / "s.mindvec", manifest, {"v.1": np.ones(32, np.float32)})
    empty = tmp_path / "empty_store"
    empty.write_text("")
    assert code(lambda: steer(model, path, policy=Policy(trust=empty))) == "no-signature"
    handle = steer(model, path, policy=Policy(trust=empty, allow_unsigned=True))
    assert handle.active
    handle.remove()


@pytest.mark.req("R-73")
def test_validity_window_uses_now(tmp_path: Path) -> None:
    """[R-73] the same key is expired before valid-after and trusted inside its window."""
    alice = key(1)
    trust = store(trust_line(alice, options="valid-after=20260101Z,valid-before=20270101Z"))
    path = put(tmp_path, tiny_bytes(tmp_path, signers=[alice]))
    assert verify(path, policy=Policy(trust=trust, now=NOW)).ok
    assert (
        verify(path, policy=Policy(trust=trust, now=datetime(2025, 6, 1, tzinfo=timezone.utc))).error.code
        == "expired"
    )  # type: ignore[union-attr]
    assert verify(path, policy=Policy(trust=trust, now="20270101")).error.code == "expired"  # type: ignore[union-attr]


@pytest.mark.req("R-74")
def test_revoked_key_never_counts(tmp_path: Path) -> None:
    """[R-74] a revoked key's signature gives revoked even beside a trusted one."""
    alice, mallory = key(1), key(2)
    trust = store(
        trust_line(alice), trust_line(mallory, "mallory"), "@revoked " + mallory.public_key.to_line()
    )
    path = put(tmp_path, tiny_bytes(tmp_path, signers=[alice, mallory]))
    assert verify_code(path, trust=trust) == "revoked"
    only = put(tmp_path, tiny_bytes(tmp_path, signers=[mallory]), "m.mindvec")
    assert verify_code(only, trust=trust) == "revoked"


@pytest.mark.req("R-75")
def test_rollback(tmp_path: Path) -> None:
    """[R-75] lower version, or same version with other content, is rollback; ids are separate."""
    alice = key(1)
    trust = store(trust_line(alice))
    state = State(tmp_path / "state.json")

    def signed(version: int, pid: str = "test/minimal", desc: str = "d") -> Path:
        manifest, tensors = factories.vector_manifest()
        manifest["package"].update(version=version, id=pid, description=desc)
        return package.write(
            tmp_path / f"{pid.replace('/', '_')}-{version}-{desc}.mindvec", manifest, tensors, signers=[alice]
        )

    assert verify_code(signed(3), trust=trust, state=state) is None
    assert verify_code(signed(2), trust=trust, state=state) == "rollback"
    assert verify_code(signed(3, desc="other"), trust=trust, state=state) == "rollback"
    assert verify_code(signed(1, pid="test/other"), trust=trust, state=state) is None
    assert verify_code(signed(4), trust=trust, state=state) is None


@pytest.mark.req("R-76")
def test_shown_text_is_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """[R-76] inspect shows signed strings with ANSI and bidi controls escaped."""
    from mindvec.cli import main

    manifest, tensors = factories.vector_manifest()
    manifest["package"]["description"] = "red \x1b[31mALERT\x1b[0m \u202eevil"
    path = package.write(tmp_path / "esc.mindvec", manifest, tensors)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[31mALERT" in out and "\\u202e" in out


@pytest.mark.req("R-77")
def test_trust_store_grammar(tmp_path: Path) -> None:
    """[R-77] a line that breaks the grammar rejects the store with trust-store and its line number."""
    alice = key(1)
    good = trust_line(alice, options='packages="acme/*,test/*"')
    assert TrustStore.parse("# c\n\n" + good + "\n").entries[0].packages == ("acme/*", "test/*")
    for bad in (
        "alice " + alice.public_key.to_line().replace("ed25519", "rsa"),
        trust_line(alice, options="colour=red"),
        trust_line(alice, options="valid-after=2026x"),
        trust_line(alice, options='packages="a,b'),
        "@banned " + alice.public_key.to_line(),
    ):
        path = tmp_path / "allowed_signers"
        path.write_text("# first\n" + bad + "\n")
        with pytest.raises(MindvecError) as info:
            TrustStore.load(path)
        assert info.value.code == "trust-store" and "line 2" in info.value.message


@pytest.mark.req("R-78")
def test_state_writes_are_locked(tmp_path: Path) -> None:
    """[R-78] concurrent state and trust-store writers lose nothing."""
    state = State(tmp_path / "state.json")
    store_path = tmp_path / "allowed_signers"

    def work(i: int) -> None:
        state.record(f"pkg/{i}", i + 1, bytes([i]) * 32)
        with TrustStore.edit(store_path) as ts:
            ts.add(TrustStore.parse(trust_line(key(i + 1), f"p{i}")).entries[0])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(state.seen(f"pkg/{i}") is not None for i in range(8))
    assert len(TrustStore.load(store_path).entries) == 8
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


@pytest.mark.req("R-79")
def test_rotation_needs_both_signatures(tmp_path: Path) -> None:
    """[R-79] a rotation record with a broken signature is bad-signature and moves nothing."""
    from mindvec.rotation import RotationRecord

    old, new = key(1), key(2)
    record = RotationRecord.create(old, new, created="2026-01-01T00:00:00Z")
    ts = store(trust_line(old))
    forged = RotationRecord(record.body, record.old_sig, new.sign(b"something else"))
    assert code(lambda: ts.apply_rotation(forged)) == "bad-signature"
    assert ts.entries[0].key == old.public_key
    assert ts.apply_rotation(record) == 1 and ts.entries[0].key == new.public_key


# ---------------------------------------------------------------- section 12: versions and extensions


@pytest.mark.req("R-80")
def test_higher_minor_relaxes_closed_objects(tmp_path: Path) -> None:
    """[R-80] an unknown key is accepted in a later minor (1.2) but is schema in 1.0; known rules
    still apply."""
    manifest, tensors = factories.vector_manifest()
    future = {**manifest, "colour": "red"}
    future["package"] = {**manifest["package"], "origin": "later"}
    assert package.open(put(tmp_path, assemble(future, tensors=tensors, version=(1, 2))))
    assert open_code(tmp_path, assemble(future, tensors=tensors)) == "schema"
    still = {**future, "vectors": [{**manifest["vectors"][0], "scale_range": [2.0, 1.0]}]}
    assert open_code(tmp_path, assemble(still, tensors=tensors, version=(1, 2))) == "value"


def _imported(manifest: dict[str, Any]) -> dict[str, Any]:
    vectors = [{**manifest["vectors"][0], "method": {"kind": "imported"}}]
    source = {"format": "llamacpp", "tool": "llama.cpp", "sha256": hashlib.sha256(b"f").digest()}
    return {**manifest, "vectors": vectors, "provenance": {**manifest["provenance"], "imported": source}}


@pytest.mark.req("R-93")
def test_a_package_uses_nothing_newer_than_it_declares(tmp_path: Path) -> None:
    """[R-93] the writer declares the lowest minor that holds the content (1.0 without 1.1 keys,
    1.1 with them); a 1.0 package that uses a 1.1 key or value is schema, and so is each one."""
    manifest, tensors = factories.vector_manifest()
    assert mindvec.write(tmp_path / "plain.mindvec", manifest, tensors)
    assert package.open(tmp_path / "plain.mindvec").version == (1, 0)
    newer = _imported(manifest)
    mindvec.write(tmp_path / "new.mindvec", newer, tensors)
    assert package.open(tmp_path / "new.mindvec").version == (1, 1)
    assert open_code(tmp_path, assemble(newer, tensors=tensors, version=(1, 0))) == "schema"
    assert package.open(put(tmp_path, assemble(newer, tensors=tensors, version=(1, 1))))
    inputs = {"vector": {"identity": bytes(32), "verdict": "unsigned", "signers": []}}
    only_inputs = {**manifest, "provenance": {**manifest["provenance"], "inputs": inputs}}
    assert open_code(tmp_path, assemble(only_inputs, tensors=tensors, version=(1, 0))) == "schema"
    assert package.open(put(tmp_path, assemble(only_inputs, tensors=tensors, version=(1, 1))))


@pytest.mark.req("R-96")
def test_an_imported_vector_names_its_source_file(tmp_path: Path) -> None:
    """[R-96] method kind imported needs provenance.imported."""
    manifest, tensors = factories.vector_manifest()
    newer = _imported(manifest)
    assert package.open(put(tmp_path, assemble(newer, tensors=tensors, version=(1, 1))))
    bare = {**newer, "provenance": manifest["provenance"]}
    assert open_code(tmp_path, assemble(bare, tensors=tensors, version=(1, 1))) == "schema"


@pytest.mark.req("R-81")
def test_unknown_non_critical_extension_ignored(tmp_path: Path) -> None:
    """[R-81] an unknown extension not listed in critical is ignored."""
    manifest, tensors = factories.vector_manifest()
    manifest["extensions"] = {"org.example.colour": {"hue": 3}}
    path = package.write(tmp_path / "ext.mindvec", manifest, tensors)
    assert package.open(path).manifest["extensions"] == {"org.example.colour": {"hue": 3}}


# ---------------------------------------------------------------- section 14: writers


@pytest.mark.req("R-83")
def test_writer_refuses_what_readers_reject(tmp_path: Path) -> None:
    """[R-83] the writer raises the reader's code and leaves no file."""
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = []
    manifest, tensors = factories.vector_manifest()
    manifest["vectors"][0]["sites"][0]["site"] = factories.site(1, "resid_pre")
    cases.append((manifest, tensors, "site"))
    manifest, tensors = factories.vector_manifest()
    cases.append(({**manifest, "colour": 1}, tensors, "schema"))
    manifest, tensors = factories.vector_manifest()
    cases.append((manifest, {**tensors, "unused": np.ones(8, np.float32)}, "tensor-reference"))
    for i, (m, t, expected) in enumerate(cases):
        target = tmp_path / f"refused{i}.mindvec"
        assert code(functools.partial(package.write, target, m, t)) == expected
        assert not target.exists()


@pytest.mark.req("R-84")
def test_writer_is_deterministic(tmp_path: Path) -> None:
    """[R-84] identical inputs give identical bytes, also with a signer."""
    manifest, tensors = factories.full_manifest()
    a = package.write(tmp_path / "a.mindvec", manifest, tensors, signers=[key(1)]).read_bytes()
    b = package.write(
        tmp_path / "b.mindvec", factories.clone(manifest), dict(tensors), signers=[key(1)]
    ).read_bytes()
    assert a == b


@pytest.mark.req("R-85")
def test_writer_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """[R-85] an interrupt during the write leaves neither the file nor a temporary."""
    import os

    manifest, tensors = factories.vector_manifest()
    target = tmp_path / "atomic.mindvec"

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        package.write(target, manifest, tensors)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    package.write(target, manifest, tensors)
    before = target.read_bytes()
    monkeypatch.setattr(os, "fsync", interrupted)
    manifest["package"]["description"] = "changed"
    with pytest.raises(KeyboardInterrupt):
        package.write(target, manifest, tensors)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["atomic.mindvec"]


def test_unused_helpers_are_consistent() -> None:
    """The hand assembler produces what the writer produces for valid input."""
    manifest, tensors = factories.vector_manifest()
    chunks = package.encode_package(manifest, tensors)
    assert b"".join(chunks) == assemble(manifest, tensors=tensors)
    assert mf.FORMAT_VERSION == (1, 1) and isinstance(TensorData, type) and mindvec.open is package.open
