"""Every causal-LM type of the installed transformers: steered exactly, or refused with a typed error.

Each type is built tiny from its default configuration with generic size overrides (64 wide,
2 layers, 128 tokens; vision and audio towers shrunk too), the per-layer plans of hybrid and
looped models cut to the new depth, and a few per-type settings (``EXTRA``). A type that
then has more than 30M parameters, fails to build, or whose
plain forward pass fails is *not buildable* here, with the reason. For the others, a vector at
the middle block's ``resid_post`` must either (a) shift that block's output by exactly the
vector at every position, leave the blocks before it unchanged, and be removed bit for bit, or
(b) be refused with a :class:`~mindvec.errors.MindvecError` whose message says why. Exact is a
relative 1e-5 in fp32; where the residual stream dwarfs the vector (CPM-Ant's is about 7,000
times its norm), fp32 rounding of ``h + v - h`` exceeds that, so such a type is checked again in
float64, where the shift must be exact to 1e-9.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindvec  # noqa: E402
from mindvec.errors import MindvecError  # noqa: E402
from mindvec.loader.sites import attach  # noqa: E402
from mindvec.loader.stacks import find_stacks  # noqa: E402
from mindvec.policy import Policy  # noqa: E402
from tests import tiny_models  # noqa: E402

SMALL = {
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 128, "max_position_embeddings": 128, "head_dim": 16,
    "n_embd": 64, "n_layer": 2, "n_head": 4, "d_model": 64, "num_layers": 2, "ffn_dim": 128,
    "n_positions": 128, "num_experts": 4, "num_local_experts": 4, "num_experts_per_tok": 2,
    "moe_intermediate_size": 64, "shared_expert_intermediate_size": 64, "pad_token_id": 0,
    "bos_token_id": 1, "eos_token_id": 2,
}  # fmt: skip
MAX_PARAMS = 30_000_000
#: the vision and audio towers of multimodal models, shrunk alike (they are built, never run)
TOWER = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
    "depth": 1, "embed_dim": 32, "num_heads": 2, "out_hidden_size": 64, "num_global_layers": 1,
    "num_blocks": 1, "attention_dim": 32, "attention_heads": 2, "linear_units": 64,
    "projection_dim": 32, "vision_output_dim": 64,
}  # fmt: skip


MROPE = [2, 3, 3]
#: per-type settings the generic overrides leave inconsistent at 64 wide
EXTRA: dict[str, dict[str, Any]] = {
    # its default config leaves the indexed-attention layers' sizes unset (None)
    "qwen4_exp_text": {
        "indexer_n_heads": 2, "indexer_kv_heads": 1, "indexer_head_dim": 16, "linear_key_head_dim": 16,
        "linear_value_head_dim": 16, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
        "ple_embed_dim": 64, "ngram_vocab_size_base": 256, "indexer_budget": 8, "indexer_compress_ratio": 4,
    },
    # multimodal RoPE splits head_dim / 2 = 8 rotary pairs over (time, height, width)
    "qwen2_vl": {"rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": MROPE}},
    "qwen2_5_vl": {"rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": MROPE}},
}  # fmt: skip


def _shrink(cfg: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if hasattr(cfg, key):
            try:
                setattr(cfg, key, value)
            except (AttributeError, TypeError, ValueError):
                pass


def _plan(types: list[Any], n: int) -> list[Any]:
    """``n`` layer kinds from a default pattern: its last entries, with one other kind first
    when those are all alike, so that a tiny hybrid keeps an attention layer and another kind."""
    plan = list(types[-n:])
    if len(set(map(str, plan))) == 1 and len(set(map(str, types))) > 1:
        other = next(t for t in types if str(t) != str(plan[-1]))
        plan = [other, *plan[1:]]
    return plan


def _fit_layer_plan(text: Any) -> None:
    """Derived per-layer settings follow the new depth, as the config's own __init__ would.

    - ``layer_types`` / ``layers_block_type`` (hybrid decoders): see :func:`_plan`, and the
      hybrid layers' indices from it (Zamba 2);
    - attention period and offset (Jamba, Zamba) or indices (Bamba): the last of two layers;
    - ``num_layers_per_stack`` (HRM's looped stacks): one layer a stack, and
      ``num_hidden_layers`` recomputed from the cycles as HrmTextConfig does."""
    n = int(getattr(text, "num_hidden_layers", 0) or 0)
    for key in ("layer_types", "layers_block_type"):
        types = getattr(text, key, None)
        if isinstance(types, list) and n and len(types) != n:
            setattr(text, key, _plan(types, n))
    if isinstance(getattr(text, "hybrid_layer_ids", None), list):
        text.hybrid_layer_ids = [i for i, t in enumerate(text.layers_block_type) if t == "hybrid"]
    for key, value in (("attn_layer_period", 2), ("attn_layer_offset", 1), ("attn_layer_indices", [1])):
        if hasattr(text, key):
            setattr(text, key, value)
    if getattr(text, "num_layers_per_stack", None) is not None:
        text.num_layers_per_stack = 1
        text.num_hidden_layers = text.H_cycles * (text.L_cycles + 1)


def _tiny(model_type: str, auto: Any) -> tuple[Any, str]:
    """(model, "") or (None, why it cannot be built tiny here)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    try:
        cfg = CONFIG_MAPPING[model_type]()
        text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        _shrink(text, SMALL | EXTRA.get(model_type, {}))
        _fit_layer_plan(text)
        for name in ("vision_config", "audio_config", "speech_config", "vision_encoder_config"):
            tower = getattr(cfg, name, None)
            if tower is not None and tower is not text and hasattr(tower, "to_dict"):
                _shrink(tower, TOWER)
        with torch.device("meta"):
            probe = auto.from_config(cfg)
        size = sum(p.numel() for p in probe.parameters())
        if size > MAX_PARAMS:
            return None, f"{size / 1e6:.0f}M parameters with the generic overrides"
        torch.manual_seed(0)
        model = auto.from_config(cfg).eval()
        with torch.no_grad():
            model(_ids())
    except Exception as exc:  # noqa: BLE001 - any failure to build is a reason to list, not a steering bug
        return None, f"{type(exc).__name__}: {str(exc)[:100]}"
    return model, ""


def _ids() -> Any:
    return torch.randint(3, 100, (1, 6), generator=torch.Generator().manual_seed(0))


def _outcome(model: Any, tmp_path: Path, model_type: str) -> tuple[str, float]:
    """("exact", error) or ("refused", 0) or ("inexact", error)."""
    layer = len(find_stacks(model).decoder) // 2
    path = tiny_models.vector_package(tmp_path / f"{model_type}.mindvec", model, layers=(layer,), scale=1.0)
    with mindvec.open(path) as pkg:
        vector = torch.from_numpy(np.array(pkg.tensor(pkg.vector().sites[0].tensor)))

    def run(dtype: Any) -> float:
        model.to(dtype)
        seen: list[Any] = []
        before: list[Any] = []
        capture = attach(
            model, ("decoder", layer, "resid_post"), lambda t: seen.append(t.detach().clone()), prepend=False
        )
        earlier = attach(
            model, ("decoder", 0, "resid_pre"), lambda t: before.append(t.detach().clone()), prepend=False
        )
        try:
            with torch.no_grad():
                plain = model(_ids()).logits
                with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
                    model(_ids())
                again = model(_ids()).logits
        finally:
            capture.remove()
            earlier.remove()
        assert torch.equal(before[0], before[1]), f"{model_type}: the input of block 0 changed"
        assert torch.equal(plain, again), f"{model_type}: remove() did not restore the model bit for bit"
        shift = seen[1] - seen[0]
        v = vector.to(dtype)
        return float((shift - v).norm() / (v.norm() * shift.shape[-2] ** 0.5))

    error = run(torch.float32)
    if error > 1e-5:
        error64 = run(torch.float64)
        return ("exact", error64) if error64 < 1e-9 else ("inexact", error)
    return "exact", error


@pytest.mark.parametrize("kind", ["causal-lm", "image-text-to-text"])
def test_every_language_model_is_exact_or_refused(tmp_path: Path, kind: str) -> None:
    """Both auto classes: causal LMs, and multimodal models steered in their language model."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.models.auto import modeling_auto

    auto, names, least = {
        "causal-lm": (AutoModelForCausalLM, modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, 100),
        "image-text-to-text": (
            AutoModelForImageTextToText,
            modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
            1,
        ),
    }[kind]
    exact, refused, unbuildable, wrong = [], {}, {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model_type in sorted(names):
            model, why = _tiny(model_type, auto)
            if model is None:
                unbuildable[model_type] = why
                continue
            try:
                outcome, error = _outcome(model, tmp_path, model_type)
            except MindvecError as exc:
                assert exc.message.strip(), model_type
                refused[model_type] = f"{exc.code}: {exc.message[:80]}"
                continue
            except Exception as exc:  # noqa: BLE001 - a crash from inside the model is what this test forbids
                wrong[model_type] = f"crashed: {type(exc).__name__}: {str(exc)[:120]}"
                continue
            if outcome == "exact":
                exact.append(model_type)
            else:
                wrong[model_type] = f"shift off by {error:.1e} relative"
    counts = f"{len(exact)} exact, {len(refused)} refused, {len(unbuildable)} not buildable tiny"
    print(
        f"\n{kind}: {counts}, {len(wrong)} wrong; exact: {', '.join(exact) if kind != 'causal-lm' else '...'}"
    )
    for model_type, why in sorted(refused.items()):
        print(f"  refused  {model_type}: {why}")
    for model_type, why in sorted(unbuildable.items()):
        print(f"  not built {model_type}: {why}")
    assert wrong == {}, wrong
    assert len(exact) >= least  # the sweep really ran


@pytest.mark.req("R-92")
def test_a_hidden_state_of_another_width_is_refused_in_the_hook_and_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qwen4-Exp's hyper-connections carry 4 streams of 64 side by side (256 wide). The config
    check refuses it at install; with that check off, the hook itself must refuse with
    ``architecture`` at the first call (not let the model raise from inside), remove its hooks,
    and leave the model as it was."""
    from transformers import AutoModelForCausalLM

    from mindvec.loader import stacks

    model, why = _tiny("qwen4_exp_text", AutoModelForCausalLM)
    assert model is not None, why
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,), scale=1.0)
    with pytest.raises(MindvecError) as refused:
        mindvec.steer(model, path, policy=Policy(allow_unsigned=True))
    assert refused.value.code == "architecture" and "hc_count=4" in refused.value.message
    monkeypatch.setattr(stacks, "STREAM_KEYS", ())
    with torch.no_grad():
        plain = model(_ids()).logits
        handle = mindvec.steer(model, path, policy=Policy(allow_unsigned=True))
        with pytest.raises(MindvecError) as at_call:
            model(_ids())
        assert at_call.value.code == "architecture" and "256 wide" in at_call.value.message
        assert torch.equal(model(_ids()).logits, plain)
    handle.remove()  # already removed: a no-op
