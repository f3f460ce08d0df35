"""Pass 2 of the chunked reader (:mod:`forecaster.ingest`): each spill file -> its
customers' panel rows, purchase days and counts; then the whole data's checks and the
:class:`Ingested` result.

Every customer's rows are in one spill file in file order, so the in-memory functions
(``DataFrame.duplicated``, :func:`~narrator.panel.build_panel` over the whole data's
months, :func:`~models.rfm.purchase_days`, ``return_counts``) give what they give on the
whole data for those customers, to the last bit of every floating-point sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forecaster.coverage import Coverage, TimeSummary
from forecaster.dates import SHOP_TIMEZONE, OUTLIER_GAP_MONTHS, SHOWN_ROWS, check_span, outlying_bulk, refuse_beyond, refuse_outliers
from forecaster.errors import UserError
from forecaster.ingest import Roles, ScanTotals
from forecaster.ingest_arrays import days_months, dense_codes, duplicated_rows, group_sum, sorted_codes, stable_order
from forecaster.ingest_spill import Spill
from forecaster.threads import ordered
from forecaster.ingest_source import Source
from narrator.panel import MonthlyPanel, first_order_column, panel_cells

if TYPE_CHECKING:
    from forecaster.datasets import Dataset, _MonthOptions


@dataclass
class Reduced:
    """Sums over the spill files (rows are file positions)."""

    duplicates: int = 0
    outside_range: int = 0
    month_rows: dict[int, int] = field(default_factory=dict)  # month since 1970-01 -> kept rows
    month_first: dict[int, list[int]] = field(default_factory=dict)  # ... -> its first rows
    positive: bool = False
    return_rows: int = 0
    months_floored: int = 0
    negatives: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (rows, amounts)
    # per spill file: (sorted ids, its panel's cells other than (+0.0, 0) as flat positions,
    # their spend and orders, rows, last-month rows) and its purchase-day log
    pieces: list[tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = \
        field(default_factory=list)
    days: list[pa.Table] = field(default_factory=list)
    kept_breaks: list[int] = field(default_factory=lambda: [0, 0])  # order breaks that are not duplicates

    def merge(self, other: "Reduced") -> None:
        """Add another spill file's sums (files merged in order)."""
        self.duplicates += other.duplicates
        self.outside_range += other.outside_range
        for m, count in other.month_rows.items():
            self.month_rows[m] = self.month_rows.get(m, 0) + count
            self.month_first[m] = sorted(self.month_first.get(m, []) + other.month_first[m])[:SHOWN_ROWS]
        self.positive |= other.positive
        self.return_rows += other.return_rows
        self.months_floored += other.months_floored
        self.negatives += other.negatives
        self.pieces += other.pieces
        self.days += other.days
        self.kept_breaks = [a + b for a, b in zip(self.kept_breaks, other.kept_breaks)]


@dataclass(frozen=True)
class Ingested:
    """What the chunked reader keeps instead of the rows: the full panel, the timestamps'
    summary for the coverage rule, the kept rows per customer (all months, last month) and
    the panel row of each purchase day (for :meth:`models.timing.PurchaseDays.from_coded_log`)."""

    full_panel: MonthlyPanel
    times: TimeSummary
    rows: np.ndarray  # per customer of full_panel
    last_month_rows: np.ndarray
    day_rows: np.ndarray  # int32: the panel row of each row of the purchase-day log, in its order

    @property
    def n_rows(self) -> int:
        return int(self.rows.sum())


def reduce_spill(spill: Spill, months: tuple[int, int] | None, currency: str,
                 sorted_keys: tuple[bool, bool] = (False, False)) -> Reduced:
    """Every spill file's counts and, when ``months`` is given, its panel rows and purchase
    days; ``sorted_keys``: whether the kept rows of the whole data come sorted by (customer,
    day) among purchases and by (customer, month) (see :func:`group_sum`). Files are reduced
    on :data:`~forecaster.threads.THREADS` threads, merged in order."""
    def one(p: int) -> Reduced:
        return reduce_file(spill, p, months, currency, sorted_keys)

    out = Reduced()
    for part in ordered(one, range(spill.parts)):
        out.merge(part)
    return out


def reduce_file(spill: Spill, p: int, months: tuple[int, int] | None, currency: str,
                sorted_keys: tuple[bool, bool]) -> Reduced:
    """Spill file ``p``'s counts, panel rows and purchase days (:func:`reduce_spill`)."""
    part = Reduced()
    files = spill.read(p)
    if files is not None:
        _reduce_part(Part.of(*files), part, months, currency, sorted_keys)
    return part


@dataclass
class Part:
    """One spill file's rows as arrays (customers as ranks of their sorted ids)."""

    codes: np.ndarray
    ids: pa.Array  # sorted distinct ids
    ts: np.ndarray  # datetime64[us]
    amount: np.ndarray
    row: np.ndarray
    in_range: np.ndarray
    order: np.ndarray | None  # int64 codes, equal exactly for rows of one order
    key: list[np.ndarray]  # what makes two rows identical in the file
    breaks: tuple[np.ndarray, np.ndarray]  # (day, month) order breaks found by the scan

    @classmethod
    def of(cls, table: pa.Table, names: pa.ChunkedArray | None = None) -> "Part":
        """A spill file's rows: customers given as ``customer_id`` text, or as positions
        ``customer`` in the list ``names`` (coded once per entry, not per row)."""
        def col(name: str) -> np.ndarray:
            return table.column(name).to_numpy()
        if names is None:
            codes, ids = sorted_codes(table.column("customer_id"))
        else:
            entry, ids = sorted_codes(names)
            codes = entry[col("customer")]
        ts = col("ts")
        order = None
        if "order_key" in table.column_names:
            order = _integer_orders(col("order_key"), col("order_null"), ts)
        elif "order_id" in table.column_names:
            order = pc.dictionary_encode(table.column("order_id")).combine_chunks().indices.to_numpy().astype(np.int64)
        key = [codes, ts, col("amount")] + ([order] if order is not None else []) + \
            [col(c) for c in ("date_code", "raw_hash") if c in table.column_names]
        return cls(codes, ids, ts, col("amount"), col("row"), col("in_range"), order, key,
                   (col("day_break"), col("month_break")))


def _integer_orders(value: np.ndarray, null: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Dense codes of integer order ids, a missing one keyed by its day (as order_ids does)."""
    order = np.empty(len(value), dtype=np.int64)
    order[~null] = dense_codes(value[~null])
    if null.any():
        order[null] = dense_codes(days_months(ts[null])[0]) + int((~null).sum())
    return order


def _reduce_part(part: Part, out: Reduced, months: tuple[int, int] | None, currency: str,
                 sorted_keys: tuple[bool, bool]) -> None:
    dup = duplicated_rows(part.key)
    out.duplicates += int(dup.sum())
    out.outside_range += int((~dup & ~part.in_range).sum())
    kept = ~dup & part.in_range
    out.kept_breaks = [n + int((kept & b).sum()) for n, b in zip(out.kept_breaks, part.breaks)]
    ts, amount, rows, codes = part.ts[kept], part.amount[kept], part.row[kept], part.codes[kept]
    day, month = days_months(ts)
    _month_counts(month, rows, out)
    out.positive |= bool((amount > 0).any())
    if months is None or not len(ts):
        return
    present = np.zeros(len(part.ids), dtype=bool)
    present[codes] = True
    rank = np.cumsum(present) - 1  # customers without a kept row are not in the panel
    codes, ids = rank[codes], part.ids.filter(pa.array(present))
    order = part.order[kept] if part.order is not None else day
    _, spend, orders = panel_cells(codes, len(ids), month, amount, order, months)
    last = month == months[0] + months[1] - 1
    cells = np.flatnonzero((spend.view(np.uint64) != 0) | (orders != 0))  # the panel's other cells: +0.0, 0
    out.pieces.append((ids, cells, spend.ravel()[cells], orders.ravel()[cells], np.bincount(codes, minlength=len(ids)),
                       np.bincount(codes[last], minlength=len(ids))))
    _returns(codes, month, amount, rows, out, sorted_keys[1])
    buying = amount >= 0
    span = int(day.max()) - int(day.min()) + 1
    groups, sums = group_sum(codes[buying] * span + (day[buying] - day.min()), amount[buying], sorted_keys[0])
    local, days = groups // span, (groups % span) + day.min()
    out.days.append(pa.table({"customer_id": ids.take(pa.array(local)),
                              "ts": pa.array(days * 86_400_000_000_000, pa.timestamp("ns")),
                              "amount": sums, "code": local.astype(np.int32)}))


def _month_counts(month: np.ndarray, rows: np.ndarray, out: Reduced) -> None:
    """Kept rows per month and each month's first rows (rows are in file order in a part)."""
    if not len(month):
        return
    order = stable_order(month - month.min())
    starts = np.flatnonzero(np.r_[True, np.diff(month[order]) != 0])
    counts = np.diff(np.r_[starts, len(order)])
    for start, count in zip(starts.tolist(), counts.tolist()):
        m = int(month[order[start]])
        out.month_rows[m] = out.month_rows.get(m, 0) + count
        first = rows[order[start:start + min(count, SHOWN_ROWS)]]
        out.month_first[m] = sorted(out.month_first.get(m, []) + first.tolist())[:SHOWN_ROWS]


def _returns(codes: np.ndarray, month: np.ndarray, amount: np.ndarray, rows: np.ndarray, out: Reduced,
             whole_sorted: bool) -> None:
    """The return rows, their amounts and the customer-months whose net spend is below 0,
    summed as :func:`forecaster.raw_tables.return_counts` sums them."""
    negative = amount < 0
    if not negative.any():
        return
    out.return_rows += int(negative.sum())
    out.negatives.append((rows[negative], amount[negative]))
    span = int(month.max()) - int(month.min()) + 1
    _, net = group_sum(codes * span + (month - month.min()), amount, whole_sorted)
    out.months_floored += int((net < 0).sum())


def return_total(out: Reduced) -> float:
    """The negative amounts summed in file order, as the in-memory reader sums them."""
    if not out.negatives:
        return 0.0
    rows = np.concatenate([r for r, _ in out.negatives])
    amounts = np.concatenate([a for _, a in out.negatives])
    return float(amounts[np.argsort(rows, kind="stable")].sum())


def check_dates(source: Source, roles: Roles, totals: ScanTotals, spill: Spill, date_range_text: str | None,
                data_end: pd.Timestamp | None, currency: str) -> tuple[int, int]:
    """The whole data's date rules in the in-memory reader's order; the panel's months
    (first as months since 1970-01, count)."""
    where, name = source.where, roles.date
    if totals.in_range == 0:
        raise UserError(f"{where.file}: no row falls in --date-range {date_range_text}")
    if totals.after_data_end is not None:
        row = totals.after_data_end
        raise UserError(f"{where.file}: column '{name}', {where.row(row)}: '{source.cells(name, [row])[0]}' is "
                        f"after --data-end {data_end:%Y-%m-%d}; correct --data-end or leave those rows out with --date-range")
    occupied = np.array(sorted(totals.months), dtype=np.int64)
    if len(occupied) > 1 and (np.diff(occupied) > OUTLIER_GAP_MONTHS).any():
        # a gap: whether the far group is small enough is decided on rows without duplicates
        counts = reduce_spill(spill, None, currency)
        occupied = np.array(sorted(counts.month_rows), dtype=np.int64)
        bulk = outlying_bulk(occupied, np.array([counts.month_rows[m] for m in occupied]))
        if bulk is not None:
            far = [m for m in occupied if m not in set(bulk.tolist())]
            outside = sum(counts.month_rows[m] for m in far)
            shown = sorted(r for m in far for r in counts.month_first[m])[:SHOWN_ROWS]
            refuse_outliers(where, name, list(zip(shown, source.cells(name, shown))), outside, bulk)
    first, last = (np.datetime64(int(m), "M") for m in (occupied[0], occupied[-1]))
    check_span(first, last, where, name)
    if totals.beyond_years is not None:
        refuse_beyond(where, name, totals.beyond_years, source.cells(name, [totals.beyond_years])[0])
    return int(occupied[0]), int(occupied[-1] - occupied[0]) + 1


def assemble(out: Reduced, totals: ScanTotals, months: tuple[int, int], currency: str) -> tuple[Ingested, pd.DataFrame]:
    """The full panel (customers sorted as build_panel sorts them) and the purchase-day log
    (its ids the panel's own string objects: one Python string per customer)."""
    return assemble_ingested(out, totals, months, currency), _day_log(out)


def assemble_ingested(out: Reduced, totals: ScanTotals, months: tuple[int, int], currency: str) -> Ingested:
    """:func:`assemble`'s panel and counts; ``out``'s purchase days are left to :func:`_day_log`."""
    ids = pa.concat_arrays([p[0] for p in out.pieces]) if out.pieces else pa.array([], pa.large_string())
    order = pc.sort_indices(ids).to_numpy()  # UTF-8 byte order = code point order
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    ids = ids.take(pa.array(order))
    starts = np.cumsum([0] + [len(p[0]) for p in out.pieces])[:-1]  # each file's first customer
    spend, orders, rows, last_rows = _scatter(out.pieces, position, months[1])
    panel = MonthlyPanel(ids.to_numpy(zero_copy_only=False), 1970 * 12 + months[0], spend, orders,
                         first_order_column(orders), currency)
    times = TimeSummary(pd.Timestamp(totals.first_ts), pd.Timestamp(totals.last_ts), totals.date_only,
                        int(last_rows.sum()))
    day_rows = _day_rows(out.days, position, starts)
    return Ingested(panel, times, rows, last_rows, day_rows)


def _scatter(pieces: list, position: np.ndarray, n_months: int) -> tuple[np.ndarray, ...]:
    """The spill files' panel cells put at their customers' rows of a zeroed panel, one
    file at a time (its memory freed once placed)."""
    n = len(position)
    spend, orders = np.zeros((n, n_months)), np.zeros((n, n_months), dtype=np.int32)
    rows, last_rows = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    offset = 0
    while pieces:
        ids, cells, cell_spend, cell_orders, part_rows, part_last = pieces.pop(0)
        place = position[offset:offset + len(ids)]
        flat = place[cells // n_months] * n_months + cells % n_months
        spend.ravel()[flat] = cell_spend
        orders.ravel()[flat] = cell_orders
        rows[place], last_rows[place] = part_rows, part_last
        offset += len(ids)
    return spend, orders, rows, last_rows


def _day_rows(tables: list[pa.Table], position: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The panel row of each row of the purchase-day log (the files' day tables in order): a
    file's ``code`` is its customer's place in the file's ids, ``position`` maps the files'
    ids in order to the panel's rows. 4 bytes a purchase day, from which the batch makes its
    purchase days without hashing or comparing a customer id (``PurchaseDays.by_block`` on
    the day log took 32 s for 1M customers on the loaded shared machine)."""
    if not tables:
        return np.zeros(0, np.int32)
    return np.concatenate([position[start + t.column("code").to_numpy()] for t, start in zip(tables, starts)]
                          ).astype(np.int32)


def _day_log(out: Reduced) -> pd.DataFrame:
    """The purchase-day log (customer_id, ts: the day, amount: its purchases summed), each
    spill file's table converted and freed in turn."""
    if not out.days:
        return pd.DataFrame({"customer_id": pd.Series([], dtype=str), "ts": pd.Series([], dtype="datetime64[ns]"),
                             "amount": pd.Series([], dtype=np.float64)})
    table = pa.concat_tables(out.days).select(["customer_id", "ts", "amount"])
    out.days.clear()
    return table.to_pandas(split_blocks=True, self_destruct=True)


def sorted_guess(totals: ScanTotals) -> tuple[bool, bool]:
    """Whether the kept rows come sorted by (customer, day) and (customer, month), as the
    scan saw the rows: a reduction told so checks it (:func:`_reduce_exact`)."""
    return totals.day_order.found == 0, totals.month_order.found == 0


def sorted_actual(guess: tuple[bool, bool], kept_breaks: list[int]) -> tuple[bool, bool]:
    """The kept rows' order once reduced (``kept_breaks``: :attr:`Reduced.kept_breaks` of
    every file): rows out of order that all turn out to be duplicates leave them sorted."""
    return guess[0] or kept_breaks[0] == 0, guess[1] or kept_breaks[1] == 0


def _reduce_exact(spill: Spill, months: tuple[int, int], currency: str, totals: ScanTotals) -> Reduced:
    """reduce_spill told whether the kept rows come sorted by key, reduced again in the rare
    case the guess was wrong (:func:`sorted_actual`)."""
    guess = sorted_guess(totals)
    out = reduce_spill(spill, months, currency, guess)
    actual = sorted_actual(guess, out.kept_breaks)
    return out if actual == guess else reduce_spill(spill, months, currency, actual)


def reduced_dataset(source: Source, roles: Roles, totals: ScanTotals, out: Reduced, month_range: tuple[int, int],
                    months: "_MonthOptions", currency: str, judged: Coverage | None = None) -> "Dataset":
    """The Dataset of a reduced scan: panel, purchase-day log and cleaning counts (any engine
    that fills a ScanTotals and a Reduced); ``judged``: see :meth:`ChunkedScan.dataset`
    (a spill file without a purchase is then no error: the whole data's check is the caller's)."""
    from forecaster.columns import refuse_no_purchase
    from forecaster.datasets import Cleaning, Dataset
    if not out.positive and judged is None:
        refuse_no_purchase(source.where, roles.amount)
    ingested, days = assemble(out, totals, month_range, currency)
    cleaning = Cleaning(
        rows_read=totals.rows_read, duplicate_rows_dropped=out.duplicates, null_customer_rows_dropped=totals.null_ids,
        timezone_rows_converted=totals.converted, timezone=SHOP_TIMEZONE if totals.converted else None,
        notes=totals.date_notes, date_range_rows_dropped=out.outside_range,
        date_range=months.date_range.text if months.date_range else None,
        return_rows=out.return_rows, return_total=return_total(out) if out.return_rows else 0.0,
        months_floored=out.months_floored)
    return Dataset(source.where.file, days, currency, cleaning, keep_partial_month=months.keep_partial_month,
                   data_end=months.data_end, read_notices=source.notices, ingested=ingested, judged=judged)
