"""The real engine: llama.cpp's own ``llama-server`` applies a file ``mindvec export`` wrote.

Run with ``python -m pytest -m llamacpp`` (not in the default run): the first run builds
``llama-server`` from the source the ``llama-cpp-python`` sdist vendors
(``scripts/build_llamacpp.sh``, cached under ``~/.cache/mindvec``). The server runs SmolLM2's
Q4_1 GGUF on 127.0.0.1, once plain and once with ``--control-vector``; the shift of the
next-token log-probabilities it reports (``n_probs``) is compared with the shift
``mindvec.steer`` gives in transformers (weights dequantised to fp32) on the same prompt and
tokens. The error measure is the relative error ``|Δ_cpp − Δ_hf| / |Δ_hf|``, which tells
adjacent layers apart (correlation does not): the same comparison with the vector one block
earlier or later in transformers must be clearly worse.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindvec  # noqa: E402
from mindvec import assets  # noqa: E402
from mindvec.interop.export import export  # noqa: E402
from mindvec.policy import Policy  # noqa: E402
from tests import tiny_models  # noqa: E402

pytestmark = pytest.mark.llamacpp
ROOT = Path(__file__).resolve().parents[1]
OPEN = Policy(allow_unsigned=True)
PROMPT = "The weather today is"
LAYER = 15
N_PROBS = 40


@pytest.fixture(scope="module")
def server_binary() -> Path:
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_llamacpp.sh")], capture_output=True, text=True, timeout=3600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"llama-server ready in {time.monotonic() - start:.0f} s ({done.stderr.strip()[-80:]})")
    return Path(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _logprobs(binary: Path, model: Path, control: Path | None) -> dict[int, float]:
    """token id -> log-probability of the next token, for the top N_PROBS, from llama-server."""
    port = _free_port()
    argv = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", "256", "-t", "2"]
    argv += ["--control-vector", str(control)] if control is not None else []
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else "server exited"
            assert time.monotonic() < deadline, "llama-server did not come up"
            time.sleep(0.5)
        body = {"prompt": PROMPT, "n_predict": 1, "n_probs": N_PROBS, "temperature": 0, "cache_prompt": False}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/completion",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            reply = json.loads(r.read())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    first = reply["completion_probabilities"][0]
    if "top_logprobs" in first:
        return {int(t["id"]): float(t["logprob"]) for t in first["top_logprobs"]}
    return {int(t["id"]): float(np.log(t["prob"])) for t in first["probs"]}


@pytest.fixture(scope="module")
def smollm2() -> tuple[Any, Any, Path]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = assets.smollm2()
    tok = AutoTokenizer.from_pretrained(str(gguf.folder), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.folder), gguf_file=gguf.name, dtype=torch.float32)
    return model.eval(), tok, gguf.folder / gguf.name


def _hf_logprobs(model: Any, tok: Any) -> Any:
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return torch.log_softmax(model(ids).logits[0, -1].double(), -1)


def test_llama_server_applies_the_exported_vector_as_steer_does(
    server_binary: Path, smollm2: tuple[Any, Any, Path], tmp_path: Path
) -> None:
    model, tok, gguf_file = smollm2
    d = model.config.hidden_size
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(d)
    values = (direction / np.linalg.norm(direction) * 40.0).astype(np.float32)
    pkgs = {
        layer: tiny_models.vector_package(
            tmp_path / f"v{layer}.mindvec", model, layers=(layer,), scale=1.0, values=values
        )
        for layer in (LAYER - 1, LAYER, LAYER + 1)
    }
    control = export(pkgs[LAYER], tmp_path / "v.gguf", format="llamacpp", policy=OPEN)
    plain_cpp = _logprobs(server_binary, gguf_file, None)
    steered_cpp = _logprobs(server_binary, gguf_file, control)
    tokens = sorted(set(plain_cpp) & set(steered_cpp))
    assert len(tokens) >= 10, "too few tokens in both top lists to compare"
    delta_cpp = np.array([steered_cpp[t] - plain_cpp[t] for t in tokens])
    plain_hf = _hf_logprobs(model, tok)
    errors = {}
    for layer, pkg in pkgs.items():
        with mindvec.steer(model, pkg, policy=OPEN):
            delta_hf = (_hf_logprobs(model, tok) - plain_hf)[tokens].numpy()
        errors[layer] = float(np.linalg.norm(delta_cpp - delta_hf) / np.linalg.norm(delta_hf))
    print(f"relative error of the shift, by the layer steered in transformers: {errors}")
    assert np.linalg.norm(delta_cpp) > 0.05  # the vector does something in llama.cpp
    assert errors[LAYER] < 0.35, errors  # Q4_1 in llama.cpp against dequantised fp32
    assert errors[LAYER] < 0.75 * min(errors[LAYER - 1], errors[LAYER + 1]), errors
