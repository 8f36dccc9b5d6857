"""CLI end to end: keygen, sign, trust add, verify, tamper, verify again (exit codes, messages)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from factories import vector_manifest

from mindvec import container, limits, package
from mindvec.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def make_package(path: Path, pkg_id: str = "acme/steer", version: int = 1) -> Path:
    manifest, tensors = vector_manifest()
    manifest["package"].update(id=pkg_id, version=version)
    return package.write(path, manifest, tensors)


def test_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkg = make_package(tmp_path / "x.mindvec")
    key, store = tmp_path / "alice.key", tmp_path / "allowed_signers"

    code, out, _ = run(capsys, "keygen", str(key), "--comment", "alice@example")
    assert code == 0 and "key id" in out
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    pub_line = (tmp_path / "alice.key.pub").read_text()
    assert pub_line.startswith("ed25519 ") and pub_line.rstrip().endswith("alice@example")
    secret = json.loads(key.read_text())["secret"]
    assert secret not in out

    code, out, err = run(capsys, "verify", str(pkg), "--trust", str(store))
    assert code == 3 and "UNSIGNED" in out and "error[no-signature]" in err

    code, out, _ = run(capsys, "sign", str(pkg), "--key", str(key))
    assert code == 0 and "1 signature(s)" in out and "(unchanged)" in out

    code, out, err = run(capsys, "verify", str(pkg), "--trust", str(store))
    assert code == 4 and "UNTRUSTED" in out and "error[untrusted-key]" in err and "mindvec trust add" in err

    code, out, _ = run(capsys, "trust", "add", str(tmp_path / "alice.key.pub"), "--trust", str(store))
    assert code == 0 and "alice@example" in out
    code, out, _ = run(capsys, "trust", "list", "--trust", str(store))
    assert code == 0 and "alice@example" in out

    code, out, err = run(capsys, "verify", str(pkg), "--trust", str(store))
    assert code == 0 and "VERIFIED" in out and "valid, trusted" in out and err == ""
    code, out, _ = run(capsys, "verify", str(pkg), "--trust", str(store), "--json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "verified" and report["package"]["id"] == "acme/steer"

    # tamper: one byte of the manifest, then one byte of a tensor
    original = pkg.read_bytes()
    data = bytearray(original)
    data[limits.PREAMBLE_SIZE + 20] ^= 0x01
    pkg.write_bytes(bytes(data))
    code, out, err = run(capsys, "verify", str(pkg), "--trust", str(store))
    assert code == 1 and "INVALID" in out and "error[" in err
    pkg.write_bytes(original)
    tensor_end = container.read_raw(pkg).layout.sig_offset
    data = bytearray(original)
    data[tensor_end - 1] ^= 0x01
    pkg.write_bytes(bytes(data))
    code, out, err = run(capsys, "verify", str(pkg), "--trust", str(store))
    assert code == 1 and "DIGEST MISMATCH" in out and "error[digest-mismatch]" in err
    # the signature itself is fine, but trust was never decided: the report must not say "not trusted"
    assert "valid; trust not evaluated" in out and "not trusted" not in out
    pkg.write_bytes(original)

    # revoke: invalid from now on
    code, out, _ = run(capsys, "trust", "revoke", str(tmp_path / "alice.key.pub"), "--trust", str(store))
    assert code == 0 and "revoked" in out
    code, out, err = run(capsys, "verify", str(pkg), "--trust", str(store))
    assert code == 1 and "error[revoked]" in err


def test_cosign_detached_threshold_and_encrypted_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pkg = make_package(tmp_path / "x.mindvec")
    store = tmp_path / "allowed_signers"
    passfile = tmp_path / "pass.txt"
    passfile.write_text("s3cret\n")
    assert run(capsys, "keygen", str(tmp_path / "a.key"))[0] == 0
    code, out, _ = run(
        capsys, "keygen", str(tmp_path / "b.key"), "--passphrase-file", str(passfile), "--kdf", "min"
    )
    assert code == 0 and "encrypted" in out and "NOT" not in out
    for name in ("a", "b"):
        assert (
            run(
                capsys,
                "trust",
                "add",
                str(tmp_path / f"{name}.key.pub"),
                "--principal",
                name,
                "--trust",
                str(store),
            )[0]
            == 0
        )

    identity = package.open(pkg).identity
    assert run(capsys, "sign", str(pkg), "--key", str(tmp_path / "a.key"))[0] == 0
    code, out, err = run(capsys, "verify", str(pkg), "--trust", str(store), "--threshold", "2")
    assert code == 1 and "error[threshold]" in err

    # wrong passphrase, then a detached co-signature with the right one
    bad = tmp_path / "bad.txt"
    bad.write_text("nope")
    code, _, err = run(
        capsys, "sign", str(pkg), "--key", str(tmp_path / "b.key"), "--passphrase-file", str(bad)
    )
    assert code != 0 and "error[passphrase]" in err
    before = pkg.read_bytes()
    code, out, _ = run(
        capsys,
        "sign",
        str(pkg),
        "--key",
        str(tmp_path / "b.key"),
        "--passphrase-file",
        str(passfile),
        "--detached",
    )
    assert code == 0 and "x.mindvec.sig" in out and pkg.read_bytes() == before
    code, out, _ = run(capsys, "verify", str(pkg), "--trust", str(store), "--threshold", "2")
    assert code == 0 and "[detached]" in out
    code, _, _ = run(capsys, "verify", str(pkg), "--trust", str(store), "--threshold", "2", "--no-detached")
    assert code == 1

    # co-sign in place: identity unchanged, two embedded signatures
    os.environ["MINDVEC_PASSPHRASE"] = "s3cret"
    try:
        assert run(capsys, "sign", str(pkg), "--key", str(tmp_path / "b.key"))[0] == 0
    finally:
        del os.environ["MINDVEC_PASSPHRASE"]
    assert package.open(pkg).identity == identity and len(package.open(pkg).signatures) == 2


def test_rollback_scope_window_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, store, state = tmp_path / "k.key", tmp_path / "allowed_signers", tmp_path / "state.json"
    run(capsys, "keygen", str(key), "--comment", "ci")
    pub = str(tmp_path / "k.key.pub")
    run(
        capsys,
        "trust", "add", pub, "--trust", str(store),
        "--packages", "acme/*", "--valid-after", "20260101Z", "--valid-before", "2027-01-01T00:00:00Z",
    )  # fmt: skip
    v3 = make_package(tmp_path / "v3.mindvec", version=3)
    v2 = make_package(tmp_path / "v2.mindvec", version=2)
    other = make_package(tmp_path / "o.mindvec", pkg_id="evil/steer")
    for path in (v3, v2, other):
        run(capsys, "sign", str(path), "--key", str(key))
    now = ["--now", "2026-06-01T00:00:00Z", "--trust", str(store)]
    assert run(capsys, "verify", str(v3), "--state", str(state), *now)[0] == 0
    code, _, err = run(capsys, "verify", str(v2), "--state", str(state), *now)
    assert code == 1 and "error[rollback]" in err
    code, _, err = run(capsys, "verify", str(other), *now)
    assert code == 1 and "error[scope]" in err
    code, _, err = run(capsys, "verify", str(v3), "--trust", str(store), "--now", "2028-01-01T00:00:00Z")
    assert code == 1 and "error[expired]" in err
    # usage errors exit 2
    (tmp_path / "broken").write_text("garbage line\n")
    code, _, err = run(capsys, "verify", str(v3), "--trust", str(tmp_path / "broken"))
    assert code == 2 and "error[trust-store]" in err and "line 1" in err
    code, _, err = run(capsys, "verify", str(v3), "--trust", str(store), "--now", "soon")
    assert code == 2 and "error[argument]" in err


def test_key_rotation_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "allowed_signers"
    run(capsys, "keygen", str(tmp_path / "old.key"), "--comment", "pub")
    run(capsys, "trust", "add", str(tmp_path / "old.key.pub"), "--trust", str(store), "--packages", "acme/*")
    code, out, _ = run(
        capsys, "keygen", str(tmp_path / "new.key"), "--rotate-from", str(tmp_path / "old.key")
    )
    assert code == 0 and "new.key.rotation" in out
    code, out, _ = run(capsys, "trust", "rotate", str(tmp_path / "new.key.rotation"), "--trust", str(store))
    assert code == 0 and "moved 1" in out
    pkg = make_package(tmp_path / "x.mindvec")
    run(capsys, "sign", str(pkg), "--key", str(tmp_path / "new.key"))
    code, out, _ = run(capsys, "verify", str(pkg), "--trust", str(store))
    assert code == 0 and "pub" in out


def test_python_dash_m_subprocess(tmp_path: Path) -> None:
    """The installed entry path: `python -m mindvec verify` in a fresh process."""
    pkg = make_package(tmp_path / "x.mindvec")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    cwd = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "mindvec", "verify", str(pkg)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "error[no-signature]" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.req("R-76")
def test_signed_text_is_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A package name with ANSI escapes or bidi overrides cannot repaint the terminal. [R-76]"""
    manifest, tensors = vector_manifest()
    manifest["package"]["name"] = "nice\x1b[2J\u202egnp.exe"
    pkg = package.write(tmp_path / "x.mindvec", manifest, tensors)
    code, out, _ = run(capsys, "verify", str(pkg), "--trust", str(tmp_path / "none"))
    assert code == 3
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out


def test_trust_list_json_remove_and_keygen_refuses_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "allowed_signers")
    run(capsys, "keygen", str(tmp_path / "k.key"), "--comment", "carol")
    code, _, err = run(capsys, "keygen", str(tmp_path / "k.key"))
    assert code != 0 and "error[io]" in err and "--force" in err
    pub_line = (tmp_path / "k.key.pub").read_text().strip()
    assert run(capsys, "trust", "add", pub_line, "--repos", "acme/*", "--trust", store)[0] == 0
    code, out, _ = run(capsys, "trust", "list", "--json", "--trust", store)
    doc = json.loads(out)
    assert (
        code == 0 and doc["trusted"][0]["principal"] == "carol" and doc["trusted"][0]["repos"] == ["acme/*"]
    )
    code, out, _ = run(capsys, "trust", "remove", "carol", "--trust", store)
    assert code == 0 and "removed 1" in out
    code, _, err = run(capsys, "trust", "remove", "carol", "--trust", store)
    assert code == 2 and "error[not-found]" in err  # a usage error
    code, _, err = run(capsys, "trust", "add", str(tmp_path / "k.key"), "--trust", store)
    assert code == 2 and "secret key file" in err  # key-file: a usage error


# ---------------------------------------------------------------- issue 13, findings 10, 14, 15


def _keygen(tmp_path: Path, name: str) -> Path:
    assert main(["keygen", str(tmp_path / name)]) == 0
    return tmp_path / name


def test_cli_turns_every_failure_into_a_typed_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 10: a parent that is a file, a .sig that is a folder, a held lock, a raw OSError:
    each gives `error[code]` and exit 2, never a traceback."""
    import mindvec

    key = _keygen(tmp_path, "k.key")
    path = mindvec.write(tmp_path / "p.mindvec", *vector_manifest())
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        ["verify", str(path), "--state", str(afile / "state.json"), "--trust", str(tmp_path / "t")],
        ["trust", "add", f"{key}.pub", "--principal", "me", "--trust", str(afile / "allowed")],
    ]
    (tmp_path / "p.mindvec.sig").mkdir()
    cases.append(["sign", str(path), "--key", str(key), "--detached"])
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error[io]:") and "Traceback" not in err, (argv, err)


def test_a_held_lock_is_an_io_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 10: filelock.Timeout escaped from TrustStore.edit."""
    import filelock

    from mindvec.errors import UsageError
    from mindvec.trust import TrustStore

    monkeypatch.setattr(limits, "LOCK_TIMEOUT_S", 0.1)
    store = tmp_path / "allowed"
    with filelock.FileLock(f"{store}.lock"):
        with pytest.raises(UsageError) as err, TrustStore.edit(store):
            pass
    assert err.value.code == "io" and "held by another process" in err.value.message


def test_main_reports_a_stray_oserror(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 10: main caught only MindvecError."""
    import mindvec.cli.inspect as inspect_cli

    def broken(_args: object) -> int:
        raise PermissionError(13, "Permission denied", "/somewhere")

    monkeypatch.setattr(inspect_cli, "run", broken)
    assert main(["inspect", "x.mindvec"]) == 2
    assert "error[io]: Permission denied (/somewhere)" in capsys.readouterr().err


def _cosign_worker(args: tuple[str, str, bool]) -> int:
    path, key, detached = args
    argv = ["sign", path, "--key", key] + (["--detached"] if detached else [])
    return main(argv)


@pytest.mark.parametrize("detached", [False, True])
def test_concurrent_cosigners_both_land(tmp_path: Path, detached: bool) -> None:
    """Finding 14: two `mindvec sign` at once both exited 0 and one signature was lost."""
    import multiprocessing

    import mindvec

    path = mindvec.write(tmp_path / "p.mindvec", *vector_manifest())
    keys = [_keygen(tmp_path, f"k{i}.key") for i in range(4)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        codes = pool.map(_cosign_worker, [(str(path), str(k), detached) for k in keys])
    assert codes == [0, 0, 0, 0]
    if detached:
        data = (tmp_path / "p.mindvec.sig").read_bytes()
        got = {e.keyid for e in container.decode_signature_block(data)}
    else:
        got = {e.keyid for e in container.read_raw(path).signatures}
    from mindvec.keys import SecretKey

    assert got == {SecretKey.load(k).keyid for k in keys}


def test_sigterm_during_a_write_leaves_no_litter(tmp_path: Path) -> None:
    """Finding 15: SIGTERM during `sign` left a full-size .tmp beside the package. The CLI now
    unwinds on SIGTERM as on Ctrl-C: exit 130, the package unchanged, no temporary file."""
    import mindvec
    from mindvec import _fs

    path = mindvec.write(tmp_path / "p.mindvec", *vector_manifest())
    key = _keygen(tmp_path, "k.key")
    before = path.read_bytes()
    script = (
        "import os, signal, sys, time\n"
        "from mindvec import _fs\n"
        "real = _fs.os.fsync\n"
        "def fsync(fd):\n"
        "    os.kill(os.getpid(), signal.SIGTERM); time.sleep(5); real(fd)\n"
        "_fs.os.fsync = fsync\n"
        "from mindvec.cli import main\n"
        f"sys.exit(main(['sign', {str(path)!r}, '--key', {str(key)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert path.read_bytes() == before
    assert _fs.stale_temporaries(path) == [] and not list(tmp_path.glob("*.tmp"))
