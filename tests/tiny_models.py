"""Tiny random transformers models, one per architecture family, for loader tests.

Each entry builds a model with ``from_config`` (random weights, no download): hidden
size 32-64, 2-3 layers, a small vocabulary, so that building all of them takes a few
seconds. ``build(name)`` returns the model in eval mode, seeded and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VOCAB = 128

_LLAMA_LIKE: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": VOCAB,
    "max_position_embeddings": 128,
}


@dataclass(frozen=True)
class TinySpec:
    """How to build one tiny model: its model_type, config overrides and head class."""

    model_type: str
    config: dict[str, Any] = field(default_factory=dict)
    head: str = "causal"  # causal | masked | seq2seq
    # points that have a separable sublayer in this architecture
    points: tuple[str, ...] = ("resid_post", "attn_out", "mlp_out")

    @property
    def encoder_decoder(self) -> bool:
        return self.head == "seq2seq"


def _llama(model_type: str, **extra: Any) -> TinySpec:
    return TinySpec(model_type, {**_LLAMA_LIKE, **extra})


SPECS: dict[str, TinySpec] = {
    s.model_type: s
    for s in [
        TinySpec("gpt2", {"n_embd": 32, "n_layer": 3, "n_head": 4, "vocab_size": VOCAB, "n_positions": 128}),
        _llama("llama"),
        _llama("mistral"),
        _llama("mixtral", num_local_experts=4, num_experts_per_tok=2),
        _llama("qwen2"),
        _llama("qwen3", head_dim=8),
        _llama("gemma", head_dim=8),
        _llama("gemma2", head_dim=8, sliding_window=16),
        _llama("gemma3_text", head_dim=8, sliding_window=16),
        TinySpec(
            "phi",
            {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 3,
                "num_attention_heads": 4,
                "vocab_size": VOCAB,
                "max_position_embeddings": 128,
            },
        ),
        _llama("phi3", pad_token_id=0),
        TinySpec(
            "gpt_neox",
            {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 3,
                "num_attention_heads": 4,
                "vocab_size": VOCAB,
                "max_position_embeddings": 128,
                "use_parallel_residual": True,
            },
        ),
        TinySpec(
            "gptj",
            {
                "n_embd": 32,
                "n_layer": 3,
                "n_head": 4,
                "rotary_dim": 4,
                "vocab_size": VOCAB,
                "n_positions": 128,
            },
        ),
        TinySpec(
            "opt",
            {
                "hidden_size": 32,
                "ffn_dim": 64,
                "word_embed_proj_dim": 32,
                "num_hidden_layers": 3,
                "num_attention_heads": 4,
                "vocab_size": VOCAB,
                "max_position_embeddings": 128,
                "pad_token_id": 1,
            },
        ),
        TinySpec("bloom", {"hidden_size": 32, "n_layer": 3, "n_head": 4, "vocab_size": VOCAB}),
        TinySpec(
            "falcon",
            {
                "hidden_size": 32,
                "num_hidden_layers": 3,
                "num_attention_heads": 4,
                "vocab_size": VOCAB,
                "parallel_attn": True,
                "new_decoder_architecture": False,
                "multi_query": True,
                "bias": False,
                "alibi": False,
            },
        ),
        _llama("starcoder2", pad_token_id=0),
        _llama("olmo"),
        _llama("olmo2"),
        _llama("stablelm"),
        _llama("cohere", pad_token_id=0),
        _llama("granite"),
        _llama("qwen2_moe", moe_intermediate_size=32, shared_expert_intermediate_size=32, num_experts=4),
        TinySpec(
            "gpt_bigcode",
            {"n_embd": 32, "n_layer": 3, "n_head": 4, "vocab_size": VOCAB, "n_positions": 128},
        ),
        TinySpec(
            "bert",
            {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 3,
                "num_attention_heads": 4,
                "vocab_size": VOCAB,
                "max_position_embeddings": 128,
            },
            head="masked",
        ),
        TinySpec(
            "roberta",
            {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 3,
                "num_attention_heads": 4,
                "vocab_size": VOCAB,
                "max_position_embeddings": 130,
                "pad_token_id": 1,
            },
            head="masked",
        ),
        TinySpec(
            "t5",
            {
                "d_model": 32,
                "d_ff": 64,
                "d_kv": 8,
                "num_layers": 2,
                "num_decoder_layers": 3,
                "num_heads": 4,
                "vocab_size": VOCAB,
                "decoder_start_token_id": 0,
                "pad_token_id": 0,
            },
            head="seq2seq",
            points=("resid_post", "attn_out", "mlp_out", "cross_attn_out"),
        ),
        TinySpec(
            "bart",
            {
                "d_model": 32,
                "encoder_ffn_dim": 64,
                "decoder_ffn_dim": 64,
                "encoder_layers": 2,
                "decoder_layers": 3,
                "encoder_attention_heads": 4,
                "decoder_attention_heads": 4,
                "vocab_size": VOCAB,
                "max_position_embeddings": 128,
            },
            head="seq2seq",
            points=("resid_post", "attn_out", "mlp_out", "cross_attn_out"),
        ),
    ]
}


def build(name: str, *, seed: int = 0, dtype: Any = None, **overrides: Any) -> Any:
    """Build the tiny model ``name`` (a key of SPECS), in eval mode; ``overrides`` change the config."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSeq2SeqLM,
    )

    spec = SPECS[name]
    config = AutoConfig.for_model(spec.model_type, **{**spec.config, **overrides})
    config._attn_implementation = "eager"
    auto = {
        "causal": AutoModelForCausalLM,
        "masked": AutoModelForMaskedLM,
        "seq2seq": AutoModelForSeq2SeqLM,
    }[spec.head]
    torch.manual_seed(seed)
    model = auto.from_config(config)
    # random init leaves some norms at exactly 1 and biases at 0; perturb every parameter a
    # little so that sublayers really contribute and hooks are observable
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed + 1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval()


def input_ids(batch: int = 2, seq: int = 6, *, seed: int = 0) -> Any:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, seq), generator=gen)


def vector_package(
    path: Any,
    model: Any,
    *,
    layers: tuple[int, ...] = (1,),
    point: str = "resid_post",
    stack: str = "decoder",
    operation: str = "add",
    scale: float = 2.0,
    positions: str | int = "all",
    seed: int = 0,
    name: str = "v",
    values: Any = None,
    signers: Any = (),
) -> Any:
    """Write an unsigned package with one random vector for ``model`` at ``layers``.

    ``model`` is a torch model, or a manifest model entry (a dict) for tests without torch.
    """
    from collections.abc import Mapping

    import numpy as np

    from mindvec.package import write

    if isinstance(model, Mapping):
        ref = dict(model)
    else:
        from mindvec.loader.binding import model_ref

        ref = model_ref(model, source={"kind": "local", "note": "tiny random test model"})
    hidden = int(ref["hidden_size"])
    rng = np.random.default_rng(seed)
    manifest: dict[str, Any] = {
        "package": {
            "id": f"tests/{name}",
            "version": 1,
            "name": name,
            "description": "random test vector",
            "intended_effect": "none; tests",
        },
        "models": {"m": ref},
        "vectors": [
            {
                "name": name,
                "model": "m",
                "operation": operation,
                "scale": scale,
                "scale_range": [0.0, 2 * abs(scale) + 1],
                "positions": positions,
                "sites": [
                    {
                        "site": {"stack": stack, "layer": layer, "point": point},
                        "tensor": f"{name}.{layer}",
                        "calibration": {"mean_norm": 10.0, "tokens": 100},
                    }
                    for layer in layers
                ],
                "method": {"kind": "random"},
            }
        ],
        "provenance": {
            "creator": "tests",
            "created": "2026-01-01T00:00:00Z",
            "tool": {"name": "mindvec", "version": "0.1.0"},
            "license": "Apache-2.0",
        },
    }
    tensors = {
        f"{name}.{layer}": (values if values is not None else rng.standard_normal(hidden)).astype(np.float32)
        for layer in layers
    }
    return write(path, manifest, tensors, signers=signers)
