"""A raw table (a user's CSV/Parquet file read whole, or a caller's DataFrame) to a
:class:`~forecaster.datasets.Dataset`, per the policies in :mod:`forecaster.datasets`'
docstring. The chunked reader (:mod:`forecaster.ingest`) gives the same Dataset for a file
too large to hold; its reducer sums returns as :func:`return_counts` does."""

from __future__ import annotations

import pandas as pd

from forecaster.amounts import parse_amounts
from forecaster.columns import customer_ids, order_ids, refuse_no_purchase, resolve_column
from forecaster.datasets import Cleaning, Dataset, _MonthOptions, _screen
from forecaster.dates import SHOP_TIMEZONE, parse_dates
from forecaster.tables import RawTable


def from_raw_table(
    read: RawTable,
    *,
    customer_col: str | None,
    date_col: str | None,
    amount_col: str | None,
    order_col: str | None,
    currency: str,
    date_format: str | None,
    decimal_comma: bool,
    months: _MonthOptions,
) -> Dataset:
    """The Dataset of a raw table (from a file or a caller's frame), per the module policies;
    ``currency`` is already checked."""
    raw, where = read.table, read.where
    customer = resolve_column(raw, where, "customer", customer_col, required=True)
    date = resolve_column(raw, where, "date", date_col, required=True)
    amount = resolve_column(raw, where, "amount", amount_col, required=True)
    order = resolve_column(raw, where, "order", order_col, required=False)

    rows_read = len(raw)
    duplicated = raw.duplicated().to_numpy()
    ids = customer_ids(raw[customer], where, customer)
    keep = ids.notna().to_numpy() & ~duplicated
    null_ids = int(ids.isna().sum())
    table = raw.loc[keep]
    dates = parse_dates(table[date], where, date, date_format)
    transactions = pd.DataFrame({
        "customer_id": ids[keep],
        "ts": dates.ts,
        "amount": parse_amounts(table[amount], where, amount, decimal_comma),
    })
    if order is not None:
        transactions["order_id"] = table[order]
    transactions, clipped = _screen(transactions, table[date], where, date, months)
    if not (transactions["amount"] > 0).any():
        refuse_no_purchase(where, amount)
    if order is not None:
        transactions["order_id"] = order_ids(transactions["order_id"], transactions["ts"])
    transactions = transactions.reset_index(drop=True)
    cleaning = Cleaning(
        rows_read=rows_read,
        duplicate_rows_dropped=int((duplicated & ids.notna().to_numpy()).sum()),
        null_customer_rows_dropped=null_ids,
        timezone_rows_converted=dates.converted,
        timezone=SHOP_TIMEZONE if dates.converted else None,
        notes=dates.notes,
        **clipped,
        **return_counts(transactions),
    )
    return Dataset(where.file, transactions, currency, cleaning, keep_partial_month=months.keep_partial_month,
                   data_end=months.data_end, read_notices=read.notices)


def return_counts(transactions: pd.DataFrame) -> dict[str, float | int]:
    """Return rows, their total, and customer-months whose net spend went below 0."""
    amount = transactions["amount"].to_numpy()
    negative = amount < 0
    if not negative.any():
        return {"return_rows": 0, "return_total": 0.0, "months_floored": 0}
    month = transactions["ts"].to_numpy().astype("datetime64[M]")
    net = pd.Series(amount).groupby([transactions["customer_id"].to_numpy(), month]).sum()
    return {
        "return_rows": int(negative.sum()),
        "return_total": float(amount[negative].sum()),
        "months_floored": int((net < 0).sum()),
    }
