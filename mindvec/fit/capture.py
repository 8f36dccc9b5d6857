"""One forward pass that reads sites: the primitive under every producer.

Inputs go to the device of the input embedding; each site's activations are copied as float32
and stay on the device the model put them on (under a device map, each layer's own device).
With an index, only the rows asked for are copied. The forward pass stops right after the
deepest requested block, so reading early layers does not pay for the rest of the model.
Massive activations (attention sinks) are found on the device with one host copy per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from mindvec.errors import UsageError
from mindvec.fit.device import check_range, input_device
from mindvec.fit.pairing import Encoded
from mindvec.loader.sites import attach
from mindvec.site import Site, as_site

#: tokens with a norm above this multiple of the site's median norm are dropped from fits
OUTLIER_FACTOR = 8.0


class _Stop(Exception):  # noqa: N818 - internal control flow, never escapes
    pass


@dataclass
class _Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lengths: list[int]


def pad(encs: Sequence[Encoded], device: torch.device | str = "cpu", pad_id: int = 0) -> _Batch:
    """Right-padded ids and mask, built on the host and sent to ``device`` once."""
    longest = max(len(e) for e in encs)
    ids = np.full((len(encs), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(encs), longest), dtype=np.int64)
    for row, e in enumerate(encs):
        ids[row, : len(e)] = e.input_ids
        mask[row, : len(e)] = 1
    return _Batch(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device), [len(e) for e in encs])


Index = tuple[torch.Tensor, torch.Tensor]


def forward_capture(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    sites: Sequence[Site],
    *,
    index: Index | None = None,
    check: bool = True,
) -> dict[Site, torch.Tensor]:
    """One forward pass; a float32 copy of each site, left on the device the model put it on.

    Inputs move to the input embedding's device. Without ``index`` each capture is
    ``[batch, seq, hidden]``; with ``index = (rows, positions)`` (1-D long tensors) it is
    ``[len(rows), hidden]``, the gathered rows only, so nothing else is copied.
    ``check`` refuses Inf/NaN activations and warns near fp16's limit (one scalar per site).
    """
    keys = [as_site(s) for s in sites]
    if not keys:
        raise UsageError("argument", "no sites to capture; pass at least one site")
    out: dict[Site, torch.Tensor] = {}
    last = max(k.layer for k in keys)
    stop_ready = all(k.stack == "decoder" for k in keys)
    deepest = [k for k in keys if k.layer == last]
    on_device: dict[torch.device, Index] = {}

    def observer(key: Site) -> Callable[[torch.Tensor], None]:
        def fn(t: torch.Tensor) -> None:
            h = t.detach()
            if check:
                check_range(h, key)
            if index is None:
                out[key] = h.to(torch.float32, copy=True)
            else:
                if h.device not in on_device:
                    on_device[h.device] = (index[0].to(h.device), index[1].to(h.device))
                rows, pos = on_device[h.device]
                out[key] = h[rows, pos].to(torch.float32)
            if stop_ready and key.layer == last and all(d in out for d in deepest):
                raise _Stop

        return fn

    dev = input_device(model)
    handles = [attach(model, k, observer(k)) for k in keys]
    try:
        with torch.no_grad():
            base = getattr(model, "base_model", model)
            try:
                base(input_ids=input_ids.to(dev), attention_mask=attention_mask.to(dev), use_cache=False)
            except _Stop:
                pass
    finally:
        for h in handles:
            h.remove()
    missing = [str(k) for k in keys if k not in out]
    if missing:
        raise UsageError("site", f"the forward pass never reached {', '.join(missing)}; check the sites")
    return out


def flat_index(positions: Sequence[Sequence[int]]) -> tuple[Index, npt.NDArray[np.int64]]:
    """``(rows, positions)`` to gather, and each gathered row's text slot (host array)."""
    counts = np.array([len(p) for p in positions], dtype=np.int64)
    slot = np.repeat(np.arange(len(positions), dtype=np.int64), counts)
    pos = np.concatenate([np.asarray(p, dtype=np.int64) for p in positions]) if len(slot) else slot
    return (torch.from_numpy(slot), torch.from_numpy(pos)), slot


def ordinary_rows(
    blocks: Sequence[torch.Tensor], slot: npt.NDArray[np.int64], factor: float | None
) -> npt.NDArray[np.bool_]:
    """Rows whose norm is at most ``factor`` x the batch median at every block (host mask).

    A text whose every row is flagged keeps them all. One device-to-host copy per batch.
    """
    m = len(slot)
    if factor is None or m == 0 or not blocks:
        return np.ones(m, dtype=bool)
    ok: torch.Tensor | None = None
    for x in blocks:
        norms = torch.linalg.vector_norm(x, dim=1)
        here = norms <= factor * norms.median()
        ok = here if ok is None else ok & here.to(ok.device)
    assert ok is not None
    keep = ok.cpu().numpy()
    kept_per_text = np.bincount(slot, weights=keep, minlength=int(slot.max()) + 1)
    keep |= kept_per_text[slot] == 0
    return keep


def segments(x: torch.Tensor, slot: torch.Tensor, n: int, how: str) -> torch.Tensor:
    """Per text: the mean of its rows, or its last row (rows of a text are contiguous)."""
    if how == "last":
        ends = torch.zeros(n, dtype=torch.long, device=x.device)
        ends.scatter_reduce_(0, slot, torch.arange(len(slot), device=x.device), reduce="amax")
        return x[ends]
    sums = torch.zeros(n, x.shape[1], dtype=torch.float64, device=x.device)
    sums.index_add_(0, slot, x.to(torch.float64))
    counts = torch.bincount(slot, minlength=n).to(torch.float64).clamp_min(1)
    return (sums / counts[:, None]).to(torch.float32)
