"""Transactions too large for memory -> the monthly panel and the purchase days, in chunks.

The in-memory reader (:func:`forecaster.datasets.load_user_file`) holds every row several
times over. This one reads a Parquet folder, a Parquet file or a CSV file ``chunk_rows`` rows
at a time, only the role columns, and gives the same :class:`~forecaster.datasets.Dataset`:
the same panel, purchase days, cleaning counts, notices and refusals, bit for bit (the
tests compare them over chunk sizes that split customers, months and days).

How, in two passes:

1. **Scan** (this module). Each chunk is cleaned by the in-memory reader's own functions
   (:func:`~forecaster.columns.customer_ids`, :func:`~forecaster.amounts.parse_amounts`,
   :func:`~forecaster.columns.order_ids`; text dates through
   :func:`~forecaster.dates.parse_dates` on the column's distinct values, found by a first
   read of the id and date columns, which is what ``parse_dates`` itself does, so a column
   mixing day/month orders is refused naming the same rows). The cleaned rows are appended,
   in file order, to one of ``P`` spill files on disk chosen by a hash of the customer id.
2. **Reduce** (:mod:`forecaster.ingest_reduce`). One spill file at a time: every row of a
   customer is in it, in file order, so the in-memory code (duplicate rows, ``build_panel``,
   ``purchase_days``, the return counts) gives exactly what it gives on the whole data for
   those customers, floating-point sums included. Rules over the whole data (stray dates,
   the span, the partial last month) read per-month counts and the first rows per month.

Memory: one chunk, one spill file (``P`` grows with the rows: about
``PARTITION_CHUNKS`` chunks each), the panel and the purchase days. ``Dataset.transactions``
is then the purchase-day log (one row per customer and purchase day, its non-negative
amounts summed): every later step reads transactions only through
:func:`models.rfm.purchase_days` or "did the customer buy", which that log answers
identically; the row counts the summaries show come from ``Dataset.ingested``.

A duplicate row is one identical in every column of the file: rows are compared on their
cleaned values plus, where cleaning could merge different cells (stripped ids, text
amounts, other columns), a 64-bit hash of the raw cells, so two different rows of one
customer count as duplicates only if that hash collides (about 1 in 1.8e19 per pair).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from forecaster.amounts import parse_amounts
from forecaster.columns import customer_ids, order_ids, resolve_column
from forecaster.dates import _KST_SUFFIX, _TZ_SUFFIX, DateRange, outside_years, parse_dates
from forecaster.errors import UserError
from forecaster.memory import DEFAULT_CHUNK_ROWS
from forecaster.ingest_arrays import _WEIGHTS, days_months, sorted_codes, text_hash
from forecaster.ingest_source import Source
from forecaster.ingest_spill import Layout, OrderCheck, OwnOrder, Spill
from forecaster.threads import ordered

PARTITION_CHUNKS = 1  # a spill file holds about this many chunks' rows (1M customers: 1.56 GB peak with 1, 2.03 GB with 4)
_US = "datetime64[us]"


@dataclass(frozen=True)
class Roles:
    customer: str
    date: str
    amount: str
    order: str | None
    extra: tuple[str, ...]  # the file's other columns: only their hash is kept (duplicates)

    @property
    def read(self) -> list[str]:
        return [c for c in (self.customer, self.date, self.amount, self.order) if c] + list(self.extra)


def resolve_roles(source: Source, customer: str | None, date: str | None, amount: str | None,
                  order: str | None) -> Roles:
    """The role columns as the in-memory reader resolves them (same aliases, same errors)."""
    empty = pd.DataFrame(columns=source.columns)
    found = [resolve_column(empty, source.where, role, given, required=role != "order")
             for role, given in (("customer", customer), ("date", date), ("amount", amount), ("order", order))]
    return Roles(*found, tuple(c for c in source.columns if c not in found))


@dataclass
class ScanTotals:
    """What the scan learns about the whole data (rows are file positions)."""

    rows_read: int = 0
    null_ids: int = 0
    converted: int = 0
    in_range: int = 0
    first_ts: np.datetime64 | None = None  # of the rows inside --date-range
    last_ts: np.datetime64 | None = None
    date_only: bool = True
    after_data_end: int | None = None  # first row after --data-end
    beyond_years: int | None = None  # first row outside 1678-2261
    date_notes: tuple[str, ...] = ()
    months: set[int] = field(default_factory=set)  # months (since 1970-01) with a row inside --date-range
    day_order: OrderCheck = field(default_factory=OrderCheck)  # purchases by (customer, day)
    month_order: OrderCheck = field(default_factory=OrderCheck)  # rows by (customer, month)

    def add_dates(self, other: "ScanTotals") -> None:
        """The date totals of other rows (:func:`_note_dates`), e.g. a chunk's or a partition's."""
        self.in_range += other.in_range
        if other.first_ts is not None:
            self.first_ts = other.first_ts if self.first_ts is None else min(self.first_ts, other.first_ts)
            self.last_ts = other.last_ts if self.last_ts is None else max(self.last_ts, other.last_ts)
            self.date_only &= other.date_only
        self.months |= other.months
        for name in ("after_data_end", "beyond_years"):  # the first such row of the file
            value = getattr(other, name)
            if value is not None and (getattr(self, name) is None or value < getattr(self, name)):
                setattr(self, name, value)


class DateReader:
    """The date column of each chunk as parse_dates reads the whole column."""

    def __init__(self, source: Source, roles: Roles, date_format: str | None, chunk_rows: int):
        self.source, self.name, self.format = source, roles.date, date_format
        self.lookup: pd.Index | None = None
        if source.is_csv or not pa.types.is_timestamp(source.column_type(roles.date)):
            self._distinct(roles, chunk_rows)

    def _distinct(self, roles: Roles, chunk_rows: int) -> None:
        """Every distinct date text with the first row using it (rows with an id only), parsed
        at once: the same values, rows and decision parse_dates sees on the whole column."""
        pieces, firsts = [], []
        for frame in self.source.batches([roles.customer, roles.date], chunk_rows):
            has_id = _ids(frame[roles.customer], self.source, roles.customer).notna().to_numpy()
            column = frame[roles.date][has_id]
            codes, values = pd.factorize(column, use_na_sentinel=False)
            _, first = np.unique(codes, return_index=True)
            pieces.append(pd.Series(values))
            firsts.append(column.index.to_numpy()[first])
        values = pd.concat(pieces, ignore_index=True)
        rows = np.concatenate(firsts) if firsts else np.array([], dtype=np.int64)
        keep = ~pd.Index(values).duplicated()
        distinct = pd.Series(values[keep].to_numpy(), index=rows[keep])
        parsed = parse_dates(distinct, self.source.where, self.name, self.format)
        self.lookup = pd.Index(distinct.to_numpy())
        self.lookup.get_indexer(self.lookup[:1])  # fills its hash table here: filled lazily, it is not thread-safe
        self.parsed = parsed.ts.to_numpy(_US)
        self.aware = _aware(distinct, self.format)
        self.notes = parsed.notes

    def read(self, column: pd.Series) -> tuple[pd.Series, int, np.ndarray | None]:
        """(timestamps as datetime64[us] on the column's index, rows converted from another
        zone, the distinct-value code of each row (None for a datetime column))."""
        if self.lookup is None:
            parsed = parse_dates(column, self.source.where, self.name, self.format)
            return parsed.ts, parsed.converted, None
        code = self.lookup.get_indexer(column)
        return pd.Series(self.parsed[code], index=column.index), int(self.aware[code].sum()), code


def _aware(values: pd.Series, date_format: str | None) -> np.ndarray:
    """Which distinct values carry a zone, by the test parse_dates applies."""
    if date_format is not None:
        return np.full(len(values), "%z" in date_format or "%Z" in date_format)
    text = values.astype("string").str.strip().str.replace(_KST_SUFFIX, "", regex=True)
    return text.str.contains(_TZ_SUFFIX).fillna(False).to_numpy(dtype=bool)


def _ids(column: pd.Series, source: Source, name: str) -> pd.Series:
    """customer_ids of one chunk; a chunk of empty ids is no error (another chunk may have
    ids): the whole-data check is made after the scan."""
    if column.isna().all() or (column.astype("string").str.strip() == "").all():
        return pd.Series(pd.NA, index=column.index, dtype=object)
    return customer_ids(column, source.where, name)


def check_chunk_rows(chunk_rows: int) -> int:
    if chunk_rows < 1:
        raise UserError(f"--chunk-rows {chunk_rows}: give a whole number of rows per chunk of at least 1 "
                        f"(e.g. {DEFAULT_CHUNK_ROWS:,})")
    return chunk_rows


def partitions(rows: int, chunk_rows: int) -> int:
    return max(1, math.ceil(rows / (PARTITION_CHUNKS * chunk_rows)))


def scan(source: Source, roles: Roles, spill: Spill, *, chunk_rows: int, date_format: str | None,
         decimal_comma: bool, date_range: DateRange | None, data_end: pd.Timestamp | None) -> ScanTotals:
    """Pass 1: clean every chunk and spill its rows; the whole data's totals. Chunks are
    cleaned on :data:`~forecaster.threads.THREADS` threads (:func:`clean_chunk`); the
    running totals, the order checks and the spill take them in file order."""
    totals = ScanTotals()
    dates = DateReader(source, roles, date_format, chunk_rows)
    totals.date_notes = getattr(dates, "notes", ())

    def clean(frame: pd.DataFrame) -> "Chunk":
        return clean_chunk(frame, source, roles, dates, decimal_comma, (date_range, data_end), spill)

    for chunk in ordered(clean, source.batches(roles.read, chunk_rows)):
        totals.rows_read += chunk.rows_read
        totals.null_ids += chunk.rows_read - len(chunk.rows)
        if not len(chunk.rows):
            continue
        totals.converted += chunk.converted
        totals.add_dates(chunk.dates)
        spill.write(chunk.layout, {"day_break": _breaks_among(totals.day_order, *chunk.day_order, chunk.distinct),
                                   "month_break": _breaks_among(totals.month_order, *chunk.month_order, chunk.distinct)})
    if totals.rows_read and totals.null_ids == totals.rows_read:
        customer_ids(pd.Series([""]), source.where, roles.customer)  # raises the in-memory reader's error
    return totals


@dataclass
class Chunk:
    """One chunk cleaned (:func:`clean_chunk`): its rows with an id laid out in spill-file
    order, and all that needs no other chunk; the order-break columns, which need the
    chunks before it, are added by :func:`scan`."""

    rows_read: int
    rows: np.ndarray  # file positions of the rows with an id
    converted: int = 0
    dates: ScanTotals = field(default_factory=ScanTotals)  # its rows' dates (:func:`_note_dates`)
    distinct: pa.Array | None = None  # the chunk's sorted distinct ids
    day_order: tuple[np.ndarray, OwnOrder] | None = None  # (rows checked, their order): purchases by day
    month_order: tuple[np.ndarray, OwnOrder] | None = None  # rows in range by month
    layout: Layout | None = None


def clean_chunk(frame: pd.DataFrame, source: Source, roles: Roles, dates: DateReader, decimal_comma: bool,
                limits: tuple[DateRange | None, pd.Timestamp | None], spill: Spill) -> Chunk:
    """A chunk cleaned by the in-memory reader's functions (module doc); reads no state
    another chunk writes, so chunks are cleaned at once on several threads. ``limits``:
    ``--date-range`` and ``--data-end``."""
    ids = _ids(frame[roles.customer], source, roles.customer)
    has_id = ids.notna().to_numpy()
    if not has_id.all():
        frame, ids = frame[has_id], ids[has_id]
    chunk = Chunk(len(has_id), frame.index.to_numpy(np.int64))
    if not len(frame):
        return chunk
    parsed, chunk.converted, date_code = dates.read(frame[roles.date])
    amount = parse_amounts(frame[roles.amount], source.where, roles.amount, decimal_comma)
    ts = parsed.to_numpy(_US)
    day, month = days_months(ts)
    in_range = _range_mask(ts, limits[0])
    _note_dates(chunk.dates, ts, month, in_range, chunk.rows, limits[1])
    amounts = amount.to_numpy(np.float64)
    rank, chunk.distinct = sorted_codes(_text(ids))
    buying = in_range & (amounts >= 0)
    chunk.day_order = buying, OrderCheck.own(rank[buying], chunk.distinct, day[buying])
    chunk.month_order = in_range, OrderCheck.own(rank[in_range], chunk.distinct, month[in_range])
    columns = {"customer": pa.array(rank), "ts": pa.array(ts), "amount": pa.array(amounts),
               "row": pa.array(chunk.rows), "in_range": pa.array(in_range)}
    if roles.order is not None:
        columns.update(_order_columns(frame[roles.order], ts))
    if date_code is not None:
        columns["date_code"] = pa.array(date_code.astype(np.int64))
    columns["raw_hash"] = pa.array(_raw_hash(frame, roles, ids, amount))
    # the ids' text is spilled once per chunk and file, each row's customer as a place among them
    chunk.layout = spill.layout(pa.table(columns), chunk.distinct,
                                text_hash(chunk.distinct) if spill.parts > 1 else None)
    return chunk


def _text(series: pd.Series) -> pa.Array:
    """A str Series as an Arrow string array (no copy for pandas' Arrow-backed str)."""
    array = pa.array(series.array)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _order_columns(column: pd.Series, ts: np.ndarray) -> dict[str, pa.Array]:
    """Integer order ids as they are (equal exactly when their text is) with a flag for the
    missing ones; other order ids cleaned by order_ids, as text."""
    if pd.api.types.is_integer_dtype(column) and not isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        return {"order_key": pa.array(column.to_numpy(np.int64)), "order_null": pa.array(np.zeros(len(column), bool))}
    cleaned = order_ids(column, pd.Series(ts.astype("datetime64[ns]"), index=column.index))
    return {"order_id": _text(cleaned)}


def _breaks_among(check: OrderCheck, rows: np.ndarray, own: OwnOrder, distinct: pa.Array) -> np.ndarray:
    """Which of the chunk's rows break the whole data's (customer, day or month) order among
    ``rows`` (``own``: those rows checked against each other)."""
    out = np.zeros(len(rows), dtype=bool)
    out[rows] = check.after(own, distinct)
    return out


def _breaks(check: OrderCheck, rank: np.ndarray, distinct: pa.Array, unit: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """:func:`_breaks_among` of one partition after another (:mod:`forecaster.dask_panel`)."""
    return _breaks_among(check, rows, OrderCheck.own(rank[rows], distinct, unit[rows]), distinct)


def _raw_hash(frame: pd.DataFrame, roles: Roles, ids: pd.Series, amount: pd.Series) -> np.ndarray:
    """A hash of the raw cells that cleaning could merge (0 where it cannot): ids and order
    ids that stripping or filling changed, text amounts, every other column. With the
    cleaned values it tells rows identical in the file from rows only equal once cleaned."""
    changed = _changed(frame[roles.customer], ids)
    parts = [_hash_where(frame[roles.customer], changed) if changed.any() else np.zeros(len(frame), np.uint64)]
    if roles.order is not None and not pd.api.types.is_numeric_dtype(frame[roles.order]):
        stripped = frame[roles.order].astype("string").str.strip()
        parts.append(_hash_where(frame[roles.order], _changed(frame[roles.order], stripped.mask(stripped == ""))))
    if not pd.api.types.is_numeric_dtype(frame[roles.amount]):
        parts.append(_hash_where(frame[roles.amount], None))
    parts += [_hash_where(frame[name], None) for name in roles.extra]
    # a weighted sum, not a hash of the parts: a part that is 0 (nothing changed in this
    # chunk) must add nothing, whichever chunk a row and its copy fall in
    combined = np.zeros(len(frame), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for weight, part in zip(_WEIGHTS, parts):
            combined += part * weight
    return combined


def _changed(raw: pd.Series, cleaned: pd.Series) -> np.ndarray:
    return (raw.astype("string") != cleaned.astype("string")).fillna(True).to_numpy(dtype=bool)


def _hash_where(column: pd.Series, mask: np.ndarray | None) -> np.ndarray:
    hashed = pd.util.hash_pandas_object(column, index=False).to_numpy()
    return hashed if mask is None else np.where(mask, hashed, np.uint64(0))


def _range_mask(values: np.ndarray, date_range: DateRange | None) -> np.ndarray:
    keep = np.ones(len(values), dtype=bool)
    if date_range is not None and date_range.start is not None:
        keep &= values >= np.datetime64(date_range.start.to_datetime64(), "us")
    if date_range is not None and date_range.stop is not None:
        keep &= values < np.datetime64(date_range.stop.to_datetime64(), "us")
    return keep


def _note_dates(totals: ScanTotals, values: np.ndarray, month: np.ndarray, keep: np.ndarray, rows: np.ndarray,
                data_end: pd.Timestamp | None) -> None:
    """The range, day-only flag and first offending rows of the rows kept so far."""
    if not keep.any():
        return
    kept = values[keep]
    totals.in_range += len(kept)
    lo, hi = kept.min(), kept.max()
    totals.first_ts = lo if totals.first_ts is None else min(totals.first_ts, lo)
    totals.last_ts = hi if totals.last_ts is None else max(totals.last_ts, hi)
    totals.date_only &= not (kept.view(np.int64) % 86_400_000_000).any()
    kept_months = month[keep]
    low = int(kept_months.min())
    totals.months.update((np.flatnonzero(np.bincount(kept_months - low)) + low).tolist())
    if data_end is not None and totals.after_data_end is None:
        after = keep & (values >= np.datetime64((data_end + pd.Timedelta(days=1)).to_datetime64(), "us"))
        totals.after_data_end = int(rows[np.argmax(after)]) if after.any() else None
    beyond = keep & outside_years(values)
    if beyond.any() and totals.beyond_years is None:
        totals.beyond_years = int(rows[np.argmax(beyond)])
