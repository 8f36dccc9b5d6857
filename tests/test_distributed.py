"""``torchrun`` with 2 CPU processes (gloo) gives the single-process fit and vector.

The ranks split the corpus by batch and reduce their statistics with collectives; the
package written by rank 0 must equal the one-process package in W, bias, means and every
metric (held-out, shuffled, embedding and mean baselines), and record the world size and
the backend in its provenance.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fit_helpers import WORDS, tiny_llama, word_tokenizer

from mindvec.package import open as open_package

pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is part of torch")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dist")
    for name, hidden, seed in (("a", 32, 0), ("b", 48, 1)):
        tiny_llama(hidden=hidden, seed=seed).save_pretrained(root / name)
        word_tokenizer().save_pretrained(root / name)
    rng = random.Random(1)
    words = [w for w in WORDS if w.isalpha()]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 20))) + " ." for _ in range(150)]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    pairs = [
        {"positive": f"the film was good and {w}", "negative": f"the film was bad {w}"} for w in words[:10]
    ]
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return {"root": root, "a": root / "a", "b": root / "b"}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _single(*argv: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mindvec", *argv], env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _torchrun(*argv: str, nproc: int = 2) -> str:
    cmd = ["torchrun", "--standalone", f"--nproc-per-node={nproc}", "-m", "mindvec", *argv]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _mapping(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    with open_package(path) as pkg:
        m = pkg.manifest["mappings"][0]
        tensors = {
            role: np.asarray(pkg.tensor(name), dtype=np.float64) for role, name in m["tensors"].items()
        }
        return m, tensors, pkg.manifest["provenance"]


def test_torchrun_fit_equals_the_single_process_fit(setup: dict[str, Path]) -> None:
    root = setup["root"]
    args = ["fit", "--source", str(setup["a"]), "--target", str(setup["b"]), "--source-layer", "1"]
    args += ["--target-layer", "2", "--corpus", str(root / "corpus.txt"), "--chunk-chars", "200"]
    args += ["--batch-size", "4", "--device", "cpu", "--quiet"]
    _single(*args, "-o", str(root / "one.mindvec"))
    out = _torchrun(*args, "-o", str(root / "two.mindvec"))
    assert out.count("wrote ") == 1  # only rank 0 writes and reports
    one, t_one, p_one = _mapping(root / "one.mindvec")
    two, t_two, p_two = _mapping(root / "two.mindvec")
    assert set(t_one) == set(t_two) == {"weight", "source_mean", "target_mean", "source_covariance"}
    for key in ("alpha", "residual_variance", "samples"):
        assert two["shrinkage"][key] == pytest.approx(one["shrinkage"][key], rel=1e-4), key
    for role in t_one:
        np.testing.assert_allclose(t_two[role], t_one[role], rtol=1e-4, atol=1e-5, err_msg=role)
    assert one["metrics"]["train_samples"] == two["metrics"]["train_samples"]
    assert one["metrics"]["test_samples"] == two["metrics"]["test_samples"]
    for kind in ("shuffled", "embedding", "mean"):
        for metric, value in one["metrics"]["baselines"][kind].items():
            assert two["metrics"]["baselines"][kind][metric] == pytest.approx(value, abs=1e-5), (kind, metric)
    for metric, value in one["metrics"]["held_out"].items():
        assert two["metrics"]["held_out"][metric] == pytest.approx(value, abs=1e-5), metric
    assert one["fit"]["hyperparameters"] == two["fit"]["hyperparameters"]
    assert (p_one["hyperparameters"]["world_size"], p_one["hyperparameters"]["backend"]) == (1, "none")
    assert (p_two["hyperparameters"]["world_size"], p_two["hyperparameters"]["backend"]) == (2, "gloo")


def test_torchrun_fit_with_candidates_keeps_the_single_process_choice(setup: dict[str, Path]) -> None:
    """Several source layers under torchrun: the ranks share the paired pass, rank 0 probes the
    candidates alone (the others wait at the exit) and keeps the map one process keeps. Into
    model a's layer 1, where the tiny probes move the target (model b's layers do not respond)."""
    from test_probe import TINY_PROBES

    root = setup["root"]
    (root / "probes.json").write_text(json.dumps(TINY_PROBES))
    args = ["fit", "--source", str(setup["a"]), "--target", str(setup["a"]), "--source-layer", "0,1"]
    args += ["--target-layer", "1", "--corpus", str(root / "corpus.txt"), "--chunk-chars", "200"]
    args += ["--probes", str(root / "probes.json"), "--batch-size", "4", "--device", "cpu", "--quiet"]
    _single(*args, "-o", str(root / "pick1.mindvec"))
    assert _torchrun(*args, "-o", str(root / "pick2.mindvec")).count("wrote ") == 1
    one, t_one, p_one = _mapping(root / "pick1.mindvec")
    two, t_two, p_two = _mapping(root / "pick2.mindvec")
    assert one["source"]["site"] == two["source"]["site"]
    assert (
        p_one["hyperparameters"]["candidate_layers"] == p_two["hyperparameters"]["candidate_layers"] == "0,1"
    )
    np.testing.assert_allclose(t_two["weight"], t_one["weight"], rtol=1e-4, atol=1e-5)


def test_torchrun_extract_equals_the_single_process_vector(setup: dict[str, Path]) -> None:
    root = setup["root"]
    args = ["extract", "--model", str(setup["a"]), "--pairs", str(root / "pairs.jsonl"), "--layers", "0-2"]
    args += ["--method", "pca_diff", "--batch-size", "3", "--quiet"]
    _single(*args, "-o", str(root / "v1.mindvec"))
    _torchrun(*args, "-o", str(root / "v2.mindvec"))
    with open_package(root / "v1.mindvec") as a, open_package(root / "v2.mindvec") as b:
        va, vb = a.manifest["vectors"][0], b.manifest["vectors"][0]
        for sa, sb in zip(va["sites"], vb["sites"], strict=True):
            np.testing.assert_allclose(b.tensor(sb["tensor"]), a.tensor(sa["tensor"]), rtol=1e-5, atol=1e-6)
            assert sb["calibration"]["mean_norm"] == pytest.approx(sa["calibration"]["mean_norm"], rel=1e-9)
            assert sb["calibration"]["tokens"] == sa["calibration"]["tokens"]


def test_torchrun_correspond_equals_the_single_process_screen(setup: dict[str, Path]) -> None:
    root = setup["root"]
    args = ["correspond", "--source", str(setup["a"]), "--target", str(setup["b"])]
    args += ["--corpus", str(root / "corpus.txt"), "--chunk-chars", "200", "--samples", "600"]
    args += ["--cka-samples", "300", "--batch-size", "4", "--quiet"]
    _single(*args, "-o", str(root / "c1.mindvec"))
    _torchrun(*args, "-o", str(root / "c2.mindvec"))
    with open_package(root / "c1.mindvec") as a, open_package(root / "c2.mindvec") as b:
        ca, cb = a.manifest["correspondences"], b.manifest["correspondences"]
        assert len(ca) == len(cb) > 0
        for x, y in zip(ca, cb, strict=True):
            assert (x["source"], x["target"], x["metric"]) == (y["source"], y["target"], y["metric"])
            assert y["score"] == pytest.approx(x["score"], abs=1e-6)
        da, db = a.manifest["provenance"]["datasets"][0], b.manifest["provenance"]["datasets"][0]
        assert da == db  # the same texts, by digest, and the same number of pairs
