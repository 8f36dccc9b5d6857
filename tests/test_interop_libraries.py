"""The same vector applied by repeng, by steering-vectors and by mindvec gives the same logits.

Each test exports a package with ``mindvec export`` and hands the file to the other library's
own loader and its own application code, on a tiny Llama, unpadded (steering-vectors also
steers padding). A control moves the vector one block and checks that the comparison would then fail by far
more than its tolerance, so a layer convention off by one cannot pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import mindvec  # noqa: E402
from mindvec.interop.export import export  # noqa: E402
from mindvec.policy import Policy  # noqa: E402
from tests import third_party, tiny_models  # noqa: E402

OPEN = Policy(allow_unsigned=True)


def _logits(model: Any, ids: Any) -> Any:
    with torch.no_grad():
        return model(ids).logits


@pytest.fixture(scope="module")
def llama() -> Any:
    return tiny_models.build("llama")


def _steered(model: Any, path: Path, ids: Any) -> Any:
    with mindvec.steer(model, path, policy=OPEN):
        return _logits(model, ids)


def test_repeng_control_model_matches_steer(llama: Any, tmp_path: Path) -> None:
    repeng = third_party.load("repeng")
    ids = tiny_models.input_ids(1, 7)
    pkg = tiny_models.vector_package(tmp_path / "v.mindvec", llama, layers=(1, 2), scale=4.0)
    gguf_file = export(pkg, tmp_path / "v.gguf", format="llamacpp", policy=OPEN)
    vector = repeng.ControlVector.import_gguf(str(gguf_file))
    assert sorted(vector.directions) == [1, 2]
    plain = _logits(llama, ids)
    ours = _steered(llama, pkg, ids)
    wrapped = repeng.ControlModel(llama, [1, 2])
    try:
        wrapped.set_control(vector, 1.0)
        theirs = _logits(wrapped, ids)
        first = vector.directions[1]
        shifted = repeng.ControlVector(vector.model_type, {1: first * 0, 2: first})  # layer 1's at 2
        wrapped.set_control(shifted, 1.0)
        off_by_one = _logits(wrapped, ids)
    finally:
        wrapped.reset()
        wrapped.unwrap()
    assert torch.equal(_logits(llama, ids), plain)  # both libraries removed their hooks
    scale = (ours - plain).abs().max()
    assert scale > 1e-2  # the vector does something
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    # one block off: the comparison above would have failed (by far more than its tolerance)
    assert (off_by_one - ours).abs().max() > 100 * (1e-5 + 1e-5 * ours.abs().max())


@pytest.mark.parametrize(
    "point, layer_type", [("resid_post", "decoder_block"), ("attn_out", "self_attn"), ("mlp_out", "mlp")]
)
def test_steering_vectors_apply_matches_steer(
    llama: Any, tmp_path: Path, point: str, layer_type: str
) -> None:
    sv = third_party.load("steering_vectors")
    from safetensors.torch import load_file

    ids = tiny_models.input_ids(1, 7)
    pkg = tiny_models.vector_package(
        tmp_path / f"{point}.mindvec", llama, layers=(1,), point=point, scale=3.0
    )
    out = export(pkg, tmp_path / f"{point}.safetensors", format="steering-vectors", policy=OPEN)
    tensors = load_file(str(out))  # the two-line loader of the README
    vector = sv.SteeringVector(
        layer_activations={int(k): v for k, v in tensors.items()}, layer_type=layer_type
    )
    plain = _logits(llama, ids)
    ours = _steered(llama, pkg, ids)
    with vector.apply(llama, multiplier=1.0):
        theirs = _logits(llama, ids)
    moved = sv.SteeringVector(layer_activations={2: tensors["1"]}, layer_type=layer_type)
    with moved.apply(llama, multiplier=1.0):
        off_by_one = _logits(llama, ids)
    assert torch.equal(_logits(llama, ids), plain)
    scale = (ours - plain).abs().max()
    assert scale > 1e-2
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    assert (off_by_one - ours).abs().max() > 100 * (1e-5 + 1e-5 * ours.abs().max())
