"""Operations (spec equations) and position selection, on raw tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindvec  # noqa: E402
from mindvec.errors import UsageError  # noqa: E402
from mindvec.loader.hooks import Operation, StepContext, check_positions  # noqa: E402
from mindvec.policy import Policy  # noqa: E402
from tests import tiny_models  # noqa: E402


def _h() -> torch.Tensor:
    return torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()


def _v() -> torch.Tensor:
    return torch.randn(8, generator=torch.Generator().manual_seed(1))


@pytest.mark.req("R-39")
def test_add_equation() -> None:
    """[R-39]"""
    h, v = _h(), _v()
    op = Operation("add", v, 1.5, "all", like=h)
    assert torch.equal(op.apply(h, None), h + (1.5 * v))
    op.scale = -2.0
    assert torch.equal(op.apply(h, None), h + (-2.0 * v))


@pytest.mark.req("R-39")
def test_project_out_and_clamp_equations() -> None:
    """[R-39]"""
    h, v = _h(), _v()
    u = v / v.norm()
    out = Operation("project_out", v, 7.0, "all", like=h).apply(h, None)
    torch.testing.assert_close(out, h - (h @ u).unsqueeze(-1) * u)
    assert float(((out @ u).abs() / out.norm(dim=-1)).max()) < 1e-6
    out = Operation("clamp", v, 3.0, "all", like=h).apply(h, None)
    torch.testing.assert_close(out, h + (3.0 - h @ u).unsqueeze(-1) * u)
    torch.testing.assert_close(out @ u, torch.full((2, 5), 3.0))


def test_selection_restricts_and_cast_once() -> None:
    h = _h().to(torch.bfloat16)
    op = Operation("add", _v(), 1.0, "all", like=h)
    assert op._delta.dtype == torch.bfloat16
    sel = torch.zeros(2, 5, 1, dtype=torch.bool)
    sel[1, 3] = True
    out = op.apply(h, sel)
    assert torch.equal(out[0], h[0])
    assert not torch.equal(out[1, 3], h[1, 3])


def _sel(ctx: StepContext, positions: object, seq: int, batch: int = 2) -> list[list[bool]]:
    got = ctx.selection(positions, torch.zeros(batch, seq, 4))  # type: ignore[arg-type]
    if got is None:
        return [[True] * seq for _ in range(batch)]
    return got.squeeze(-1).tolist()


def test_positions_on_prompt_with_left_padding() -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    ctx = StepContext(mask, past=0, prompt_len=5)
    assert _sel(ctx, "all", 5) == [[False, False, True, True, True], [True] * 5]
    assert _sel(ctx, "prompt", 5) == _sel(ctx, "all", 5)
    assert _sel(ctx, "generated", 5) == [[False] * 5, [False] * 5]
    assert _sel(ctx, "last_prompt", 5) == [[False] * 4 + [True]] * 2
    assert _sel(ctx, 1, 5) == [[False, False, False, True, True], [False, True, True, True, True]]


def test_positions_on_generated_step_and_right_padding() -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    ctx = StepContext(mask, past=5, prompt_len=5)
    assert _sel(ctx, "generated", 1) == [[True], [True]]
    assert _sel(ctx, "prompt", 1) == [[False], [False]]
    assert _sel(ctx, "last_prompt", 1) == [[False], [False]]
    assert _sel(ctx, 4, 1) == [[False], [True]]  # row 0 has 4 real tokens before this one
    right = StepContext(torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]]), past=0, prompt_len=4)
    assert _sel(right, "last_prompt", 4) == [[False, False, True, False], [False, False, False, True]]


def test_no_mask_means_all_real() -> None:
    ctx = StepContext(None, past=3, prompt_len=3)
    assert _sel(ctx, "all", 2) == [[True, True]] * 2
    assert _sel(ctx, "generated", 2) == [[True, True]] * 2
    assert _sel(ctx, 4, 2) == [[False, True]] * 2


def test_check_positions() -> None:
    assert check_positions("prompt") == "prompt"
    assert check_positions(3) == 3
    for bad in ("everything", -1, True, 1.5):
        with pytest.raises(UsageError):
            check_positions(bad)
    with pytest.raises(UsageError):
        Operation("scale", _v(), 1.0, "all", like=_h())


def test_recast_once_when_model_dtype_changes() -> None:
    h = _h()
    op = Operation("add", _v(), 1.0, "all", like=h)
    half = h.to(torch.float16)
    out = op.apply(half, None)
    assert out.dtype == torch.float16 and op._delta.dtype == torch.float16


class _Cache:
    def __init__(self, n: int) -> None:
        self.n = n

    def get_seq_length(self) -> int:
        return self.n


def test_recorder_tracks_prompt_across_calls() -> None:
    from mindvec.loader.hooks import ContextRecorder

    rec = ContextRecorder(torch.nn.Identity())

    def step(**kwargs: object) -> StepContext:
        """One forward call whose sites ask for the context (recording is lazy)."""
        rec._pre(None, (), kwargs)
        return rec.context(kwargs["input_ids"])

    ids = torch.ones(1, 5, dtype=torch.long)
    ctx = step(input_ids=ids, cache=_Cache(0))
    assert (ctx.past, ctx.prompt_len) == (0, 5)
    ctx = step(input_ids=ids[:, :1], cache=_Cache(5))
    assert (ctx.past, ctx.prompt_len) == (5, 5)
    assert step(input_ids=torch.ones(1, 3, dtype=torch.long), cache=_Cache(8)).prompt_len == 11  # a new turn
    longer = torch.ones(1, 7, dtype=torch.long)
    step(input_ids=ids)  # fresh prompt without cache
    assert step(input_ids=longer).prompt_len == 5  # use_cache=False: the same generation goes on
    assert step(input_ids=torch.zeros(1, 7, dtype=torch.long)).prompt_len == 7  # a different prompt
    # the mask's extra columns give the cached length, from shapes alone
    mask = torch.ones(1, 9, dtype=torch.long)
    assert step(input_ids=ids[:, :1], attention_mask=mask).past == 8
    rec.remove()


# ------------------------------------------------------- no host sync, fused adds, torch.compile

_SYNCS = ("__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy", "cpu")


def _loader_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every device-to-host read made from mindvec's loader code (a host sync on a GPU)."""
    import traceback

    seen: list[str] = []
    for name in _SYNCS:
        original = getattr(torch.Tensor, name)

        def spy(self: torch.Tensor, *a: Any, _original: Any = original, _name: str = name, **k: Any) -> Any:
            frames = traceback.extract_stack()[:-1]
            here = [f"{Path(f.filename).name}:{f.lineno}" for f in frames if "mindvec/loader" in f.filename]
            if here:
                seen.append(f"{_name} at {here[-1]}")
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    return seen


@pytest.mark.parametrize("positions", ["all", "generated", 2])
def test_steered_generation_never_waits_on_the_device(
    positions: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(0, 2))
    ids = tiny_models.input_ids(2, 5)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # left padding: the mask is used, not skipped
    handle = mindvec.steer(model, path, scale=2.0, positions=positions, policy=Policy(allow_unsigned=True))
    syncs = _loader_syncs(monkeypatch)
    with torch.no_grad():
        steered = model.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    monkeypatch.undo()
    handle.remove()
    with torch.no_grad():
        plain = model.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert syncs == []
    assert not torch.equal(steered, plain) or positions == "generated"  # the hooks did act


class _FullAdds(torch.overrides.TorchFunctionMode):
    """Counts additions whose result has the hidden state's shape."""

    def __init__(self, shape: torch.Size) -> None:
        super().__init__()
        self.shape, self.count = shape, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        is_add = getattr(func, "__name__", "") in {"add", "__add__", "__radd__", "add_", "__iadd__"}
        if is_add and isinstance(out, torch.Tensor) and out.shape == self.shape:
            self.count += 1
        return out


def test_adds_at_one_site_are_summed_once() -> None:
    from mindvec.loader.hooks import ContextRecorder, SiteOps

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(2, 5, 16, generator=gen)
    v1, v2, v3 = (torch.randn(16, generator=gen) for _ in range(3))
    run = SiteOps(ContextRecorder(torch.nn.Identity()))
    add1, add2 = Operation("add", v1, 2.0, "all", like=h), Operation("add", v2, -1.0, "all", like=h)
    run.ops += [add1, add2]
    with _FullAdds(h.shape) as counter:
        out = run(h)
    assert counter.count == 1
    expected = h.double().numpy() + 2.0 * v1.double().numpy() - v2.double().numpy()  # numpy, first principles
    np.testing.assert_allclose(out.double().numpy(), expected, rtol=1e-6, atol=1e-5)
    add1.scale = 0.5  # a live scale change reaches the fused sum
    expected = h.double().numpy() + 0.5 * v1.double().numpy() - v2.double().numpy()
    np.testing.assert_allclose(run(h).double().numpy(), expected, rtol=1e-6, atol=1e-5)
    # add, project_out, add: order kept, the adds on either side of project_out are not merged
    run.ops.insert(1, Operation("project_out", v3, 1.0, "all", like=h))
    with _FullAdds(h.shape) as counter:
        out = run(h).double().numpy()
    u = (v3 / v3.norm()).double().numpy()
    mid = h.double().numpy() + 0.5 * v1.double().numpy()
    mid = mid - (mid @ u)[..., None] * u
    np.testing.assert_allclose(out, mid - v2.double().numpy(), rtol=1e-5, atol=1e-5)
    assert counter.count == 2


def test_compiled_steered_generation_matches_eager(tmp_path: Path) -> None:
    """torch.compile(model): one graph, no break, and the eager steered logits at every step."""
    import time

    import torch._dynamo as dynamo
    from transformers import DynamicCache

    model = tiny_models.build("llama")
    path = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(0, 2))
    ids = tiny_models.input_ids(2, 6)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0

    def decode(fn: Any, steps: int = 3) -> torch.Tensor:
        cache, cur, m, logits = DynamicCache(config=model.config), ids, mask, []
        with torch.no_grad():
            for _ in range(steps):
                step = fn(input_ids=cur, attention_mask=m, cache=cache, use_cache=True).logits[:, -1]
                logits.append(step)
                cur = step.argmax(-1, keepdim=True)
                m = torch.cat([m, torch.ones_like(cur)], dim=1)
        return torch.stack(logits)

    plain = decode(model)
    handle = mindvec.steer(model, path, scale=3.0, policy=Policy(allow_unsigned=True))
    eager = decode(model)
    assert (eager - plain).abs().max() > 0.1  # steering changes the logits
    dynamo.reset()
    explained = dynamo.explain(model)(input_ids=ids, attention_mask=mask)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    dynamo.reset()
    started = time.perf_counter()
    compiled = decode(torch.compile(model))
    print(f"compile and decode: {time.perf_counter() - started:.1f} s")
    handle.remove()
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
