"""PackageBuilder: fluent assembly, reader-rule validation, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mindvec
from mindvec.builder import PackageBuilder
from mindvec.errors import InvalidError, UsageError
from mindvec.site import Site
from tests import factories

CAL = {"mean_norm": 10.0, "tokens": 64}


LOCAL_A = {"kind": "local", "note": "a"}
LOCAL_B = {"kind": "local", "note": "b"}
SITE1 = Site("decoder", 1, "resid_post")


def _builder() -> PackageBuilder:
    dataset = factories.mapping_entry()["fit"]["dataset"]
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    return (
        PackageBuilder("acme/demo", version=2, description="demo", intended_effect="nothing")
        .add_model(
            "src", model_type="llama", hidden_size=6, num_layers=3, source={"kind": "local", "note": "a"}
        )
        .add_model(
            "tgt",
            model_type="gemma3_text",
            hidden_size=4,
            num_layers=2,
            source={"kind": "local", "note": "b"},
        )
        .add_vector(
            "happy",
            "src",
            [
                (Site("decoder", 1, "resid_post"), rng.standard_normal(6).astype(np.float32), CAL),
                ({"stack": "decoder", "layer": 0, "point": "resid_pre"}, rng.standard_normal(6), CAL),
            ],
            scale=3.0,
            scale_range=(0.0, 6.0),
        )
        .add_mapping(
            "proc",
            source=("src", Site("decoder", 1, "resid_post")),
            target=("tgt", Site("decoder", 1, "resid_post")),
            form="orthogonal",
            tensors={"weight": q[:4].astype(np.float32)},
            fit={
                "method": "procrustes",
                "hyperparameters": {},
                "dataset": dataset,
                "pairing": "synthetic",
            },
            metrics=factories.mapping_entry()["metrics"],
            target_calibration=CAL,
            scale=1.5,
        )
        .add_correspondence(
            ("src", Site("decoder", 1, "resid_post")),
            ("tgt", Site("decoder", 1, "resid_post")),
            0.7,
            "linear_cka",
        )
        .add_extension("org.example.note", {"text": "hi"})
        .set_provenance(creator="tests", license="MIT", created=factories.CREATED)
    )


@pytest.mark.req("R-84")
def test_builder_round_trip_and_determinism(tmp_path: Path) -> None:
    """Same builder inputs give byte-identical files. [R-84]"""
    first = _builder().write(tmp_path / "a.mindvec")
    second = _builder().write(tmp_path / "b.mindvec")
    assert first.read_bytes() == second.read_bytes()
    package = mindvec.open(first)
    package.check_integrity()
    assert package.vector("happy").layers == (1, 0)
    assert package.mapping().scale == 1.5
    assert package.manifest["extensions"] == {"org.example.note": {"text": "hi"}}
    assert _builder().to_bytes() == first.read_bytes()


@pytest.mark.req("R-37", "R-83")
def test_builder_refuses_what_reader_rejects(tmp_path: Path) -> None:
    """The writer validates by the reader's rules: a non-orthogonal W is refused. [R-37] [R-83]"""
    builder = _builder()
    manifest, tensors = builder.build()
    tensors["mapping/proc/weight"] = np.ones((4, 6), dtype=np.float32)
    with pytest.raises(InvalidError) as info:
        mindvec.write(tmp_path / "x.mindvec", manifest, tensors)
    assert info.value.code == "value"
    assert not (tmp_path / "x.mindvec").exists()
    with pytest.raises(UsageError):
        PackageBuilder("a/b").build()


@pytest.mark.req("R-28")
def test_builder_critical_extension_refused(tmp_path: Path) -> None:
    """An unknown critical extension is refused at write time. [R-28]"""
    with pytest.raises(InvalidError) as info:
        _builder().add_extension("org.example.must", 1, critical=True).write(tmp_path / "c.mindvec")
    assert info.value.code == "critical-extension"
