"""The chunked reader's spill files and its check of the rows' order (:mod:`forecaster.ingest`).

:class:`Spill` keeps the cleaned rows on disk in ``P`` Arrow files, all rows of a customer
in one file, in file order. :class:`OrderCheck` finds, across chunks, the rows that break
the order of (customer id, day) -- pandas sums a group of rows in another way when the
group keys of the whole frame come sorted (``np.add.reduceat`` rather than its
compensated sum), so the reducer must know whether the in-memory frame would be sorted to
give its sums bit for bit.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class Spill:
    """P files of cleaned rows on disk, a customer's rows all in one, in file order."""

    def __init__(self, parts: int, folder: Path | None):
        self.parts = parts
        self.folder = Path(tempfile.mkdtemp(prefix="forecaster-ingest-", dir=folder))
        self.writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}

    def write(self, table: pa.Table, part: np.ndarray) -> None:
        if self.parts == 1:
            self._append(0, table)
            return
        order = np.argsort(part.astype(np.int16 if self.parts < 2**15 else np.int64), kind="stable")
        sorted_part = part[order]  # a stable sort keeps file order within a part
        bounds = np.flatnonzero(np.r_[True, sorted_part[1:] != sorted_part[:-1], True])
        table = table.take(pa.array(order))
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            self._append(int(sorted_part[lo]), table.slice(lo, hi - lo))

    def _append(self, p: int, table: pa.Table) -> None:
        if p not in self.writers:
            self.writers[p] = pa.ipc.new_file(self.folder / f"{p:05d}.arrow", table.schema)
        self.writers[p].write_table(table)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}

    def read(self, p: int) -> pa.Table | None:
        path = self.folder / f"{p:05d}.arrow"
        if not path.exists():
            return None
        with pa.memory_map(str(path)) as mapped:
            return pa.ipc.open_file(mapped).read_all()

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class OrderCheck:
    """Across chunks, the rows whose (customer id, unit) key is below the largest key of the
    rows before them. A frame is sorted by the key exactly when no row is; a later exact
    copy of a row has that row's key, so without the duplicate rows the frame is sorted
    exactly when every such row is a duplicate."""

    def __init__(self) -> None:
        self.top: tuple[str, int] | None = None  # the largest key so far
        self.found = 0

    def breaks(self, rank: np.ndarray, values: pa.Array, unit: np.ndarray) -> np.ndarray:
        """Of one chunk's rows (each id's rank among the chunk's sorted distinct ids
        ``values``, the units as integers), those below the running largest key."""
        if len(unit) == 0:
            return np.zeros(0, dtype=bool)
        key_rank = 2 * rank
        carried = self.top is not None
        if carried:  # the largest id so far placed among this chunk's ids
            below_top = int(pc.sum(pc.less(values, self.top[0])).as_py() or 0)
            equal = bool(pc.any(pc.equal(values, self.top[0])).as_py())
            key_rank = np.r_[2 * below_top - (0 if equal else 1), key_rank]
            unit = np.r_[self.top[1], unit]
        low = int(unit.min())
        key = key_rank * (int(unit.max()) - low + 1) + (unit - low)
        running = np.maximum.accumulate(key)
        below = np.r_[False, key[1:] < running[:-1]]
        top = int(np.argmax(key))
        if not (carried and top == 0):
            self.top = (values[int(rank[top - carried])].as_py(), int(unit[top]))
        below = below[1:] if carried else below
        self.found += int(below.sum())
        return below
