"""mindvec._fs: the one atomic writer (temporary file, fsync, rename) and the one file hasher."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

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
