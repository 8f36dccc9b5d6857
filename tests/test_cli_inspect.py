"""``mindvec inspect``: readable summary, JSON form, escaped signed strings, typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mindvec
from mindvec.cli import main
from mindvec.container import SignatureEntry
from tests import factories


class _FakeSigner:
    """Signs nothing real: inspect never verifies, it only shows entries as unverified."""

    def __init__(self, keyid: bytes) -> None:
        self.keyid = keyid

    def sign_manifest(self, manifest_bytes: bytes) -> SignatureEntry:
        return SignatureEntry("ed25519", self.keyid, bytes(64))


def test_inspect_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = factories.small_package(tmp_path, signers=[_FakeSigner(b"\x02" * 16), _FakeSigner(b"\x01" * 16)])
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for expected in (
        "test/minimal",
        "decoder.1.resid_post",
        "operation add",
        "scale 4",
        "norm ",
        "form affine",
        "weight F32 [4, 6]",
        "held-out centered_cosine=0.8",
        "baseline shuffled",
        "linear_cka 0.9",
        "creator tests",
        "unverified",
        "01" * 16,
    ):
        assert expected in out, expected


def test_inspect_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = factories.small_package(tmp_path, signers=[_FakeSigner(b"\xab" * 16)])
    assert main(["inspect", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["identity"] == mindvec.open(path).identity.hex()
    assert data["signatures"] == [{"alg": "ed25519", "keyid": "ab" * 16, "status": "unverified"}]
    assert data["mappings"][0]["tensors"]["weight"]["shape"] == [4, 6]
    assert data["mappings"][0]["fit"]["dataset"]["sha256"] == "00" * 32
    assert data["vectors"][0]["sites"][0]["norm"] > 0


@pytest.mark.req("R-76")
def test_inspect_escapes_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ANSI escapes and bidi overrides in signed strings are shown escaped. [R-76]"""
    manifest, tensors = factories.full_manifest()
    manifest["package"]["description"] = "safe\x1b[2J\x1b[31mred\u202eevil\u0085"
    path = mindvec.write(tmp_path / "evil.mindvec", manifest, tensors)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\u0085" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out
    assert main(["inspect", "--json", str(path)]) == 0
    raw = capsys.readouterr().out
    assert "\x1b" not in raw and "\u202e" not in raw
    assert json.loads(raw)["package"]["description"] == manifest["package"]["description"]


def test_inspect_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad file gives error[code] on stderr and a non-zero exit, no traceback."""
    bad = tmp_path / "bad.mindvec"
    bad.write_bytes(b"not a package at all")
    assert main(["inspect", str(bad)]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error[magic]: ") and "Traceback" not in err
    assert main(["inspect", str(tmp_path / "missing.mindvec")]) != 0
    assert capsys.readouterr().err.startswith("error[io]: ")


def test_inspect_renders_every_optional_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Translations, parents, datasets, hf/gguf sources, extensions and orthogonal scale all render."""
    manifest, tensors = factories.full_manifest()
    manifest["models"]["src"]["source"] = {"kind": "hf", "repo": "org/model", "revision": "a" * 40}
    manifest["models"]["tgt"]["source"] = {"kind": "gguf", "file_sha256": bytes(32), "quantization": "Q8_0"}
    manifest["models"]["tgt"]["num_encoder_layers"] = 2
    manifest["vectors"][0]["translation"] = {
        "source_model": "src",
        "mapping": "map",
        "norm_ratio": 0.8,
        "recommended_scale": 5.0,
    }
    manifest["vectors"][0]["positions"] = 3
    dataset = {"name": "corpus", "sha256": b"\x11" * 32, "samples": 10}
    manifest["provenance"]["datasets"] = [dataset]
    manifest["provenance"]["parents"] = [{"id": b"\x22" * 32, "role": "mapping", "package_id": "org/map"}]
    manifest["extensions"] = {"org.example.a": 1, "org.example.b": [1, 2]}
    manifest["correspondences"] = manifest["correspondences"] * 25
    path = mindvec.write(tmp_path / "all.mindvec", manifest, tensors)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for expected in (
        "source hf org/model@" + "a" * 40,
        "source gguf Q8_0",
        "encoder layers 2",
        "translated from src via map",
        "positions 3",
        "11" * 32,
        "parent  mapping org/map " + "22" * 32,
        "extensions: org.example.a, org.example.b",
        "... 5 more (use --json)",
    ):
        assert expected in out, expected
    assert main(["inspect", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["correspondences"]) == 25
    assert data["models"]["tgt"]["source"]["file_sha256"] == "00" * 32


def test_inspect_shows_keys_a_newer_minor_added(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13, finding 11: a valid 1.x package whose metrics hold a string (R-80 allows unknown
    keys in a newer minor) crashed `{v:.4g}`; now the value is shown as escaped text."""
    manifest, tensors = factories.mapping_manifest()
    metrics = manifest["mappings"][0]["metrics"]
    metrics["held_out"]["note"] = "from\x1b[31m 1.7"
    metrics["held_out"]["flagged"] = True
    data = factories.unchecked_package(manifest, tensors, version=(1, 7))
    path = factories.write_bytes(tmp_path, data)
    mindvec.open(path)  # the reader accepts it: a newer minor, relaxed
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note=from\\x1b[31m 1.7" in out and "flagged=True" in out and "\x1b" not in out
