"""Operations (spec equations) and position selection, on raw tensors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mindvec.errors import UsageError  # noqa: E402
from mindvec.loader.hooks import Operation, StepContext, check_positions  # noqa: E402


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
    ids = torch.ones(1, 5, dtype=torch.long)
    rec._pre(None, (), {"input_ids": ids, "cache": _Cache(0)})
    assert rec.current is not None and (rec.current.past, rec.current.prompt_len) == (0, 5)
    rec._pre(None, (), {"input_ids": ids[:, :1], "cache": _Cache(5)})
    assert rec.current is not None and (rec.current.past, rec.current.prompt_len) == (5, 5)
    rec._pre(None, (), {"input_ids": torch.ones(1, 3, dtype=torch.long), "cache": _Cache(8)})
    assert rec.current is not None and rec.current.prompt_len == 11  # a new turn on the cache
    longer = torch.ones(1, 7, dtype=torch.long)
    rec._pre(None, (), {"input_ids": ids})  # fresh prompt without cache
    rec._pre(None, (), {"input_ids": longer})  # use_cache=False: the same generation goes on
    assert rec.current is not None and rec.current.prompt_len == 5
    rec._pre(None, (), {"input_ids": torch.zeros(1, 7, dtype=torch.long)})  # a different prompt
    assert rec.current is not None and rec.current.prompt_len == 7
    rec.remove()
