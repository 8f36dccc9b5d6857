"""`mindvec extract/fit/correspond/translate` write packages the reader accepts.

Runs on tiny random models saved to local folders (offline, seconds). The round trip checks
that a fitted map, a vector and a translated vector pass the reader and that the translated
package's provenance names its parents by identity (sha256 of manifest bytes).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from fit_helpers import WORDS, tiny_llama, word_tokenizer

from mindvec.cli import main
from mindvec.cli.make import parse_layers
from mindvec.errors import UsageError
from mindvec.package import open as open_package
from mindvec.policy import Policy


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("make")
    for name, hidden, seed in (("a", 32, 0), ("b", 48, 1)):
        folder = root / name
        tiny_llama(hidden=hidden, seed=seed).save_pretrained(folder)
        word_tokenizer().save_pretrained(folder)
    rng = random.Random(0)
    words = [w for w in WORDS if w.isalpha()]
    lines = [" ".join(rng.choice(words) for _ in range(14)) + " ." for _ in range(120)]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    pairs = [
        {"positive": f"the film was good and {w}", "negative": f"the film was bad and {w}"} for w in words[:8]
    ]
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return {"root": root, "a": root / "a", "b": root / "b"}


def _run(*argv: str) -> None:
    assert main([*argv, "--quiet"] if argv[0] != "translate" else list(argv)) == 0


def test_round_trip_vector_map_translation(setup: dict[str, Path]) -> None:
    root = setup["root"]
    vec, mp, tr = root / "vec.mindvec", root / "map.mindvec", root / "tr.mindvec"
    _run(
        "extract",
        "--model",
        str(setup["a"]),
        "--pairs",
        str(root / "pairs.jsonl"),
        "--layers",
        "1-2",
        "--vector-name",
        "sentiment",
        "--id",
        "test/sentiment",
        "-o",
        str(vec),
    )
    _run(
        "fit",
        "--source",
        str(setup["a"]),
        "--target",
        str(setup["b"]),
        "--corpus",
        str(root / "corpus.txt"),
        "--source-layer",
        "1",
        "--target-layer",
        "2",
        "--max-pairs",
        "900",
        "--chunk-chars",
        "200",
        "-o",
        str(mp),
    )
    # unsigned inputs: translate refuses (signing the output must not launder them) and writes nothing
    assert main(["translate", str(vec), str(mp), "-o", str(tr)]) == 1 and not tr.exists()
    _run("translate", str(vec), str(mp), "-o", str(tr), "--allow-unsigned")
    with open_package(vec) as v, open_package(mp) as m, open_package(tr) as t:
        for p in (v, m, t):
            p.check_integrity()
        spec = v.vector()
        assert [s.site.layer for s in spec.sites] == [1, 2] and spec.method["kind"] == "mean_diff"
        assert v.manifest["provenance"]["datasets"][0]["samples"] == 16
        mapping = m.manifest["mappings"][0]
        assert mapping["form"] == "affine" and mapping["fit"]["method"] == "ridge"
        assert set(mapping["metrics"]["baselines"]) == {"shuffled", "mean", "embedding"}
        samples = mapping["metrics"]["train_samples"] + mapping["metrics"]["test_samples"]
        assert samples >= 900 and mapping["fit"]["dataset"]["samples"] == samples
        assert m.tensor(mapping["tensors"]["weight"]).shape == (48, 32)
        assert m.manifest["models"]["source"]["hidden_size"] == 32
        parents = {p["role"]: p["id"] for p in t.manifest["provenance"]["parents"]}
        assert parents == {"vector": v.identity, "mapping": m.identity}
        tv = t.vector()
        w = np.asarray(m.tensor(mapping["tensors"]["weight"]), dtype=np.float64)
        src = np.asarray(v.tensor(spec.sites[0].tensor), dtype=np.float64)
        np.testing.assert_allclose(t.tensor(tv.sites[0].tensor), w @ src, rtol=1e-4, atol=1e-6)


def test_correspond_and_heatmap(setup: dict[str, Path]) -> None:
    root = setup["root"]
    out, png = root / "corr.mindvec", root / "corr.png"
    _run(
        "correspond",
        "--source",
        str(setup["a"]),
        "--target",
        str(setup["b"]),
        "--corpus",
        str(root / "corpus.txt"),
        "--samples",
        "600",
        "--cka-samples",
        "300",
        "--chunk-chars",
        "200",
        "--heatmap",
        str(png),
        "-o",
        str(out),
    )
    with open_package(out) as p:
        corr = p.manifest["correspondences"]
        assert [c["target"]["site"]["layer"] for c in corr] == [0, 1, 2]
        assert {c["metric"] for c in corr} == {"ridge_r2"}
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("method", ["procrustes", "cca", "low_rank_ridge"])
def test_fit_other_forms(setup: dict[str, Path], method: str) -> None:
    root = setup["root"]
    out = root / f"{method}.mindvec"
    _run(
        "fit",
        "--source",
        str(setup["a"]),
        "--target",
        str(setup["b"]),
        "--corpus",
        str(root / "corpus.txt"),
        "--source-layer",
        "0",
        "--target-layer",
        "1",
        "--max-pairs",
        "600",
        "--method",
        method,
        "--rank",
        "4",
        "--chunk-chars",
        "200",
        "-o",
        str(out),
    )
    with open_package(out) as p:
        p.check_integrity()
        mapping = p.manifest["mappings"][0]
        assert (
            mapping["form"]
            == {"procrustes": "orthogonal", "cca": "affine", "low_rank_ridge": "low_rank"}[method]
        )


def test_ctrl_c_leaves_no_output(setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C once the whole temporary file is on disk (just before the rename): the old file
    stays byte for byte, and the temporary file is gone."""
    from mindvec import _fs, package

    root = setup["root"]
    out = root / "interrupted" / "vec.mindvec"
    out.parent.mkdir()
    out.write_bytes(b"the previous package")
    seen: list[int] = []
    real_check = package._reader_check

    def interrupt_after_full_write(tmp: Path) -> None:
        real_check(tmp)  # the temporary file is a complete, valid package
        seen.append(tmp.stat().st_size)
        assert tmp.parent == out.parent and tmp.name.endswith(_fs.TMP_SUFFIX)
        raise KeyboardInterrupt

    monkeypatch.setattr(package, "_reader_check", interrupt_after_full_write)
    code = main(
        [
            "extract",
            "--model",
            str(setup["a"]),
            "--pairs",
            str(root / "pairs.jsonl"),
            "--layers",
            "1",
            "-o",
            str(out),
            "--quiet",
        ]
    )
    assert code == 130
    assert seen and seen[0] > 1000  # it really was interrupted with a full file written
    assert list(out.parent.iterdir()) == [out] and out.read_bytes() == b"the previous package"
    assert _fs.stale_temporaries(out) == []


def test_errors_say_what_to_do(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_layers("3-5,1", 8) == [1, 3, 4, 5]
    with pytest.raises(UsageError, match="out of range"):
        parse_layers("9", 8)
    code = main(["extract", "--model", str(setup["root"] / "nope"), "--pairs", "x.jsonl", "-o", "x.mindvec"])
    assert code == 2  # a usage error (an unreadable input file)
    assert "error[" in capsys.readouterr().err


def test_shards_merge_into_the_one_pass_fit(setup: dict[str, Path]) -> None:
    root = setup["root"]
    common = ["--source", str(setup["a"]), "--target", str(setup["b"]), "--source-layer", "1"]
    common += ["--target-layer", "2", "--max-pairs", "100000", "--chunk-chars", "200"]
    corpus = ["--corpus", str(root / "corpus.txt")]
    shards = [root / f"shard{k}.npz" for k in range(2)]
    for k, shard in enumerate(shards):
        _run("fit", *common, *corpus, "--part", f"{k}/2", "--shard", "-o", str(shard))
    _run("fit", *common, "--from-shards", *map(str, shards), "-o", str(root / "merged.mindvec"))
    _run("fit", *common, *corpus, "-o", str(root / "onepass.mindvec"))
    with open_package(root / "merged.mindvec") as merged, open_package(root / "onepass.mindvec") as one:
        mm, mo = merged.manifest["mappings"][0], one.manifest["mappings"][0]
        assert mm["metrics"]["train_samples"] == mo["metrics"]["train_samples"]
        assert mm["fit"]["dataset"]["samples"] == mo["fit"]["dataset"]["samples"]
        wm, wo = merged.tensor(mm["tensors"]["weight"]), one.tensor(mo["tensors"]["weight"])
        np.testing.assert_allclose(wm, wo, rtol=1e-4, atol=1e-5)
        assert mm["metrics"]["held_out"]["r2"] == pytest.approx(mo["metrics"]["held_out"]["r2"], abs=1e-6)
        for kind in ("embedding", "shuffled"):  # keyed by document: the same in shards as in one pass
            got, want = mm["metrics"]["baselines"][kind], mo["metrics"]["baselines"][kind]
            assert got["r2"] == pytest.approx(want["r2"], abs=1e-6), kind


def test_signed_output_verifies_and_bad_key_fails_first(setup: dict[str, Path]) -> None:
    from mindvec.keys import SecretKey
    from mindvec.trust import TrustStore
    from mindvec.verification import verify

    root = setup["root"]
    key = SecretKey.generate("test")
    key.save(root / "test.key")
    (root / "allowed").write_text(f"tester {key.public_key.to_line()}\n")
    args = ["extract", "--model", str(setup["a"]), "--pairs", str(root / "pairs.jsonl"), "--layers", "0"]
    _run(*args, "--sign", str(root / "test.key"), "-o", str(root / "signed.mindvec"))
    report = verify(root / "signed.mindvec", policy=Policy(trust=TrustStore.load(root / "allowed")))
    assert report.ok, report.error
    assert (
        main([*args, "--sign", str(root / "missing.key"), "-o", str(root / "x.mindvec"), "--quiet"]) == 2
    )  # a usage error: no such key file
    assert not (root / "x.mindvec").exists()


def test_device_and_dtype_flags(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    root = setup["root"]
    args = ["extract", "--model", str(setup["a"]), "--pairs", str(root / "pairs.jsonl"), "--layers", "1"]
    _run(*args, "--dtype", "bf16", "--device", "cpu", "-o", str(root / "bf16.mindvec"))
    with open_package(root / "bf16.mindvec") as pkg:
        assert pkg.manifest["provenance"]["hyperparameters"]["dtype"] == "bf16"
    if not torch.cuda.is_available():
        assert main([*args, "--device", "cuda", "-o", str(root / "gpu.mindvec"), "--quiet"]) == 2
        assert "error[device]" in capsys.readouterr().err
        assert not (root / "gpu.mindvec").exists()
