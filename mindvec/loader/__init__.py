"""Apply packages to live transformers models (needs torch; nothing here parses bytes).

- :mod:`~mindvec.loader.stacks`: find the block stacks of a model.
- :mod:`~mindvec.loader.sites`: resolve ``(stack, layer, point)`` to a hook; ``attach``.
- :mod:`~mindvec.loader.hooks`: the operations and token-position selection.
- :mod:`~mindvec.loader.binding`: manifest model entries and the binding check.
- :mod:`~mindvec.loader.steer`: ``steer()`` and ``SteeringHandle``.

Submodules import torch only when a model is handled, so importing this package is cheap.
"""

from __future__ import annotations
