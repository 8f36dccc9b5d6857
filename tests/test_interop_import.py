"""``import``: other tools' files and objects into packages bound to a model.

Vectors made by the real repeng and steering-vectors libraries are imported and steered by
mindvec, and must give the logits those libraries' own application code gives; exported files
come back with the same tensors and sites; every malformed input is a typed error with no
output file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindvec  # noqa: E402
from mindvec.errors import MindvecError  # noqa: E402
from mindvec.fit.build import Meta  # noqa: E402
from mindvec.interop import sources  # noqa: E402
from mindvec.interop.export import export  # noqa: E402
from mindvec.interop.imports import import_vector  # noqa: E402
from mindvec.policy import Policy  # noqa: E402
from mindvec.site import Site  # noqa: E402
from tests import third_party, tiny_models  # noqa: E402
from tests.fit_helpers import tiny_llama, word_tokenizer  # noqa: E402

OPEN = Policy(allow_unsigned=True)
TEXTS = [
    "the cat was good and the dog was bad",
    "they liked the film so we stayed home",
    "the sun and the moon",
]


@pytest.fixture(scope="module")
def llama() -> Any:
    return tiny_llama()


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return word_tokenizer()


def _ids(tokenizer: Any) -> Any:
    return tokenizer("the cat was good so they liked it", return_tensors="pt")["input_ids"]


def _import(source: sources.Source, model: Any, tok: Any, out: Path, **kw: Any) -> Path:
    builder = import_vector(source, model, tok, Meta("tests/imported"), texts=TEXTS, **kw)
    return builder.write(out)


def _logits(model: Any, ids: Any) -> Any:
    with torch.no_grad():
        return model(ids).logits


def _gguf(path: Path, tensors: dict[str, Any], hint: str = "llama") -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", hint)
    writer.add_uint32("controlvector.layer_count", len(tensors))
    for name, values in tensors.items():
        writer.add_tensor(name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_repeng_vector_imported_steers_like_repeng(llama: Any, tokenizer: Any, tmp_path: Path) -> None:
    """A ControlVector of the real repeng, saved with its own export_gguf, imported (file and
    object), steered by mindvec: the logits equal repeng's ControlModel's at every position."""
    repeng = third_party.load("repeng")
    rng = np.random.default_rng(0)
    d = llama.config.hidden_size
    vector = repeng.ControlVector(
        "llama", {1: rng.standard_normal(d).astype(np.float32), 2: rng.standard_normal(d).astype(np.float32)}
    )
    vector.export_gguf(str(tmp_path / "r.gguf"))
    from_file = _import(
        sources.read_gguf(tmp_path / "r.gguf", tool="repeng"), llama, tokenizer, tmp_path / "f.mindvec"
    )
    from_object = _import(sources.from_repeng(vector), llama, tokenizer, tmp_path / "o.mindvec")
    ids = _ids(tokenizer)
    wrapped = repeng.ControlModel(llama, [1, 2])
    try:
        wrapped.set_control(vector, 1.0)
        theirs = _logits(wrapped, ids)
    finally:
        wrapped.reset()
        wrapped.unwrap()
    plain = _logits(llama, ids)
    for pkg in (from_file, from_object):
        with mindvec.steer(llama, pkg, policy=OPEN):
            ours = _logits(llama, ids)
        assert (ours - plain).abs().max() > 1e-2
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    spec = mindvec.open(from_file).vector()
    assert spec.method["kind"] == "imported" and [s.site.layer for s in spec.sites] == [1, 2]
    imported = mindvec.open(from_file).manifest["provenance"]["imported"]
    assert (
        imported["format"] == "repeng" and imported["sha256"] == sources.read_gguf(tmp_path / "r.gguf").sha256
    )
    # one block off would not have passed: the same file shifted by -1
    shifted = _import(
        sources.read_gguf(tmp_path / "r.gguf"), llama, tokenizer, tmp_path / "s.mindvec", layer_shift=-1
    )
    with mindvec.steer(llama, shifted, policy=OPEN):
        off = _logits(llama, ids)
    assert (off - theirs).abs().max() > 100 * (1e-5 + 1e-5 * theirs.abs().max())
    assert mindvec.open(shifted).manifest["provenance"]["imported"]["layer_shift"] == -1


@pytest.mark.parametrize("layer_type, point", [("decoder_block", "resid_post"), ("mlp", "mlp_out")])
def test_steering_vector_imported_steers_like_apply(
    llama: Any, tokenizer: Any, tmp_path: Path, layer_type: str, point: str
) -> None:
    sv = third_party.load("steering_vectors")
    rng = np.random.default_rng(1)
    d = llama.config.hidden_size
    vector = sv.SteeringVector({1: torch.from_numpy(rng.standard_normal(d).astype(np.float32))}, layer_type)
    pkg = _import(sources.from_steering_vectors(vector), llama, tokenizer, tmp_path / "sv.mindvec")
    assert mindvec.open(pkg).vector().sites[0].site == Site("decoder", 1, point)
    ids = _ids(tokenizer)
    with vector.apply(llama, multiplier=1.0):
        theirs = _logits(llama, ids)
    with mindvec.steer(llama, pkg, policy=OPEN):
        ours = _logits(llama, ids)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt", ["llamacpp", "steering-vectors", "neuronpedia"])
def test_export_then_import_gives_back_tensors_and_sites(
    llama: Any, tokenizer: Any, tmp_path: Path, fmt: str
) -> None:
    """Export bakes the scale in (strength 1 reproduces the default), so the imported tensor is
    scale x vector at the same sites, and exporting the import gives the same file values."""
    pkg = tiny_models.vector_package(tmp_path / "v.mindvec", llama, layers=(1, 2), scale=3.0)
    out = export(pkg, tmp_path / "x.out", format=fmt, policy=OPEN)
    back = _import(sources.read(out, fmt), llama, tokenizer, tmp_path / "b.mindvec")
    original, returned = mindvec.open(pkg), mindvec.open(back)
    ov, rv = original.vector(), returned.vector()
    assert [s.site for s in rv.sites] == [s.site for s in ov.sites]
    for a, b in zip(ov.sites, rv.sites, strict=True):
        np.testing.assert_allclose(returned.tensor(b.tensor), 3.0 * original.tensor(a.tensor), rtol=1e-6)
    assert rv.scale == 1.0
    again = export(back, tmp_path / "y.out", format=fmt, policy=OPEN)
    first, second = sources.read(out, fmt), sources.read(again, fmt)
    for site, values in first.vectors.items():
        np.testing.assert_array_equal(second.vectors[site], values)


def test_calibration_is_measured_like_extract(llama: Any, tokenizer: Any, tmp_path: Path) -> None:
    """mean_norm at resid_post of layer 1 is the mean token norm of hidden_states[2] over the
    corpus, the first position dropped: computed here from transformers' own outputs."""
    d = llama.config.hidden_size
    source = sources.Source(
        "llamacpp", "llama.cpp", {Site("decoder", 1, "resid_post"): np.ones(d, np.float32)}, b"\0" * 32
    )
    pkg = mindvec.open(_import(source, llama, tokenizer, tmp_path / "c.mindvec"))
    norms = []
    with torch.no_grad():
        for text in TEXTS:
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            hidden = llama(ids, output_hidden_states=True).hidden_states[2][0, 1:]
            norms.extend(hidden.norm(dim=-1).tolist())
    assert pkg.vector().sites[0].mean_norm == pytest.approx(float(np.mean(norms)), rel=1e-4)
    assert pkg.vector().sites[0].tokens == len(norms)


def test_binding_refuses_a_file_for_another_model(llama: Any, tokenizer: Any, tmp_path: Path) -> None:
    d = llama.config.hidden_size
    layers = llama.config.num_hidden_layers

    def code(source: sources.Source, **kw: Any) -> str:
        with pytest.raises(MindvecError) as err:
            _import(source, llama, tokenizer, tmp_path / "no.mindvec", **kw)
        assert not (tmp_path / "no.mindvec").exists()
        return err.value.code

    wide = sources.read_gguf(_gguf(tmp_path / "w.gguf", {"direction.1": np.ones(d + 1, np.float32)}))
    assert code(wide) == "model-mismatch"
    deep = sources.read_gguf(_gguf(tmp_path / "d.gguf", {f"direction.{layers}": np.ones(d, np.float32)}))
    assert code(deep) == "model-mismatch"
    other = sources.read_gguf(
        _gguf(tmp_path / "o.gguf", {"direction.1": np.ones(d, np.float32)}, hint="qwen2")
    )
    assert code(other) == "model-mismatch"
    assert _import(other, llama, tokenizer, tmp_path / "ok.mindvec", ignore_model_hint=True).exists()


def _neuronpedia(path: Path, entry: Any) -> Path:
    path.write_text(json.dumps(entry) if not isinstance(entry, str) else entry, encoding="utf-8")
    return path


def test_bad_files_are_typed_errors(tmp_path: Path) -> None:
    """Malformed GGUF, direction.0, not 1-D F32, lengths that differ, NaN, a layer past 4095,
    bad JSON and safetensors: each a typed error, never a traceback from inside a parser."""
    ones = np.ones(8, np.float32)
    cases: list[tuple[str, Path, str]] = [
        ("llamacpp", tmp_path / "junk.gguf", "foreign-file"),
        ("llamacpp", _gguf(tmp_path / "zero.gguf", {"direction.0": ones}), "site"),
        ("llamacpp", _gguf(tmp_path / "f16.gguf", {"direction.1": ones.astype(np.float16)}), "foreign-file"),
        (
            "llamacpp",
            _gguf(tmp_path / "2d.gguf", {"direction.1": np.ones((2, 4), np.float32)}),
            "foreign-file",
        ),
        (
            "llamacpp",
            _gguf(tmp_path / "len.gguf", {"direction.1": ones, "direction.2": ones[:4]}),
            "foreign-file",
        ),
        (
            "llamacpp",
            _gguf(tmp_path / "nan.gguf", {"direction.1": np.full(8, np.nan, np.float32)}),
            "foreign-file",
        ),
        ("llamacpp", _gguf(tmp_path / "name.gguf", {"token_embd.weight": ones}), "foreign-file"),
        ("llamacpp", _gguf(tmp_path / "far.gguf", {"direction.4096": ones}), "foreign-file"),
        ("neuronpedia", _neuronpedia(tmp_path / "bad.json", "{not json"), "foreign-file"),
        (
            "neuronpedia",
            _neuronpedia(tmp_path / "nan.json", '{"values": [NaN], "hook_name": "blocks.1.hook_resid_post"}'),
            "foreign-file",
        ),
        (
            "neuronpedia",
            _neuronpedia(tmp_path / "hook.json", {"values": [1.0], "hook_name": "blocks.1.hook_z"}),
            "site",
        ),
        (
            "neuronpedia",
            _neuronpedia(tmp_path / "str.json", {"values": ["1"], "hook_name": "blocks.1.hook_resid_post"}),
            "foreign-file",
        ),
        ("neuronpedia", _neuronpedia(tmp_path / "deep.json", "[" * 100000 + "]" * 100000), "foreign-file"),
        ("steering-vectors", tmp_path / "junk.safetensors", "foreign-file"),
    ]
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 4)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    for fmt, path, expected in cases:
        with pytest.raises(MindvecError) as err:
            sources.read(path, fmt)
        assert err.value.code == expected, (path.name, err.value)


def test_cli_import_signs_and_refuses_bad_input(tmp_path: Path, capsys: Any) -> None:
    """`mindvec import FILE --format F --model M -o OUT --sign KEY`: one command from a repeng
    file to a signed package; a bad file exits 2 with error[foreign-file] and writes nothing."""
    from mindvec.cli import main
    from mindvec.keys import SecretKey

    model_dir = tmp_path / "model"
    tiny_llama().save_pretrained(model_dir)
    word_tokenizer().save_pretrained(model_dir)
    d = 32
    good = _gguf(tmp_path / "happy.gguf", {"direction.1": np.linspace(-1, 1, d, dtype=np.float32)})
    key = SecretKey.generate("me")
    key.save(tmp_path / "me.key")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "happy.mindvec"
    argv = ["import", str(good), "--format", "repeng", "--model", str(model_dir), "-o", str(out)]
    argv += ["--corpus", str(corpus), "--sign", str(tmp_path / "me.key"), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    with mindvec.open(out) as pkg:
        assert [s.keyid for s in pkg.signatures] == [key.keyid]
        assert pkg.manifest["format"] == "1.1"
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file")
    argv[1], argv[7] = str(bad), str(tmp_path / "bad.mindvec")
    assert main(argv) == 2
    assert "error[foreign-file]" in capsys.readouterr().err
    assert not (tmp_path / "bad.mindvec").exists()
