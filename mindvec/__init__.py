"""mindvec: signed steering vectors and cross-model maps.

The public API is small and fixed: ``open``, ``write``, ``verify``, ``steer``,
``translate``, ``Policy``, ``Package``, ``PackageBuilder``, ``VerifyReport``,
``SteeringHandle`` and the error classes. Everything else is reached through submodules.
Names are imported lazily so that ``import mindvec`` never imports torch: reading
and verifying a package needs only numpy and the core dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mindvec._version import __version__
from mindvec.errors import (
    InvalidError,
    MalformedError,
    MindvecError,
    UnverifiedError,
    UsageError,
)

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "open": "mindvec.package",
    "write": "mindvec.package",
    "Package": "mindvec.package",
    "PackageBuilder": "mindvec.builder",
    "Policy": "mindvec.policy",
    "verify": "mindvec.verification",
    "VerifyReport": "mindvec.verification",
    "steer": "mindvec.loader.steer",
    "SteeringHandle": "mindvec.loader.steer",
    "translate": "mindvec.translation",
}

#: names a star import may bind; ``open`` stays ``mindvec.open`` so it never hides the builtin
__all__ = [
    "InvalidError",
    "MalformedError",
    "MindvecError",
    "UnverifiedError",
    "UsageError",
    "__version__",
    *(name for name in _LAZY if name != "open"),
]

if TYPE_CHECKING:
    from mindvec.builder import PackageBuilder as PackageBuilder
    from mindvec.loader.steer import SteeringHandle as SteeringHandle
    from mindvec.loader.steer import steer as steer
    from mindvec.package import Package as Package
    from mindvec.package import open as open
    from mindvec.package import write as write
    from mindvec.policy import Policy as Policy
    from mindvec.translation import translate as translate
    from mindvec.verification import VerifyReport as VerifyReport
    from mindvec.verification import verify as verify


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mindvec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
