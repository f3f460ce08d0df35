"""Pass 2 of the chunked reader (:mod:`forecaster.ingest`): each spill file -> its
customers' panel rows, purchase days and counts; then the whole data's checks and the
:class:`Ingested` result.

Every customer's rows are in one spill file in file order, so the in-memory functions
(``DataFrame.duplicated``, :func:`~narrator.panel.build_panel` over the whole data's
months, :func:`~models.rfm.purchase_days`, ``_return_counts``) give what they give on the
whole data for those customers, to the last bit of every floating-point sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forecaster.coverage import TimeSummary
from forecaster.dates import SHOP_TIMEZONE, OUTLIER_GAP_MONTHS, SHOWN_ROWS, check_span, outlying_bulk, refuse_beyond, refuse_outliers
from forecaster.errors import UserError
from forecaster.ingest import _WEIGHTS, Roles, ScanTotals, Spill, partitions, resolve_roles, scan
from forecaster.ingest_source import Source, open_source
from models.rfm import purchase_days
from narrator.panel import MonthlyPanel, build_panel, first_order_column

if TYPE_CHECKING:
    from forecaster.datasets import Dataset, _MonthOptions

_KEY = ("customer_id", "ts", "amount", "order_id", "date_code", "raw_hash")


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
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    days: list[pd.DataFrame] = field(default_factory=list)


@dataclass(frozen=True)
class Ingested:
    """What the chunked reader keeps instead of the rows: the full panel, the timestamps'
    summary for the coverage rule, and the kept rows per customer (all months, last month)."""

    full_panel: MonthlyPanel
    times: TimeSummary
    rows: np.ndarray  # per customer of full_panel
    last_month_rows: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.rows.sum())


def reduce_spill(spill: Spill, months: tuple[int, int] | None, currency: str) -> Reduced:
    """Every spill file's counts and, when ``months`` is given, its panel rows and purchase days."""
    out = Reduced()
    for p in range(spill.parts):
        frame = spill.read(p)
        if frame is not None:
            _reduce_part(frame, out, months, currency)
    return out


def _reduce_part(frame: pd.DataFrame, out: Reduced, months: tuple[int, int] | None, currency: str) -> None:
    dup = _duplicated(frame)
    in_range = frame["in_range"].to_numpy()
    out.duplicates += int(dup.sum())
    out.outside_range += int((~dup & ~in_range).sum())
    kept = frame.loc[~dup & in_range]
    month = kept["ts"].to_numpy().astype("datetime64[M]").astype(np.int64)
    rows = kept["row"].to_numpy()
    for m, count in zip(*np.unique(month, return_counts=True)):
        out.month_rows[int(m)] = out.month_rows.get(int(m), 0) + int(count)
        first = rows[month == m][:SHOWN_ROWS]  # rows are in file order within a spill file
        out.month_first[int(m)] = sorted(out.month_first.get(int(m), []) + first.tolist())[:SHOWN_ROWS]
    amount = kept["amount"].to_numpy()
    out.positive |= bool((amount > 0).any())
    if months is None or kept.empty:
        return
    tx = pd.DataFrame({"customer_id": kept["customer_id"], "ts": kept["ts"].to_numpy().astype("datetime64[ns]"),
                       "amount": amount})
    if "order_id" in kept.columns:
        tx["order_id"] = kept["order_id"].to_numpy()
    tx = tx.reset_index(drop=True)
    _returns(tx, rows, out)
    panel = build_panel(tx, currency, months)
    code, _ = pd.factorize(tx["customer_id"], sort=True)  # build_panel's customer order
    last = month == months[0] + months[1] - 1
    out.pieces.append((panel.customer_ids, panel.spend, panel.orders, np.bincount(code, minlength=len(panel.customer_ids)),
                       np.bincount(code[last], minlength=len(panel.customer_ids))))
    daily = purchase_days(tx)
    out.days.append(pd.DataFrame({"customer_id": daily["customer_id"],
                                  "ts": daily["day"].to_numpy().astype("datetime64[D]").astype("datetime64[ns]"),
                                  "amount": daily["amount"]}))


def _duplicated(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated`` over the key columns, exactly, but compared in full only among
    rows whose 64-bit digest of the key repeats (almost always none)."""
    key = [c for c in _KEY if c in frame.columns]
    digest = np.zeros(len(frame), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for weight, name in zip(_WEIGHTS, key):
            column = frame[name]
            if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_dtype(column):
                values = column.to_numpy().view(np.uint64) if column.dtype.itemsize == 8 else column.to_numpy()
            else:
                values = pd.factorize(column)[0]
            digest += values.astype(np.uint64) * weight
    candidate = pd.Series(digest).duplicated(keep=False).to_numpy()
    dup = np.zeros(len(frame), dtype=bool)
    if candidate.any():
        dup[candidate] = frame.loc[candidate].duplicated(subset=key).to_numpy()
    return dup


def _returns(tx: pd.DataFrame, rows: np.ndarray, out: Reduced) -> None:
    from forecaster.datasets import _return_counts  # datasets imports this module
    counts = _return_counts(tx)
    out.return_rows += counts["return_rows"]
    out.months_floored += counts["months_floored"]
    negative = tx["amount"].to_numpy() < 0
    if negative.any():
        out.negatives.append((rows[negative], tx["amount"].to_numpy()[negative]))


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
    """The full panel (customers sorted as build_panel sorts them) and the purchase-day log."""
    ids = np.concatenate([p[0] for p in out.pieces])
    order = pc.sort_indices(pa.array(ids, type=pa.string())).to_numpy()  # UTF-8 byte order = code point order
    spend = np.concatenate([p[1] for p in out.pieces])[order]
    orders = np.concatenate([p[2] for p in out.pieces])[order]
    panel = MonthlyPanel(ids[order], 1970 * 12 + months[0], spend, orders, first_order_column(orders), currency)
    rows = np.concatenate([p[3] for p in out.pieces])[order]
    last_rows = np.concatenate([p[4] for p in out.pieces])[order]
    times = TimeSummary(pd.Timestamp(totals.first_ts), pd.Timestamp(totals.last_ts), totals.date_only,
                        int(last_rows.sum()))
    days = pd.concat(out.days, ignore_index=True) if out.days else pd.DataFrame(columns=["customer_id", "ts", "amount"])
    return Ingested(panel, times, rows, last_rows), days


def load_chunked(path: Path, *, customer_col: str | None, date_col: str | None, amount_col: str | None,
                 order_col: str | None, currency: str, date_format: str | None, decimal_comma: bool,
                 months: "_MonthOptions", chunk_rows: int, spill_dir: Path | None = None) -> "Dataset":
    """A Parquet folder, Parquet file or CSV file read in chunks (module doc of
    :mod:`forecaster.ingest`) into the Dataset the in-memory reader would give."""
    from forecaster.datasets import Cleaning, Dataset, refuse_no_purchase
    source = open_source(path)
    roles = resolve_roles(source, customer_col, date_col, amount_col, order_col)
    spill = Spill(partitions(source.rows, chunk_rows), spill_dir)
    try:
        totals = scan(source, roles, spill, chunk_rows=chunk_rows, date_format=date_format,
                      decimal_comma=decimal_comma, date_range=months.date_range, data_end=months.data_end)
        spill.close()
        range_text = months.date_range.text if months.date_range else None
        month_range = check_dates(source, roles, totals, spill, range_text, months.data_end, currency)
        out = reduce_spill(spill, month_range, currency)
    finally:
        spill.close()
        spill.remove()
    if not out.positive:
        refuse_no_purchase(source.where, roles.amount)
    ingested, days = assemble(out, totals, month_range, currency)
    cleaning = Cleaning(
        rows_read=totals.rows_read, duplicate_rows_dropped=out.duplicates, null_customer_rows_dropped=totals.null_ids,
        timezone_rows_converted=totals.converted, timezone=SHOP_TIMEZONE if totals.converted else None,
        notes=totals.date_notes, date_range_rows_dropped=out.outside_range, date_range=range_text,
        return_rows=out.return_rows, return_total=return_total(out) if out.return_rows else 0.0,
        months_floored=out.months_floored)
    return Dataset(source.where.file, days, currency, cleaning, keep_partial_month=months.keep_partial_month,
                   data_end=months.data_end, read_notices=source.notices, ingested=ingested)
