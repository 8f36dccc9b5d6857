"""steer(): exactness on many architectures, removal, composition, dtypes, positions under
generate(), padding, binding and policy. References come from our own hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindvec  # noqa: E402
from mindvec.errors import InvalidError, UnverifiedError, UsageError  # noqa: E402
from mindvec.loader.sites import attach  # noqa: E402
from mindvec.loader.stacks import find_stacks  # noqa: E402
from mindvec.policy import Policy  # noqa: E402
from tests import tiny_models  # noqa: E402

NAMES = sorted(tiny_models.SPECS)


def _run(model: Any, name: str, ids: Any = None) -> Any:
    spec = tiny_models.SPECS[name]
    ids = tiny_models.input_ids() if ids is None else ids
    kw = {"decoder_input_ids": tiny_models.input_ids(seed=1)} if spec.encoder_decoder else {}
    with torch.no_grad():
        return model(ids, **kw)


def _capture_all(model: Any, stack: str, store: dict[int, Any]) -> list[Any]:
    blocks = find_stacks(model).get(stack).blocks
    return [
        attach(
            model, (stack, layer, "resid_post"), lambda t, i=layer: store.__setitem__(i, t.detach().clone())
        )
        for layer in range(len(blocks))
    ]


def _vec(pkg_path: Path) -> Any:
    pkg = mindvec.open(pkg_path)
    return torch.from_numpy(np.array(pkg.tensor(pkg.vector().sites[0].tensor)))


def _no_hooks(model: Any) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks for m in model.modules()
    )  # transformers installs none until output_hidden_states is used


@pytest.mark.req("R-39")
@pytest.mark.parametrize("name", NAMES)
def test_add_at_resid_post_is_exact_and_remove_restores(name: str, tmp_path: Path) -> None:
    """[R-39] block L output changes by exactly s·v; blocks before L unchanged; removal is exact."""
    spec = tiny_models.SPECS[name]
    model = tiny_models.build(name)
    stacks = ["decoder", "encoder"] if spec.encoder_decoder else ["decoder"]
    ref_logits = _run(model, name).logits
    for stack in stacks:
        layer = 1 if stack == "decoder" else 0
        path = tiny_models.vector_package(tmp_path / f"{stack}.mindvec", model, layers=(layer,), stack=stack)
        v = _vec(path)
        base: dict[int, Any] = {}
        handles = _capture_all(model, stack, base)
        _run(model, name)
        steered: dict[int, Any] = {}
        for h in handles:
            h.remove()
        handles = _capture_all(model, stack, steered)  # attached first: runs after the steering hook
        with mindvec.steer(model, path, scale=1.5, policy=Policy(allow_unsigned=True)) as handle:
            assert handle.sites[0].layer == layer
            logits = _run(model, name).logits
        for h in handles:
            h.remove()
        for earlier in range(layer):
            assert torch.equal(steered[earlier], base[earlier])
        torch.testing.assert_close(
            steered[layer] - base[layer], (1.5 * v).expand_as(base[layer]), rtol=0, atol=1e-5
        )
        assert not torch.equal(logits, ref_logits)
    assert _no_hooks(model)
    assert torch.equal(_run(model, name).logits, ref_logits)  # bit for bit after remove()


@pytest.mark.parametrize("name", NAMES)
def test_project_out_removes_component(name: str, tmp_path: Path) -> None:
    model = tiny_models.build(name)
    path = tiny_models.vector_package(tmp_path / "p.mindvec", model, operation="project_out")
    unit = _vec(path) / _vec(path).norm()
    seen: dict[int, Any] = {}
    with attach(model, ("decoder", 1, "resid_post"), lambda t: seen.__setitem__(1, t.detach().clone())):
        with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
            _run(model, name)
    h = seen[1]
    rel = (h @ unit).abs() / h.norm(dim=-1)
    assert float(rel.max()) < 1e-5


#: where each term enters the residual sum, read from the transformers sources (not from
#: mindvec's tables): (block path, {point: (module, "in" = its input | "out" = its output)})
_RESIDUAL_SUMS: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {
    "llama": ("model.layers.1", {"attn_out": ("post_attention_layernorm", "in"), "mlp_out": ("", "out")}),
    "granite": ("model.layers.1", {"attn_out": ("post_attention_layernorm", "in"), "mlp_out": ("", "out")}),
    "gemma2": ("model.layers.1", {"attn_out": ("pre_feedforward_layernorm", "in"), "mlp_out": ("", "out")}),
    "gptj": ("transformer.h.1", {"attn_out": ("", "out"), "mlp_out": ("", "out")}),  # parallel block
    "bert": (
        "bert.encoder.layer.1",
        {"attn_out": ("attention.output.LayerNorm", "in"), "mlp_out": ("output.LayerNorm", "in")},
    ),
    "bart": (
        "model.decoder.layers.1",
        {
            "attn_out": ("self_attn_layer_norm", "in"),
            "cross_attn_out": ("encoder_attn_layer_norm", "in"),
            "mlp_out": ("final_layer_norm", "in"),
        },
    ),
}


def _residual_sum(model: Any, name: str, point: str, store: list[Any]) -> Any:
    """A plain torch hook that records the residual sum ``point``'s term was just added into."""
    block_path, where = _RESIDUAL_SUMS[name]
    module_path, side = where[point]
    module = model.get_submodule(f"{block_path}.{module_path}" if module_path else block_path)

    def first(value: Any) -> Any:
        return (value[0] if isinstance(value, tuple) else value).detach().clone()

    if side == "in":
        return module.register_forward_pre_hook(lambda _m, args: store.append(first(args)))
    return module.register_forward_hook(lambda _m, _a, out: store.append(first(out)))


@pytest.mark.parametrize("name", sorted(_RESIDUAL_SUMS))
def test_add_at_terms(name: str, tmp_path: Path) -> None:
    """attn_out / mlp_out (/ cross_attn_out): the residual sum the term enters moves by exactly s·v."""
    spec = tiny_models.SPECS[name]
    model = tiny_models.build(name)
    points = [p for p in spec.points if p != "resid_post"]
    assert set(points) == set(_RESIDUAL_SUMS[name][1])
    for point in points:
        path = tiny_models.vector_package(tmp_path / f"{point}.mindvec", model, point=point)
        v = _vec(path)
        seen: list[Any] = []
        handle = _residual_sum(model, name, point, seen)
        try:
            _run(model, name)
            with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
                _run(model, name)
        finally:
            handle.remove()
        base, steered = seen
        torch.testing.assert_close(steered - base, (2.0 * v).expand_as(base), rtol=0, atol=1e-5)


def test_clamp_sets_projection(tmp_path: Path) -> None:
    model = tiny_models.build("qwen2")
    path = tiny_models.vector_package(tmp_path / "c.mindvec", model, operation="clamp", scale=-3.0)
    unit = _vec(path) / _vec(path).norm()
    seen: dict[str, Any] = {}
    with attach(model, ("decoder", 1, "resid_post"), lambda t: seen.__setitem__("t", t.detach().clone())):
        with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
            _run(model, "qwen2")
    torch.testing.assert_close(seen["t"] @ unit, torch.full(seen["t"].shape[:2], -3.0), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_output_hidden_states_shows_steered_values(name: str, tmp_path: Path) -> None:
    model = tiny_models.build(name)
    ids = tiny_models.input_ids()
    with torch.no_grad():
        before = model(ids, output_hidden_states=True).hidden_states  # installs transformers' hooks
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model)
    with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
        with torch.no_grad():
            after = model(ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(
        after[2] - before[2], (2.0 * _vec(path)).expand_as(before[2]), rtol=0, atol=1e-5
    )
    assert torch.equal(after[1], before[1])


def test_handles_compose_one_hook_per_site_and_scale_is_live(tmp_path: Path) -> None:
    model = tiny_models.build("mistral")
    p1 = tiny_models.vector_package(tmp_path / "a.mindvec", model, seed=1, name="a")
    p2 = tiny_models.vector_package(tmp_path / "b.mindvec", model, seed=2, name="b")
    v1, v2 = _vec(p1), _vec(p2)
    block = find_stacks(model).decoder.block(1)
    seen: dict[str, Any] = {}
    cap = attach(model, ("decoder", 1, "resid_post"), lambda t: seen.__setitem__("t", t.detach().clone()))
    _run(model, "mistral")
    base = seen["t"]
    h1 = mindvec.steer(model, p1, scale=1.0, policy=Policy(allow_unsigned=True))
    h2 = mindvec.steer(model, p2, scale=3.0, policy=Policy(allow_unsigned=True))
    assert len(block._forward_hooks) == 2  # the capture and ONE steering hook
    _run(model, "mistral")
    torch.testing.assert_close(seen["t"] - base, (v1 + 3.0 * v2).expand_as(base), rtol=0, atol=1e-5)
    h2.scale = -1.0
    _run(model, "mistral")
    torch.testing.assert_close(seen["t"] - base, (v1 - v2).expand_as(base), rtol=0, atol=1e-5)
    h1.remove()
    _run(model, "mistral")
    torch.testing.assert_close(seen["t"] - base, (-v2).expand_as(base), rtol=0, atol=1e-5)
    h2.remove()
    _run(model, "mistral")
    assert torch.equal(seen["t"], base)
    assert len(block._forward_hooks) == 1
    cap.remove()


def test_weighted_vectors_and_layers(tmp_path: Path) -> None:
    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(0, 2))
    with mindvec.steer(
        model, mindvec.open(path), policy=Policy(allow_unsigned=True)
    ) as h:  # a Package works too
        assert [s.layer for s in h.sites] == [0, 2] and h.active
    assert not h.active
    with mindvec.steer(model, path, layers=[2], policy=Policy(allow_unsigned=True)) as h:
        assert [s.layer for s in h.sites] == [2]
    with mindvec.steer(model, path, vector={"v": 0.5}, scale=4.0, policy=Policy(allow_unsigned=True)) as h:
        assert h.scale == 4.0
        assert h._entries[0].op.scale == 2.0
    with pytest.raises(UsageError) as err:
        mindvec.steer(model, path, layers=[1], policy=Policy(allow_unsigned=True))
    assert err.value.code == "argument"
    assert _no_hooks(model)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision(dtype: str, tmp_path: Path) -> None:
    torch_dtype = getattr(torch, dtype)
    model = tiny_models.build("llama", dtype=torch_dtype)
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model)
    seen: dict[str, Any] = {}
    with attach(model, ("decoder", 1, "resid_post"), lambda t: seen.__setitem__("t", t.detach().clone())):
        _run(model, "llama")
        base = seen["t"]
        with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)) as h:
            assert h._entries[0].op._delta.dtype == torch_dtype  # cast once at install
            _run(model, "llama")
    assert seen["t"].dtype == torch_dtype
    tol = 2e-2 if dtype == "bfloat16" else 4e-3
    expected = (2.0 * _vec(path)).to(torch_dtype).float().expand_as(base)
    torch.testing.assert_close((seen["t"] - base).float(), expected, rtol=tol, atol=tol * 4)


@pytest.mark.req("R-61")
def test_mismatch_576_vs_640_raises_before_any_hook(tmp_path: Path) -> None:
    """[R-61] a package bound to a 576-wide model on a 640-wide one: model-mismatch, no hook."""
    from transformers import LlamaConfig, LlamaForCausalLM

    def tiny(hidden: int) -> Any:
        cfg = LlamaConfig(
            hidden_size=hidden,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            vocab_size=64,
        )
        return LlamaForCausalLM(cfg).eval()

    path = tiny_models.vector_package(tmp_path / "v.mindvec", tiny(576))
    target = tiny(640)
    with pytest.raises(InvalidError) as err:
        mindvec.steer(target, path, policy=Policy(allow_unsigned=True))
    assert err.value.code == "model-mismatch"
    assert "hidden_size (package 576, model 640)" in err.value.message
    assert _no_hooks(target)
    with pytest.warns(UserWarning):
        with pytest.raises(InvalidError) as err2:  # strict=False warns, then the shape cannot fit
            mindvec.steer(target, path, strict=False, policy=Policy(allow_unsigned=True))
    assert err2.value.code == "shape"
    assert _no_hooks(target)


@pytest.mark.req("R-72")
def test_unsigned_package_refused_by_default(tmp_path: Path) -> None:
    """[R-72] steer() runs the signature policy; unsigned needs allow_unsigned."""
    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model)
    with pytest.raises(UnverifiedError) as err:
        mindvec.steer(model, path)
    assert err.value.code == "no-signature"
    assert _no_hooks(model)


def test_invalid_positions_and_package(tmp_path: Path) -> None:
    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model)
    with pytest.raises(UsageError):
        mindvec.steer(model, path, positions="middle", policy=Policy(allow_unsigned=True))
    with pytest.raises(UsageError):
        mindvec.steer(model, 42, policy=Policy(allow_unsigned=True))
    assert _no_hooks(model)


# ----------------------------------------------------------------- generate() and positions


def _generate(model: Any, ids: Any, mask: Any, **kw: Any) -> Any:
    with torch.no_grad():
        return model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=4,
            do_sample=False,
            pad_token_id=0,
            output_logits=True,
            return_dict_in_generate=True,
            **kw,
        )


def _deltas(model: Any, path: Path, positions: Any, ids: Any, mask: Any, **kw: Any) -> tuple[Any, list[Any]]:
    """Generate while steering; per step, the steered-minus-unsteered value at the site."""
    post: list[Any] = []
    pre: list[Any] = []
    h_post = attach(model, ("decoder", 1, "resid_post"), lambda t: post.append(t.detach().clone()))
    handle = mindvec.steer(model, path, positions=positions, policy=Policy(allow_unsigned=True))
    h_pre = attach(model, ("decoder", 1, "resid_post"), lambda t: pre.append(t.detach().clone()))
    out = _generate(model, ids, mask, **kw)
    for h in (h_pre, handle, h_post):
        h.remove()
    return out, [a - b for a, b in zip(post, pre, strict=True)]


@pytest.fixture(scope="module")
def llama() -> Any:
    return tiny_models.build("llama")


def _batch() -> tuple[Any, Any]:
    ids = tiny_models.input_ids(2, 5)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # left padding
    ids[0, :2] = 0
    return ids, mask


def test_generated_positions(llama: Any, tmp_path: Path) -> None:
    path = tiny_models.vector_package(tmp_path / "v.mindvec", llama, scale=8.0)
    ids, mask = _batch()
    plain = _generate(llama, ids, mask)
    out, deltas = _deltas(llama, path, "generated", ids, mask)
    assert torch.equal(out.logits[0], plain.logits[0])  # the prompt's logits are unchanged
    assert not torch.equal(out.logits[1], plain.logits[1])
    assert float(deltas[0].abs().max()) == 0.0
    for d in deltas[1:]:
        assert d.shape[1] == 1
        torch.testing.assert_close(d, (8.0 * _vec(path)).expand_as(d), rtol=0, atol=1e-5)
    # without the KV cache each step re-runs the whole sequence; generated tokens are still known
    fresh, fresh_deltas = _deltas(llama, path, "generated", ids, mask, use_cache=False)
    assert torch.equal(fresh.sequences, out.sequences)
    assert float(fresh_deltas[0].abs().max()) == 0.0
    last = fresh_deltas[-1]  # step 4 sees prompt (5) + 3 generated tokens
    assert (last.abs().sum(-1) > 0).tolist() == [[False] * 5 + [True] * 3] * 2


def test_prompt_positions_never_touch_generated_tokens(llama: Any, tmp_path: Path) -> None:
    path = tiny_models.vector_package(tmp_path / "v.mindvec", llama)
    ids, mask = _batch()
    _, deltas = _deltas(llama, path, "prompt", ids, mask)
    expected = (2.0 * _vec(path)) * mask.unsqueeze(-1)  # real prompt tokens only, not padding
    torch.testing.assert_close(deltas[0], expected, rtol=0, atol=1e-5)
    assert len(deltas) == 4
    for d in deltas[1:]:
        assert float(d.abs().max()) == 0.0


def test_last_prompt_position(llama: Any, tmp_path: Path) -> None:
    path = tiny_models.vector_package(tmp_path / "v.mindvec", llama)
    ids, mask = _batch()
    _, deltas = _deltas(llama, path, "last_prompt", ids, mask)
    nonzero = deltas[0].abs().sum(-1) > 0
    assert nonzero.tolist() == [[False, False, False, False, True], [False, False, False, False, True]]
    assert all(float(d.abs().max()) == 0.0 for d in deltas[1:])


def test_start_index_same_with_and_without_cache(llama: Any, tmp_path: Path) -> None:
    path = tiny_models.vector_package(tmp_path / "v.mindvec", llama, scale=8.0)
    ids, mask = _batch()
    cached, d_cached = _deltas(llama, path, 2, ids, mask)
    fresh, d_fresh = _deltas(llama, path, 2, ids, mask, use_cache=False)
    assert torch.equal(cached.sequences, fresh.sequences)
    for a, b in zip(cached.logits, fresh.logits, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # index 2 counts from each sequence's first real token: row 0 starts at column 2+2
    steered0 = (d_cached[0].abs().sum(-1) > 0).tolist()
    assert steered0 == [[False, False, False, False, True], [False, False, True, True, True]]
    assert steered0 == (d_fresh[0].abs().sum(-1) > 0).tolist()
    assert all(bool((d.abs().sum(-1) > 0).all()) for d in d_cached[1:])
    plain = _generate(llama, ids, mask)
    assert not torch.equal(plain.logits[0], cached.logits[0])


@pytest.mark.parametrize("positions", ["all", 1, "last_prompt"])
def test_padding_left_and_right_same_as_alone(llama: Any, tmp_path: Path, positions: Any) -> None:
    path = tiny_models.vector_package(tmp_path / "v.mindvec", llama, scale=5.0)
    alone = tiny_models.input_ids(1, 4, seed=5)
    other = tiny_models.input_ids(1, 6, seed=6)

    def logits(ids: Any, mask: Any) -> Any:
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            return llama(ids, attention_mask=mask, position_ids=pos).logits

    with mindvec.steer(llama, path, positions=positions, policy=Policy(allow_unsigned=True)):
        ref = logits(alone, torch.ones_like(alone))[0]
        left = torch.cat([torch.zeros(1, 2, dtype=torch.long), alone], 1)
        lmask = torch.cat([torch.zeros(1, 2, dtype=torch.long), torch.ones_like(alone)], 1)
        out_left = logits(torch.cat([left, other]), torch.cat([lmask, torch.ones_like(other)]))[0, 2:]
        right = torch.cat([alone, torch.zeros(1, 2, dtype=torch.long)], 1)
        rmask = torch.cat([torch.ones_like(alone), torch.zeros(1, 2, dtype=torch.long)], 1)
        out_right = logits(torch.cat([right, other]), torch.cat([rmask, torch.ones_like(other)]))[0, :4]
    plain = logits(alone, torch.ones_like(alone))[0]
    assert not torch.allclose(plain, ref)
    torch.testing.assert_close(out_left, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_right, ref, rtol=1e-5, atol=1e-5)


def test_signed_trusted_package_needs_no_opt_in(tmp_path: Path) -> None:
    from mindvec.keys import SecretKey
    from mindvec.trust import TrustEntry, TrustStore

    model = tiny_models.build("llama")
    alice, mallory = SecretKey.from_seed(bytes(range(1, 33))), SecretKey.from_seed(bytes(range(2, 34)))
    trust = TrustStore([TrustEntry("alice", alice.public_key)])
    good = tiny_models.vector_package(tmp_path / "a.mindvec", model, signers=[alice])
    with mindvec.steer(model, good, policy=Policy(trust=trust)) as handle:
        assert handle.sites
    bad = tiny_models.vector_package(tmp_path / "m.mindvec", model, signers=[mallory])
    with pytest.raises(UnverifiedError) as err:
        mindvec.steer(model, bad, policy=Policy(trust=trust))
    assert err.value.code == "untrusted-key"
    mindvec.steer(model, bad, policy=Policy(trust=trust, allow_untrusted=True)).remove()
    assert _no_hooks(model)


def test_hf_url_dispatches_to_hub_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mindvec import hub

    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model)
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_pull(ref: str, **kwargs: Any) -> Any:
        calls.append((ref, kwargs))
        return mindvec.open(path)

    monkeypatch.setattr(hub, "pull", fake_pull)
    with mindvec.steer(model, "hf://org/repo@main/v.mindvec", policy=Policy(allow_unsigned=True)):
        pass
    assert calls == [("hf://org/repo@main/v.mindvec", {"policy": Policy(allow_unsigned=True)})]


def test_steer_closes_what_it_opened_and_only_that(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: steer opened a Package it never closed. A path is opened and closed by steer;
    a Package the caller hands in stays open for the caller."""
    from mindvec.package import Package

    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model)
    closed: list[Path] = []
    real_close = Package.close

    def recording_close(self: Package) -> None:
        closed.append(self.path)
        real_close(self)

    monkeypatch.setattr(Package, "close", recording_close)
    with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
        assert closed == [path]  # closed at install: the vector was copied
        _run(model, "llama")
    closed.clear()
    handed = mindvec.open(path)
    with mindvec.steer(model, handed, policy=Policy(allow_unsigned=True)):
        pass
    assert closed == [] and handed.tensor(handed.vector().sites[0].tensor).shape == (32,)


# ----------------------------------------------------------------- per-row steering in a batch


def test_rows_of_one_batch_take_different_packages(tmp_path: Path) -> None:
    """Row 0 with vector a, row 1 with vector b (scale 3), row 2 with nothing: each row equals
    that row run alone with its own steering, and the unsteered row equals the unsteered model."""
    model = tiny_models.build("llama")
    pa = tiny_models.vector_package(tmp_path / "a.mindvec", model, seed=1, name="a", layers=(1,))
    pb = tiny_models.vector_package(tmp_path / "b.mindvec", model, seed=2, name="b", layers=(1, 2))
    ids = tiny_models.input_ids(3, 6)
    open_policy = Policy(allow_unsigned=True)
    with mindvec.steer(model, pa, rows=[True, False, False], policy=open_policy):
        with mindvec.steer(model, pb, scale=3.0, rows=[1], policy=open_policy):
            batch = _run(model, "llama", ids).logits
    with mindvec.steer(model, pa, policy=open_policy):
        alone_a = _run(model, "llama", ids[0:1]).logits
    with mindvec.steer(model, pb, scale=3.0, policy=open_policy):
        alone_b = _run(model, "llama", ids[1:2]).logits
    plain = _run(model, "llama", ids[2:3]).logits
    torch.testing.assert_close(batch[0:1], alone_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batch[1:2], alone_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batch[2:3], plain, rtol=1e-5, atol=1e-5)
    assert (alone_a - _run(model, "llama", ids[0:1]).logits).abs().max() > 1e-2  # a really steers
    assert _no_hooks(model)


def test_rows_follow_generate_expansion_and_can_change(tmp_path: Path) -> None:
    """num_return_sequences repeats each input row; the mask is repeated with it."""
    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,), scale=4.0)
    ids = tiny_models.input_ids(2, 5)
    kw: dict[str, Any] = {"max_new_tokens": 3, "do_sample": False, "pad_token_id": 0}
    kw |= {"num_beams": 2, "num_return_sequences": 2, "output_logits": True, "return_dict_in_generate": True}
    with torch.no_grad():
        with mindvec.steer(model, path, rows=[False, True], policy=Policy(allow_unsigned=True)) as handle:
            both = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
            assert handle.rows == (False, True)
            handle.rows = [True, False]
            swapped = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
        plain0 = model.generate(ids[0:1], attention_mask=torch.ones_like(ids[0:1]), **kw)
        with mindvec.steer(model, path, policy=Policy(allow_unsigned=True)):
            steered1 = model.generate(ids[1:2], attention_mask=torch.ones_like(ids[1:2]), **kw)
            steered0 = model.generate(ids[0:1], attention_mask=torch.ones_like(ids[0:1]), **kw)
    first = torch.stack(both.logits)  # [steps, 2 rows x 2 beams, vocab]
    torch.testing.assert_close(first[:, 0:2], torch.stack(plain0.logits), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(first[:, 2:4], torch.stack(steered1.logits), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        torch.stack(swapped.logits)[:, 0:2], torch.stack(steered0.logits), rtol=1e-4, atol=1e-4
    )
    with pytest.raises(UsageError, match="rows="):
        mindvec.steer(model, path, rows=[], policy=Policy(allow_unsigned=True))
