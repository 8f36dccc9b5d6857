"""Finding block stacks: explicit table, structural fallback, and the `architecture` error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mindvec.errors import InvalidError, UsageError  # noqa: E402
from mindvec.loader.stacks import STACK_TABLE, find_stacks  # noqa: E402
from tests import tiny_models  # noqa: E402


@pytest.mark.parametrize("name", sorted(tiny_models.SPECS))
def test_table_finds_every_tiny_model(name: str) -> None:
    spec = tiny_models.SPECS[name]
    model = tiny_models.build(name)
    stacks = find_stacks(model)
    assert spec.model_type in STACK_TABLE
    assert stacks.source == "table"
    assert len(stacks.decoder) == 3
    if spec.encoder_decoder:
        assert stacks.encoder is not None and len(stacks.encoder) == 2
    else:
        assert stacks.encoder is None
        with pytest.raises(InvalidError) as err:
            stacks.get("encoder")
        assert err.value.code == "site"


def test_bare_base_model_also_found() -> None:
    model = tiny_models.build("llama").model  # LlamaModel, no head: path "layers"
    assert find_stacks(model).decoder.path == "layers"


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.lin(x)


class _Custom(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(2)])
        self.trunk = torch.nn.ModuleList([_Block() for _ in range(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.trunk:
            x = b(x)
        return x


def test_structural_fallback_takes_longest_uniform_list() -> None:
    stacks = find_stacks(_Custom())
    assert stacks.source == "structural"
    assert stacks.decoder.path == "trunk"
    assert len(stacks.decoder) == 4


def test_no_uniform_list_names_candidates() -> None:
    class Mixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parts = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.ReLU()])

    with pytest.raises(UsageError) as err:
        find_stacks(Mixed())
    assert err.value.code == "architecture"
    assert "parts (2 x Linear)" in err.value.message


def test_layer_out_of_range_is_site_error() -> None:
    stacks = find_stacks(tiny_models.build("gpt2"))
    with pytest.raises(InvalidError) as err:
        stacks.decoder.block(3)
    assert err.value.code == "site"


# ------------------------------------------------------------ never silent: the stack is checked


def _llama(hidden: int, layers: int = 3) -> Any:
    """A tiny Llama with the vocabulary of ``tiny_models.input_ids`` (fit_helpers' has 38 words)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    shape = {"hidden_size": hidden, "intermediate_size": 2 * hidden, "num_hidden_layers": layers}
    cfg = LlamaConfig(**shape, num_attention_heads=4, num_key_value_heads=2, vocab_size=tiny_models.VOCAB)
    return LlamaForCausalLM(cfg).eval()


def _hookless(model: Any) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.req("R-92")
def test_a_stack_of_another_width_is_refused_before_any_hook(tmp_path: Path) -> None:
    """Like qwen4_exp_text: the blocks found are not the width the vector lives in."""
    import mindvec
    from mindvec.policy import Policy

    model = _llama(32)
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,))
    model.model.layers = _llama(24).model.layers  # same count, other width: the wrong stack
    with pytest.raises(UsageError) as err:
        mindvec.steer(model, path, policy=Policy(allow_unsigned=True))
    assert err.value.code == "architecture" and "width 32" in err.value.message
    assert _hookless(model)


def test_a_stack_of_another_length_is_refused(tmp_path: Path) -> None:
    import mindvec
    from mindvec.policy import Policy

    model = _llama(32)
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,))
    model.model.layers = model.model.layers[:2]  # the configuration still says 3
    with pytest.raises(UsageError) as err:
        mindvec.steer(model, path, strict=False, policy=Policy(allow_unsigned=True))
    assert err.value.code == "architecture" and "configuration" in err.value.message
    assert _hookless(model)


def test_a_multimodal_model_is_steered_in_its_language_model(tmp_path: Path) -> None:
    """LLaVA (CLIP vision + Llama text): the sites are the language model's blocks, bound by text_config."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    import mindvec
    from mindvec.loader.binding import model_ref
    from mindvec.policy import Policy

    text = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=128,
    )  # fmt: skip
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=16,
    )  # the same width and depth as the text model: only the path tells them apart
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(
        LlavaConfig(text_config=text, vision_config=vision, image_token_index=127)
    )
    model.eval()
    stacks = find_stacks(model)
    assert stacks.decoder.path.endswith("language_model.layers")
    assert model_ref(model, source={"kind": "local", "note": "llava"})["model_type"] == "llama"
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,), scale=2.0)
    with mindvec.open(path) as pkg:
        vector = torch.from_numpy(np.array(pkg.tensor(pkg.vector().sites[0].tensor)))
    final_in: list[Any] = []
    first_out: list[Any] = []
    norm = model.model.language_model.norm
    h1 = norm.register_forward_pre_hook(lambda _m, args: final_in.append(args[0].clone()))
    h2 = stacks.decoder.blocks[1].register_forward_pre_hook(
        lambda _m, args: first_out.append(args[0].clone())
    )
    ids = tiny_models.input_ids(1, 6)
    with torch.no_grad():
        model(input_ids=ids)
        with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
            model(input_ids=ids)
    h1.remove()
    h2.remove()
    assert torch.equal(first_out[0], first_out[1])  # before the site: unchanged
    shift = final_in[1] - final_in[0]  # resid_post of the last text block, read by the final norm
    torch.testing.assert_close(shift, (2.0 * vector).expand_as(shift), rtol=1e-5, atol=1e-5)
    assert _hookless(model)


@pytest.mark.req("R-92")
def test_a_looped_model_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    """A block that runs twice per forward pass: refused on the first call, every hook removed."""
    import mindvec
    from mindvec.policy import Policy

    model = _llama(32)
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,))
    blocks = model.model.layers
    model.model.layers = torch.nn.ModuleList([blocks[0], blocks[1], blocks[1]])  # block 1 runs twice
    ids = tiny_models.input_ids(1, 5)
    with torch.no_grad():
        plain = model(ids).logits
    handle = mindvec.steer(model, path, policy=Policy(allow_unsigned=True))
    with pytest.raises(UsageError) as err, torch.no_grad():
        model(ids)
    assert err.value.code == "architecture" and "twice in one forward pass" in err.value.message
    assert _hookless(model)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, plain)
    handle.remove()  # removing what is already gone is harmless


def test_a_model_whose_configuration_says_it_loops_is_refused_at_install(tmp_path: Path) -> None:
    import mindvec
    from mindvec.policy import Policy

    model = _llama(32)
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,))
    model.config.H_cycles = 2  # as HRM's configuration says
    with pytest.raises(UsageError) as err:
        mindvec.steer(model, path, policy=Policy(allow_unsigned=True))
    assert err.value.code == "architecture" and "H_cycles=2" in err.value.message
    assert _hookless(model)
