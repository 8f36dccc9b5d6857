"""`mindvec probe` ranks maps as `mindvec.fit.probe` scores them, and fails early on bad input.

Tiny random models saved to a local folder (offline, seconds): two maps fitted by
`mindvec fit`, probed by the command and by the library on the same models.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fit_helpers import WORDS, tiny_llama, word_tokenizer
from test_probe import OK, TINY_PROBES

from mindvec.cli import main
from mindvec.fit import models
from mindvec.fit.probe import ProbeSet, probe_maps
from mindvec.package import open as open_package


def _fit(root: Path, out: Path, *extra: str) -> int:
    """``mindvec fit`` from model a into its own layer 1 (least squares), on the tiny corpus."""
    pair = ["--source", str(root / "a"), "--target", str(root / "a"), "--target-layer", "1"]
    data = ["--corpus", str(root / "corpus.txt"), "--chunk-chars", "200", "--max-pairs", "1200"]
    return main(["fit", *pair, *data, "--method", "lstsq", *extra, "-o", str(out), "--quiet"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("probe-cli")
    tiny_llama(layers=3, seed=0).save_pretrained(root / "a")
    word_tokenizer().save_pretrained(root / "a")
    rng = random.Random(0)
    words = [w for w in WORDS if w.isalpha()]
    (root / "corpus.txt").write_text(
        "\n".join(" ".join(rng.choice(words) for _ in range(14)) for _ in range(150))
    )
    (root / "probes.json").write_text(json.dumps(TINY_PROBES))
    for layer in (0, 1):
        assert _fit(root, root / f"l{layer}.mindvec", "--source-layer", str(layer)) == 0
    return {
        "root": root,
        "a": root / "a",
        "probes": root / "probes.json",
        "l0": root / "l0.mindvec",
        "l1": root / "l1.mindvec",
    }


def _probe(setup: dict[str, Path], *extra: str) -> list[str]:
    argv = [
        "probe",
        str(setup["l0"]),
        str(setup["l1"]),
        "--source",
        str(setup["a"]),
        "--target",
        str(setup["a"]),
    ]
    return [*argv, "--probes", str(setup["probes"]), "--quiet", *extra]


def test_the_command_prints_the_librarys_scores(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_probe(setup, "--allow-unsigned", "--json")) == 0
    got = json.loads(capsys.readouterr().out)
    loaded = models.load(str(setup["a"]))
    expected = probe_maps(
        [setup["l0"], setup["l1"]], loaded, loaded, probes=ProbeSet.load(setup["probes"]), policy=OK
    )
    assert [row["package"] for row in got["scores"]] == [str(setup["l0"]), str(setup["l1"])]
    for row, score in zip(got["scores"], expected, strict=True):
        assert row["score"] == pytest.approx(score.score, rel=1e-6)
        assert row["source_site"] == str(score.source_site)
    assert got["scores"][1]["score"] == pytest.approx(1.0, abs=1e-4)  # layer 1 -> 1: the identity
    assert got["best"] == max(range(2), key=lambda i: got["scores"][i]["score"])
    assert main(_probe(setup, "--allow-unsigned")) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["package", "map", "source"] and len(table) == 3
    assert sum("<- best" in line for line in table) == 1


def test_bad_input_fails_with_a_code(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_probe(setup)) == 1  # unsigned maps need --allow-unsigned
    err = capsys.readouterr().err
    assert "error[no-signature]" in err and "Loading" not in err, "the policy must refuse before models load"
    setup["root"].joinpath("bad.json").write_text("{}")
    argv = _probe(setup, "--allow-unsigned")
    argv[argv.index("--probes") + 1] = str(setup["root"] / "bad.json")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error[argument]" in err and "Loading" not in err


def test_fit_keeps_the_candidate_the_probe_ranks_first(setup: dict[str, Path]) -> None:
    """`fit --source-layer 0,1` fits both in one pass and keeps the one `mindvec probe` would."""
    loaded = models.load(str(setup["a"]))
    scores = probe_maps(
        [setup["l0"], setup["l1"]], loaded, loaded, probes=ProbeSet.load(setup["probes"]), policy=OK
    )
    expected = max(scores, key=lambda s: s.score).source_site.layer
    assert expected == 0, scores  # measured 1.10 against 1.00: the two rules disagree, so both are seen
    for select, layer in (("probe", expected), ("r2", 1)):  # layer 1 -> 1 is the identity: R² 1
        out = setup["root"] / f"chosen-{select}.mindvec"
        assert (
            _fit(
                setup["root"],
                out,
                "--source-layer",
                "0,1",
                "--select",
                select,
                "--probes",
                str(setup["probes"]),
            )
            == 0
        )
        with open_package(out) as pkg:
            [spec] = pkg.mappings()
            assert spec.source_site.layer == layer, select
            hyper = pkg.manifest["provenance"]["hyperparameters"]
            assert (hyper["candidate_layers"], hyper["selected_by"]) == ("0,1", select)


@pytest.mark.parametrize(
    "extra",
    [
        ("--source-layer", "all"),
        ("--source-layer", "0,1", "--part", "0/2", "--shard"),
        ("--source-layer", "0,x"),
        ("--source-layer", "0,1", "--probes", "missing.json"),
    ],
)
def test_fit_refuses_bad_candidates_before_loading(
    setup: dict[str, Path], extra: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fit(setup["root"], setup["root"] / "never.mindvec", *extra) == 2
    err = capsys.readouterr().err
    assert "error[argument]" in err and "Loading" not in err
    assert not (setup["root"] / "never.mindvec").exists()
