"""The one mapping between mindvec sites and other tools' names for them (spec 8.3 and 8.4).

- **llama.cpp / repeng** ``direction.N``, N >= 1: added to the output of block N, so
  ``resid_post`` of layer N. Nothing else is expressible.
- **TransformerLens / SAELens** hook names: ``blocks.L.hook_resid_pre`` (written only for
  L = 0, R-58), ``blocks.L.hook_resid_post``, ``blocks.L.hook_attn_out``, ``blocks.L.hook_mlp_out``;
  decoder stack only.
- **steering-vectors** ``layer_type``: ``decoder_block`` is ``resid_post``; ``self_attn`` and
  ``mlp`` are the sublayer modules' outputs, which are ``attn_out`` and ``mlp_out`` except in
  blocks that normalise a sublayer's output before adding it (Gemma 2 and 3, OLMo 2), where
  they are not the residual term and are refused; its layernorm types have no site.
"""

from __future__ import annotations

import re

from mindvec.errors import InvalidError
from mindvec.site import Site

#: model types whose blocks normalise the sublayer output before the residual add
SANDWICH_NORM = frozenset({"gemma2", "gemma3", "gemma3_text", "olmo2"})
_TL = re.compile(r"blocks\.(0|[1-9][0-9]*)\.hook_(resid_pre|resid_post|attn_out|mlp_out)")


def transformer_lens(site: Site) -> str | None:
    """The TransformerLens hook name of ``site``, or None where the tool has none."""
    if site.stack != "decoder" or site.point == "cross_attn_out":
        return None
    return f"blocks.{site.layer}.hook_{site.point}"


def from_transformer_lens(name: str) -> Site:
    """The site of a TransformerLens hook name; ``blocks.L.hook_resid_pre`` for L > 0 is
    ``resid_post`` of L - 1 (one point, one address)."""
    match = _TL.fullmatch(name)
    if match is None:
        raise InvalidError(
            "site", f"{name[:80]!r} is not a TransformerLens residual hook (blocks.L.hook_resid_post, ...)"
        )
    layer, point = int(match.group(1)), match.group(2)
    if point == "resid_pre" and layer > 0:
        return Site("decoder", layer - 1, "resid_post")
    return Site("decoder", layer, point)


def llamacpp_layer(site: Site) -> int:
    """N of ``direction.N`` for ``site``; error ``site`` where llama.cpp cannot add it."""
    if site.stack != "decoder" or site.point != "resid_post":
        raise InvalidError(
            "site",
            f"{site}: llama.cpp adds control vectors only to block outputs (resid_post), not to {site.point}",
        )
    if site.layer == 0:
        raise InvalidError(
            "site",
            f"{site}: llama.cpp has no direction.0 (the output of block 0); drop this layer with --layers",
        )
    return site.layer


def steering_vectors_layer_type(site: Site, model_type: str) -> str:
    """The steering-vectors ``layer_type`` that reads and writes ``site``; error ``site`` otherwise."""
    if site.stack == "decoder" and site.point == "resid_post":
        return "decoder_block"
    if site.stack == "decoder" and site.point in ("attn_out", "mlp_out"):
        if model_type in SANDWICH_NORM:
            raise InvalidError(
                "site",
                f"{site}: in {model_type} blocks steering-vectors' {site.point[:-4]} output is normalised"
                " again before it is added, so it is not this residual term",
            )
        return "self_attn" if site.point == "attn_out" else "mlp"
    raise InvalidError("site", f"{site}: steering-vectors has no layer type for this site")
