"""The one atomic writer, the one bounded reader and the one file hasher.

Every file mindvec writes (packages, signatures, key files, the trust store, the state file,
caches) goes through :func:`atomic_writer`: a temporary file beside the target, fsync, rename,
fsync of the folder. A reader therefore sees the old file or the new one, never a part.

Temporary files are named ``.<target>.<pid>.<random>.mindvec-tmp`` so that a person (or a
later clean-up) can tell them from anything else. A write that raises, or is interrupted
with Ctrl-C, removes its temporary file. ``SIGKILL`` (or a power cut) can leave one behind;
nothing ever reads it, and :func:`stale_temporaries` lists them.

Every file mindvec reads that a user or a download hands it (packages, ``.sig`` files, trust
stores, state files, key files, rotation records) is opened with :func:`open_regular`: a FIFO
or a device is refused before a single byte is read (a FIFO would block forever, ``/dev/zero``
would be read until memory runs out), and :func:`read_capped` never reads past its limit,
whatever ``st_size`` says. Only a passphrase may come from a pipe (``<(pass show key)``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from mindvec import limits as _limits
from mindvec.errors import UsageError, error_for

TMP_SUFFIX = ".mindvec-tmp"
HASH_CHUNK = 1 << 20


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _default_mode(path: Path) -> int:
    """Keep an existing file's mode; give a new file the usual umask-based mode."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows fsync on a folder
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temporary_name(path: Path) -> Path:
    """A fresh, recognisable temporary name beside ``path``."""
    return _folder(path) / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}{TMP_SUFFIX}"


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files that interrupted writes of ``path`` left beside it."""
    target = Path(path)
    return sorted(_folder(target).glob(f".{target.name}.*{TMP_SUFFIX}"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def sweep_stale(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of writes of ``path`` whose process no longer exists.

    The name carries the writer's pid, so a live writer's file is never touched; only what a
    ``kill -9`` or a power cut left behind goes. Returns what was removed.
    """
    removed = []
    for tmp in stale_temporaries(path):
        parts = tmp.name[len(Path(path).name) + 2 :].split(".")
        if len(parts) < 2 or not parts[0].isdigit() or _alive(int(parts[0])):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, check: Callable[[Path], None] | None = None
) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; rename it over ``path`` once the body is done.

    ``check`` is called with the complete temporary file before the rename; if it (or the
    body) raises, nothing appears at ``path`` and the temporary file is removed. OSError
    becomes ``io``. For writers that insist on a file name; others use :func:`atomic_writer`.
    """
    target = Path(path)
    sweep_stale(target)
    tmp = temporary_name(target)
    try:
        yield tmp
        if check is not None:
            check(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise UsageError(
                "io", f"cannot write {target}: {exc.strerror or exc}; check that the folder exists"
            ) from None
        raise
    _fsync_dir(_folder(target))


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str],
    *,
    mode: int | None = None,
    check: Callable[[Path], None] | None = None,
) -> Iterator[BinaryIO]:
    """Yield an open temporary file beside ``path``; fsync it and rename it over ``path`` on success.

    ``mode``: the file's permissions, set when the temporary file is created (so a secret is
    never readable by others, not even briefly); None keeps an existing file's mode.
    """
    target = Path(path)
    final_mode = _default_mode(target) if mode is None else mode
    with atomic_path(target, check=check) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, final_mode)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), final_mode)  # umask may have narrowed it
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def make_parents(path: str | os.PathLike[str]) -> None:
    """Create the folders above ``path``; a regular file in the way is ``io``, not FileExistsError."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            "io", f"cannot create the folder for {path}: {exc.strerror or exc}; is a parent a file?"
        ) from None


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], timeout: float | None = None) -> Iterator[None]:
    """Hold ``<path>.lock``, an exclusive lock every mindvec process takes before it rewrites
    ``path`` (trust store, state file, a package being co-signed). The lock file stays: removing
    it would let two processes hold "the" lock at once."""
    import filelock

    make_parents(path)
    lock = filelock.FileLock(f"{path}.lock", timeout=_limits.LOCK_TIMEOUT_S if timeout is None else timeout)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise UsageError("io", f"{path}.lock is held by another process; retry later") from None
    except OSError as exc:
        raise UsageError("io", f"cannot lock {path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)
    return Path(path)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a folder" if stat.S_ISDIR(mode) else "not a regular file"


def open_regular(path: str | os.PathLike[str], *, what: str = "file", allow_pipe: bool = False) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file (or, with ``allow_pipe``, a pipe).

    The open itself never blocks: ``O_NONBLOCK`` keeps a FIFO with no writer from hanging us,
    and the file type is checked on the open descriptor, so a symbolic link to ``/dev/zero``
    or a file swapped in after a check is refused too. Raises ``io``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError("io", f"cannot read {what} {path}: {exc.strerror or exc}; check the path") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode) and not (allow_pipe and stat.S_ISFIFO(mode)):
        os.close(fd)
        raise UsageError("io", f"{what} {path} is {_kind(mode)}; pass a regular file")
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)  # ordinary blocking reads from here on
    return os.fdopen(fd, "rb")


def read_capped(
    path: str | os.PathLike[str],
    limit: int,
    *,
    what: str = "file",
    code: str = "io",
    allow_pipe: bool = False,
) -> bytes:
    """The whole of a regular file (or pipe) of at most ``limit`` bytes; longer is error ``code``."""
    with open_regular(path, what=what, allow_pipe=allow_pipe) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise UsageError("io", f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error_for(code, f"{what} {path} is larger than {limit} bytes; this is not a {what}")
    return data


def sha256_file(path: str | os.PathLike[str]) -> bytes:
    """sha256 of a whole file, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise UsageError("io", f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.digest()
