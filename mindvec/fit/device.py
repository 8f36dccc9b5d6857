"""Where a producer runs: device and dtype choice, exact fp32 products, and device failures.

Models can sit on the CPU, on one CUDA device or across several (``device_map="auto"``); inputs
go to the device of the input embedding, and activations stay where the model put them until
they are reduced. Two failures that a GPU user meets get typed errors with advice instead of a
traceback from deep inside torch: running out of device memory, and fp16 activations that
overflow (Gemma 3's residual stream reaches about 1e5, above fp16's 65504).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from mindvec.errors import UsageError

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}
#: fp16 activations above this fraction of the largest fp16 number draw a warning
FP16_HEADROOM = 0.5


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise UsageError("argument", f"unknown dtype {name!r}; use fp32, fp16 or bf16")
    return DTYPES[name]


def resolve_device(name: str | None) -> str:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; checked here."""
    if name in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError("device", f"--device {name}: this machine has no CUDA device; use --device cpu")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise UsageError(
                "device", f"--device {name}: there are {torch.cuda.device_count()} CUDA devices (cuda:0...)"
            )
        return name
    raise UsageError("device", f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")


def input_device(model: torch.nn.Module) -> torch.device:
    """The device that token ids must be on: the input embedding's (first shard under a device map)."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    weight = getattr(emb, "weight", None)
    if isinstance(weight, torch.Tensor):
        return weight.device
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """fp32 matmuls in full precision: TF32 off for the statistics' products (DESIGN 8)."""
    matmul = torch.backends.cuda.matmul
    old = matmul.fp32_precision
    matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision = old


@contextlib.contextmanager
def device_errors(what: str, batch_size: int | None = None) -> Iterator[None]:
    """Turn running out of device memory into a typed error that says what to change."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        hint = f"use a smaller --batch-size (now {batch_size})" if batch_size else "use a smaller batch"
        raise UsageError(
            "device",
            f"out of device memory during {what}; {hint}, fewer --max-tokens, or --device-map auto "
            "to spread the model over several devices",
        ) from exc


def check_range(t: torch.Tensor, site: Any) -> None:
    """Refuse non-finite activations; warn when fp16 activations come near fp16's limit.

    Costs one device-to-host copy of two scalars per captured site and batch.
    """
    if t.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return
    peak = float(t.detach().abs().amax()) if t.numel() else 0.0
    if peak != peak or peak == float("inf"):
        advice = (
            "run the model in bf16 or fp32 (--dtype bf16)" if t.dtype == torch.float16 else "check the model"
        )
        raise UsageError("device", f"activations at {site} overflowed to Inf/NaN in {t.dtype}; {advice}")
    if t.dtype == torch.float16 and peak > FP16_HEADROOM * float(torch.finfo(torch.float16).max):
        warnings.warn(
            f"activations at {site} reach {peak:.0f}, near fp16's limit of 65504; results may overflow: "
            "prefer --dtype bf16",
            RuntimeWarning,
            stacklevel=3,
        )
