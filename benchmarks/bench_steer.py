"""Steering overhead in greedy generation: SmolLM2-135M-Instruct on CPU.

Measures tokens/s of ``model.generate`` (greedy, fixed number of new tokens) with no
steering, with mindvec steering (one vector at layer 12 ``resid_post``, positions ``all``
and ``generated``), and with the same vector applied by ``repeng`` (ControlModel) and
``steering-vectors`` (SteeringVector.apply) when those can be imported. Runs are
interleaved (A B C ... per round, order rotated each round) and the report gives the
median tokens/s with its spread (min-max) and, per method, the median of the per-round
ratios to the unsteered run of the same round (ratio = steered tokens/s / unsteered).

A second, less noisy comparison times single cached decode steps (the same step again
and again, the KV cache cropped back after each), interleaved the same way, and reports
the median and interquartile range of the paired ratios. Finally it times mindvec's own
per-call hook work in isolation.

repeng and steering-vectors are not project dependencies: they come from the folder that
``scripts/install.sh`` fills (``pip install --no-deps``), through ``tests/third_party.py``,
which installs them there on first use and adds the two smallest shims (an inert
``sklearn``, ``np.float_``).

A last comparison runs the same single cached decode step under ``torch.compile``: the
unsteered model and a steered twin (a deep copy with mindvec's hooks installed before it is
compiled), interleaved, against the same pair in eager mode. It reports the compile time and
the graph breaks of the steered model (``torch._dynamo.explain``); ``--no-compile`` skips it.

``--device cuda`` (with ``--dtype bf16`` and ``--model random-llama-1b`` or ``-8b``, random
weights of realistic size, nothing to download) runs the same comparisons on a GPU, with
``torch.cuda.synchronize()`` around every timed call; repeng and steering-vectors are then
skipped (they are CPU comparisons here).

Run: ``python benchmarks/bench_steer.py [--rounds 9] [--tokens 32] [--steps 60] [--threads 1]
[--device cpu|cuda] [--dtype fp32|bf16] [--model smollm2|random-llama-1b|random-llama-8b]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
LAYER = 12


def _third_party() -> dict[str, Any]:
    """repeng and steering_vectors, the real libraries, through the interop tests' loader
    (installed with --no-deps into their own folder, with the two smallest shims)."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests import third_party

    found: dict[str, Any] = {}
    for module in ("repeng", "steering_vectors"):
        try:
            found[module] = third_party.load(module)
        except Exception as exc:  # noqa: BLE001 - report any install or import failure of third-party code
            print(f"# {module}: not available ({type(exc).__name__}: {exc}); skipped")
    return found


def _package(model: Any, vector: Any, out: Path) -> Path:
    import mindvec
    from mindvec.loader.binding import model_ref

    manifest = {
        "package": {
            "id": "bench/steer",
            "version": 1,
            "name": "bench",
            "description": "random direction for the overhead benchmark",
            "intended_effect": "none; benchmark",
        },
        "models": {"m": model_ref(model, source={"kind": "local", "note": "SmolLM2 GGUF"})},
        "vectors": [
            {
                "name": "v",
                "model": "m",
                "operation": "add",
                "scale": 1.0,
                "scale_range": [0.0, 2.0],
                "positions": "all",
                "sites": [
                    {
                        "site": {"stack": "decoder", "layer": LAYER, "point": "resid_post"},
                        "tensor": "v",
                        "calibration": {"mean_norm": 1.0, "tokens": 1},
                    }
                ],
                "method": {"kind": "random"},
            }
        ],
        "provenance": {
            "creator": "bench",
            "created": "2026-01-01T00:00:00Z",
            "tool": {"name": "mindvec", "version": mindvec.__version__},
            "license": "Apache-2.0",
        },
    }
    return mindvec.write(out, manifest, {"v": vector.numpy()})


Method = Callable[[], AbstractContextManager[Any]]


def _methods(model: Any, vector: Any, path: Path, third: dict[str, Any]) -> dict[str, Method]:
    import mindvec

    @contextmanager
    def nothing() -> Iterator[None]:
        yield None

    methods: dict[str, Method] = {
        "unsteered": nothing,
        "mindvec": lambda: mindvec.steer(model, path, policy=mindvec.Policy(allow_unsigned=True)),
        "mindvec(generated)": lambda: mindvec.steer(
            model, path, positions="generated", policy=mindvec.Policy(allow_unsigned=True)
        ),
        # per-row steering: the same vector, through a row mask (one torch.where more per site)
        "mindvec(rows)": lambda: mindvec.steer(
            model, path, rows=[True], policy=mindvec.Policy(allow_unsigned=True)
        ),
    }
    if "repeng" in third:
        control = third["repeng"].ControlModel

        @contextmanager
        def repeng() -> Iterator[None]:
            wrapped = control(model, [LAYER])  # replaces the block with a wrapper
            wrapped.set_raw_control({LAYER: vector})
            try:
                yield None
            finally:
                wrapped.reset()
                wrapped.unwrap()

        methods["repeng"] = repeng
    if "steering_vectors" in third:
        sv = third["steering_vectors"].SteeringVector(
            layer_activations={LAYER: vector}, layer_type="decoder_block"
        )
        methods["steering-vectors"] = lambda: sv.apply(model, multiplier=1.0)
    return methods


def hook_cost_us(hidden: int, positions: Any, calls: int = 2000) -> float:
    """Microseconds of mindvec's per-call hook work (position selection + add) on one decode step."""
    import torch

    from mindvec.loader.hooks import Operation, StepContext

    h = torch.randn(1, 1, hidden)
    op = Operation("add", torch.randn(hidden), 1.0, positions, like=h)
    mask = torch.ones(1, 41, dtype=torch.long)
    start = time.perf_counter()
    for _ in range(calls):
        ctx = StepContext(mask, past=40, prompt_len=8)
        op.apply(h, ctx.selection(op.positions, h))
    return (time.perf_counter() - start) / calls * 1e6


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def compiled_steps(model: Any, path: Path, enc: Any, steps: int, device: str) -> None:
    """Steered/unsteered ratio of one cached decode step, eager and under torch.compile."""
    import copy

    import torch
    import torch._dynamo as dynamo
    from transformers import DynamicCache

    import mindvec

    twin = copy.deepcopy(model)
    handle = mindvec.steer(twin, path, policy=mindvec.Policy(allow_unsigned=True))
    dynamo.reset()
    explained = dynamo.explain(twin)(**enc)
    dynamo.reset()
    started = time.perf_counter()
    runners = {
        "eager unsteered": model,
        "eager steered": twin,
        "compiled unsteered": torch.compile(model),
        "compiled steered": torch.compile(twin),
    }
    caches: dict[str, Any] = {}
    nxt: Any = None
    for name, fn in runners.items():  # prefill each, which compiles the compiled ones
        cache = DynamicCache(config=model.config)
        with torch.no_grad():
            first = fn(**enc, cache=cache, use_cache=True)
        caches[name], nxt = cache, first.logits[:, -1:].argmax(-1)
    past = caches["eager unsteered"].get_seq_length()
    mask = torch.ones(1, past + 1, dtype=torch.long, device=nxt.device)
    names = list(runners)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(steps + 2):  # two warm-up rounds compile the decode-step graphs
        for name in names[r % len(names) :] + names[: r % len(names)]:
            _sync(device)
            with torch.no_grad():
                start = time.perf_counter()
                runners[name](nxt, attention_mask=mask, cache=caches[name], use_cache=True)
                _sync(device)
                if r >= 2:
                    out[name].append(time.perf_counter() - start)
            caches[name].crop(past - caches[name].get_seq_length())
        if r == 1:
            compile_s = time.perf_counter() - started
    handle.remove()
    print(
        f"# torch.compile: steered model {explained.graph_count} graph(s), "
        f"{explained.graph_break_count} graph break(s); compile and warm-up {compile_s:.1f} s"
    )
    print(f"{'mode':<20} {'ms median':>12} {'ratio':>7} {'ratio IQR':>15}  (steered tok/s / unsteered)")
    for mode in ("eager", "compiled"):
        base, steer = out[f"{mode} unsteered"], out[f"{mode} steered"]
        ratios = sorted(b / t for b, t in zip(base, steer, strict=True))
        q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
        print(
            f"{mode:<20} {statistics.median(steer) * 1e3:>12.2f} {statistics.median(ratios):>7.3f} "
            f"{q1:>7.3f}-{q3:<7.3f}"
        )


def _load(name: str, device: str, dtype: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from mindvec import assets
    from mindvec.fit.device import parse_dtype

    gguf = assets.smollm2()
    tok = AutoTokenizer.from_pretrained(gguf.folder, gguf_file=gguf.name)
    if name == "smollm2":
        model = AutoModelForCausalLM.from_pretrained(gguf.folder, gguf_file=gguf.name)  # type: ignore[no-untyped-call]
        return model.to(device=device, dtype=parse_dtype(dtype)).eval(), tok
    hidden, inter, layers = {"random-llama-1b": (2048, 8192, 16), "random-llama-8b": (4096, 14336, 32)}[name]
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=8,
    )
    torch.manual_seed(0)
    with torch.device(device):
        return LlamaForCausalLM(config).to(parse_dtype(dtype)).eval(), tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 is far steadier on a shared machine; 0 = default)",
    )
    parser.add_argument("--steps", type=int, default=60, help="rounds of the single decode-step comparison")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument(
        "--model", default="smollm2", choices=("smollm2", "random-llama-1b", "random-llama-8b")
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile comparison")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    third = _third_party() if args.device == "cpu" else {}
    model, tok = _load(args.model, args.device, args.dtype)
    vector = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(0)) * 2.0
    path = _package(model, vector, Path(tempfile.mkdtemp()) / "bench.mindvec")
    methods = _methods(model, vector, path, third)
    enc = tok("The history of the city begins with", return_tensors="pt").to(args.device)

    def step_times() -> dict[str, list[float]]:
        """One cached decode step per method per round (cache cropped back after each)."""
        from transformers import DynamicCache

        cache = DynamicCache(config=model.config)
        with torch.no_grad():
            first = model(**enc, cache=cache, use_cache=True)
        past = cache.get_seq_length()
        nxt = first.logits[:, -1:].argmax(-1)
        mask = torch.ones(1, past + 1, dtype=torch.long, device=nxt.device)
        out: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.steps):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                with methods[name](), torch.no_grad():
                    _sync(args.device)
                    start = time.perf_counter()
                    model(nxt, attention_mask=mask, cache=cache, use_cache=True)
                    _sync(args.device)
                    out[name].append(time.perf_counter() - start)
                cache.crop(past - cache.get_seq_length())  # negative: drop the new token
        return out

    def run() -> tuple[float, list[int]]:
        _sync(args.device)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=args.tokens,
                min_new_tokens=args.tokens,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )
        _sync(args.device)
        return time.perf_counter() - start, out[0].tolist()

    names = list(methods)
    seqs: dict[str, list[int]] = {}
    for name in names:  # warm-up, and the generated tokens for the cross-check
        with methods[name]():
            seqs[name] = run()[1]
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            with methods[name]():
                times[name].append(run()[0])

    print(
        f"# {args.model}, {args.device}, {args.dtype}, torch threads {torch.get_num_threads()}, greedy, "
        f"{args.tokens} new tokens"
    )
    print(f"# {args.rounds} interleaved rounds; vector at layer {LAYER} resid_post")
    print(f"{'method':<20} {'tok/s median':>12} {'min-max':>15} {'ratio':>7} {'ratio min-max':>15}")
    base = times["unsteered"]
    for name in names:
        tps = [args.tokens / t for t in times[name]]
        ratios = [b / t for b, t in zip(base, times[name], strict=True)]  # steered tok/s over unsteered
        print(
            f"{name:<20} {statistics.median(tps):>12.1f} {min(tps):>7.1f}-{max(tps):<7.1f} "
            f"{statistics.median(ratios):>7.3f} {min(ratios):>7.3f}-{max(ratios):<7.3f}"
        )
    steps = step_times()
    print(f"# single cached decode step, {args.steps} interleaved rounds")
    print(f"{'method':<20} {'ms median':>12} {'min-max':>15} {'ratio':>7} {'ratio IQR':>15}")
    for name in names:
        ms = [t * 1e3 for t in steps[name]]
        ratios = sorted(b / t for b, t in zip(steps["unsteered"], steps[name], strict=True))
        q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
        print(
            f"{name:<20} {statistics.median(ms):>12.2f} {min(ms):>7.1f}-{max(ms):<7.1f} "
            f"{statistics.median(ratios):>7.3f} {q1:>7.3f}-{q3:<7.3f}"
        )
    step_ms = statistics.median(steps["unsteered"]) * 1e3
    for positions in ("all", "generated"):
        cost = hook_cost_us(model.config.hidden_size, positions)
        print(
            f"# mindvec hook work per call, positions={positions}: {cost:.1f} us "
            f"= {cost / (step_ms * 1e3) * 100:.2f}% of a {step_ms:.1f} ms decode step"
        )
    same = [n for n in names if n not in ("unsteered", "mindvec(generated)") and seqs[n] == seqs["mindvec"]]
    # mindvec(rows) steers every row here, so it must give mindvec's tokens too
    print(f"# identical greedy tokens to mindvec (positions=all): {same}")
    print(f"# unsteered tokens differ from steered: {seqs['unsteered'] != seqs['mindvec']}")
    if not args.no_compile:
        compiled_steps(model, path, enc, args.steps, args.device)


if __name__ == "__main__":
    main()
