"""export: verified first, exactly scale × vector, the llama.cpp layer convention, typed refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

import mindvec  # noqa: E402
from mindvec.cli import main  # noqa: E402
from mindvec.errors import InvalidError, UnverifiedError, UsageError  # noqa: E402
from mindvec.interop.export import export  # noqa: E402
from mindvec.interop.names import from_transformer_lens, transformer_lens  # noqa: E402
from mindvec.policy import Policy  # noqa: E402
from mindvec.site import Site  # noqa: E402
from tests import tiny_models  # noqa: E402

OPEN = Policy(allow_unsigned=True)


def _vectors(path: Path) -> dict[int, np.ndarray]:
    with mindvec.open(path) as pkg:
        spec = pkg.vector()
        return {
            s.site.layer: np.asarray(pkg.tensor(s.tensor), dtype=np.float32) * spec.scale for s in spec.sites
        }


def test_gguf_holds_direction_n_for_resid_post_n(tmp_path: Path) -> None:
    model = tiny_models.build("llama")
    pkg = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1, 2), scale=3.0)
    out = export(pkg, tmp_path / "v.gguf", format="llamacpp", policy=OPEN)
    reader = gguf.GGUFReader(str(out))
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    assert sorted(tensors) == ["direction.1", "direction.2"]
    expected = _vectors(pkg)
    for layer in (1, 2):
        got = tensors[f"direction.{layer}"]
        assert got.dtype == np.float32 and got.shape == (model.config.hidden_size,)
        np.testing.assert_array_equal(got, expected[layer])  # scale x vector, exactly, in float32
    fields = {name: reader.fields[name] for name in reader.fields}
    arch = bytes(fields["general.architecture"].parts[-1]).decode()
    hint = bytes(fields["controlvector.model_hint"].parts[-1]).decode()
    assert (arch, hint) == ("controlvector", "llama")
    assert int(fields["controlvector.layer_count"].parts[-1][0]) == 2
    with mindvec.open(pkg) as p:
        assert bytes(fields["mindvec.identity"].parts[-1]).decode() == p.identity.hex()


def test_what_llamacpp_cannot_express_is_refused_with_site(tmp_path: Path) -> None:
    model = tiny_models.build("llama")
    for layers, point, operation, positions in (
        ((0,), "resid_post", "add", "all"),
        ((1,), "mlp_out", "add", "all"),
        ((1,), "resid_post", "project_out", "all"),
        ((1,), "resid_post", "add", "generated"),
    ):
        pkg = tiny_models.vector_package(
            tmp_path / f"{point}{operation}{positions}{layers}.mindvec",
            model,
            layers=layers,
            point=point,
            operation=operation,
            positions=positions,
        )
        target = tmp_path / "out.gguf"
        with pytest.raises(InvalidError) as err:
            export(pkg, target, format="llamacpp", policy=OPEN)
        assert err.value.code == "site"
        assert not target.exists()  # nothing written


def test_export_verifies_first(tmp_path: Path) -> None:
    model = tiny_models.build("llama")
    pkg = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1,))
    with pytest.raises(UnverifiedError) as err:
        export(pkg, tmp_path / "v.gguf", format="llamacpp")  # the default policy: signed and trusted
    assert err.value.code == "no-signature" and not (tmp_path / "v.gguf").exists()
    code = main(["export", str(pkg), "--format", "llamacpp", "-o", str(tmp_path / "cli.gguf")])
    assert code == 1 and not (tmp_path / "cli.gguf").exists()
    code = main(
        ["export", str(pkg), "--format", "repeng", "-o", str(tmp_path / "cli.gguf"), "--allow-unsigned"]
    )
    assert code == 0 and (tmp_path / "cli.gguf").is_file()


def test_layers_subset_and_other_formats(tmp_path: Path) -> None:
    model = tiny_models.build("llama")
    pkg = tiny_models.vector_package(tmp_path / "v.mindvec", model, layers=(1, 2), scale=0.5)
    out = export(pkg, tmp_path / "one.gguf", format="llamacpp", policy=OPEN, layers=[2])
    assert [t.name for t in gguf.GGUFReader(str(out)).tensors] == ["direction.2"]
    with pytest.raises(UsageError, match="has layers"):
        export(pkg, tmp_path / "x.gguf", format="llamacpp", policy=OPEN, layers=[5])
    expected = _vectors(pkg)
    from safetensors import safe_open

    sv = export(pkg, tmp_path / "v.safetensors", format="steering-vectors", policy=OPEN)
    with safe_open(str(sv), "np") as handle:
        assert handle.metadata()["layer_type"] == "decoder_block"
        for layer in (1, 2):
            np.testing.assert_array_equal(handle.get_tensor(str(layer)), expected[layer])
    npd = json.loads(export(pkg, tmp_path / "v.json", format="neuronpedia", policy=OPEN).read_text())
    assert [item["hook_name"] for item in npd] == ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"]
    np.testing.assert_allclose(npd[0]["values"], expected[1], rtol=0, atol=0)


def test_transformer_lens_names_round_trip() -> None:
    for point in ("resid_post", "attn_out", "mlp_out"):
        site = Site("decoder", 3, point)
        assert from_transformer_lens(transformer_lens(site) or "") == site
    assert transformer_lens(Site("decoder", 0, "resid_pre")) == "blocks.0.hook_resid_pre"
    assert from_transformer_lens("blocks.4.hook_resid_pre") == Site("decoder", 3, "resid_post")
    assert transformer_lens(Site("encoder", 1, "resid_post")) is None
    with pytest.raises(InvalidError):
        from_transformer_lens("blocks.01.hook_resid_post")
