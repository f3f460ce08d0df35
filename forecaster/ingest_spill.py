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
    """P pairs of files on disk: the cleaned rows, a customer's rows all in one file in file
    order, each row's customer a position in the file's list of ids; and that list, each
    chunk's distinct ids of the file appended once."""

    def __init__(self, parts: int, folder: Path | None):
        self.parts = parts
        self.folder = Path(tempfile.mkdtemp(prefix="forecaster-ingest-", dir=folder))
        self.writers: dict[int, tuple[pa.ipc.RecordBatchFileWriter, pa.ipc.RecordBatchFileWriter]] = {}
        self.ids_written = np.zeros(parts, dtype=np.int64)

    def write(self, table: pa.Table, distinct: pa.Array, hashed: np.ndarray | None) -> None:
        """One chunk: ``table``'s ``customer`` column ranks its rows' ids among ``distinct``
        (sorted); ``hashed`` (a hash of each distinct id; None with one file) picks the file."""
        part_of = (hashed % np.uint64(self.parts)).astype(np.int64) if hashed is not None \
            else np.zeros(len(distinct), np.int64)
        by_part = np.argsort(part_of.astype(self._small), kind="stable")  # radix sort for int16
        bounds = np.searchsorted(part_of[by_part], np.arange(self.parts + 1))
        local = np.empty(len(distinct), dtype=np.int64)  # each id's place in its file's list
        local[by_part] = np.arange(len(distinct)) - np.repeat(bounds[:-1], np.diff(bounds))
        local += self.ids_written[part_of]
        rank = table.column("customer").to_numpy()
        row_part = part_of[rank]
        table = table.set_column(table.column_names.index("customer"), "customer", pa.array(local[rank]))
        order = np.argsort(row_part.astype(self._small), kind="stable")  # stable: file order within a file
        row_bounds = np.searchsorted(row_part[order], np.arange(self.parts + 1))
        table = table.take(pa.array(order)) if self.parts > 1 else table
        for p in np.flatnonzero(np.diff(row_bounds)).tolist():
            lo, hi = int(row_bounds[p]), int(row_bounds[p + 1])
            ids = distinct.take(pa.array(by_part[bounds[p]:bounds[p + 1]]))
            self._append(p, table.slice(lo, hi - lo), ids)
            self.ids_written[p] += len(ids)

    @property
    def _small(self) -> type:
        return np.int16 if self.parts < 2**15 else np.int64

    def _append(self, p: int, table: pa.Table, ids: pa.Array) -> None:
        if p not in self.writers:
            self.writers[p] = (pa.ipc.new_file(self.folder / f"{p:05d}.arrow", table.schema),
                               pa.ipc.new_file(self.folder / f"{p:05d}.ids.arrow", pa.schema([("id", ids.type)])))
        rows, names = self.writers[p]
        rows.write_table(table)
        names.write_table(pa.table({"id": ids}))

    def close(self) -> None:
        for rows, names in self.writers.values():
            rows.close()
            names.close()
        self.writers = {}

    def read(self, p: int) -> tuple[pa.Table, pa.ChunkedArray] | None:
        """File ``p``'s rows and its list of ids (None when no row went to it)."""
        path = self.folder / f"{p:05d}.arrow"
        if not path.exists():
            return None
        tables = []
        for name in (path, self.folder / f"{p:05d}.ids.arrow"):
            with pa.memory_map(str(name)) as mapped:
                tables.append(pa.ipc.open_file(mapped).read_all())
        return tables[0], tables[1].column("id")

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
