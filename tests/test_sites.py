"""Site resolution and `attach`: every point is the exact value the block computes.

Reference captures use our own hooks and raw torch hooks, never ``hidden_states``.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from mindvec.errors import InvalidError, UsageError  # noqa: E402
from mindvec.loader.sites import attach, available_points, describe, resolve  # noqa: E402
from mindvec.loader.stacks import find_stacks  # noqa: E402
from mindvec.site import Site, as_site  # noqa: E402
from tests import tiny_models  # noqa: E402

NAMES = sorted(tiny_models.SPECS)
# post-norm blocks: (point, LayerNorm whose input is prev + term, module giving prev or None = block input)
POST_NORM: dict[str, dict[str, list[tuple[str, str, str | None]]]] = {
    "bert": {
        "decoder": [
            ("attn_out", "attention.output.LayerNorm", None),
            ("mlp_out", "output.LayerNorm", "attention.output.LayerNorm"),
        ]
    },
    "bart": {
        "encoder": [
            ("attn_out", "self_attn_layer_norm", None),
            ("mlp_out", "final_layer_norm", "self_attn_layer_norm"),
        ],
        "decoder": [
            ("attn_out", "self_attn_layer_norm", None),
            ("cross_attn_out", "encoder_attn_layer_norm", "self_attn_layer_norm"),
            ("mlp_out", "final_layer_norm", "encoder_attn_layer_norm"),
        ],
    },
}
POST_NORM["roberta"] = POST_NORM["bert"]


def _run(model: Any, name: str) -> Any:
    spec = tiny_models.SPECS[name]
    kw = {"decoder_input_ids": tiny_models.input_ids(seed=1)} if spec.encoder_decoder else {}
    with torch.no_grad():
        return model(tiny_models.input_ids(), **kw)


def _stacks_of(name: str) -> list[str]:
    return ["decoder", "encoder"] if tiny_models.SPECS[name].encoder_decoder else ["decoder"]


def _block_io(block: Any, store: dict[str, Any]) -> list[Any]:
    def pre(_m: Any, args: Any, kwargs: Any) -> None:
        store["x"] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

    def post(_m: Any, _a: Any, out: Any) -> None:
        store["y"] = (out[0] if isinstance(out, tuple) else out).detach().clone()

    return [
        block.register_forward_pre_hook(pre, with_kwargs=True),
        block.register_forward_hook(post),
    ]


def _capture(store: dict[str, Any], key: str) -> Any:
    def fn(t: Any) -> None:
        store[key] = t.detach().clone()

    return fn


@pytest.mark.req("R-60")
@pytest.mark.parametrize("name", NAMES)
def test_terms_are_exact(name: str) -> None:
    """[R-60] each term is what the block adds: y = x + attn + (cross) + mlp, or norm(prev + term)."""
    spec = tiny_models.SPECS[name]
    model = tiny_models.build(name)
    stacks = find_stacks(model)
    for stack in _stacks_of(name):
        layer = 1
        block = stacks.get(stack).block(layer)
        points = [
            p for p in spec.points if p != "resid_post" and not (p == "cross_attn_out" and stack == "encoder")
        ]
        for steer_point in [None, *points]:
            store: dict[str, Any] = {}
            handles = _block_io(block, store)
            handles += [attach(model, (stack, layer, p), _capture(store, p)) for p in points]
            v = torch.randn(32, generator=torch.Generator().manual_seed(3))
            if steer_point is not None:  # attached last, so it runs first (prepend)
                handles.append(attach(model, (stack, layer, steer_point), lambda t, v=v: t + 0.5 * v))
            norm_in: dict[str, Any] = {}
            norm_out: dict[str, Any] = {}
            for point, norm, _prev in POST_NORM.get(spec.model_type, {}).get(stack, []):
                mod = block.get_submodule(norm)
                handles.append(
                    mod.register_forward_pre_hook(
                        lambda _m, a, p=point, d=norm_in: d.__setitem__(p, a[0].clone())
                    )
                )
                handles.append(
                    mod.register_forward_hook(lambda _m, _a, o, n=norm, d=norm_out: d.__setitem__(n, o))
                )
            _run(model, name)
            for h in handles:
                h.remove()
            if spec.model_type in POST_NORM:
                for point, _norm, prev in POST_NORM[spec.model_type][stack]:
                    base = store["x"] if prev is None else norm_out[prev]
                    torch.testing.assert_close(norm_in[point], base + store[point], rtol=1e-5, atol=1e-5)
            else:
                total = store["x"] + sum(store[p] for p in points)
                torch.testing.assert_close(store["y"], total, rtol=1e-5, atol=1e-5)


#: the attention and MLP submodules of a block, by the names the architectures use; found here by
#: name, independently of mindvec's BLOCK_TERMS table, so a swapped table entry fails
_ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")
_MLP_NAMES = ("mlp",)
_PRE_NORM_TERMS = [
    n
    for n in NAMES
    if not tiny_models.SPECS[n].encoder_decoder
    and {"attn_out", "mlp_out"} <= set(tiny_models.SPECS[n].points)
    and n not in ("bert", "roberta", "opt")  # post-norm or MLP split into fc1/fc2: no one module
]


def _child(block: Any, names: tuple[str, ...]) -> Any:
    found = [getattr(block, n) for n in names if isinstance(getattr(block, n, None), torch.nn.Module)]
    assert len(found) == 1, f"{type(block).__name__}: expected one of {names}"
    return found[0]


@pytest.mark.parametrize("name", _PRE_NORM_TERMS)
def test_attn_and_mlp_terms_are_not_swapped(name: str) -> None:
    """Zero a sublayer's weights: its own term must vanish and the other must not."""
    for zeroed, vanishes, stays in (
        (_ATTENTION_NAMES, "attn_out", "mlp_out"),
        (_MLP_NAMES, "mlp_out", "attn_out"),
    ):
        model = tiny_models.build(name)
        block = find_stacks(model).decoder.block(1)
        with torch.no_grad():
            for param in _child(block, zeroed).parameters():
                param.zero_()
        store: dict[str, Any] = {}
        handles = [attach(model, ("decoder", 1, p), _capture(store, p)) for p in ("attn_out", "mlp_out")]
        _run(model, name)
        for h in handles:
            h.remove()
        assert float(store[vanishes].abs().max()) == 0.0, f"{name}: {vanishes} is not the zeroed sublayer"
        assert float(store[stays].abs().max()) > 1e-3, f"{name}: {stays} vanished with the other sublayer"


@pytest.mark.parametrize("name", ["llama", "gpt2", "t5", "bert", "opt"])
def test_term_hook_changes_term_by_exactly_the_addition(name: str) -> None:
    spec = tiny_models.SPECS[name]
    model = tiny_models.build(name)
    v = torch.randn(32, generator=torch.Generator().manual_seed(4))
    for point in [p for p in spec.points if p != "resid_post"]:
        base: dict[str, Any] = {}
        steered: dict[str, Any] = {}
        with attach(model, ("decoder", 1, point), _capture(base, "t")):
            _run(model, name)
        with attach(model, ("decoder", 1, point), _capture(steered, "t")):
            with attach(model, ("decoder", 1, point), lambda t: t + 2.0 * v):
                _run(model, name)
        torch.testing.assert_close(
            steered["t"] - base["t"], (2.0 * v).expand_as(base["t"]), rtol=0, atol=1e-5
        )


@pytest.mark.parametrize("name", NAMES)
def test_resid_pre_and_post_are_block_input_and_output(name: str) -> None:
    model = tiny_models.build(name)
    stacks = find_stacks(model)
    for stack in _stacks_of(name):
        store: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        handles = _block_io(stacks.get(stack).block(0), raw)
        handles.append(attach(model, (stack, 0, "resid_pre"), _capture(store, "pre")))
        handles.append(attach(model, (stack, 0, "resid_post"), _capture(store, "post")))
        _run(model, name)
        for h in handles:
            h.remove()
        assert torch.equal(store["pre"], raw["x"])
        assert torch.equal(store["post"], raw["y"])


def test_attach_returns_none_leaves_model_bit_identical_and_remove_restores() -> None:
    model = tiny_models.build("falcon")  # parallel block that modifies mlp output in place
    ref = _run(model, "falcon").logits
    kept: dict[str, Any] = {}
    with attach(model, ("decoder", 1, "mlp_out"), lambda t: kept.__setitem__("t", t)):
        same = _run(model, "falcon").logits
    assert torch.equal(ref, same)
    handle = attach(model, ("decoder", 1, "mlp_out"), lambda t: t * 2)
    assert not torch.equal(_run(model, "falcon").logits, ref)
    handle.remove()
    handle.remove()  # idempotent
    assert torch.equal(_run(model, "falcon").logits, ref)


@pytest.mark.req("R-58", "R-59")
def test_site_errors() -> None:
    """[R-58] resid_pre only at layer 0; [R-59] cross_attn_out only on seq2seq decoders."""
    model = tiny_models.build("llama")
    with pytest.raises(InvalidError) as err:
        resolve(model, ("decoder", 1, "resid_pre"))
    assert err.value.code == "site" and "resid_post of layer 0" in err.value.message
    with pytest.raises(InvalidError) as err:
        resolve(model, ("decoder", 0, "cross_attn_out"))
    assert err.value.code == "site"
    with pytest.raises(InvalidError):
        resolve(model, {"stack": "decoder", "layer": 0, "point": "nope"})
    with pytest.raises(InvalidError):
        resolve(model, ("encoder", 0, "resid_post"))
    with pytest.raises(InvalidError):
        resolve(tiny_models.build("t5"), ("encoder", 0, "cross_attn_out"))
    assert as_site({"stack": "decoder", "layer": 2, "point": "mlp_out"}) == Site("decoder", 2, "mlp_out")


@pytest.mark.req("R-60")
def test_unknown_block_terms_is_architecture_error() -> None:
    """[R-60] a point that cannot be resolved fails with `architecture`, never a guess."""

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            return x + self.lin(x)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(), Block()])

        def forward(self, x: Any) -> Any:
            for b in self.blocks:
                x = b(x)
            return x

    net = Net()
    with pytest.raises(UsageError) as err:
        resolve(net, ("decoder", 0, "attn_out"))
    assert err.value.code == "architecture"
    seen: dict[str, Any] = {}
    with attach(net, ("decoder", 1, "resid_post"), _capture(seen, "t")):
        out = net(torch.ones(1, 2, 4))
    assert torch.equal(seen["t"], out)


def test_describe_names_modules() -> None:
    text = describe(tiny_models.build("granite"))
    assert text["resid_pre"].startswith("model.layers.0 (forward pre-hook")
    assert (
        text["attn_out"].startswith("model.layers.0.self_attn (forward hook") and ", x " in text["attn_out"]
    )
    assert text["cross_attn_out"].startswith("none:")
    assert available_points(tiny_models.build("t5")) == [
        "resid_pre",
        "resid_post",
        "attn_out",
        "mlp_out",
        "cross_attn_out",
    ]
    assert "fc2" in describe(tiny_models.build("opt"), layer=1)["mlp_out"]
