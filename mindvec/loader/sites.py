"""Resolve a site ``(stack, layer, point)`` to a hook on a torch module, and attach to it.

Points (DESIGN section 4, spec "Sites"):

- ``resid_pre`` (layer 0 only): the hidden-state input of block 0, through a forward
  pre-hook on the block.
- ``resid_post``: the block's output (the first element when the block returns a tuple,
  the tensor itself when it returns a bare tensor, as transformers 5 blocks do).
- ``attn_out`` / ``mlp_out`` / ``cross_attn_out``: the exact term that the sublayer adds
  to the residual sum, through a forward hook on the module whose output *is* that term
  (``BLOCK_TERMS``, keyed by block class). Parallel blocks (GPT-J, GPT-NeoX, Phi, Falcon,
  Cohere) give the two terms of ``x + attn(x) + mlp(x)``; post-norm blocks (BERT, RoBERTa,
  BART) the terms before add-and-norm; Gemma 2/3 and OLMo 2 the output of the norm applied
  to the sublayer output. Terms are exact in eval mode (functional dropout after a module
  is the identity there).

``attach(model, site, fn)`` calls ``fn(tensor[batch, seq, hidden])`` at the site; a tensor
returned replaces the site's value, ``None`` leaves it alone. The model may modify a
tensor in place after the hook returns, so a capture must copy what it keeps
(``t.detach().clone()`` or ``t.float().cpu()`` of a copy). Hooks are registered with
``prepend=True`` so that they run before transformers' own output-recording hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mindvec.errors import InvalidError, UsageError
from mindvec.loader.stacks import Stack, find_stacks
from mindvec.site import POINTS, Site, SiteArg, as_site

if TYPE_CHECKING:
    import torch

SiteFn = Callable[[Any], Any]


@dataclass(frozen=True)
class Term:
    """The module (dotted path from the block) whose output is a residual term.

    ``multiplier``: a block attribute the block multiplies the term by before adding it
    (Granite's ``residual_multiplier``); the site value is ``output * multiplier``.
    ``clone``: the block modifies this output in place afterwards (Falcon's parallel
    ``mlp_output += attention_output``), so a read-only hook hands the model a copy.
    ``flat``: the module works on ``[batch*seq, hidden]``; the hook reshapes to
    ``[batch, seq, hidden]`` with the shape recorded by a pre-hook on the block.
    """

    module: str
    multiplier: str | None = None
    clone: bool = False
    flat: bool = False  # the module sees [batch*seq, hidden] (OPT's MLP)


@dataclass(frozen=True)
class BlockTerms:
    attn_out: Term | None
    mlp_out: Term | None
    cross_attn_out: Term | None = None


_PRE_NORM = BlockTerms(Term("self_attn"), Term("mlp"))
_SANDWICH = BlockTerms(Term("post_attention_layernorm"), Term("post_feedforward_layernorm"))
_GPT2 = BlockTerms(Term("attn"), Term("mlp"), Term("crossattention"))
_BERT = BlockTerms(
    Term("attention.output.dropout"), Term("output.dropout"), Term("crossattention.output.dropout")
)

#: block class name -> modules whose outputs are the residual terms.
BLOCK_TERMS: dict[str, BlockTerms] = {
    **{
        f"{name}DecoderLayer": _PRE_NORM
        for name in (
            "Llama",
            "Mistral",
            "Mixtral",
            "Qwen2",
            "Qwen2Moe",
            "Qwen3",
            "Qwen3Moe",
            "Gemma",
            "Starcoder2",
            "Olmo",
            "Cohere",  # parallel: x + attn(x) + mlp(x)
            "Phi",  # parallel; resid_dropout is shared by both terms, so hook the sublayers
            "SmolLM3",
        )
    },
    "StableLmDecoderLayer": BlockTerms(Term("self_attn"), Term("dropout")),
    "GraniteDecoderLayer": BlockTerms(
        Term("self_attn", multiplier="residual_multiplier"), Term("mlp", multiplier="residual_multiplier")
    ),
    "Gemma2DecoderLayer": _SANDWICH,
    "Gemma3DecoderLayer": _SANDWICH,
    "Olmo2DecoderLayer": _SANDWICH,
    "Phi3DecoderLayer": BlockTerms(Term("resid_attn_dropout"), Term("resid_mlp_dropout")),
    "GPT2Block": _GPT2,
    "GPTBigCodeBlock": _GPT2,
    "GPTJBlock": BlockTerms(Term("attn"), Term("mlp")),
    "CodeGenBlock": BlockTerms(Term("attn"), Term("mlp")),
    "GPTNeoXLayer": BlockTerms(Term("post_attention_dropout"), Term("post_mlp_dropout")),
    "OPTDecoderLayer": BlockTerms(Term("self_attn"), Term("fc2", flat=True)),
    "BloomBlock": BlockTerms(Term("self_attention.dense"), Term("mlp.dense_4h_to_h")),
    "FalconDecoderLayer": BlockTerms(Term("self_attention"), Term("mlp", clone=True)),
    "BertLayer": _BERT,
    "RobertaLayer": _BERT,
    "T5Block": BlockTerms(Term("layer.0.dropout"), Term("layer.-1.dropout"), Term("layer.1.dropout")),
    "BartEncoderLayer": BlockTerms(Term("self_attn"), Term("fc2")),
    "BartDecoderLayer": BlockTerms(Term("self_attn"), Term("fc2"), Term("encoder_attn")),
}


@dataclass(frozen=True)
class HookPoint:
    """Where a site lives: the module, the hook kind, and how to read/write the value."""

    site: Site
    stack: Stack
    module: Any
    kind: str  # "pre" (resid_pre), "output" (resid_post and terms)
    path: str  # dotted module path in the model, for messages and the spec table
    multiplier: float | None = None
    clone: bool = False
    block: Any = None  # set when ``flat``: the block whose input gives [batch, seq]


def _submodule(block: Any, path: str) -> Any:
    mod = block
    for part in path.split("."):
        if part.lstrip("-").isdigit():
            mod = mod[int(part)]
        else:
            mod = getattr(mod, part, None)
        if mod is None:
            return None
    return mod


def _bloom_check(block: Any, point: str) -> None:
    sub = block.self_attention if point == "attn_out" else block.mlp
    if getattr(sub, "pretraining_tp", 1) > 1 and getattr(sub, "slow_but_exact", False):
        raise UsageError(
            "architecture",
            f"{point} is not separable in BLOOM with pretraining_tp > 1 and slow_but_exact; "
            "set config.slow_but_exact=False or steer resid_post",
        )


def resolve(model: torch.nn.Module, site: SiteArg) -> HookPoint:
    """Find the module and hook kind for ``site`` in ``model``."""
    key = as_site(site)
    stack = find_stacks(model).get(key.stack)
    block = stack.block(key.layer)
    prefix = f"{stack.path}.{key.layer}"
    if key.point == "resid_pre":
        return HookPoint(key, stack, block, "pre", prefix)
    if key.point == "resid_post":
        return HookPoint(key, stack, block, "output", prefix)
    cls = type(block).__name__
    terms = BLOCK_TERMS.get(cls)
    if terms is None:
        raise UsageError(
            "architecture",
            f"{key.point} needs the exact residual term of {cls}, which mindvec does not know; "
            "steer resid_post (or resid_pre at layer 0), or add the block to "
            "mindvec.loader.sites.BLOCK_TERMS",
        )
    term: Term | None = getattr(terms, key.point)
    if key.point == "cross_attn_out" and key.stack != "decoder":
        term = None
    module = _submodule(block, term.module) if term is not None else None
    if term is None or module is None:
        raise InvalidError(
            "site",
            f"{cls} has no separable {key.point.replace('_out', '')} sublayer at {key}; "
            "use one of the points it has (resid_post, attn_out, mlp_out"
            + (", cross_attn_out" if terms.cross_attn_out is not None else "")
            + ")",
        )
    if cls == "T5Block" and key.point == "cross_attn_out" and len(block.layer) < 3:
        raise InvalidError("site", "T5 encoder blocks have no cross-attention; use stack 'decoder'")
    if cls == "BloomBlock":
        _bloom_check(block, key.point)
    multiplier = None
    if term.multiplier is not None:
        multiplier = float(getattr(block, term.multiplier))
    path = f"{prefix}.{term.module}"
    if term.module.startswith("layer.-1"):
        path = f"{prefix}.layer.{len(block.layer) - 1}{term.module[len('layer.-1') :]}"
    return HookPoint(key, stack, module, "output", path, multiplier, term.clone, block if term.flat else None)


class SiteHandle:
    """A hook attached at one site; ``remove()`` (idempotent) or use as a context manager."""

    def __init__(self, point: HookPoint, torch_handles: list[Any]) -> None:
        self.point = point
        self._handles: list[Any] = torch_handles

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> SiteHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _replace_first(output: Any, value: Any) -> Any:
    if isinstance(output, tuple):
        return (value, *output[1:])
    if isinstance(output, list):
        return [value, *output[1:]]
    return value


def _first(output: Any) -> Any:
    return output[0] if isinstance(output, (tuple, list)) else output


def _output_hook(point: HookPoint, fn: SiteFn, shape: list[Any]) -> Callable[[Any, Any, Any], Any]:
    m = point.multiplier
    clone = point.clone
    flat = point.block is not None

    def hook(_module: Any, _args: Any, output: Any) -> Any:
        raw = _first(output)
        value = raw if m is None else raw * m
        if flat:
            value = value.view(*shape[0], value.shape[-1])
        new = fn(value)
        if new is None:
            return _replace_first(output, raw.clone()) if clone else None
        if flat:
            new = new.reshape(raw.shape)
        return _replace_first(output, new if m is None else new / m)

    return hook


def _shape_recorder(shape: list[Any]) -> Callable[[Any, Any, Any], None]:
    def hook(_module: Any, args: Any, kwargs: Any) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        shape[:] = [tuple(hidden.shape[:-1])]

    return hook


def _pre_hook(fn: SiteFn) -> Callable[[Any, Any, Any], Any]:
    def hook(_module: Any, args: Any, kwargs: Any) -> Any:
        if args:
            new = fn(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        if "hidden_states" not in kwargs:
            raise UsageError("architecture", "cannot find the hidden-state input of block 0 for resid_pre")
        new = fn(kwargs["hidden_states"])
        return None if new is None else (args, {**kwargs, "hidden_states": new})

    return hook


def attach(
    model: torch.nn.Module,
    site: SiteArg,
    fn: SiteFn,
    *,
    prepend: bool = True,
) -> SiteHandle:
    """Call ``fn(tensor[batch, seq, hidden])`` at ``site`` on every forward pass.

    ``fn`` returns a replacement tensor, or ``None`` to leave the value unchanged (a
    capture; copy what you keep). Returns a handle whose ``remove()`` detaches the hook.
    """
    point = resolve(model, site)
    if point.kind == "pre":
        return SiteHandle(
            point, [point.module.register_forward_pre_hook(_pre_hook(fn), prepend=prepend, with_kwargs=True)]
        )
    handles = []
    shape: list[Any] = []
    if point.block is not None:
        handles.append(
            point.block.register_forward_pre_hook(_shape_recorder(shape), prepend=True, with_kwargs=True)
        )
    handles.append(point.module.register_forward_hook(_output_hook(point, fn, shape), prepend=prepend))
    return SiteHandle(point, handles)


def describe(model: torch.nn.Module, stack: str = "decoder", layer: int = 0) -> dict[str, str]:
    """For each point: the module path and hook used at ``(stack, layer)``, or why it has none.

    E.g. ``{"resid_post": "model.layers.0 (forward hook, output[0])", "mlp_out": ...}``;
    the spec's architecture table is written from this.
    """
    out: dict[str, str] = {}
    for point in POINTS:
        if point == "resid_pre" and layer != 0:
            continue
        try:
            hp = resolve(model, Site(stack, layer, point))
        except (InvalidError, UsageError) as err:
            out[point] = f"none: {err.message}"
            continue
        if hp.kind == "pre":
            out[point] = f"{hp.path} (forward pre-hook, hidden-state input)"
            continue
        extra = "".join(
            [
                f", x {hp.multiplier:g}" if hp.multiplier is not None else "",
                ", [batch*seq, hidden] reshaped" if hp.block is not None else "",
            ]
        )
        out[point] = f"{hp.path} (forward hook, output or output[0]{extra})"
    return out


def available_points(model: torch.nn.Module, stack: str = "decoder") -> list[str]:
    """The points that resolve on layer 0 of ``stack`` (for messages and docs)."""
    return [p for p, text in describe(model, stack).items() if not text.startswith("none:")]
