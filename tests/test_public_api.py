"""The small public API in ``mindvec/__init__.py`` stays what it says it is."""

from __future__ import annotations

import importlib
import pkgutil
import types

import mindvec


def test_public_names_survive_importing_every_submodule() -> None:
    """A submodule named like a public function would shadow it once imported."""
    for info in pkgutil.walk_packages(mindvec.__path__, "mindvec."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    hub = importlib.import_module("mindvec.hub")
    for namespace in (mindvec, hub):
        for name in namespace.__all__:
            value = getattr(namespace, name)
            assert not isinstance(value, types.ModuleType), f"{namespace.__name__}.{name} is a module"
    assert callable(mindvec.verify) and callable(mindvec.translate) and callable(mindvec.steer)
