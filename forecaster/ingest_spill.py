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
from dataclasses import dataclass
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

    def write(self, layout: "Layout", columns: dict[str, np.ndarray]) -> None:
        """One chunk laid out by :meth:`layout`, with ``columns`` (in the chunk's row order)
        added: each file's rows and ids appended, the ids' places counted from the ids the
        file already holds (the only step that needs the chunks before it)."""
        for p, lo, hi, ids in layout.slices:
            table = layout.table.slice(lo, hi - lo)
            at = table.column_names.index("customer")
            table = table.set_column(at, "customer", pc.add(table.column(at), int(self.ids_written[p])))
            for name, values in columns.items():
                table = table.append_column(name, pa.array(values[layout.order[lo:hi]]))
            self._append(p, table, ids)
            self.ids_written[p] += len(ids)

    def layout(self, table: pa.Table, distinct: pa.Array, hashed: np.ndarray | None) -> "Layout":
        """One chunk put in file order: ``table``'s first column ``customer`` ranks its rows'
        ids among ``distinct`` (sorted); ``hashed`` (a hash of each distinct id; None with one
        file) picks the file. Reads no state, so chunks are laid out on several threads."""
        part_of = (hashed % np.uint64(self.parts)).astype(np.int64) if hashed is not None \
            else np.zeros(len(distinct), np.int64)
        small = np.int16 if self.parts < 2**15 else np.int64
        by_part = np.argsort(part_of.astype(small), kind="stable")  # radix sort for int16
        bounds = np.searchsorted(part_of[by_part], np.arange(self.parts + 1))
        local = np.empty(len(distinct), dtype=np.int64)  # each id's place among its file's ids in this chunk
        local[by_part] = np.arange(len(distinct)) - np.repeat(bounds[:-1], np.diff(bounds))
        rank = table.column("customer").to_numpy()
        row_part = part_of[rank]
        order = np.argsort(row_part.astype(small), kind="stable")  # stable: file order within a file
        row_bounds = np.searchsorted(row_part[order], np.arange(self.parts + 1))
        table = table.set_column(table.column_names.index("customer"), "customer", pa.array(local[rank]))
        table = table.take(pa.array(order)) if self.parts > 1 else table
        slices = [(p, int(row_bounds[p]), int(row_bounds[p + 1]), distinct.take(pa.array(by_part[bounds[p]:bounds[p + 1]])))
                  for p in np.flatnonzero(np.diff(row_bounds)).tolist()]
        return Layout(table, order, slices)

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


@dataclass(frozen=True)
class Layout:
    """A chunk's rows in spill-file order (:meth:`Spill.layout`): ``order`` maps them to the
    chunk's rows; each slice is (file, first row, end row, the file's new ids)."""

    table: pa.Table
    order: np.ndarray
    slices: list[tuple[int, int, int, pa.Array]]


@dataclass(frozen=True)
class OwnOrder:
    """A chunk's rows against each other (:meth:`OrderCheck.own`): the rows below the
    largest (customer id, unit) key before them in the chunk, and the chunk's largest key."""

    rank2: np.ndarray  # twice each row's id rank among the chunk's sorted distinct ids
    unit: np.ndarray
    below: np.ndarray
    top: tuple[str, int] | None


class OrderCheck:
    """Across chunks, the rows whose (customer id, unit) key is below the largest key of the
    rows before them. A frame is sorted by the key exactly when no row is; a later exact
    copy of a row has that row's key, so without the duplicate rows the frame is sorted
    exactly when every such row is a duplicate."""

    def __init__(self) -> None:
        self.top: tuple[str, int] | None = None  # the largest key so far
        self.found = 0

    @staticmethod
    def own(rank: np.ndarray, values: pa.Array, unit: np.ndarray) -> OwnOrder:
        """One chunk's rows (each id's rank among the chunk's sorted distinct ids ``values``,
        the units as integers) against each other only: reads no state, so chunks are
        checked on several threads before :meth:`after` adds the chunks before them."""
        if len(unit) == 0:
            return OwnOrder(rank, unit, np.zeros(0, dtype=bool), None)
        low = int(unit.min())
        key = rank * (2 * (int(unit.max()) - low + 1)) + (unit - low)
        running = np.maximum.accumulate(key)
        top = int(np.argmax(key))
        return OwnOrder(2 * rank, unit, np.r_[False, key[1:] < running[:-1]],
                        (values[int(rank[top])].as_py(), int(unit[top])))

    def after(self, own: OwnOrder, values: pa.Array) -> np.ndarray:
        """The chunk's rows below the largest key before them, the chunks before it
        included (their largest key placed among this chunk's ids ``values``)."""
        below = own.below
        if self.top is not None and len(own.unit):
            under = int(pc.sum(pc.less(values, self.top[0])).as_py() or 0)
            equal = bool(pc.any(pc.equal(values, self.top[0])).as_py())
            carried = 2 * under - (0 if equal else 1)  # between the ranks of the ids around it when absent
            below = below | (own.rank2 < carried) | ((own.rank2 == carried) & (own.unit < self.top[1]))
        if own.top is not None and (self.top is None or own.top > self.top):
            self.top = own.top
        self.found += int(below.sum())
        return below

    def breaks(self, rank: np.ndarray, values: pa.Array, unit: np.ndarray) -> np.ndarray:
        """:meth:`own` then :meth:`after`: one chunk's rows below the running largest key."""
        return self.after(self.own(rank, values, unit), values)
