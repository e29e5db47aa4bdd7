"""Bounded, uniformly thinned history buffers behind every live curve.

A training run can last millions of steps; a curve must not. :class:`History` keeps rows
of float64 columns in one preallocated array. When it is full it drops every other row
(the whole history, so the resolution stays uniform along the x axis) and from then on
keeps only every ``stride``-th incoming row, doubling ``stride`` at each thinning. The
stored rows are always the global rows ``0, stride, 2*stride, ...`` of everything appended,
between ``capacity/2`` and ``capacity`` of them: appending is amortised O(1) and memory is
fixed.

>>> h = History(2, capacity=4)
>>> h.append(np.array([[0, 10], [1, 11], [2, 12], [3, 13], [4, 14]], float))
>>> h.array[:, 0].tolist(), h.stride
([0.0, 2.0, 4.0], 2)
"""

from __future__ import annotations

import numpy as np

__all__ = ["History", "rebin"]


class History:
    """Append-only table of ``ncols`` float64 columns holding at most ``capacity`` rows."""

    def __init__(self, ncols: int, capacity: int = 100_000):
        if capacity < 4:
            raise ValueError(f"History capacity must be at least 4, received {capacity}")
        self.ncols = int(ncols)
        self.capacity = int(capacity)
        self._data = np.empty((self.capacity, self.ncols), np.float64)
        self._n = 0
        self.stride = 1
        self._seen = 0  # rows appended in total, kept or not
        self.version = 0  # bumped on every change, so views can skip redundant redraws

    def __len__(self) -> int:
        return self._n

    @property
    def array(self) -> np.ndarray:
        """The stored rows (a view: copy it before handing it to a plot item)."""
        return self._data[: self._n]

    def column(self, i: int) -> np.ndarray:
        return self._data[: self._n, i]

    @property
    def last(self) -> np.ndarray | None:
        return self._data[self._n - 1] if self._n else None

    def clear(self) -> None:
        self._n = 0
        self.stride = 1
        self._seen = 0
        self.version += 1

    def append(self, rows: np.ndarray) -> None:
        """Append one row (shape ``(ncols,)``) or a block of rows (shape ``(k, ncols)``)."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.shape[1] != self.ncols:
            raise ValueError(f"History expects rows of {self.ncols} columns, "
                             f"received {rows.shape}")
        if not len(rows):
            return
        # Keep the incoming rows whose global index is a multiple of the stride.
        first = (-self._seen) % self.stride
        self._seen += len(rows)
        rows = rows[first :: self.stride]
        while len(rows):
            if self._n == self.capacity:
                # rows[0] would be stored row n (global index n * stride); after halving,
                # the new stride keeps the rows at even positions only.
                offset = self._n % 2
                self._thin()
                rows = rows[offset::2]
                continue
            k = min(len(rows), self.capacity - self._n)
            self._data[self._n : self._n + k] = rows[:k]
            self._n += k
            rows = rows[k:]
        self.version += 1

    def _thin(self) -> None:
        kept = self._data[: self._n : 2]
        m = len(kept)
        self._data[:m] = kept  # numpy buffers overlapping copies, so this is safe
        self._n = m
        self.stride *= 2


def rebin(counts: np.ndarray, edges: np.ndarray, new_edges: np.ndarray) -> np.ndarray:
    """Redistribute histogram ``counts`` over ``new_edges``, assuming uniform density per bin.

    Mass inside the new range is conserved exactly; mass outside it is dropped. Works on
    the last axis, so a (T, bins) matrix of histograms with common edges rebins at once.
    """
    counts = np.asarray(counts, np.float64)
    cum = np.concatenate([np.zeros(counts.shape[:-1] + (1,)), np.cumsum(counts, axis=-1)], axis=-1)
    if cum.ndim == 1:
        at = np.interp(new_edges, edges, cum)
    else:
        at = np.stack([np.interp(new_edges, edges, c) for c in cum])
    return np.diff(at, axis=-1)
