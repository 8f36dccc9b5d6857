"""Devices and dtypes: typed errors for missing devices, out of memory and fp16 overflow; bf16/fp16 fits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from fit_helpers import WORDS, tiny_llama, word_tokenizer

from mindvec.errors import UsageError
from mindvec.fit.activations import collect, layer_sites
from mindvec.fit.device import check_range, device_errors, input_device, parse_dtype, resolve_device
from mindvec.fit.models import LoadedModel
from mindvec.fit.pipeline import collect_state, finish_state

TEXTS = [" ".join(WORDS[(i * 7 + j) % 20] for j in range(12)) + " ." for i in range(80)]


def test_dtype_and_device_names() -> None:
    assert parse_dtype("bf16") is torch.bfloat16 and parse_dtype("fp32") is torch.float32
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(UsageError, match="fp32, fp16 or bf16"):
        parse_dtype("int8")
    with pytest.raises(UsageError) as err:
        resolve_device("tpu")
    assert err.value.code == "device"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA (CI)")
def test_cuda_on_a_machine_without_it_is_a_typed_error() -> None:
    with pytest.raises(UsageError, match="--device cpu") as err:
        resolve_device("cuda")
    assert err.value.code == "device"


def test_out_of_memory_becomes_advice() -> None:
    with pytest.raises(UsageError, match="--batch-size \\(now 16\\)") as err:
        with device_errors("the paired pass", 16):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert err.value.code == "device" and isinstance(err.value.__cause__, torch.OutOfMemoryError)


def test_fp16_overflow_is_refused_and_near_overflow_warns() -> None:
    with pytest.raises(UsageError, match="bf16") as err:
        check_range(torch.tensor([1.0, float("inf")], dtype=torch.float16), "decoder.1.resid_post")
    assert err.value.code == "device"
    with pytest.warns(RuntimeWarning, match="65504"):
        check_range(torch.tensor([40000.0], dtype=torch.float16), "decoder.1.resid_post")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_range(torch.tensor([40000.0], dtype=torch.bfloat16), "x")  # bf16 has the range of fp32


def test_a_real_fp16_overflow_stops_collection() -> None:
    model, tok = tiny_llama().to(torch.float16), word_tokenizer()
    with torch.no_grad():
        mlp = model.model.layers[0].mlp
        for proj in (mlp.gate_proj, mlp.up_proj, mlp.down_proj):
            proj.weight.fill_(100.0)  # finite weights whose MLP products leave fp16's range
    with pytest.raises(UsageError, match="overflowed") as err:
        collect(model, tok, TEXTS[:4], layer_sites(model, [1]), progress=False)
    assert err.value.code == "device"


def test_inputs_go_to_the_embedding_device() -> None:
    model = tiny_llama()
    assert input_device(model) == model.model.embed_tokens.weight.device


def _fit(dtype: torch.dtype) -> np.ndarray:
    a, b = tiny_llama(seed=0).to(dtype), tiny_llama(hidden=48, seed=1).to(dtype)
    tok = word_tokenizer()
    src, tgt = LoadedModel("a", a, tok, {}), LoadedModel("b", b, tok, {})
    state = collect_state(src, tgt, TEXTS, [(1, 2)], progress=False, batch_size=8)
    [mf] = finish_state(state)
    return mf.report.mapping.weight


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models_fit_close_to_fp32(dtype: torch.dtype) -> None:
    w32, wh = _fit(torch.float32), _fit(dtype)
    rel = np.linalg.norm(wh - w32) / np.linalg.norm(w32)
    assert rel < (0.15 if dtype is torch.bfloat16 else 0.05), rel
