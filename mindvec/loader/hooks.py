"""Steering operations and token-position selection.

Operations (spec equations), for a hidden state ``h`` at a site, vector ``v``, unit
``v̂ = v/|v|`` and scale ``s``:

- ``add``:         ``h + s·v``
- ``project_out``: ``h - (h·v̂) v̂``
- ``clamp``:       ``h + (s - h·v̂) v̂``

``add`` runs in the model's dtype with ``s·v`` cast once (when installed or when the scale
changes); ``project_out`` and ``clamp`` compute the projection in float32 and cast back.

Positions: ``all``, ``prompt``, ``generated``, ``last_prompt``, or an int ``k`` (steer
tokens whose index counted from the sequence's first real token is ``>= k``, prompt and
generated alike). Padding (attention mask 0) is never steered. The *prompt* is what the
first forward call of a generation holds; under the KV cache later one-token calls add
generated tokens (a call bringing several tokens on top of a cache starts a new prompt
that ends after them, as in a chat continued with its cache), and without the cache
(``use_cache=False``) a call whose ``input_ids`` extend the previous prompt is recognised
as the same generation. A ``ContextRecorder`` hooks the top
model (and the encoder of an encoder-decoder) to learn, for each forward step, the
attention mask, the number of cached positions and the prompt length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mindvec.errors import UsageError
from mindvec.loader.rows import Rows

NAMED_POSITIONS = ("all", "prompt", "generated", "last_prompt")
OPERATIONS = ("add", "project_out", "clamp")
Positions = str | int


def check_positions(positions: Any) -> Positions:
    if isinstance(positions, bool) or not isinstance(positions, (str, int)):
        raise UsageError("argument", f"positions must be one of {NAMED_POSITIONS} or an int >= 0")
    if isinstance(positions, str) and positions not in NAMED_POSITIONS:
        raise UsageError(
            "argument", f"unknown positions {positions!r}; use one of {NAMED_POSITIONS} or an int"
        )
    if isinstance(positions, int) and positions < 0:
        raise UsageError("argument", "a start index counts from the first real token and must be >= 0")
    return positions


@dataclass
class StepContext:
    """What one forward call of the model looks like to a site hook.

    Built from shapes only: ``past`` is the mask's extra length (or the cache's length, which
    a dynamic cache knows from its tensors' shapes), so recording a step never waits on the device.
    """

    mask: Any  # [batch, past+seq] attention mask (1 = real token), or None = all real
    past: int  # positions already in the KV cache
    prompt_len: int  # padded length of this generation's prompt
    cache: dict[Any, Any] = field(default_factory=dict)

    def selection(self, positions: Positions, hidden: Any) -> Any:
        """Bool tensor [batch, seq, 1] of positions to steer, or None for every position.

        Device tensors only: no host sync, so steering does not stall a GPU pipeline and
        traces under ``torch.compile``.
        """
        batch, seq = int(hidden.shape[0]), int(hidden.shape[1])
        key = (positions, batch, seq, hidden.device)
        if key not in self.cache:
            self.cache[key] = self._select(positions, batch, seq, hidden.device)
        return self.cache[key]

    def _real(self, batch: int, seq: int, device: Any) -> Any:
        import torch

        mask = self.mask
        if mask is None or mask.shape[0] != batch or mask.shape[1] < self.past + seq:
            return None
        return mask.to(device=device, dtype=torch.bool)

    def _select(self, positions: Positions, batch: int, seq: int, device: Any) -> Any:
        import torch

        full = self._real(batch, seq, device)  # [batch, past+seq] or None
        stop = self.past + seq
        real = None if full is None else full[:, self.past : stop]
        pos = torch.arange(self.past, stop, device=device).unsqueeze(0)  # [1, seq]
        if positions == "all":
            sel = real
        elif positions in ("prompt", "generated"):
            in_prompt = pos < self.prompt_len
            part = in_prompt if positions == "prompt" else ~in_prompt
            sel = part.expand(batch, seq) if real is None else part & real
        elif positions == "last_prompt":
            if full is None:
                last = torch.full((batch, 1), self.prompt_len - 1, device=device)
            else:
                prompt = full[:, : self.prompt_len].to(torch.int64)
                idx = torch.arange(prompt.shape[1], device=device)
                last = torch.where(prompt.bool(), idx, -1).max(dim=1, keepdim=True).values
            sel = pos == last
        else:
            assert isinstance(positions, int)
            if full is None:
                rank = pos.expand(batch, seq)
            else:
                rank = full.to(torch.int64).cumsum(dim=1)[:, self.past : stop] - 1
            sel = rank >= positions if real is None else (rank >= positions) & real
        return None if sel is None else sel.unsqueeze(-1)


def _past_length(kwargs: dict[str, Any], mask: Any, seq: int) -> int:
    """Cached positions, from shapes: the 2-D mask's extra columns, else the cache's length."""
    if mask is not None and mask.shape[1] >= seq:
        return int(mask.shape[1]) - seq
    cache = kwargs.get("past_key_values")
    if cache is None:
        cache = kwargs.get("cache")  # transformers 5 name
    if cache is not None and hasattr(cache, "get_seq_length"):
        return int(cache.get_seq_length())
    position = kwargs.get("cache_position")  # transformers 4; reading it waits on the device
    if position is not None and position.numel() > 0:
        return int(position.reshape(-1)[0])
    return 0


class ContextRecorder:
    """Records the StepContext of each forward call of one module (top model or encoder).

    Recording is lazy: the pre-hook keeps references to the call's inputs, and the context
    is built the first time a site asks for it in that call.
    """

    def __init__(self, module: Any, *, decoder_of_seq2seq: bool = False, encoder: bool = False) -> None:
        self.module = module
        self.decoder_of_seq2seq = decoder_of_seq2seq
        self.encoder = encoder
        self.current: StepContext | None = None
        self._call: tuple[Any, dict[str, Any]] | None = None
        self._masks: dict[Any, Any] = {}
        self.calls = 0  # forward calls seen: a site hook that fires twice in one call is in a loop
        self._prompt_ids: Any = None
        self._prompt_len = 0
        self._handles = [
            module.register_forward_pre_hook(self._pre, with_kwargs=True, prepend=True),
            module.register_forward_hook(self._post, always_call=True),
        ]

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()
        self.current = None
        self._call = None

    @property
    def in_call(self) -> bool:
        """True while a forward call of the recorded module runs."""
        return self._call is not None

    def real_mask(self, hidden: Any) -> Any:
        """The running call's mask for the current tokens (its last ``seq`` columns), or None.

        Shapes only; what ``positions='all'`` needs, without building the prompt state.
        """
        if self._call is None:
            return None
        _, mask, seq = self._inputs(*self._call)
        if mask is None or getattr(mask, "dim", lambda: 0)() != 2 or seq is None:
            return None
        if mask.shape[0] != hidden.shape[0] or mask.shape[1] < hidden.shape[1]:
            return None
        return mask[:, mask.shape[1] - int(hidden.shape[1]) :]

    def all_selection(self, hidden: Any) -> Any:
        """``real_mask`` as a bool [batch, seq, 1] tensor on ``hidden``'s device, cast once per call
        and device (not once per site), or None when every position is real or unknown."""
        if self._call is None:
            return None
        key = (int(hidden.shape[0]), int(hidden.shape[1]), hidden.device)
        if key not in self._masks:
            real = self.real_mask(hidden)
            self._masks[key] = (
                None if real is None else real.to(device=hidden.device, dtype=bool).unsqueeze(-1)
            )
        return self._masks[key]

    def context(self, hidden: Any) -> StepContext:
        """The context of the running call, or a fresh-prompt context when none is recorded."""
        if self.current is None and self._call is not None:
            self._record(*self._call)
        if self.current is not None:
            return self.current
        return StepContext(None, 0, int(hidden.shape[1]))

    def _inputs(self, args: Any, kwargs: dict[str, Any]) -> tuple[Any, Any, int | None]:
        if self.decoder_of_seq2seq:
            ids = kwargs.get("decoder_input_ids")
            embeds = kwargs.get("decoder_inputs_embeds")
            mask = kwargs.get("decoder_attention_mask")
        else:
            ids = kwargs.get("input_ids", args[0] if args else None)
            embeds = kwargs.get("inputs_embeds")
            mask = kwargs.get("attention_mask")
        ref = ids if ids is not None else embeds
        seq = None if ref is None or getattr(ref, "dim", lambda: 0)() < 2 else int(ref.shape[1])
        return ids, mask, seq

    def _pre(self, _module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self.current = None
        self._call = (args, kwargs)
        self._masks = {}
        self.calls += 1

    def _record(self, args: Any, kwargs: dict[str, Any]) -> None:
        ids, mask, seq = self._inputs(args, kwargs)
        if seq is None:
            return
        if mask is not None and getattr(mask, "dim", lambda: 0)() != 2:
            mask = None
        past = 0 if self.encoder else _past_length(kwargs, mask, seq)
        if past == 0 and not self._continues(ids, seq):
            self._prompt_len = seq
            self._prompt_ids = None if ids is None else ids.detach()
        elif past > 0 and (seq > 1 or self._prompt_len == 0):
            # several new tokens on top of a cache: a new turn's prompt (chat continuation)
            self._prompt_len = past + seq
            self._prompt_ids = None
        self.current = StepContext(mask, past, self._prompt_len)

    def _continues(self, ids: Any, seq: int) -> bool:
        """True when a cache-free call extends the recorded prompt (generate with use_cache=False).

        The one comparison that reads device values: once per forward call, only without a
        KV cache and only for positions other than ``all``.
        """
        old = self._prompt_ids
        if self.encoder or ids is None or old is None or seq <= old.shape[1] or ids.shape[0] != old.shape[0]:
            return False
        return bool((ids[:, : old.shape[1]] == old.to(ids.device)).all())

    def _post(self, *_: Any) -> None:
        self.current = None
        self._call = None


class Operation:
    """One vector acting at one site; ``scale`` can change while installed."""

    def __init__(
        self, kind: str, vector: Any, scale: float, positions: Positions, *, like: Any, rows: Any = None
    ) -> None:
        """``vector``: float32 tensor [hidden]; ``like``: a tensor giving dtype and device;
        ``rows``: a :class:`Rows` (only those rows of a batch), or None for every row."""
        if kind not in OPERATIONS:
            raise UsageError("argument", f"unknown operation {kind!r}; use one of {OPERATIONS}")
        self.kind = kind
        self.positions = check_positions(positions)
        self.rows: Rows | None = rows
        v32 = vector.detach().to(device=like.device, dtype=vector.dtype).float()
        self.vector32 = v32
        self.unit32 = v32 / v32.norm()
        self.dtype = like.dtype
        self._scale = 0.0
        self._delta: Any = None
        self.scale = scale

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        self._scale = float(value)
        # cast once here, not on every call
        self._delta = (self.vector32 * self._scale).to(self.dtype)

    def follow(self, h: Any) -> None:
        """The model was moved or cast after install: re-cast once, not on every call."""
        if self._delta.dtype != h.dtype or self._delta.device != h.device:
            self.dtype = h.dtype
            self.vector32 = self.vector32.to(h.device)
            self.unit32 = self.unit32.to(h.device)
            self.scale = self._scale

    @property
    def delta(self) -> Any:
        """``s·v`` in the model's dtype (``add`` only)."""
        return self._delta

    def apply(self, h: Any, sel: Any) -> Any:
        """The operation on ``h`` [batch, seq, hidden], only where ``sel`` (None = everywhere)."""
        import torch

        self.follow(h)
        if self.kind == "add":
            out = h + self._delta
        else:
            h32 = h.float()
            coef = h32 @ self.unit32
            if self.kind == "project_out":
                out = (h32 - coef.unsqueeze(-1) * self.unit32).to(h.dtype)
            else:
                out = (h32 + (self._scale - coef).unsqueeze(-1) * self.unit32).to(h.dtype)
        return out if sel is None else torch.where(sel, out, h)


def _with_rows(sel: Any, rows: Rows | None, h: Any) -> Any:
    if rows is None:
        return sel
    picked = rows.select(int(h.shape[0]), h.device)
    return picked if sel is None else sel & picked


class SiteOps:
    """The operations at one site, in install order, run by one hook.

    Consecutive ``add`` operations with the same positions commute, so they are summed into
    one delta (in float32, cast once, recomputed only when a scale changes) and added to the
    hidden state once. ``positions='all'`` reads only the mask, with no host sync.
    """

    def __init__(self, recorder: ContextRecorder, on_refuse: Any = None) -> None:
        self.recorder = recorder
        self.ops: list[Operation] = []
        self._fused: dict[tuple[Any, ...], Any] = {}
        self._last_call = -1
        self._on_refuse = on_refuse

    def _check_once_per_call(self) -> None:
        """A block that runs twice in one forward pass (a looped model) has no site: undo and refuse.

        Eager mode only; under torch.compile the configuration check at install stands alone.
        """
        import torch

        if torch.compiler.is_compiling() or not self.recorder.in_call:
            return  # outside a call of the recorded module (say, its base model called alone)
        if self.recorder.calls == self._last_call:
            if self._on_refuse is not None:
                self._on_refuse()
            raise UsageError(
                "architecture",
                "a steered block ran twice in one forward pass (a looped or recurrent-depth model): the "
                "vector would be added on every pass. mindvec removed its hooks; the model is unchanged",
            )
        self._last_call = self.recorder.calls

    def _sum(self, group: list[Operation], h: Any) -> Any:
        key = tuple((id(o), o.scale) for o in group) + (h.dtype, h.device)
        found = self._fused.get(key)
        if found is None:
            total = group[0].vector32 * group[0].scale
            for o in group[1:]:
                total = total + o.vector32 * o.scale
            found = total.to(h.dtype)
            self._fused.clear()  # one live sum per group layout; stale scales are dropped
            self._fused[key] = found
        return found

    def _selection(self, positions: Positions, h: Any) -> Any:
        if positions == "all":
            return self.recorder.all_selection(h)
        return self.recorder.context(h).selection(positions, h)

    def _check_width(self, h: Any) -> None:
        """A hidden state of another width than the vectors (a stack that is not the residual
        stream, say hyper-connections' several streams) has no site: undo and refuse, rather
        than let the model raise from inside."""
        width = int(self.ops[0].vector32.shape[-1]) if self.ops else None
        if width is None or int(h.shape[-1]) == width:
            return
        if self._on_refuse is not None:
            self._on_refuse()
        raise UsageError(
            "architecture",
            f"the hidden state at a steered site is {int(h.shape[-1])} wide but the vector is {width}: this"
            " block's output is not the residual stream the binding check found (for example several"
            " streams side by side). mindvec removed its hooks; the model is unchanged",
        )

    def __call__(self, h: Any) -> Any:
        import torch

        self._check_once_per_call()
        self._check_width(h)
        ops, i = self.ops, 0
        while i < len(ops):
            o = ops[i]
            j = i + 1
            if o.kind == "add":
                while (
                    j < len(ops)
                    and ops[j].kind == "add"
                    and ops[j].positions == o.positions
                    and ops[j].rows is o.rows
                ):
                    j += 1
            sel = _with_rows(self._selection(o.positions, h), o.rows, h)
            if j - i > 1:
                for member in ops[i:j]:
                    member.follow(h)
                out = h + self._sum(ops[i:j], h)
                h = out if sel is None else torch.where(sel, out, h)
            else:
                h = o.apply(h, sel)
            i = j
        return h
