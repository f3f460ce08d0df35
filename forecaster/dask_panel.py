"""Transactions -> the monthly panel on a Dask cluster (``--dask``): the chunked reader's
two passes (:mod:`forecaster.ingest`, :mod:`forecaster.ingest_reduce`) with Dask partitions
in place of chunks and a hash shuffle in place of the spill files.

1. Every partition of ``dd.read_parquet`` / ``dd.read_csv`` is cleaned on a worker by the
   in-memory reader's own functions (``customer_ids``, ``parse_dates`` or the distinct-date
   lookup, ``parse_amounts``, the order ids), numbered by file row, and its rows marked where
   they break the whole data's (customer, day) and (customer, month) order (the running
   largest key is carried from the partitions before: pandas sums a sorted frame's groups
   another way, so this decides the purchase days' sums to the last bit).
2. The rows are shuffled by customer id, into as many partitions as the input has and at
   least as many as the chunked reader's spill files (about ``DEFAULT_CHUNK_ROWS`` rows
   each: a partition stays small whatever the size of the input files); each output
   partition, put back in file order, is reduced on its worker by the chunked reader's
   ``_reduce_part`` (duplicates, ``panel_cells`` over the whole data's months, purchase days,
   returns). :func:`shuffle` stops before the reduction: the whole-data date rules applied
   (``check_dates``), the shuffled partitions stay persisted on the workers
   (:class:`Shuffled`), which ``forecaster batch --dask`` reduces one partition at a time
   where they are (:mod:`forecaster.dask_batch`). :func:`load_dataset` goes on: the client
   merges the per-partition results (``Reduced.merge``) and assembles the panel
   (``reduced_dataset``): the same Dataset, bit for bit, held whole on the client.

Not a ``groupby().agg()``: Dask's tree reduction adds a cell's amounts in another order than
pandas does over the whole frame, so its float sums would differ in the last bits; a
customer's rows all in one partition, in file order, make them identical.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from forecaster.amounts import parse_amounts
from forecaster.dates import DateRange, parse_dates
from forecaster.ingest import (DateReader, Roles, ScanTotals, _breaks, _ids, _note_dates, _order_columns,
                               _range_mask, partitions, resolve_roles)
from forecaster.ingest_arrays import days_months, sorted_codes
from forecaster.ingest_reduce import Part, Reduced, _reduce_part, check_dates, reduced_dataset
from forecaster.ingest_source import Source, open_source
from forecaster.ingest_spill import OrderCheck
from forecaster.memory import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:
    from distributed import Client

    from forecaster.datasets import Dataset, _MonthOptions

_US = "datetime64[us]"
_DATES_ROWS = 1_000_000  # rows per read of the distinct text dates on the client


@dataclass(frozen=True)
class Plan:
    """What a worker needs to clean a partition (sent once per task graph: no key, no rows)."""

    where: Any
    roles: Roles
    date_format: str | None
    decimal_comma: bool
    date_range: DateRange | None
    lookup: pd.Index | None  # distinct text dates (None: a timestamp column, parsed per partition)
    parsed: np.ndarray | None
    aware: np.ndarray | None


def read_frame(source: Source, roles: Roles):
    """The role and other columns as a Dask DataFrame, named as the source names them."""
    import dask
    import dask.dataframe as dd

    names = [source.raw_names[source.columns.index(c)] for c in roles.read]
    with dask.config.set({"dataframe.convert-string": False}):  # the cells as pandas reads them
        if source.is_csv:
            # by position, as the chunked reader: pandas' header names may differ from the stripped ones
            frame = dd.read_csv(str(source.path), dtype=str, encoding=source.encoding, sep=source.separator,
                                skipinitialspace=True)
            frame = frame.iloc[:, [source.columns.index(c) for c in roles.read]]
        else:
            files = [str(f) for f in source.dataset.files]
            frame = dd.read_parquet(files, columns=names, index=False)
    return frame


def clean(frame: pd.DataFrame, offset: int, plan: Plan) -> pd.DataFrame:
    """One partition's cleaned rows (those with a customer id), indexed by file row."""
    roles = plan.roles
    frame = frame.set_axis(roles.read, axis=1).set_axis(pd.RangeIndex(offset, offset + len(frame)))
    source = SimpleNamespace(where=plan.where)
    ids = _ids(frame[roles.customer], source, roles.customer)
    has_id = ids.notna().to_numpy()
    frame, ids = frame[has_id], ids[has_id]
    if plan.lookup is None:
        parsed = parse_dates(frame[roles.date], plan.where, roles.date, plan.date_format)
        ts, converted = parsed.ts.to_numpy(_US), np.full(len(frame), parsed.converted == len(frame) and len(frame) > 0)
    else:
        code = plan.lookup.get_indexer(frame[roles.date])
        ts, converted = plan.parsed[code], plan.aware[code]
    out = pd.DataFrame({"customer_id": ids.astype(str).to_numpy(), "ts": ts,
                        "amount": parse_amounts(frame[roles.amount], plan.where, roles.amount,
                                                plan.decimal_comma).to_numpy(np.float64),
                        "row": frame.index.to_numpy(np.int64), "in_range": _range_mask(ts, plan.date_range),
                        "converted": converted})
    if roles.order is not None:
        for name, array in _order_columns(frame[roles.order], ts).items():
            out[name] = array.to_numpy(zero_copy_only=False)
    # the whole raw row: two rows are duplicates exactly when every cell of the file is equal
    out["raw_hash"] = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return out.set_axis(pd.RangeIndex(len(out)))


def order_keys(frame: pd.DataFrame) -> tuple[np.ndarray, pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """(id ranks, sorted distinct ids, days, months, purchase rows) of a cleaned partition."""
    rank, distinct = sorted_codes(pa.array(frame["customer_id"].to_numpy(), pa.large_string()))
    day, month = days_months(frame["ts"].to_numpy(_US))
    purchase = frame["in_range"].to_numpy() & (frame["amount"].to_numpy() >= 0)
    return rank, distinct, day, month, purchase


def partition_top(frame: pd.DataFrame) -> tuple[tuple | None, tuple | None]:
    """The largest (customer id, day) key among the partition's purchases and (customer id,
    month) among its rows in range: what the partitions after it are compared with."""
    if not len(frame):
        return None, None
    rank, distinct, day, month, purchase = order_keys(frame)
    tops = []
    for unit, rows in ((day, purchase), (month, frame["in_range"].to_numpy())):
        check = OrderCheck()
        _breaks(check, rank, distinct, unit, rows)
        tops.append(check.top)
    return tuple(tops)


def with_breaks(frame: pd.DataFrame, carried: tuple[tuple | None, tuple | None]) -> pd.DataFrame:
    """The partition with its rows' order breaks, the running largest keys of the partitions
    before it carried in (:class:`~forecaster.ingest_spill.OrderCheck`)."""
    if not len(frame):
        return frame.assign(day_break=np.zeros(0, bool), month_break=np.zeros(0, bool))
    rank, distinct, day, month, purchase = order_keys(frame)
    flags = []
    for top, unit, rows in zip(carried, (day, month), (purchase, frame["in_range"].to_numpy())):
        check = OrderCheck()
        check.top = top
        flags.append(_breaks(check, rank, distinct, unit, rows))
    return frame.assign(day_break=flags[0], month_break=flags[1])


def running_tops(tops: list[tuple[tuple | None, tuple | None]]) -> list[tuple[tuple | None, tuple | None]]:
    """For each partition, the largest keys of the partitions before it."""
    carried, best = [], [None, None]
    for pair in tops:
        carried.append(tuple(best))
        best = [b if t is None else t if b is None else max(b, t) for b, t in zip(best, pair)]
    return carried


def as_table(frame: pd.DataFrame) -> pa.Table:
    """A shuffled partition back in file order, as a spill file's table."""
    frame = frame.sort_values("row", kind="stable")
    columns = {c: pa.array(frame[c].to_numpy(), pa.large_string() if c in ("customer_id", "order_id") else None)
               for c in frame.columns if c != "converted"}
    return pa.table(columns)


def partition_table(frame: pd.DataFrame) -> pa.Table | None:
    """A shuffled partition as a spill file's table (None when it has no row)."""
    return as_table(frame) if len(frame) else None


def reduce_partition(frame: pd.DataFrame, months: tuple[int, int] | None, currency: str,
                     sorted_keys: tuple[bool, bool]) -> Reduced:
    return reduce_table(partition_table(frame), months, currency, sorted_keys)


def reduce_table(table: pa.Table | None, months: tuple[int, int] | None, currency: str,
                 sorted_keys: tuple[bool, bool]) -> Reduced:
    """A partition's table (:func:`partition_table`) reduced as a spill file is."""
    out = Reduced()
    if table is not None:
        _reduce_part(Part.of(table), out, months, currency, sorted_keys)
    return out


class ShuffledSpill:
    """The shuffled partitions seen as spill files, for ``check_dates``' rare second look at
    the month counts (a gap of 12 empty months): each read brings one partition over."""

    def __init__(self, shuffled):
        self.shuffled, self.parts = shuffled, shuffled.npartitions

    def read(self, p: int) -> pa.Table | None:
        return partition_table(self.shuffled.get_partition(p).compute())


def scan_totals(pieces: list[tuple[int, int, ScanTotals]], rows_read: int, notes: tuple[str, ...]) -> ScanTotals:
    """The whole data's ScanTotals from each partition's (rows kept, converted, totals)."""
    totals = ScanTotals(rows_read=rows_read, date_notes=notes)
    for kept, converted, part in pieces:
        totals.converted += converted
        totals.add_dates(part)
    totals.null_ids = rows_read - sum(kept for kept, _, _ in pieces)
    return totals


def partition_totals(frame: pd.DataFrame, data_end: pd.Timestamp | None) -> tuple[int, int, ScanTotals]:
    totals = ScanTotals()
    ts = frame["ts"].to_numpy(_US)
    _note_dates(totals, ts, days_months(ts)[1], frame["in_range"].to_numpy(), frame["row"].to_numpy(), data_end)
    return len(frame), int(frame["converted"].sum()), totals


def date_plan(source: Source, roles: Roles, date_format: str | None) -> tuple[tuple, tuple[str, ...]]:
    """(lookup, parsed, aware) of a text date column's distinct values, read once on the
    client as the chunked reader reads them (refusing mixed orders naming the same rows);
    (None, None, None) for a timestamp column, parsed on the workers."""
    dates = DateReader(source, roles, date_format, _DATES_ROWS)
    if dates.lookup is None:
        return (None, None, None), ()
    return (dates.lookup, dates.parsed, dates.aware), dates.notes


@dataclass
class Shuffled:
    """A source read, cleaned and shuffled by customer on the cluster: every customer's rows
    in one partition of ``frame`` (persisted on the workers), the whole data's date rules
    applied (``month_range``). What the client holds is only this and the scan's totals."""

    source: Source
    roles: Roles
    totals: ScanTotals
    month_range: tuple[int, int]
    months: "_MonthOptions"
    currency: str
    frame: Any  # dask.dataframe.DataFrame, persisted; None once turned into tables
    parts: int

    def sorted_guess(self) -> tuple[bool, bool]:
        """Whether the kept rows come sorted by (customer, day) and (customer, month)
        (:func:`forecaster.ingest_reduce.sorted_guess`), from the rows' order breaks."""
        found = flagged_breaks(self.frame)
        return found[0] == 0, found[1] == 0

    def into_tables(self, client: "Client") -> list:
        """Each partition as a spill file's table (:func:`partition_table`), persisted on the
        worker that holds it, in place of ``frame``, which is released: the ids as Arrow
        strings instead of Python objects, and no conversion each time a partition is reduced."""
        import dask

        tables = client.persist([dask.delayed(partition_table)(p) for p in self.frame.to_delayed()])
        self.frame = None
        return tables


def shuffle(client: "Client", path: Path, *, customer_col: str | None, date_col: str | None,
            amount_col: str | None, order_col: str | None, currency: str, date_format: str | None,
            decimal_comma: bool, months: "_MonthOptions") -> Shuffled:
    """Steps 1 and 2 of the module doc up to the reduction: the rows cleaned, shuffled by
    customer and persisted on the workers; the whole data's date rules checked."""
    import dask
    import dask.dataframe as dd

    source = open_source(path)
    roles = resolve_roles(source, customer_col, date_col, amount_col, order_col)
    (lookup, parsed, aware), notes = date_plan(source, roles, date_format)
    plan = Plan(source.where, roles, date_format, decimal_comma, months.date_range, lookup, parsed, aware)
    raw = read_frame(source, roles).to_delayed()
    lengths = dask.compute(*[dask.delayed(len)(p) for p in raw])
    offsets = np.r_[0, np.cumsum(lengths)[:-1]].tolist()
    plan_future = client.scatter(plan, broadcast=True)
    cleaned = client.persist([dask.delayed(clean)(p, o, plan_future) for p, o in zip(raw, offsets)])
    tops = dask.compute(*[dask.delayed(partition_top)(c) for c in cleaned])
    flagged = [dask.delayed(with_breaks)(c, t) for c, t in zip(cleaned, running_tops(list(tops)))]
    pieces = dask.compute(*[dask.delayed(partition_totals)(c, months.data_end) for c in cleaned])
    totals = scan_totals(list(pieces), int(sum(lengths)), notes)
    if totals.rows_read and totals.null_ids == totals.rows_read:
        _ids(pd.Series([""]), source, roles.customer)  # raises the in-memory reader's error
    meta = with_breaks(clean(_empty(source, roles), 0, plan), (None, None)).astype({"customer_id": str})
    # at least as many partitions as the chunked reader's spill files (about DEFAULT_CHUNK_ROWS
    # rows each): a worker reduces and scores one at a time, whatever the size of the input files
    npartitions = max(len(raw), partitions(int(sum(lengths)), DEFAULT_CHUNK_ROWS))
    shuffled = dd.from_delayed(flagged, meta=meta, verify_meta=False).shuffle("customer_id", npartitions=npartitions)
    shuffled = client.persist(shuffled)
    range_text = months.date_range.text if months.date_range else None
    month_range = check_dates(source, roles, totals, ShuffledSpill(shuffled), range_text, months.data_end, currency)
    return Shuffled(source, roles, totals, month_range, months, currency, shuffled, shuffled.npartitions)


def load_dataset(client: "Client", path: Path, *, customer_col: str | None, date_col: str | None,
                 amount_col: str | None, order_col: str | None, currency: str, date_format: str | None,
                 decimal_comma: bool, months: "_MonthOptions") -> "Dataset":
    """A Parquet folder, Parquet file or CSV read and reduced on the cluster of ``client``
    into the Dataset the in-memory and chunked readers give (module doc): every partition's
    customers gathered on the client (``forecaster batch --dask`` does not: forecaster.dask_batch)."""
    got = shuffle(client, path, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                  order_col=order_col, currency=currency, date_format=date_format, decimal_comma=decimal_comma,
                  months=months)
    out = _reduce_exact(got.frame, got.month_range, currency, flagged_breaks(got.frame))
    return reduced_dataset(got.source, got.roles, got.totals, out, got.month_range, months, currency)


def flagged_breaks(shuffled) -> tuple[int, int]:
    """How many rows break the (customer, day) and (customer, month) order, duplicates included."""
    found = shuffled[["day_break", "month_break"]].sum().compute()
    return int(found["day_break"]), int(found["month_break"])


def _reduce_exact(shuffled, months: tuple[int, int], currency: str, found: tuple[int, int]) -> Reduced:
    """Every partition reduced on its worker, told whether the kept rows come sorted by key
    (as ``ingest_reduce._reduce_exact``: breaks that are all duplicates leave them sorted)."""
    import dask

    def run(keys: tuple[bool, bool]) -> Reduced:
        out = Reduced()
        for part in dask.compute(*[dask.delayed(reduce_partition)(p, months, currency, keys)
                                   for p in shuffled.to_delayed()]):
            out.merge(part)
        return out

    guess = (found[0] == 0, found[1] == 0)
    out = run(guess)
    actual = (guess[0] or out.kept_breaks[0] == 0, guess[1] or out.kept_breaks[1] == 0)
    return out if actual == guess else run(actual)


def _empty(source: Source, roles: Roles) -> pd.DataFrame:
    """A frame of no rows with the source's column types (the shuffled frame's meta)."""
    if source.is_csv:
        return pd.DataFrame({c: pd.Series([], dtype=str) for c in roles.read})
    names = [source.raw_names[source.columns.index(c)] for c in roles.read]
    return source.dataset.schema.empty_table().select(names).to_pandas()
