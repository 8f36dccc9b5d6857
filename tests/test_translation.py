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
C_TGT = 30.0  # the mapping's target calibration
PROVENANCE = {
    "creator": "tests",
    "created": "2026-01-01T00:00:00Z",
    "tool": {"name": "mindvec", "version": "0.1.0"},
    "license": "Apache-2.0",
}


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
        "provenance": dict(PROVENANCE),
    }
    out = write(path, manifest, {f"t2s.{r}": t for r, t in tensors.items()})
    return out, weight


def _v(path: Path, layer: int = 1) -> np.ndarray[Any, Any]:
    pkg = mindvec.open(path)
    site = next(s for s in pkg.vector().sites if s.site.layer == layer)
    return np.array(pkg.tensor(site.tensor), dtype=np.float64)


@pytest.mark.req("R-35", "R-94")
@pytest.mark.parametrize("form", ["affine", "orthogonal", "low_rank"])
def test_translate_vector_is_w_v_with_recommended_scale(refs: Any, tmp_path: Path, form: str) -> None:
    """[R-35] W_eff v for each form. [R-94] Without shrinkage statistics the target norm is
    |W_eff v| (map_gain) for the orthogonal map, so norm_ratio is 1 and the recommended scale is
    the vector's own; the regression forms divide by √R² of the stored held-out R² (0.25), so
    norm_ratio is 0.5 and the scale doubles (map_r2)."""
    teacher, student = refs
    vec = tiny_models.vector_package(tmp_path / "v.mindvec", teacher, layers=(0, 1), scale=3.0)
    mp, weight = _mapping_package(tmp_path / "m.mindvec", teacher, student, form)
    tv = translate_vector(vec, mp)
    v = _v(vec, layer=1)  # the mapping reads layer 1
    w_v = weight @ v
    np.testing.assert_allclose(tv.tensor, w_v, rtol=1e-5, atol=1e-5)
    ratio = 1.0 if form == "orthogonal" else 0.5
    assert tv.rule == ("map_gain" if form == "orthogonal" else "map_r2")
    assert tv.norm_ratio == pytest.approx(ratio, rel=1e-6)
    assert tv.scale == pytest.approx(3.0 / ratio, rel=1e-6)
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
    # the recommended scale and norm ratio by the spec's rule (map_r2: a manual affine map
    # with held-out R² 0.25, so n* = |W v| / 0.5)
    ratio = 0.5
    assert spec.translation["rule"] == "map_r2"
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
    the output records how each input verified, in signed bytes (1.1: ``provenance.inputs``)."""
    from mindvec.errors import UnverifiedError
    from mindvec.keys import SecretKey
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
        record = pkg.manifest["provenance"]["inputs"]
        assert pkg.manifest["format"] == "1.1" and "extensions" not in pkg.manifest
        assert record["vector"]["verdict"] == "verified" and record["vector"]["signers"] == [me.keyid]
        assert record["vector"]["identity"] == mindvec.open(signed_vec).identity
        assert record["mapping"]["verdict"] == "unsigned" and record["mapping"]["signers"] == []
    assert mindvec.verify(out, Policy(trust=trust)).verdict == "verified"


def _linear_pair(seed: int = 0) -> tuple[Any, Any, Any]:
    """Source activations with a spread spectrum, targets ``b = A a + noise`` (R² about 0.6,
    as on real pairs); the concept's difference of means ``v`` lies in the source's
    low-variance directions."""
    rng = np.random.default_rng(seed)
    spectrum = np.geomspace(100.0, 0.05, D_IN)
    basis, _ = np.linalg.qr(rng.standard_normal((D_IN, D_IN)))
    a = (rng.standard_normal((2000, D_IN)) * np.sqrt(spectrum)) @ basis.T + 5.0
    true_map = rng.standard_normal((D_OUT, D_IN)) / np.sqrt(D_IN)
    b = a @ true_map.T + 2.0 * rng.standard_normal((len(a), D_OUT)) - 2.0
    # a constant outlier dimension, as in Gemma 3: it moves the source's mean norm, not A v
    # (b stays an affine function of a)
    a[:, 0] += 300.0
    v = basis[:, -8:] @ rng.standard_normal(8)  # a direction the source barely varies along
    return a, b, (true_map, v)


@pytest.mark.req("R-94")
def test_ridge_gain_recovers_the_least_squares_image_of_the_vector(refs: Any, tmp_path: Path) -> None:
    """[R-94] On a synthetic linear pair ``b = A a + e`` the least-squares image of ``v`` is
    ``A v`` in closed form. Ridge shrinks ``W v`` well below it; the ridge part of the rule
    undoes the shrinkage from the mapping's stored statistics, so ``scale·|W v|`` is ``|A v|`` to
    within the fit's sampling error, where ``|W v|`` and the 1.0 rule (ratio of mean norms) are
    far off. (A stored R² of 0 gives no share to divide by: rule ``ridge_gain``.)"""
    from mindvec.fit.mapping import fit
    from mindvec.fit.stats import PairStats

    teacher, student = refs
    a, b, (true_map, v) = _linear_pair()
    linear = fit(PairStats.from_arrays(a[:1500], b[:1500]), PairStats.from_arrays(a[1500:], b[1500:]))
    assert linear.source_covariance is not None and linear.shrinkage is not None
    weight, sigma, shrink = linear.weight, linear.source_covariance, linear.shrinkage
    shrunk = float(np.linalg.norm(weight @ v))
    truth = float(np.linalg.norm(true_map @ v))
    assert shrunk < 0.7 * truth  # the ridge shrinks this direction a lot
    # τ from first principles: the residuals of numpy's own least squares on all rows
    design = np.hstack([a, np.ones((len(a), 1))])
    resid = b - design @ np.linalg.lstsq(design, b, rcond=None)[0]
    assert shrink["residual_variance"] == pytest.approx(
        float(np.sum(resid**2)) / (len(a) - D_IN - 1), rel=1e-6
    )
    assert shrink["samples"] == len(a)
    vec = tiny_models.vector_package(tmp_path / "v.mindvec", teacher, layers=(1,), scale=1.0, values=v)
    mp = _ridge_package(tmp_path / "m.mindvec", teacher, student, weight, sigma, shrink, r2=0.0)
    tv = translate_vector(vec, mp)
    assert tv.rule == "ridge_gain"
    # by hand, from numpy: n*² = |W (v + α Σ⁺ v)|² − τ·vᵀΣ⁺v/n
    inv_v = np.linalg.pinv(sigma, rcond=1e-6, hermitian=True) @ v
    u = weight @ (v + float(shrink["alpha"]) * inv_v)
    n_star = float(np.sqrt(u @ u - float(shrink["residual_variance"]) * float(v @ inv_v) / len(a)))
    assert tv.norm_ratio == pytest.approx(shrunk / n_star, rel=1e-3)
    injected = tv.scale * float(np.linalg.norm(tv.tensor))
    assert injected == pytest.approx(n_star, rel=1e-3)
    assert abs(injected / truth - 1.0) < 0.1, (injected, truth, shrunk)
    mean_rule = (
        float(np.linalg.norm(v))
        * float(np.linalg.norm(b, axis=1).mean())
        / float(np.linalg.norm(a, axis=1).mean())
    )
    assert abs(mean_rule / truth - 1.0) > 0.3  # the 1.0 rule misses what this one gets


def _shared_signal_pair(seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """Two models that see one latent signal ``z`` (flat spectrum) through noise of their own,
    with equal reliability λ = 1/2: ``a = Ra z + e_a``, ``b = Rb z + e_b``. A concept that shifts
    ``z`` by ``δ`` has the difference of means ``v = Ra δ`` in the source and ``u = Rb δ`` in
    the target, in closed form."""
    rng = np.random.default_rng(seed)
    ra, _ = np.linalg.qr(rng.standard_normal((D_IN, D_IN)))
    rb, _ = np.linalg.qr(rng.standard_normal((D_OUT, D_IN)))  # orthonormal columns
    z = rng.standard_normal((6000, D_IN))
    a = z @ ra.T + rng.standard_normal((len(z), D_IN)) + 4.0
    # target noise over 48 dims, as much in total as the source's over 32: the same reliability
    b = z @ rb.T + np.sqrt(D_IN / D_OUT) * rng.standard_normal((len(z), D_OUT)) - 1.0
    a[:, 0] += 300.0  # a constant outlier dimension, as in Gemma 3
    delta = rng.standard_normal(D_IN)
    return a, b, ra @ delta, rb @ delta


@pytest.mark.req("R-94")
def test_translated_norm_is_the_target_vectors_norm_on_a_shared_signal_pair(
    refs: Any, tmp_path: Path
) -> None:
    """[R-94] Where both sites see a shared signal through noise of their own, a regression
    attenuates ``W v`` to λ·|u| (here 1/2) and the held-out R² is λ²: dividing the
    least-squares image by √R² gives the size of the target's own vector ``u``, which the
    recommended scale then injects, to within the fit's sampling error. R² comes from numpy on
    held-out rows, not from mindvec's metrics."""
    from mindvec.fit.mapping import fit
    from mindvec.fit.stats import PairStats

    teacher, student = refs
    a, b, v, u = _shared_signal_pair()
    train, val, test = slice(0, 4000), slice(4000, 5000), slice(5000, None)
    m = fit(PairStats.from_arrays(a[train], b[train]), PairStats.from_arrays(a[val], b[val]))
    assert m.source_covariance is not None and m.shrinkage is not None
    pred = (a[test] - m.source_mean) @ m.weight.T + m.target_mean
    r2 = 1.0 - float(np.sum((b[test] - pred) ** 2)) / float(np.sum((b[test] - b[test].mean(axis=0)) ** 2))
    assert r2 == pytest.approx(0.25, abs=0.03)
    truth = float(np.linalg.norm(u))
    assert float(np.linalg.norm(m.weight @ v)) < 0.6 * truth  # attenuated to about λ = 1/2
    vec = tiny_models.vector_package(tmp_path / "v.mindvec", teacher, layers=(1,), scale=1.0, values=v)
    mp = _ridge_package(
        tmp_path / "m.mindvec", teacher, student, m.weight, m.source_covariance, m.shrinkage, r2=r2
    )
    tv = translate_vector(vec, mp)
    assert tv.rule == "ridge_r2"
    injected = tv.scale * float(np.linalg.norm(tv.tensor))
    assert abs(injected / truth - 1.0) < 0.06, (injected, truth)


def _ridge_package(
    path: Path,
    teacher: Any,
    student: Any,
    weight: Any,
    sigma: Any,
    shrinkage: dict[str, Any],
    *,
    r2: float = 0.25,
) -> Path:
    site = {"stack": "decoder", "point": "resid_post"}
    tensors = {"weight": weight, "source_covariance": sigma}
    entry: dict[str, Any] = {
        "name": "t2s",
        "source": {"model": "teacher", "site": {**site, "layer": 1}},
        "target": {"model": "student", "site": {**site, "layer": 2}},
        "form": "linear",
        "tensors": {role: f"t2s.{role}" for role in tensors},
        "fit": {
            "method": "ridge",
            "hyperparameters": {"alpha": shrinkage["alpha"]},
            "dataset": {"name": "synthetic", "sha256": bytes(32), "samples": 2000},
            "pairing": "synthetic",
        },
        "metrics": {
            "held_out": {"centered_cosine": 0.5, "raw_cosine": 0.5, "r2": r2},
            "baselines": {},
            "train_samples": 2000,
            "test_samples": 0,
        },
        "target_calibration": {"mean_norm": C_TGT, "tokens": 1000},
        "shrinkage": dict(shrinkage),
    }
    manifest = {
        "package": {
            "id": "tests/ridge",
            "version": 1,
            "name": "ridge",
            "description": "",
            "intended_effect": "",
        },
        "models": {"teacher": teacher, "student": student},
        "mappings": [entry],
        "provenance": dict(PROVENANCE),
    }
    out = write(path, manifest, {f"t2s.{r}": np.asarray(t, dtype=np.float32) for r, t in tensors.items()})
    assert mindvec.open(out).manifest["format"] == "1.1"  # the statistics need 1.1
    return out


@pytest.mark.req("R-95")
def test_writer_refuses_a_covariance_that_is_not_one(refs: Any, tmp_path: Path) -> None:
    """[R-95] the writer refuses an asymmetric source_covariance, or one with a negative variance."""
    teacher, student = refs
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((D_OUT, D_IN))
    good = np.eye(D_IN)
    shrink = {"alpha": 0.1, "residual_variance": 1.0, "samples": 100}
    _ridge_package(tmp_path / "ok.mindvec", teacher, student, weight, good, shrink)
    asym = good.copy()
    asym[0, 1] = 0.5
    negative = good.copy()
    negative[3, 3] = -1.0
    for bad in (asym, negative):
        out = tmp_path / "bad.mindvec"
        with pytest.raises(InvalidError) as err:
            _ridge_package(out, teacher, student, weight, bad, shrink)
        assert err.value.code == "value" and not out.exists()
