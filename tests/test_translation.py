"""translate_vector / translate / steer(via=): W v, the recommended scale, provenance.

Translation is numpy alone, so only the tests that steer a model need torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mindvec
from mindvec.errors import InvalidError, UsageError
from mindvec.package import write
from mindvec.policy import Policy
from mindvec.translation import translate, translate_vector
from tests import factories, tiny_models

UNSIGNED_OK = Policy(allow_unsigned=True)

D_IN, D_OUT = 32, 48
C_SRC, C_TGT = 10.0, 30.0  # vector calibration (tiny_models.vector_package) and target calibration


@pytest.fixture(scope="module")
def models() -> tuple[Any, Any]:
    """Tiny torch models, for the tests that steer."""
    pytest.importorskip("torch")
    return tiny_models.build("llama"), tiny_models.build("qwen2", hidden_size=D_OUT, seed=1)


@pytest.fixture(scope="module")
def refs() -> tuple[dict[str, Any], dict[str, Any]]:
    """Manifest model entries, for the tests that only translate (no torch)."""
    return (
        factories.model_entry(hidden_size=D_IN, num_layers=3, model_type="llama"),
        factories.model_entry(hidden_size=D_OUT, num_layers=3, model_type="qwen2"),
    )


def _ref(model: Any, note: str) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    from mindvec.loader.binding import model_ref

    return model_ref(model, source={"kind": "local", "note": note})


def _mapping_package(path: Path, teacher: Any, student: Any, form: str, seed: int = 0) -> tuple[Path, Any]:
    """A mapping teacher L1 resid_post -> student L2 resid_post; returns (path, W by hand)."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, Any]
    if form == "low_rank":
        u = rng.standard_normal((D_OUT, 4)).astype(np.float32)
        v = rng.standard_normal((D_IN, 4)).astype(np.float32)
        tensors, weight = {"u": u, "v": v}, u.astype(np.float64) @ v.astype(np.float64).T
    elif form == "orthogonal":
        q, _ = np.linalg.qr(rng.standard_normal((D_OUT, D_IN)))
        w = q.astype(np.float32)  # orthonormal columns (d_out > d_in)
        tensors, weight = {"weight": w}, 1.7 * w.astype(np.float64)
    else:
        w = (rng.standard_normal((D_OUT, D_IN)) * 0.3).astype(np.float32)
        b = rng.standard_normal(D_OUT).astype(np.float32)
        tensors, weight = {"weight": w, "bias": b}, w.astype(np.float64)
    site = {"stack": "decoder", "point": "resid_post"}
    entry: dict[str, Any] = {
        "name": "t2s",
        "source": {"model": "teacher", "site": {**site, "layer": 1}},
        "target": {"model": "student", "site": {**site, "layer": 2}},
        "form": form,
        "tensors": {role: f"t2s.{role}" for role in tensors},
        "fit": {
            "method": "manual",
            "hyperparameters": {},
            "dataset": {"name": "none", "sha256": bytes(32), "samples": 0},
            "pairing": "synthetic",
        },
        "metrics": {
            "held_out": {"centered_cosine": 0.5, "raw_cosine": 0.5, "r2": 0.25},
            "baselines": {},
            "train_samples": 0,
            "test_samples": 0,
        },
        "target_calibration": {"mean_norm": C_TGT, "tokens": 1000},
    }
    if form == "orthogonal":
        entry["scale"] = 1.7
    manifest = {
        "package": {
            "id": "tests/map",
            "version": 3,
            "name": "map",
            "description": "synthetic map",
            "intended_effect": "none",
        },
        "models": {
            "teacher": _ref(teacher, "teacher"),
            "student": _ref(student, "student"),
        },
        "mappings": [entry],
        "provenance": {
            "creator": "tests",
            "created": "2026-01-01T00:00:00Z",
            "tool": {"name": "mindvec", "version": "0.1.0"},
            "license": "Apache-2.0",
        },
    }
    out = write(path, manifest, {f"t2s.{r}": t for r, t in tensors.items()})
    return out, weight


def _v(path: Path, layer: int = 1) -> np.ndarray[Any, Any]:
    pkg = mindvec.open(path)
    site = next(s for s in pkg.vector().sites if s.site.layer == layer)
    return np.array(pkg.tensor(site.tensor), dtype=np.float64)


@pytest.mark.req("R-35")
@pytest.mark.parametrize("form", ["affine", "orthogonal", "low_rank"])
def test_translate_vector_is_w_v_with_recommended_scale(refs: Any, tmp_path: Path, form: str) -> None:
    """[R-35] W_eff v for each form; norm_ratio and recommended_scale by the spec's rule."""
    teacher, student = refs
    vec = tiny_models.vector_package(tmp_path / "v.mindvec", teacher, layers=(0, 1), scale=3.0)
    mp, weight = _mapping_package(tmp_path / "m.mindvec", teacher, student, form)
    tv = translate_vector(vec, mp)
    v = _v(vec, layer=1)  # the mapping reads layer 1
    w_v = weight @ v
    np.testing.assert_allclose(tv.tensor, w_v, rtol=1e-5, atol=1e-5)
    ratio = np.linalg.norm(w_v) / (np.linalg.norm(v) * C_TGT / C_SRC)
    assert tv.norm_ratio == pytest.approx(ratio, rel=1e-6)
    assert tv.scale == pytest.approx(3.0 / ratio, rel=1e-6)
    assert tv.scale * np.linalg.norm(w_v) == pytest.approx(3.0 * np.linalg.norm(v) * C_TGT / C_SRC, rel=1e-5)
    assert tv.target_site.layer == 2 and tv.source_site.layer == 1


def test_translate_writes_package_with_parents(refs: Any, tmp_path: Path) -> None:
    teacher, student = refs
    vec = tiny_models.vector_package(tmp_path / "v.mindvec", teacher, scale=3.0)
    mp, weight = _mapping_package(tmp_path / "m.mindvec", teacher, student, "affine")
    out = translate(vec, mp, tmp_path / "t.mindvec", created="2026-02-02T00:00:00Z", policy=UNSIGNED_OK)
    pkg = mindvec.open(out)
    spec = pkg.vector()
    np.testing.assert_allclose(pkg.tensor(spec.sites[0].tensor), weight @ _v(vec), rtol=1e-5, atol=1e-5)
    parents = pkg.manifest["provenance"]["parents"]
    assert [(p["role"], p["id"]) for p in parents] == [
        ("vector", mindvec.open(vec).identity),
        ("mapping", mindvec.open(mp).identity),
    ]
    assert spec.translation is not None
    assert spec.translation["mapping_package"] == mindvec.open(mp).identity
    # the recommended scale and norm ratio by the spec's rule, from numpy (vector scale 3.0)
    w_v = weight @ _v(vec)
    ratio = float(np.linalg.norm(w_v) / (np.linalg.norm(_v(vec)) * C_TGT / C_SRC))
    assert spec.translation["norm_ratio"] == pytest.approx(ratio, rel=1e-6)
    assert spec.scale == pytest.approx(3.0 / ratio, rel=1e-6)
    assert spec.translation["recommended_scale"] == pytest.approx(3.0 / ratio, rel=1e-6)
    assert spec.scale_range[1] == pytest.approx(7.0 / ratio, rel=1e-6)  # the vector's range [0, 7], too
    assert spec.method["kind"] == "translated"
    assert pkg.manifest["models"][spec.model]["hidden_size"] == D_OUT
    assert spec.sites[0].mean_norm == C_TGT
    again = translate(vec, mp, tmp_path / "t2.mindvec", created="2026-02-02T00:00:00Z", policy=UNSIGNED_OK)
    assert again.read_bytes() == out.read_bytes()  # reproducible


def test_via_and_translate_agree_with_each_other_and_by_hand(models: Any, tmp_path: Path) -> None:
    import torch

    from mindvec.loader.sites import attach

    teacher, student = models
    vec = tiny_models.vector_package(tmp_path / "v.mindvec", teacher, scale=3.0)
    mp, weight = _mapping_package(tmp_path / "m.mindvec", teacher, student, "affine")
    translated = translate(vec, mp, tmp_path / "t.mindvec", policy=UNSIGNED_OK)
    tv = translate_vector(vec, mp)
    ids = tiny_models.input_ids()
    seen: list[Any] = []
    with attach(student, ("decoder", 2, "resid_post"), lambda t: seen.append(t.detach().clone())):
        with torch.no_grad():
            student(ids)
            with mindvec.steer(student, vec, via=mp, policy=Policy(allow_unsigned=True)) as handle:
                assert handle.scale == pytest.approx(tv.scale)
                via_logits = student(ids).logits
            with mindvec.steer(student, translated, policy=Policy(allow_unsigned=True)):
                tr_logits = student(ids).logits
    base, via_site, tr_site = seen
    assert torch.equal(via_logits, tr_logits)
    assert torch.equal(via_site, tr_site)
    by_hand = torch.from_numpy((tv.scale * (weight @ _v(vec))).astype(np.float32))
    torch.testing.assert_close(via_site - base, by_hand.expand_as(base), rtol=1e-4, atol=1e-4)


def test_via_checks_models(models: Any, tmp_path: Path) -> None:
    teacher, student = models
    vec = tiny_models.vector_package(tmp_path / "v.mindvec", teacher)
    mp, _ = _mapping_package(tmp_path / "m.mindvec", teacher, student, "affine")
    with pytest.raises(InvalidError) as err:  # the mapping targets the student, not the teacher
        mindvec.steer(teacher, vec, via=mp, policy=Policy(allow_unsigned=True))
    assert err.value.code == "model-mismatch"
    other = tiny_models.vector_package(tmp_path / "o.mindvec", tiny_models.build("mistral"))
    with pytest.raises(InvalidError) as err:  # the vector is not from the mapping's source model
        translate_vector(other, mp)
    assert err.value.code == "model-mismatch"
    wrong_site = tiny_models.vector_package(tmp_path / "w.mindvec", teacher, layers=(2,))
    with pytest.raises(InvalidError) as err:
        translate_vector(wrong_site, mp)
    assert err.value.code == "site"
    with pytest.raises(UsageError):
        translate_vector(vec, mp, mapping="nope")
    with pytest.raises(UsageError):
        mindvec.steer(student, vec, via=mp, layers=[1], policy=Policy(allow_unsigned=True))


def test_translate_refuses_unvouched_inputs_and_records_verdicts(refs: Any, tmp_path: Path) -> None:
    """Issue 13, finding 12: translate(unsigned_vector, unsigned_map, out, signers=[me]) wrote a
    package that verified. Now both inputs pass the policy first (unsigned needs the opt-in), and
    the output records how each input verified, in signed bytes (extension dev.mindvec.inputs)."""
    from mindvec.errors import UnverifiedError
    from mindvec.keys import SecretKey
    from mindvec.translation import INPUTS_EXTENSION
    from mindvec.trust import TrustEntry, TrustStore

    teacher, student = refs
    me = SecretKey.generate("me")
    trust = TrustStore([TrustEntry("me", me.public_key)])
    unsigned_vec = tiny_models.vector_package(tmp_path / "u.mindvec", teacher, scale=3.0)
    mp, _ = _mapping_package(tmp_path / "m.mindvec", teacher, student, "affine")
    out = tmp_path / "t.mindvec"
    with pytest.raises(UnverifiedError) as err:
        translate(unsigned_vec, mp, out, signers=[me], policy=Policy(trust=trust))
    assert err.value.code == "no-signature" and not out.exists()

    signed_vec = tiny_models.vector_package(tmp_path / "s.mindvec", teacher, scale=3.0, signers=[me])
    translate(signed_vec, mp, out, signers=[me], policy=Policy(trust=trust, allow_unsigned=True))
    with mindvec.open(out) as pkg:
        record = pkg.manifest["extensions"][INPUTS_EXTENSION]
        assert "critical" not in pkg.manifest  # readers that do not know it may ignore it
        assert record["vector"]["verdict"] == "verified" and record["vector"]["signers"] == [me.keyid]
        assert record["vector"]["identity"] == mindvec.open(signed_vec).identity
        assert record["mapping"]["verdict"] == "unsigned" and record["mapping"]["signers"] == []
    assert mindvec.verify(out, Policy(trust=trust)).verdict == "verified"
