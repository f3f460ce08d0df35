"""The columns of a user's table: a caller's frame taken in as a raw table, which column
plays which role, and the id columns cleaned.

A role (customer, date, amount, order) is the column the user mapped (``--customer-col``
...), else the default name (``customer_id`` / ``ts`` / ``amount`` / ``order_id``), else the
one column whose name matches a common alias (``CustomerID``, ``InvoiceDate``, ``주문금액``
...; case, spaces, underscores, dashes and dots ignored). The policies themselves are
listed in :mod:`forecaster.datasets`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from forecaster.errors import UserError
from forecaster.tables import SEPARATORS, RawTable, Where, refuse_repeated_columns

# role -> (flag, default column, aliases compared after normalise_name)
COLUMN_ROLES = {
    "customer": ("--customer-col", "customer_id", {
        "customerid", "customer", "custid", "customerno", "customernumber", "userid",
        "memberid", "clientid", "고객id", "고객번호", "회원번호", "회원id"}),
    "date": ("--date-col", "ts", {
        "ts", "date", "datetime", "timestamp", "time", "orderdate", "invoicedate",
        "purchasedate", "transactiondate", "createdat", "주문일", "주문일시", "주문일자",
        "거래일", "거래일시", "결제일", "결제일시", "날짜", "일자"}),
    "amount": ("--amount-col", "amount", {
        "amount", "sales", "revenue", "spend", "total", "totalamount", "value",
        "dollarvalue", "금액", "결제금액", "주문금액", "매출", "매출액"}),
    "order": ("--order-col", "order_id", {
        "orderid", "orderno", "ordernumber", "invoice", "invoiceno", "invoiceid",
        "basketid", "transactionid", "주문번호", "주문id"}),
}


def frame_table(table: object, name: str) -> RawTable:
    """A caller's table as the raw table a Parquet file of the same cells gives.

    :param table: a pandas DataFrame, or anything whose ``to_pandas()`` gives one (a pyarrow
        Table); never modified: the raw table is a new frame.
    :param name: names the table in messages, as a file's name does.
    :returns: the raw table: column names stripped strings, rows numbered from 0.
    :raises UserError: not a table (a list, a dict...), a repeated column name, or no rows.

    Example: ``frame_table(pd.DataFrame({" amount ": [1]}), "shop").table.columns`` ->
    ``["amount"]``.
    """
    convert = getattr(table, "to_pandas", None)
    frame = convert() if callable(convert) else table  # pyarrow stays an optional import
    if not isinstance(frame, pd.DataFrame):
        raise UserError(f"{name}: a {type(table).__name__} is not a table of transactions; pass a pandas "
                        f"DataFrame or a pyarrow Table (e.g. pandas.DataFrame(rows)), or a file's path to "
                        f"load_dataset")
    labels = [str(c).strip() for c in frame.columns]
    refuse_repeated_columns(name, labels)
    if frame.empty:
        raise UserError(f"{name}: no data rows; give a table with one row per transaction")
    return RawTable(frame.set_axis(labels, axis=1).reset_index(drop=True), Where(name, is_csv=False))


def normalise_name(name: object) -> str:
    """A column name as the aliases are written: lower case, no spaces, ``_``, ``-`` or ``.``.

    Example: ``normalise_name("Customer_ID")`` -> ``"customerid"``.
    """
    return re.sub(r"[\s_\-.]", "", str(name)).lower()


def resolve_column(table: pd.DataFrame, where: Where, role: str, given: str | None,
                   *, required: bool) -> str | None:
    """The name of the column of ``table`` that plays ``role`` (a key of :data:`COLUMN_ROLES`).

    :param table: the raw table; its column names are strings.
    :param where: names the table in messages.
    :param role: ``"customer"``, ``"date"``, ``"amount"`` or ``"order"``.
    :param given: the user's mapping (``--customer-col`` ...), matched exactly, else ignoring case.
    :param required: whether a table without the role is an error (else None is returned).
    :returns: the column name, or None when the role is optional and no column fits.
    :raises UserError: no such column, several alias matches, or a required role missing.

    Example: ``resolve_column(pd.DataFrame(columns=["고객번호"]), Where("x.csv", True),
    "customer", None, required=True)`` -> ``"고객번호"``.
    """
    flag, default, aliases = COLUMN_ROLES[role]
    columns = list(table.columns)
    available = ", ".join(columns)
    if given is not None:
        matches = [c for c in columns if c == given] or [c for c in columns if c.lower() == given.lower()]
        if len(matches) == 1:
            return matches[0]
        raise UserError(f"{where.file}: no column '{given}' ({flag}); available columns: {available}")
    if default in columns:
        return default
    candidates = [c for c in columns if normalise_name(c) in aliases | {normalise_name(default)}]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise UserError(f"{where.file}: several columns could be the {role} column "
                        f"({', '.join(candidates)}); choose one with {flag}")
    if not required:
        return None
    # a separator the header line did not settle (as many commas as semicolons) shows in the names
    other = next((repr(sep) for sep in SEPARATORS[1:] if any(sep in c for c in columns)), None)
    if other is not None:
        raise UserError(f"{where.file}: no {role} column '{default}'; the file looks {other}-separated "
                        f"(columns: {available}); save it with one separator, e.g. as comma-separated CSV")
    raise UserError(f"{where.file}: no {role} column '{default}'; available columns: "
                    f"{available}; name it with {flag}")


def customer_ids(column: pd.Series, where: Where, name: str) -> pd.Series:
    """The customer ids as trimmed strings, an empty id missing (NA).

    Integral floats lose their ``.0`` (an id column with a gap is float in pandas).

    :param column: the raw id column.
    :param where: names the table in messages.
    :param name: the column's name, for messages.
    :returns: a str Series on ``column``'s index; missing where the id is empty.
    :raises UserError: every id is empty.

    Example: ``customer_ids(pd.Series([7.0, None, 8.0]), where, "id")`` -> ``"7", NA, "8"``.
    """
    if pd.api.types.is_float_dtype(column) and np.all(np.mod(column.dropna(), 1) == 0):
        column = column.astype("Int64")
    ids = column.astype("string").str.strip()
    ids = ids.mask(ids == "")
    if ids.isna().all():
        raise UserError(f"{where.file}: column '{name}' has no customer ids (every value is "
                        f"empty); choose the id column with --customer-col")
    return ids.astype(str)  # pandas' str dtype keeps the missing ids missing


def order_ids(column: pd.Series, ts: pd.Series) -> pd.Series:
    """The order ids as trimmed strings; an empty one becomes its purchase day (``day:2024-03-15``).

    :param column: the raw order id column.
    :param ts: the rows' purchase times (same index).
    :returns: a str Series without missing values.

    Example: ``order_ids(pd.Series(["A1", ""]), ts)`` -> ``"A1", "day:2024-03-15"``.
    """
    ids = column.astype("string").str.strip()
    missing = (ids.isna() | (ids == "")).to_numpy(dtype=bool)
    if missing.any():  # formatting every day would cost more than the rest of the cleaning
        ids = ids.mask(missing, "day:" + ts[missing].dt.strftime("%Y-%m-%d"))
    return ids.astype(str)


def refuse_no_purchase(where: Where, amount: str) -> None:
    """UserError: the amount column holds no purchase (every amount zero or negative)."""
    raise UserError(f"{where.file}: column '{amount}' has no purchase (every amount is zero "
                    f"or negative); check the amount column or choose it with --amount-col")
