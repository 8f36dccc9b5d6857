"""mindvec's own cache and quarantine folders (never the shared Hugging Face cache)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """mindvec's cache: ``cache_dir``, ``$MINDVEC_CACHE``, else ``$XDG_CACHE_HOME/mindvec``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MINDVEC_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mindvec"


def cached_path(root: Path, repo_id: str, commit: str, filename: str) -> Path:
    return root / "hub" / repo_id / commit / filename


def quarantine(
    root: Path, repo_id: str, commit: str, filename: str, source: Path, reason: str
) -> Path | None:
    """Move ``source`` out of every place a pull or open looks; returns where it went (None: deleted)."""
    qdir = root / "quarantine" / repo_id.replace("/", "--") / commit
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = qdir / f"{filename.replace('/', '--')}.{stamp}.{os.getpid()}.rejected"
    try:
        qdir.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        os.chmod(target, 0o400)
        (qdir / (target.name + ".reason.txt")).write_text(reason + "\n", encoding="utf-8")
        return target
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            source.unlink()
        return None
