"""Hub publish and pull (issue 6): push/pull against a real HTTP stand-in, verification before use.

The scenarios that talk HTTP run in a subprocess (tests/hub_cases.py): huggingface_hub reads
``HF_HUB_OFFLINE`` -- set for this test process by conftest.py, and blocking loopback too -- and
its Xet switch once at import. The subprocess starts without ``HF_HUB_OFFLINE``, with
``HF_HUB_DISABLE_XET=1``, ``HF_HUB_DISABLE_TELEMETRY=1`` and ``HF_HOME`` inside ``tmp_path`` (so a
test can prove nothing lands in the shared Hugging Face cache). The real client code path runs;
nothing is patched.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mindvec import hub
from mindvec.errors import UsageError
from tests import factories
from tests.hubserver import HubStandIn

ROOT = Path(__file__).resolve().parent.parent


def run_case(name: str, tmp_path: Path, timeout: float = 120) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN")}
    env.update(
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HOME=str(tmp_path / "hf_home"),
        XDG_CACHE_HOME=str(tmp_path / "xdg_cache"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg_config"),
        XDG_STATE_HOME=str(tmp_path / "xdg_state"),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.hub_cases", name, str(tmp_path / "case")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"case {name} failed:\n{proc.stdout}\n{proc.stderr}"


def test_push_pull_roundtrip_and_model_card(tmp_path: Path) -> None:
    """Push then pull gives an equal package (identity, manifest, tensors); the card carries key id
    and metrics; the download is pinned to the resolved commit and lands only in mindvec's cache;
    a cached file is verified again on use and a damaged one is replaced."""
    run_case("roundtrip", tmp_path)


def test_bytes_not_matching_etag_are_a_transfer_error(tmp_path: Path) -> None:
    run_case("transfer", tmp_path)


@pytest.mark.req("R-53", "R-65", "R-71")
def test_tampered_package_with_correct_etag_fails_signature_or_digest(tmp_path: Path) -> None:
    """A flipped manifest byte is bad-signature [R-65], a flipped tensor byte digest-mismatch [R-53];
    neither can be allowed [R-71]. An untrusted file is refused before its payload is parsed."""
    run_case("tampered", tmp_path)


@pytest.mark.req("R-75")
def test_older_version_is_rollback_with_state_file(tmp_path: Path) -> None:
    """An older signed version served by the Hub is refused with a state file [R-75]."""
    run_case("rollback", tmp_path)


def test_tofu_pins_publisher_key_and_refuses_a_changed_key(tmp_path: Path) -> None:
    run_case("tofu", tmp_path)


@pytest.mark.req("R-71", "R-72")
def test_unsigned_refused_by_default_accepted_with_opt_in(tmp_path: Path) -> None:
    """Unsigned refuses unless allow_unsigned, a separate opt-in [R-71] [R-72]."""
    run_case("unsigned", tmp_path)


def test_cli_push_and_pull(tmp_path: Path) -> None:
    run_case("cli", tmp_path)


@pytest.mark.req("R-72")
def test_steer_hf_url_end_to_end(tmp_path: Path) -> None:
    """``mindvec.steer(model, "hf://...")`` on a tiny random llama pulls, verifies and steers; a
    tampered file on the Hub never reaches the model [R-72]."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    run_case("steer", tmp_path, timeout=300)


# ---------------------------------------------------------------------------- in-process units


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("hf://org/repo/x.mindvec", hub.HfUrl("org/repo", "x.mindvec", None)),
        ("hf://org/repo@v1/x.mindvec", hub.HfUrl("org/repo", "x.mindvec", "v1")),
        ("hf://org/repo@" + "a" * 40 + "/d/x.mindvec", hub.HfUrl("org/repo", "d/x.mindvec", "a" * 40)),
        ("hf://org/repo@refs%2Fpr%2F1/x.mindvec", hub.HfUrl("org/repo", "x.mindvec", "refs/pr/1")),
        ("hf://org/repo", hub.HfUrl("org/repo", None, None)),
    ],
)
def test_parse_hf_url(url: str, expected: hub.HfUrl) -> None:
    assert hub.parse_hf_url(url) == expected
    assert hub.parse_hf_url(str(expected)) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://huggingface.co/org/repo",
        "hf://org",
        "hf://org/repo/../x.mindvec",
        "hf://org/repo/x.bin",
        "hf://org/repo@/x.mindvec",
        "hf://org/re\x1bpo/x.mindvec",
        "hf:///repo/x.mindvec",
    ],
)
def test_parse_hf_url_rejects(url: str) -> None:
    with pytest.raises(UsageError) as info:
        hub.parse_hf_url(url)
    assert info.value.code == "argument"
    assert "\x1b" not in info.value.message


def test_model_card_escapes_signed_strings() -> None:
    """Signed text reaches the card only escaped: no control or bidi characters, no markup, no HTML."""
    manifest, _ = factories.full_manifest()
    evil = (
        "\x1b[31mred\x1b[0m \u202egnp.exe <script>alert(1)</script> "
        "[x](javascript:alert(1)) | ``` # h\n- item"
    )
    manifest["package"]["description"] = evil
    manifest["package"]["name"] = "<img src=x onerror=alert(1)>"
    manifest["models"]["m"]["source"] = {"kind": "hf", "repo": "org/base", "revision": "b" * 40}
    card = hub.render_model_card(
        manifest, identity=bytes(32), keyids=[bytes(range(16))], repo_id="org/r", filename="f.mindvec"
    )
    front, body = card.split("\n---\n", 1)
    assert front.startswith("---\nlibrary_name: mindvec\n") and '- "org/base"' in front
    for bad in ("\x1b", "\u202e", "<script", "<img", "](javascript", "```\n- item", "| ``` #"):
        assert bad not in body, bad
    assert "&#60;script&#62;" in body and "\\u202e" in body.replace("&#92;", "\\")
    assert bytes(range(16)).hex() in body
    assert all(ch == "\n" or ch >= " " for ch in card)


def test_stand_in_serves_range_reads_and_lfs_headers() -> None:
    with HubStandIn() as server:
        data = bytes(range(256)) * 4
        oid = server.commit_files("org/r", {"x.mindvec": data})
        url = f"{server.endpoint}/org/r/resolve/{oid}/x.mindvec"
        head = urllib.request.urlopen(urllib.request.Request(url, method="HEAD"))
        assert head.headers["X-Repo-Commit"] == oid
        assert head.headers["X-Linked-Etag"].strip('"') == hashlib.sha256(data).hexdigest()
        assert int(head.headers["X-Linked-Size"]) == len(data)
        part = urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=10-19"}))
        assert part.status == 206 and part.read() == data[10:20]
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
        info = json.load(
            urllib.request.urlopen(f"{server.endpoint}/api/models/org/r/revision/main?blobs=true")
        )
        assert info["sha"] == oid and info["siblings"][0]["lfs"]["size"] == len(data)


def test_push_refuses_before_any_upload(tmp_path: Path) -> None:
    """Unsigned (without opt-in), a key that did not sign, or a signature that does not verify:
    push refuses before it talks to the Hub (no endpoint is reachable here)."""
    from mindvec import container
    from mindvec.errors import MindvecError
    from mindvec.keys import SecretKey

    key, other = SecretKey.generate(), SecretKey.generate()
    pub, other_pub = key.public_key.save(tmp_path / "k.pub"), other.public_key.save(tmp_path / "o.pub")
    unsigned = factories.small_package(tmp_path, "unsigned.mindvec")
    signed = factories.small_package(tmp_path, "signed.mindvec", signers=(key,))
    forged = factories.small_package(tmp_path, "forged.mindvec", signers=(key,))
    entry = container.read_raw(forged).signatures[0]
    bad = container.SignatureEntry(entry.alg, entry.keyid, bytes(64))
    container.rewrite_signatures(forged, [bad])
    endpoint = "http://127.0.0.1:9"  # discard port: any request would fail as "hub"
    cases: list[tuple[Path, dict[str, Any], str]] = [
        (unsigned, {}, "no-signature"),
        (signed, {"public_key": other_pub}, "argument"),
        (forged, {"public_key": pub}, "bad-signature"),
    ]
    for path, kwargs, code in cases:
        with pytest.raises(MindvecError) as info:
            hub.push(path, "org/r", endpoint=endpoint, **kwargs)
        assert info.value.code == code, info.value
