"""Embedded safetensors payload: the strict header parser and the re-padding writer."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
from safetensors.numpy import save

import mindvec
from mindvec import canonical
from mindvec import payload as pl
from mindvec.errors import MalformedError, MindvecError
from tests import factories


def _code(payload: bytes) -> str:
    with pytest.raises(MindvecError) as info:
        pl.parse_payload(payload)
    return info.value.code


def _entry(
    dtype: str = "F32", shape: list[int] | None = None, offsets: list[int] | None = None
) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape if shape is not None else [2], "data_offsets": offsets or [0, 8]}


@pytest.mark.req("R-41", "R-55")
def test_build_payload_aligns_and_stays_safetensors() -> None:
    """Writer payload: N = 56 (mod 64), space padding, still valid safetensors. [R-41] [R-55]"""
    tensors = {
        "b": pl.to_tensor_data(np.arange(3, dtype=np.float16)),
        "a": pl.to_tensor_data(np.ones((2, 2), dtype=np.float64)),
        "c": pl.TensorData.bf16(np.array([0x3F80, 0xC000], dtype=np.uint16)),
    }
    payload = pl.build_payload(tensors)
    header = pl.parse_payload(payload)
    assert (8 + header.header_len) % 64 == 0
    assert b"__metadata__" not in header.header_bytes
    assert header.header_bytes.rstrip(b" ").endswith(b"}")
    loaded = safetensors.deserialize(payload)
    assert sorted(name for name, _ in loaded) == ["a", "b", "c"]
    assert set(header.tensors) == {"a", "b", "c"}
    assert pl.build_payload(tensors) == payload


@pytest.mark.req("R-41")
def test_plain_safetensors_header_length_rejected() -> None:
    """safetensors alone pads to 8, not to our 56 (mod 64). [R-41]"""
    data = save({"weights": np.zeros(3, dtype=np.float32)})
    (size,) = struct.unpack_from("<Q", data)
    assert (size + 8) % 64 != 0
    assert _code(data) == "payload"


@pytest.mark.req("R-40")
def test_header_length_bounds() -> None:
    """N over the limit or beyond the payload is `bounds`, checked before reading. [R-40]"""
    assert _code(struct.pack("<Q", 100_000_001) + bytes(64)) == "bounds"
    assert _code(struct.pack("<Q", 2**64 - 1) + bytes(64)) == "bounds"
    assert _code(struct.pack("<Q", 120) + b"{}" + bytes(62)) == "bounds"


@pytest.mark.req("R-43")
@pytest.mark.parametrize(
    "header",
    [
        ' {"x":' + json.dumps(_entry()) + "}",  # leading space
        '{"x":' + json.dumps(_entry()) + "}\n",  # newline padding
        '{"x":' + json.dumps(_entry()) + "}\t",
        '{"x":' + json.dumps(_entry()) + "} x",
        '{"x":' + json.dumps(_entry()) + "}{}",
        '{"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}',
        '{"x":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}',
        '{"x":{"dtype":"F32","shape":[NaN],"data_offsets":[0,8]}}',
        '{"x":' + json.dumps(_entry()),
        "[]",
        b'{"\xff":1}',
    ],
)
def test_header_text_rules(header: str | bytes) -> None:
    """Starts with '{', UTF-8, one object, integers only, then spaces only. [R-43]"""
    assert _code(factories.raw_payload(header, bytes(8))) == "payload"


@pytest.mark.req("R-44")
def test_duplicate_keys_in_header() -> None:
    """A repeated key at any level of the header is `duplicate-key`. [R-44]"""
    entry = json.dumps(_entry())
    assert _code(factories.raw_payload('{"x":' + entry + ',"x":' + entry + "}", bytes(8))) == "duplicate-key"
    nested = '{"x":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    assert _code(factories.raw_payload(nested, bytes(8))) == "duplicate-key"


@pytest.mark.req("R-45")
def test_metadata_forbidden() -> None:
    """`__metadata__` must be absent. [R-45]"""
    assert _code(factories.raw_payload({"__metadata__": {"a": "b"}, "x": _entry()}, bytes(8))) == "payload"
    assert _code(factories.raw_payload({"__metadata__": {}}, b"")) == "payload"


@pytest.mark.req("R-46")
def test_tensor_count_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """More than MAX_TENSORS entries is `bounds`. [R-46]"""
    monkeypatch.setattr(pl, "MAX_TENSORS", 3)
    header = {f"t{i}": _entry("F32", [0], [0, 0]) for i in range(4)}
    assert _code(factories.raw_payload(header)) == "bounds"


@pytest.mark.req("R-47")
@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F32", "shape": [2]},
        {**_entry(), "extra": 1},
        _entry(shape=[-2]),
        _entry(shape=[True, 2]),
        {"dtype": 1, "shape": [2], "data_offsets": [0, 8]},
        {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 9]},
        {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]},
        {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]},
        {"dtype": "F32", "shape": [2**64], "data_offsets": [0, 8]},
        "F32",
    ],
)
def test_entry_structure(entry: Any) -> None:
    """Exactly dtype, shape, data_offsets with the right types. [R-47]"""
    assert _code(factories.raw_payload({"x": entry}, bytes(8))) == "payload"


@pytest.mark.req("R-48")
@pytest.mark.parametrize("dtype", ["I32", "U8", "F8_E4M3", "bf16", "BOOL"])
def test_dtype_allowed(dtype: str) -> None:
    """Only F16, BF16, F32, F64. [R-48]"""
    assert (
        _code(factories.raw_payload({"x": _entry(dtype=dtype, shape=[8], offsets=[0, 8])}, bytes(8)))
        == "dtype"
    )


@pytest.mark.req("R-49")
@pytest.mark.parametrize(
    ("shape", "offsets"),
    [([3], [0, 8]), ([2**32, 2**32], [0, 8]), ([2**63, 2**63, 4], [0, 8]), ([0], [0, 8])],
)
def test_size_matches_shape(shape: list[int], offsets: list[int]) -> None:
    """end - begin == numel * itemsize, in arbitrary precision (no overflow). [R-49]"""
    assert _code(factories.raw_payload({"x": _entry(shape=shape, offsets=offsets)}, bytes(8))) == "payload"


@pytest.mark.req("R-50")
@pytest.mark.parametrize(
    ("entries", "data_len"),
    [
        ({"a": ([0, 8]), "b": ([12, 20])}, 20),  # gap
        ({"a": ([0, 8]), "b": ([4, 12])}, 12),  # overlap
        ({"a": ([4, 12]), "b": ([12, 20])}, 20),  # does not start at 0
        ({"a": ([0, 8]), "b": ([8, 16])}, 24),  # bytes after the last tensor
        ({"a": ([0, 8]), "b": ([8, 16])}, 12),  # past the end
    ],
)
def test_contiguous_offsets(entries: dict[str, list[int]], data_len: int) -> None:
    """Sorted by offsets the tensors tile the data section exactly. [R-50]"""
    header = {name: _entry(offsets=offsets) for name, offsets in entries.items()}
    assert _code(factories.raw_payload(header, bytes(data_len))) == "payload"


def test_out_of_order_json_accepted_when_contiguous() -> None:
    """JSON order does not matter; offsets do (the header digest binds the order anyway)."""
    header = {"b": _entry(offsets=[8, 16]), "a": _entry(offsets=[0, 8]), "z": _entry("F64", [0], [16, 16])}
    parsed = pl.parse_payload(factories.raw_payload(header, bytes(16)))
    assert list(parsed.tensors) == ["a", "b", "z"]


def test_to_tensor_data_conversions() -> None:
    big_endian = np.arange(4, dtype=">f4")
    data = pl.to_tensor_data(big_endian)
    assert data.dtype == "F32" and data.data == np.arange(4, dtype="<f4").tobytes()
    strided = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
    assert pl.to_tensor_data(strided).to_numpy().tolist() == strided.tolist()
    with pytest.raises(MindvecError) as info:
        pl.to_tensor_data(np.arange(3))
    assert info.value.code == "dtype"
    with pytest.raises(MindvecError) as info:
        pl.to_tensor_data([1.0, 2.0])
    assert info.value.code == "argument"


def test_bf16_widening_is_exact() -> None:
    bits = np.array([0x3F80, 0xC040, 0x0000, 0x7F80], dtype=np.uint16)
    assert pl.as_float32(bits, "BF16").tolist() == [1.0, -3.0, 0.0, float("inf")]


def test_torch_tensors_written_without_torch_at_import(tmp_path: Path) -> None:
    """torch tensors of every dtype convert exactly; BF16 reads back as its bits."""
    torch = pytest.importorskip("torch")
    manifest, _ = factories.vector_manifest(hidden=4, layers=(0, 1, 2, 3))
    manifest["models"]["m"]["num_layers"] = 4
    for i, entry in enumerate(manifest["vectors"][0]["sites"]):
        entry["site"] = factories.site(layer=i, point="resid_post")
    dtypes = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
    tensors = {f"v.{i}": torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=dt) for i, dt in enumerate(dtypes)}
    path = mindvec.write(tmp_path / "torch.mindvec", manifest, tensors)
    package = mindvec.open(path)
    assert [package.tensor_info(f"v.{i}").dtype for i in range(4)] == ["F16", "BF16", "F32", "F64"]
    for i, dt in enumerate(dtypes):
        values = pl.as_float32(package.tensor(f"v.{i}"), package.tensor_info(f"v.{i}").dtype)
        assert values.tolist() == tensors[f"v.{i}"].to(torch.float32).tolist(), dt


@pytest.mark.req("R-44", "R-45", "R-48", "R-50", "R-51")
@pytest.mark.parametrize(
    ("header", "data", "code"),
    [
        ('{"x":' + json.dumps(_entry()) + ',"x":' + json.dumps(_entry()) + "}", bytes(8), "duplicate-key"),
        ({"__metadata__": {"k": "v"}}, b"", "payload"),
        ({"x": _entry("I32", [2], [0, 8])}, bytes(8), "dtype"),
        ({"a": _entry(offsets=[0, 8]), "b": _entry(offsets=[9, 17])}, bytes(17), "payload"),
        ({"a": _entry(offsets=[0, 8]), "b": _entry(offsets=[4, 12])}, bytes(12), "payload"),
        ({"x": _entry()}, bytes(8), "tensor-reference"),
    ],
)
def test_header_rules_through_open(tmp_path: Path, header: Any, data: bytes, code: str) -> None:
    """The same payload rules through mindvec.open, with a matching signed header digest. [R-44] [R-45]
    [R-48] [R-50] [R-51]"""
    manifest = factories.fill_payload(factories.minimal_manifest(), factories.raw_payload(header, data))
    manifest["payload"]["tensors"] = {}
    blob = factories.assemble(canonical.encode(manifest), factories.raw_payload(header, data))
    with pytest.raises(MindvecError) as info:
        mindvec.open(factories.write_bytes(tmp_path, blob))
    assert info.value.code == code


@pytest.mark.req("R-43")
@pytest.mark.parametrize("offsets", ["[-0,16]", "[0,1.6e1]", "[0,16.0]", "[0,-16]"])
def test_header_numbers_are_plain_integers(offsets: str) -> None:
    """Issue 13, finding 13: mindvec accepted "data_offsets":[-0,8], which the safetensors
    library refuses. The header's numbers are 0 or 1-9 then digits; anything else is `payload`."""
    header = f'{{"t":{{"dtype":"F32","shape":[4],"data_offsets":{offsets}}}}}'.encode()
    with pytest.raises(MalformedError) as err:
        pl.parse_header(header, 8 + len(header) + 16)
    assert err.value.code == "payload"
    ok = header.replace(offsets.encode(), b"[0,16]")
    assert pl.parse_header(ok, 8 + len(ok) + 16).tensors["t"].end == 16


def test_a_huge_rank_costs_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13, finding 2: 30,000 dimensions of 2^64-1 took 4.4 s (the product was computed in
    full). The check stops once the product passes the byte count: counted, not timed."""
    dims = [2**64 - 1] * 30_000
    header = (
        '{"t":{"dtype":"F32","shape":' + str(dims).replace(" ", "") + ',"data_offsets":[0,16]}}'
    ).encode()
    calls: dict[str, int] = {}
    monkeypatch.setattr(pl, "_numel_matches", _counting(pl._numel_matches, calls))
    with pytest.raises(MalformedError) as err:
        pl.parse_header(header, 8 + len(header) + 16)
    assert err.value.code == "payload" and calls["steps"] <= 2  # stopped at the second dimension
    # a zero anywhere makes the product 0, however large the rest: [2^64-1, 0] holds no bytes
    zero = b'{"t":{"dtype":"F32","shape":[18446744073709551615,0],"data_offsets":[0,0]}}'
    assert pl.parse_header(zero, 8 + len(zero)).tensors["t"].shape == (2**64 - 1, 0)


def _counting(fn: Any, calls: dict[str, int]) -> Any:
    """``fn`` with a shape whose iteration counts the dimensions it was made to read."""

    class CountingShape(list):  # type: ignore[type-arg]
        def __iter__(self) -> Any:
            for dim in super().__iter__():
                calls["steps"] = calls.get("steps", 0) + 1
                yield dim

    def wrapped(shape: list[int], nbytes: int, itemsize: int) -> bool:
        return bool(fn(CountingShape(shape), nbytes, itemsize))

    return wrapped
