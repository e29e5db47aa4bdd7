"""Per-epoch records kept at a fixed budget, however long the run.

A run of millions of epochs must not keep a dict per epoch. :class:`EpochLog` behaves like
the list it replaces (``append``, ``clear``, ``len``, iteration, ``log[-1]``) but past
``2 * budget`` records it drops every other one and from then on keeps only every
``stride``-th new record (the stride doubles at each thinning), so the kept records stay
evenly spaced along the run and memory is bounded. The latest record is always kept.
``budget=None`` keeps every record (``bplab train --metrics`` asks for all of them).

>>> log = EpochLog(budget=2)
>>> for epoch in range(10):
...     log.append(epoch)
>>> list(log), log.stride
([0, 4, 8, 9], 4)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["EPOCH_BUDGET", "EpochLog"]

EPOCH_BUDGET = 2_000  # kept records lie between budget and 2 * budget (+ the latest)


class EpochLog:
    """Append-only, evenly thinned list of records (see the module)."""

    def __init__(self, budget: int | None = EPOCH_BUDGET):
        if budget is not None and budget < 1:
            raise ValueError(f"EpochLog budget must be at least 1, received {budget}")
        self.budget = budget
        self.clear()

    def clear(self) -> None:
        self._rows: list[Any] = []
        self._latest: Any = None
        self._seen = 0
        self.stride = 1

    @property
    def seen(self) -> int:
        """Records appended in total, kept or not."""
        return self._seen

    def append(self, record: Any) -> None:
        self._latest = record
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self._rows.append(record)
        if self.budget is not None and len(self._rows) > 2 * self.budget:
            self._rows = self._rows[::2]
            self.stride *= 2

    def _all(self) -> list[Any]:
        if self._seen and (not self._rows or self._rows[-1] is not self._latest):
            return [*self._rows, self._latest]
        return self._rows

    def __len__(self) -> int:
        return len(self._all())

    def __bool__(self) -> bool:
        return self._seen > 0

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())

    def __getitem__(self, index):
        return self._all()[index]
