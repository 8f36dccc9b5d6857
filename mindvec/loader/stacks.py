"""Find the block stacks of a transformers model.

A *stack* is the ``nn.ModuleList`` of transformer blocks that a site's ``layer`` indexes.
Every model has a ``decoder`` stack: its main (or only) stack, which for encoder-only
models such as BERT is the encoder's layer list. Encoder-decoder models (T5, BART) also
have an ``encoder`` stack.

Lookup order: an explicit table keyed by ``config.model_type`` (``STACK_TABLE``: the
dotted path suffix of each stack's ModuleList), then a structural fallback (the longest
``nn.ModuleList`` whose items all have the same class, or a hybrid decoder's list with one
block per entry of ``layer_types``; in encoder-decoder models the
longest such list under a path containing ``encoder`` / ``decoder``). When neither
works, ``UsageError("architecture")`` names the candidate lists that were found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mindvec.errors import InvalidError, UsageError

if TYPE_CHECKING:
    import torch

STACK_NAMES = ("decoder", "encoder")

#: model_type -> {stack name: dotted path suffix of the ModuleList of blocks}.
#: The suffix is matched against ``model.named_modules()`` names, so the same entry works
#: for the bare model (``layers``) and for a model with a head (``model.layers``).
STACK_TABLE: dict[str, dict[str, str]] = {
    **{
        mt: {"decoder": "layers"}
        for mt in (
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen2_moe",
            "qwen3",
            "qwen3_moe",
            "gemma",
            "gemma2",
            "gemma3",
            "gemma3_text",
            "phi",
            "phi3",
            "starcoder2",
            "olmo",
            "olmo2",
            "stablelm",
            "cohere",
            "granite",
            "smollm3",
            "gpt_neox",
        )
    },
    **{mt: {"decoder": "h"} for mt in ("gpt2", "gpt_bigcode", "gptj", "codegen", "bloom", "falcon")},
    "opt": {"decoder": "decoder.layers"},
    "bert": {"decoder": "encoder.layer"},
    "roberta": {"decoder": "encoder.layer"},
    "t5": {"decoder": "decoder.block", "encoder": "encoder.block"},
    "bart": {"decoder": "decoder.layers", "encoder": "encoder.layers"},
}


@dataclass(frozen=True)
class Stack:
    """One stack of blocks: its site name, dotted path in the model, and the ModuleList."""

    name: str
    path: str
    blocks: Any  # torch.nn.ModuleList

    def __len__(self) -> int:
        return len(self.blocks)

    def block(self, layer: int) -> Any:
        if not 0 <= layer < len(self.blocks):
            raise InvalidError(
                "site",
                f"layer {layer} is out of range for the {self.name} stack ({self.path}, "
                f"{len(self.blocks)} blocks); use a layer in 0..{len(self.blocks) - 1}",
            )
        return self.blocks[layer]


@dataclass(frozen=True)
class Stacks:
    """The stacks of one model; ``encoder`` is None unless it is an encoder-decoder."""

    decoder: Stack
    encoder: Stack | None = None
    source: str = "table"  # "table" or "structural"

    def get(self, name: str) -> Stack:
        if name == "decoder":
            return self.decoder
        if name == "encoder" and self.encoder is not None:
            return self.encoder
        if name == "encoder":
            raise InvalidError(
                "site",
                "this model has no encoder stack; address its blocks with stack 'decoder' "
                "(the main stack, also for encoder-only models such as BERT)",
            )
        raise InvalidError("site", f"unknown stack {name!r}; use one of {', '.join(STACK_NAMES)}")


def _module_lists(model: torch.nn.Module) -> list[tuple[str, Any]]:
    import torch

    return [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.ModuleList) and len(mod) > 0
    ]


def _uniform(mod: Any) -> bool:
    first = type(mod[0])
    return all(type(m) is first for m in mod) and first.__name__ != "ModuleList"


def _stack_like(model: torch.nn.Module, mod: Any) -> bool:
    """One class of block, or a hybrid decoder's: one block per entry of the text config's
    ``layer_types``, with no more block classes than kinds of layer (OLMo-hybrid's linear and
    full attention blocks)."""
    if _uniform(mod):
        return True
    types = getattr(_text_config(model), "layer_types", None)
    classes = {type(m) for m in mod}
    return (
        isinstance(types, list)
        and len(types) == len(mod)
        and len(classes) <= len(set(map(str, types)))
        and all(c.__name__ != "ModuleList" for c in classes)
    )


def _expected_layers(model: torch.nn.Module, stack: str) -> int | None:
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    names: tuple[str, ...]
    if stack == "encoder":
        names = ("encoder_layers", "num_layers")
    elif getattr(cfg, "is_encoder_decoder", False):
        names = ("decoder_layers", "num_decoder_layers")
    else:
        try:
            cfg = cfg.get_text_config()
        except (AttributeError, TypeError, ValueError):
            pass
        names = ("num_hidden_layers", "n_layer", "num_layers")
    for n in names:
        value = getattr(cfg, n, None)
        if isinstance(value, int):
            return value
    return None


def expected_width(model: torch.nn.Module) -> int | None:
    """The language model's hidden size (``text_config`` for a multimodal model)."""
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    try:
        cfg = cfg.get_text_config()
    except (AttributeError, TypeError, ValueError):
        pass
    value = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", None) or getattr(cfg, "d_model", None)
    return value if isinstance(value, int) else None


def block_width_fits(block: Any, width: int) -> bool:
    """True when some parameter of ``block`` has ``width`` as a dimension (metadata only, no forward)."""
    return any(width in p.shape for p in block.parameters())


def _pick(
    cands: list[tuple[str, Any]], expected: int | None, width: int | None = None
) -> tuple[str, Any] | None:
    if not cands:
        return None
    if expected is not None:
        exact = [c for c in cands if len(c[1]) == expected]
        if exact:
            cands = exact
    if width is not None:
        wide = [c for c in cands if block_width_fits(c[1][0], width)]
        if wide:
            cands = wide
    # the language model's stack in a multimodal model, then the shallowest path, then the longest
    return sorted(
        cands,
        key=lambda c: (
            "language_model" not in c[0] and "text" not in c[0],
            c[0].count("."),
            -len(c[1]),
            c[0],
        ),
    )[0]


def _from_table(model: torch.nn.Module, lists: list[tuple[str, Any]]) -> Stacks | None:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    entry = STACK_TABLE.get(str(model_type))
    if entry is None:
        return None
    found: dict[str, Stack] = {}
    for stack, suffix in entry.items():
        named = [(n, m) for n, m in lists if n == suffix or n.endswith("." + suffix)]
        cands = [(n, m) for n, m in named if _stack_like(model, m)]
        hit = _pick(cands, _expected_layers(model, stack), expected_width(model))
        if hit is None:
            return None
        found[stack] = Stack(stack, hit[0], hit[1])
    return Stacks(found["decoder"], found.get("encoder"), "table")


def _structural(model: torch.nn.Module, lists: list[tuple[str, Any]]) -> Stacks | None:
    uniform = [(n, m) for n, m in lists if _stack_like(model, m)]
    if not uniform:
        return None
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        enc = _pick([c for c in uniform if "encoder" in c[0]], _expected_layers(model, "encoder"))
        dec = _pick([c for c in uniform if "decoder" in c[0]], _expected_layers(model, "decoder"))
        if enc is not None and dec is not None:
            return Stacks(Stack("decoder", *dec), Stack("encoder", *enc), "structural")
        return None
    expected, width = _expected_layers(model, "decoder"), expected_width(model)
    fitting = [c for c in uniform if (expected is None or len(c[1]) == expected)]
    if width is not None:
        fitting = [c for c in fitting if block_width_fits(c[1][0], width)]
    if fitting:
        best = _pick(fitting, expected, width)
    else:
        longest = max(len(m) for _, m in uniform)
        best = _pick([c for c in uniform if len(c[1]) == longest], None)
    assert best is not None
    return Stacks(Stack("decoder", *best), None, "structural")


#: configuration keys that say the blocks run several times per forward pass (HRM's cycles, ...)
LOOP_KEYS = ("H_cycles", "L_cycles", "num_loops", "n_loops", "loop_count", "recurrence_steps")


#: configuration keys that say the residual stream is several streams side by side
#: (hyper-connections), so that no block output is one hidden_size-wide vector
STREAM_KEYS = ("hc_count", "hc_mult")


def _text_config(model: torch.nn.Module) -> Any:
    cfg = getattr(model, "config", None)
    try:
        return cfg.get_text_config() if cfg is not None else None
    except (AttributeError, TypeError, ValueError):
        return cfg


def _int_over_one(cfg: Any, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = getattr(cfg, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            return f"{key}={value}"
    return None


def streams(model: torch.nn.Module) -> str | None:
    """The configuration key that gives ``model`` several residual streams, if any."""
    return _int_over_one(_text_config(model), STREAM_KEYS)


def loops(model: torch.nn.Module) -> str | None:
    """The configuration key that makes ``model`` looped (its blocks run more than once), if any."""
    return _int_over_one(_text_config(model), LOOP_KEYS)


def check_stack(model: torch.nn.Module, stack: Stack, width: int) -> None:
    """Refuse, before anything is installed, a stack that cannot be the one a ``width`` vector acts on.

    From metadata only (no probe forward pass): the configured layer count and the block
    parameters' shapes must agree with the stack; otherwise steering would crash inside the model
    or, worse, change nothing.
    """
    looped = loops(model)
    if looped is not None:
        raise UsageError(
            "architecture",
            f"this model's blocks run more than once per forward pass ({looped}): a vector at a site would be"
            " added on every pass, and the spec gives such blocks no site (section 8.1)",
        )
    wide = streams(model)
    if wide is not None:
        raise UsageError(
            "architecture",
            f"this model's residual stream is several streams side by side ({wide}, hyper-connections):"
            " no block output is one vector of the model's hidden size, and the spec gives such models"
            " no site (section 8.1)",
        )
    expected = _expected_layers(model, stack.name)
    if expected is not None and len(stack) != expected:
        raise UsageError(
            "architecture",
            f"the {stack.name} stack found at {stack.path} has {len(stack)} blocks but the configuration"
            f" says {expected}; it is not the model's main stack. Add the model to"
            " mindvec.loader.stacks.STACK_TABLE",
        )
    if not block_width_fits(stack.blocks[0], width):
        raise UsageError(
            "architecture",
            f"the blocks at {stack.path} have no parameter of width {width} (the vector's); this stack is"
            " not the one whose hidden states the vector lives in. Add the model to"
            " mindvec.loader.stacks.STACK_TABLE",
        )


def find_stacks(model: torch.nn.Module) -> Stacks:
    """Return the block stacks of ``model`` (explicit table first, then structural search)."""
    lists = _module_lists(model)
    stacks = _from_table(model, lists) or _structural(model, lists)
    if stacks is not None:
        return stacks
    described = ", ".join(f"{n} ({len(m)} x {type(m[0]).__name__})" for n, m in lists) or "none"
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    raise UsageError(
        "architecture",
        f"cannot find the block stacks of this {type(model).__name__} (model_type {model_type!r}); "
        f"candidate module lists: {described}. Add an entry for it to "
        "mindvec.loader.stacks.STACK_TABLE or report the architecture",
    )
