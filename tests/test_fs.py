"""mindvec._fs: the one atomic writer (temporary file, fsync, rename) and the one file hasher."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mindvec import _fs
from mindvec.errors import UsageError


def test_atomic_write_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "f"
    _fs.atomic_write(target, b"one", mode=0o600)
    assert target.read_bytes() == b"one" and stat.S_IMODE(target.stat().st_mode) == 0o600
    _fs.atomic_write(target, b"two")  # mode None keeps the existing file's mode
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _fs.stale_temporaries(target) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def refuse(tmp: Path) -> None:
        assert tmp.read_bytes() == b"new" and tmp.name.endswith(_fs.TMP_SUFFIX)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), _fs.atomic_writer(target, check=refuse) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_stale_temporaries_are_recognisable(tmp_path: Path) -> None:
    target = tmp_path / "pkg.mindvec"
    left = _fs.temporary_name(target)
    left.write_bytes(b"what SIGKILL left")
    (tmp_path / "pkg.mindvec.unrelated").write_bytes(b"")
    assert _fs.stale_temporaries(target) == [left]
    assert str(os.getpid()) in left.name


def test_unwritable_folder_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        _fs.atomic_write(tmp_path / "missing" / "f", b"x")
    assert err.value.code == "io"


def test_sha256_file(tmp_path: Path) -> None:
    data = os.urandom(3 * _fs.HASH_CHUNK + 7)
    (tmp_path / "f").write_bytes(data)
    assert _fs.sha256_file(tmp_path / "f") == hashlib.sha256(data).digest()
    with pytest.raises(UsageError):
        _fs.sha256_file(tmp_path / "nope")


# ---------------------------------------------------------------- issue 13, finding 9: special files


def _within(seconds: float, call: Any) -> Any:
    """Run ``call`` in a thread; a call that blocks (a FIFO read) fails the test instead of hanging it."""
    import threading

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call blocked"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _readers(tmp_path: Path) -> dict[str, Any]:
    """Every reader of a user-supplied file, as a function of the path."""
    import mindvec
    from mindvec.cli.keys import _read_file_passphrase
    from mindvec.keys import PublicKey, SecretKey
    from mindvec.state import State
    from mindvec.trust import TrustStore
    from mindvec.verification import verify

    package = mindvec.write(tmp_path / "ok.mindvec", *__import__("factories").vector_manifest())

    def detached(path: Path) -> Any:
        report = verify(package, mindvec.Policy(trust=TrustStore()), detached=path)
        if report.error is not None and report.error.code in ("io", "bounds"):
            raise report.error
        return report

    return {
        "package": mindvec.open,
        "trust store": TrustStore.load,
        "state file": lambda p: State(p).seen("x"),
        "secret key": SecretKey.load,
        "public key": PublicKey.load,
        "detached .sig": detached,
        "rotation record (cli)": lambda p: __import__("mindvec.cli", fromlist=["main"]).main(
            ["trust", "rotate", str(p), "--trust", str(tmp_path / "t")]
        ),
        "passphrase file": _read_file_passphrase,
    }


@pytest.mark.parametrize(
    "name",
    [
        "package",
        "trust store",
        "state file",
        "secret key",
        "public key",
        "detached .sig",
        "rotation record (cli)",
    ],
)
def test_a_fifo_or_a_device_is_refused_at_once(tmp_path: Path, name: str) -> None:
    """Issue 13, finding 9: a FIFO blocked forever and /dev/zero was read until MemoryError."""
    from mindvec.errors import MindvecError

    read = _readers(tmp_path)[name]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "zero-link"
    link.symlink_to("/dev/zero")
    for path in (fifo, Path("/dev/zero"), link):
        try:
            outcome = _within(5, lambda path=path: read(path))
        except MindvecError as exc:
            assert exc.code in ("io", "bounds"), (name, path, exc.code)
            continue
        assert outcome not in (None, 0), f"{name} accepted {path}"  # the CLI returns its exit code


def test_a_passphrase_may_come_from_a_pipe(tmp_path: Path) -> None:
    """--passphrase-file <(pass show key) must keep working: a pipe is allowed, with a cap."""
    import threading

    from mindvec.cli.keys import _read_file_passphrase

    fifo = tmp_path / "pass"
    os.mkfifo(fifo)

    def writer(data: bytes) -> None:
        with open(fifo, "wb") as handle, contextlib.suppress(BrokenPipeError):
            handle.write(data)  # the capped reader stops early: a broken pipe is the point

    thread = threading.Thread(target=writer, args=(b"correct horse\n",), daemon=True)
    thread.start()
    assert _within(5, lambda: _read_file_passphrase(str(fifo))) == "correct horse"
    thread.join(5)
    thread = threading.Thread(target=writer, args=(b"x" * 100_000,), daemon=True)
    thread.start()
    with pytest.raises(UsageError):
        _within(5, lambda: _read_file_passphrase(str(fifo)))
