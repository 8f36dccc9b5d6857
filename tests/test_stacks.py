"""Finding block stacks: explicit table, structural fallback, and the `architecture` error."""

from __future__ import annotations

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
