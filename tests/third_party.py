"""repeng and steering-vectors, the real libraries, for the interop tests (never re-implemented).

Their pins clash with this project's (repeng 0.4.0 declares numpy<2 and uses ``np.float_``;
steering-vectors 0.12.2 declares transformers<5), so they are installed with ``--no-deps`` into
a folder of their own (``$MINDVEC_CACHE/interop-deps``, by ``scripts/install.sh`` or on first
use here) and imported from it, with the two smallest shims: ``np.float_`` as ``np.float64``,
and an inert ``sklearn`` when scikit-learn is absent (both import it for extraction code the
tests do not use).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

PINS = {"repeng": "repeng==0.4.0", "steering_vectors": "steering-vectors==0.12.2"}


def deps_dir() -> Path:
    base = os.environ.get("MINDVEC_CACHE") or str(Path.home() / ".cache" / "mindvec")
    return Path(base) / "interop-deps"


def _sklearn_stub() -> None:
    try:
        importlib.import_module("sklearn")
        return
    except ImportError:
        pass

    class _Unavailable:
        def __init__(self, *_: Any, **__: Any) -> None:
            raise RuntimeError("scikit-learn is stubbed out in the interop tests")

    root = types.ModuleType("sklearn")
    root.__spec__ = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
    for sub, names in {
        "decomposition": ["PCA"],
        "linear_model": ["LinearRegression", "LogisticRegression"],
    }.items():
        mod = types.ModuleType(f"sklearn.{sub}")
        mod.__spec__ = importlib.machinery.ModuleSpec(f"sklearn.{sub}", None)
        for name in names:
            setattr(mod, name, _Unavailable)
        setattr(root, sub, mod)
        sys.modules[f"sklearn.{sub}"] = mod
    sys.modules["sklearn"] = root


def load(module: str) -> Any:
    """Import ``module`` (repeng or steering_vectors) from the interop folder, installing it there."""
    folder = deps_dir()
    if not (folder / module).is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(folder),
            PINS[module],
        ]
        subprocess.run(cmd, check=True, capture_output=True)
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # appended: nothing there shadows the project's own dependencies
    import numpy as np

    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]
    _sklearn_stub()
    return importlib.import_module(module)
