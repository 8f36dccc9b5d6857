"""What a steering vector does to a model: the concept's next-token mass, and the damage.

Issue 11's measures, shared by the layer probe (:mod:`mindvec.fit.probe`) and
``benchmarks/bench_transfer.py``, so that the library and the bench score a map the same way:

- **effect**: the change in the mean over prompts of ``log P(next token is one of the concept's
  words)``, each word counted by its first token;
- **damage**: the perplexity on neutral text, steered over unsteered, minus one.

Each is one right-padded forward pass over all its texts: right padding leaves every real
token's positions and attention as in a pass of its own, so the batch changes no number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mindvec.errors import UsageError


def word_ids(tokenizer: Any, words: Sequence[str]) -> list[int]:
    """The first token of each word (with its leading space, as it follows a prompt)."""
    ids = []
    for word in words:
        got = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not got:
            raise UsageError("argument", f"concept word {word!r} has no tokens; drop it")
        ids.append(int(got[0]))
    return ids


def _batch(model: Any, tokenizer: Any, texts: Sequence[str]) -> tuple[Any, Any, Any]:
    """(float64 logits, input ids, attention mask) of one right-padded pass. The tokenizer's
    padding side and pad token are restored afterwards; with no pad token it pads with its end
    (or unknown) token, which the mask hides."""
    import torch

    if not texts:
        raise UsageError("argument", "no texts to measure on; pass at least one")
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    fill = pad or tokenizer.eos_token or tokenizer.unk_token
    if fill is None:
        raise UsageError(
            "argument", "the tokenizer has no pad, end or unknown token to pad a batch with; set one"
        )
    try:
        tokenizer.padding_side, tokenizer.pad_token = "right", fill
        enc = tokenizer(list(texts), return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side, tokenizer.pad_token = side, pad
    device = next(model.parameters()).device
    enc = {k: v.to(device) for k, v in enc.items()}
    with torch.no_grad():
        logits = model(**enc).logits.double()
    return logits, enc["input_ids"], enc["attention_mask"]


def log_mass(model: Any, tokenizer: Any, prompts: Sequence[str], ids: Sequence[int]) -> float:
    """Mean over ``prompts`` of ``log P(next token in ids)``."""
    import torch

    logits, _, mask = _batch(model, tokenizer, prompts)
    last = logits[torch.arange(len(mask)), mask.sum(1) - 1]
    lp = torch.log_softmax(last, -1)[:, list(ids)]
    return float(torch.logsumexp(lp, 1).mean())


def perplexity(model: Any, tokenizer: Any, texts: Sequence[str]) -> float:
    """Perplexity over every real token of ``texts`` after the first of each."""
    import torch

    logits, ids, mask = _batch(model, tokenizer, texts)
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
    keep = mask[:, 1:].bool()
    return float(torch.exp(nll[keep].mean()))
