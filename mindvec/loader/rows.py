"""Per-row steering: which rows of a batch an operation acts on (``steer(rows=...)``)."""

from __future__ import annotations

from typing import Any

from mindvec.errors import UsageError


class Rows:
    """Which rows of a batch an operation acts on: a mask over the input batch.

    When ``generate`` expands each input row into k rows (beam search, ``num_return_sequences``,
    which repeat each row k times in place), the mask is repeated the same way, so a row's
    beams or samples are steered as the row is. Built on the host once; on the device a
    ``torch.where``, no host sync.
    """

    def __init__(self, rows: Any) -> None:
        values = list(rows)
        if not values:
            raise UsageError(
                "argument", "rows= names no row; pass a mask such as [True, False] or indices [0, 2]"
            )
        if all(isinstance(v, bool) for v in values):
            self.mask = tuple(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            size = max(values) + 1
            chosen = set(values)
            self.mask = tuple(i in chosen for i in range(size))
            self.indices_only = True
        else:
            raise UsageError("argument", "rows= takes booleans (a mask over the batch) or row indices >= 0")
        self._cache: dict[Any, Any] = {}

    indices_only = False

    def select(self, batch: int, device: Any) -> Any:
        """Bool tensor [batch, 1, 1]: True for the rows to steer."""
        key = (batch, device)
        if key not in self._cache:
            import torch

            n = len(self.mask)
            if batch % n == 0 and not (self.indices_only and batch != n):
                mask = [m for m in self.mask for _ in range(batch // n)]
            elif self.indices_only and batch > n:
                mask = list(self.mask) + [False] * (batch - n)
            else:
                raise UsageError(
                    "argument",
                    f"rows= covers {n} rows but the batch has {batch}; give a mask of the input batch "
                    "(it is repeated for beams and num_return_sequences)",
                )
            self._cache[key] = torch.tensor(mask, dtype=torch.bool, device=device).view(batch, 1, 1)
        return self._cache[key]
