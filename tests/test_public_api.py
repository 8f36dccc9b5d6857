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


def test_star_import_rebinds_no_builtin() -> None:
    import builtins

    namespace: dict[str, object] = {}
    exec("from mindvec import *", namespace)  # noqa: S102 - the star import a user would write
    bound = set(namespace) - {"__builtins__"}
    assert bound == set(mindvec.__all__)
    assert not bound & set(dir(builtins)), "a star import must not hide a builtin"
    assert mindvec.open is mindvec.package.open  # still reachable by its fixed name


def test_public_functions_are_typed_without_any_where_a_type_exists() -> None:
    """`steer(model: Any, package: Any, ...)` said nothing; the public signatures name their types."""
    import inspect

    for name in ("open", "write", "verify", "steer", "translate"):
        sig = inspect.signature(getattr(mindvec, name))
        for param in sig.parameters.values():
            if param.kind is param.VAR_KEYWORD or param.kind is param.VAR_POSITIONAL:
                continue  # the deprecated 0.1 keywords
            assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) is untyped"
            assert str(param.annotation) not in ("Any", "typing.Any"), f"{name}({param.name}: Any)"
