"""Tiny offline models and tokenizers shared by the fit tests (no download)."""

from __future__ import annotations

from typing import Any

WORDS = (
    "the a cat dog owner rain home film movie was is good bad great awful sun moon stayed "
    "like liked hated they we it so and , . ' s t didn"
).split()


def word_tokenizer(bos: bool = True) -> Any:
    """A word-level fast tokenizer over ``WORDS`` (plus [UNK]/[BOS]); offsets included."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[BOS]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        tok.post_processor = processors.TemplateProcessing(single="[BOS] $A", special_tokens=[("[BOS]", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="[BOS]")


def tiny_llama(hidden: int = 32, layers: int = 3, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(WORDS) + 2,
        max_position_embeddings=128,
    )
    return LlamaForCausalLM(cfg).eval()


def block_outputs(model: Any, tok: Any, texts: list[str], layer: int) -> list[Any]:
    """Each text's block-``layer`` output [seq, hidden] as float64 numpy, from a plain torch hook.

    Independent of mindvec's own capture (``attach``), so tests can check it against this.
    """
    import torch

    seen: list[Any] = []

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        seen.append(hidden[0].detach().double().numpy().copy())

    handle = model.model.layers[layer].register_forward_hook(hook)
    try:
        with torch.no_grad():
            for text in texts:
                model(**tok(text, return_tensors="pt"))
    finally:
        handle.remove()
    return seen
