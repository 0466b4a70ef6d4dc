"""A bounded, decimating store of per-step records.

Recent steps are kept exactly; older ones are thinned progressively (each compaction halves the
resolution of the oldest half), so a run of a million steps keeps at most ``capacity`` rows and
rendering cost stays flat. ``capacity=None`` keeps everything (headless replays that export
every step).
"""

from __future__ import annotations

import numpy as np


class History:
    """Columns of equal length, appended one row (or a block of rows) at a time.

    Each column has a fixed per-row shape, e.g. ``positions`` (N, 2) and ``loss`` (N,).
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], capacity: int | None = 4096, dtype=np.float64):
        if capacity is not None and capacity < 16:
            raise ValueError("history capacity must be at least 16 rows")
        self.capacity = capacity
        self._alloc = capacity if capacity is not None else 1024
        self._shapes = dict(shapes)
        self.steps = np.zeros(self._alloc, dtype=np.int64)
        self._cols = {k: np.zeros((self._alloc, *s), dtype=dtype) for k, s in shapes.items()}
        self._len = 0
        self.total_rows = 0  # rows ever appended, including those decimated away

    def __len__(self) -> int:
        return self._len

    def append_block(self, steps: np.ndarray, **columns: np.ndarray) -> None:
        """Append rows: ``steps`` (k,) and each column (k, *shape)."""
        k = len(steps)
        start = 0
        while start < k:
            self._make_room()
            take = min(k - start, self._alloc - self._len)
            sl = slice(self._len, self._len + take)
            self.steps[sl] = steps[start : start + take]
            for name, arr in self._cols.items():
                arr[sl] = columns[name][start : start + take]
            self._len += take
            start += take
        self.total_rows += k

    def append(self, step: int, **row: np.ndarray) -> None:
        self.append_block(np.array([step]), **{k: np.asarray(v)[None] for k, v in row.items()})

    def _make_room(self) -> None:
        if self._len < self._alloc:
            return
        if self.capacity is None:
            self._alloc *= 2
            self.steps = _grow(self.steps, self._alloc)
            self._cols = {k: _grow(v, self._alloc) for k, v in self._cols.items()}
            return
        # Keep the newer half exactly; thin the older half to every other row.
        half = self._len // 2
        keep_old = np.arange(0, half, 2)
        idx = np.concatenate([keep_old, np.arange(half, self._len)])
        n = len(idx)
        self.steps[:n] = self.steps[idx]
        for arr in self._cols.values():
            arr[:n] = arr[idx]
        self._len = n

    def column(self, name: str) -> np.ndarray:
        """A read-only view of a column's stored rows."""
        view = self._cols[name][: self._len]
        view.flags.writeable = False
        return view

    def step_column(self) -> np.ndarray:
        view = self.steps[: self._len]
        view.flags.writeable = False
        return view

    def snapshot(self, max_rows: int | None = None) -> dict[str, np.ndarray]:
        """Copies of all columns (plus 'step'), thinned to at most ``max_rows`` evenly spaced rows
        (the last row always kept)."""
        idx = slice(0, self._len)
        if max_rows is not None and self._len > max_rows:
            idx = np.linspace(0, self._len - 1, max_rows).round().astype(np.int64)
            idx = idx[np.diff(idx, prepend=-1) != 0]  # sorted already: drop repeats in one pass
        out = {"step": self.steps[idx].copy()}
        for name, arr in self._cols.items():
            out[name] = arr[idx].copy()
        return out

    def clear(self) -> None:
        self._len = 0
        self.total_rows = 0


def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *arr.shape[1:]), dtype=arr.dtype)
    out[: len(arr)] = arr
    return out
