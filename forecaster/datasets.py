"""Datasets: the bundled CDNOW log, the seeded synthetic shop, and the user's own files.

Every source becomes a :class:`Dataset` whose ``transactions`` follow the contract
(``customer_id`` str, ``ts`` datetime64[ns] tz-naive, ``amount`` float64, optional
``order_id`` and ``quantity``) and whose ``cleaning`` says what loading changed.

Sources (``load_dataset(src)``):

- ``cdnow``: the Fader-Hardie CDNOW master file shipped as package data (USD). Kept exactly
  as published, 69,659 rows: its 255 identical rows are same-day repeat purchases that the
  literature counts, so they are *kept* and noted (not dropped as in user files).
- ``synthetic``, ``synthetic:N``, ``synthetic:N:SEED``: :mod:`forecaster.synthetic` (KRW),
  with the per-customer latent parameters in ``Dataset.latent``.
- a path to a ``.csv`` (also ``.csv.gz``) or ``.parquet`` file (currency ``KRW`` unless
  ``currency`` says otherwise).

Policies for user files (each is counted in ``Dataset.cleaning`` and shown by
``forecaster data``):

- Columns: ``customer_id`` / ``ts`` / ``amount`` unless mapped (``customer_col`` ...);
  without a mapping, a column whose name matches a common alias (``CustomerID``,
  ``InvoiceDate``, ``주문금액`` ...; case, spaces and underscores ignored) is used only when
  exactly one column matches. An order/invoice id column is used when mapped or when
  exactly one column matches its aliases; without one an order is a distinct day.
- Rows whose customer id is empty are dropped and counted (guest checkouts, as in the
  UCI Online Retail export); a file where every customer id is empty is an error.
- Empty or unparseable dates and empty or non-numeric amounts are errors naming the first
  bad row (1-based data row; for CSV also the file line). Amount text may carry thousands
  separators and currency signs (``12,300원``, ``₩12,300``, ``$1,234.50``). A file with no
  positive amount at all is an error (nothing to forecast).
- Negative amounts are returns/cancellations: kept, netted within the customer-month by
  the panel, which floors a month at 0; they never count as orders.
- Rows identical in every column of the file are duplicates (double exports): the later
  copies are dropped and counted.
- Time-zone-aware timestamps (a tz-aware Parquet column, or strings ending in ``Z`` /
  ``+09:00`` / ``-0500``, mixed offsets allowed) are converted to Asia/Seoul, the shop's
  calendar for month boundaries, then made naive; naive timestamps (and ``... KST``) are
  taken as shop time.
- An empty order id falls back to the purchase day as the order key.
- Separators and repeated header names: :mod:`forecaster.tables`; date formats:
  :mod:`forecaster.dates`; a decimal comma (``46,30``, never read as 4630):
  :mod:`forecaster.amounts`.

For every source: ``date_range`` drops the rows outside it (counted), ``data_end`` states
the export's end, and the panel holds complete months only (:mod:`forecaster.coverage`: a
partial last month is left out unless ``keep_partial_month``). ``Dataset.notices`` says so,
one line each; every verb prints them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.amounts import parse_amounts
from forecaster.coverage import Coverage, judge_coverage
from forecaster.dates import SHOP_TIMEZONE, DateRange, parse_data_end, parse_date_range, parse_dates, screen_dates
from forecaster.errors import UserError
from forecaster.synthetic import DEFAULT_CUSTOMERS, DEFAULT_SEED, generate
from forecaster.tables import SEPARATORS, Where, read_table
from narrator.panel import MonthlyPanel, build_panel

USER_FILE_CURRENCY = "KRW"

# role -> (flag, default column, aliases compared after _normalise)
_COLUMN_ROLES = {
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
@dataclass(frozen=True)
class Cleaning:
    """What loading did to the rows (all counts are rows unless said otherwise)."""

    rows_read: int
    duplicate_rows_dropped: int = 0
    null_customer_rows_dropped: int = 0
    return_rows: int = 0
    return_total: float = 0.0  # sum of the negative amounts (<= 0)
    months_floored: int = 0  # customer-months whose net spend was negative, floored at 0
    timezone_rows_converted: int = 0
    timezone: str | None = None  # zone the aware timestamps were converted to
    date_range_rows_dropped: int = 0  # rows outside --date-range
    date_range: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(eq=False)
class Dataset:
    name: str
    transactions: pd.DataFrame
    currency: str
    cleaning: Cleaning
    latent: pd.DataFrame | None = None  # synthetic only: per-customer latent parameters
    keep_partial_month: bool = False  # --keep-partial-month: a partial last month stays
    data_end: pd.Timestamp | None = None  # --data-end: the last day the export covers
    read_notices: tuple[str, ...] = ()  # how the file was read (e.g. its separator)

    @cached_property
    def full_panel(self) -> MonthlyPanel:
        """Every month with a transaction, complete or not."""
        return build_panel(self.transactions, self.currency)

    @cached_property
    def coverage(self) -> Coverage:
        return judge_coverage(self.full_panel, self.transactions["ts"].to_numpy(), data_end=self.data_end,
                              keep_partial=self.keep_partial_month)

    @cached_property
    def panel(self) -> MonthlyPanel:
        """The panel of complete months (see :mod:`forecaster.coverage`)."""
        return self.coverage.apply(self.full_panel)

    @property
    def notices(self) -> tuple[str, ...]:
        """One-line Korean notes on what loading decided, for every verb to print."""
        dropped = self.cleaning.date_range_rows_dropped if self.cleaning else 0
        clipped = (f"참고: --date-range {self.cleaning.date_range} 밖의 거래 {dropped:,}행을 제외했습니다.",) \
            if dropped else ()
        return self.read_notices + clipped + self.coverage.notices()


def load_dataset(
    src: str = "cdnow",
    *,
    customer_col: str | None = None,
    date_col: str | None = None,
    amount_col: str | None = None,
    order_col: str | None = None,
    currency: str | None = None,
    date_format: str | None = None,
    decimal_comma: bool = False,
    date_range: str | None = None,
    data_end: str | None = None,
    keep_partial_month: bool = False,
) -> Dataset:
    """The dataset ``src`` names (see the module docstring); UserError on bad input."""
    src = src.strip()
    kind = src.lower()
    mapping = {"--customer-col": customer_col, "--date-col": date_col, "--amount-col": amount_col,
               "--order-col": order_col, "--currency": currency, "--date-format": date_format,
               "--decimal-comma": decimal_comma or None}
    months = _MonthOptions(parse_date_range(date_range) if date_range else None,
                           parse_data_end(data_end) if data_end else None, keep_partial_month)
    if kind == "cdnow" or kind == "synthetic" or kind.startswith("synthetic:"):
        given = [flag for flag, value in mapping.items() if value is not None]
        if given:
            raise UserError(
                f"{', '.join(given)} only apply to a CSV/Parquet file, not to the built-in "
                f"data '{src}'; drop them or pass --data with a file path"
            )
        return _screened_builtin(load_cdnow() if kind == "cdnow" else _load_synthetic(src), months)
    return load_user_file(
        Path(src), customer_col=customer_col, date_col=date_col, amount_col=amount_col,
        order_col=order_col, currency=currency, date_format=date_format, decimal_comma=decimal_comma,
        months=months,
    )


@dataclass(frozen=True)
class _MonthOptions:
    """The options that choose which dates and months the data holds."""

    date_range: DateRange | None = None
    data_end: pd.Timestamp | None = None
    keep_partial_month: bool = False


def _screen(transactions: pd.DataFrame, raw_dates: pd.Series, where: Where, name: str,
            months: _MonthOptions) -> tuple[pd.DataFrame, dict[str, object]]:
    """The rows inside ``--date-range`` (after the date checks) with ``ts`` as
    datetime64[ns], and the Cleaning counts."""
    keep = screen_dates(transactions["ts"], raw_dates, where, name, date_range=months.date_range,
                        data_end=months.data_end)
    kept = transactions if keep.all() else transactions.loc[keep]
    if kept["ts"].dtype != np.dtype("datetime64[ns]"):
        kept = kept.assign(ts=kept["ts"].astype("datetime64[ns]"))  # in range: screen_dates checked it
    return kept, {"date_range_rows_dropped": int((~keep).sum()),
                  "date_range": months.date_range.text if months.date_range else None}


def _screened_builtin(dataset: Dataset, months: _MonthOptions) -> Dataset:
    tx = dataset.transactions
    kept, counts = _screen(tx, tx["ts"], Where(dataset.name, is_csv=False), "ts", months)
    return dataclasses.replace(dataset, transactions=kept.reset_index(drop=True),
                               cleaning=dataclasses.replace(dataset.cleaning, **counts),
                               keep_partial_month=months.keep_partial_month, data_end=months.data_end)


def load_cdnow() -> Dataset:
    """The bundled CDNOW master file (Fader, Hardie & Lee 2005), exactly as published."""
    ref = resources.files("forecaster").joinpath("data", "CDNOW_master.txt.gz")
    with ref.open("rb") as fh:
        raw = pd.read_csv(fh, sep=r"\s+", compression="gzip",
                          dtype={"customer_id": str, "date": str})
    transactions = pd.DataFrame({
        "customer_id": raw["customer_id"].astype(str),
        "ts": pd.to_datetime(raw["date"], format="%Y%m%d").astype("datetime64[ns]"),
        "amount": raw["dollar_value"].astype(np.float64),
        "quantity": raw["number_of_cds"].astype(np.int64),
    })
    identical = int(raw.duplicated().sum())
    cleaning = Cleaning(
        rows_read=len(raw),
        notes=(f"동일한 행 {identical:,}개는 원본 그대로 유지 (같은 날 같은 금액의 반복 구매로 "
               "공개 데이터의 집계에 포함됨)",),
    )
    return Dataset("cdnow", transactions, "USD", cleaning)


def _load_synthetic(src: str) -> Dataset:
    parts = src.split(":")
    try:
        n = int(parts[1]) if len(parts) > 1 and parts[1] else DEFAULT_CUSTOMERS
        seed = int(parts[2]) if len(parts) > 2 else DEFAULT_SEED
    except ValueError:
        n = seed = -1
    if len(parts) > 3 or n < 1 or seed < 0:
        raise UserError(
            f"'{src}' is not a synthetic data spec: write synthetic, synthetic:N or "
            f"synthetic:N:SEED with whole numbers N >= 1 and SEED >= 0 (e.g. synthetic:5000:0)"
        )
    shop = generate(n, seed)
    cleaning = Cleaning(rows_read=len(shop.transactions))
    return Dataset(f"synthetic:{n}:{seed}", shop.transactions, "KRW", cleaning, shop.latent)


def load_user_file(
    path: Path,
    *,
    customer_col: str | None = None,
    date_col: str | None = None,
    amount_col: str | None = None,
    order_col: str | None = None,
    currency: str | None = None,
    date_format: str | None = None,
    decimal_comma: bool = False,
    months: _MonthOptions = _MonthOptions(),
) -> Dataset:
    """A user's CSV/Parquet transactions, validated and cleaned per the module policies."""
    currency = _check_currency(currency or USER_FILE_CURRENCY)
    read = read_table(path)
    raw, where = read.table, read.where
    customer = _resolve_column(raw, where, "customer", customer_col, required=True)
    date = _resolve_column(raw, where, "date", date_col, required=True)
    amount = _resolve_column(raw, where, "amount", amount_col, required=True)
    order = _resolve_column(raw, where, "order", order_col, required=False)

    rows_read = len(raw)
    duplicated = raw.duplicated().to_numpy()
    ids = _customer_ids(raw[customer], where, customer)
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
        raise UserError(f"{where.file}: column '{amount}' has no purchase (every amount is zero "
                        f"or negative); check the amount column or choose it with --amount-col")
    if order is not None:
        transactions["order_id"] = _order_ids(transactions["order_id"], transactions["ts"])
    transactions = transactions.reset_index(drop=True)
    cleaning = Cleaning(
        rows_read=rows_read,
        duplicate_rows_dropped=int((duplicated & ids.notna().to_numpy()).sum()),
        null_customer_rows_dropped=null_ids,
        timezone_rows_converted=dates.converted,
        timezone=SHOP_TIMEZONE if dates.converted else None,
        notes=dates.notes,
        **clipped,
        **_return_counts(transactions),
    )
    return Dataset(path.name, transactions, currency, cleaning, keep_partial_month=months.keep_partial_month,
                   data_end=months.data_end, read_notices=read.notices)


def _check_currency(currency: str) -> str:
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise UserError(f"--currency '{currency}' is not a 3-letter currency code; use e.g. KRW or USD")
    return code


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", str(name)).lower()


def _resolve_column(table: pd.DataFrame, where: Where, role: str, given: str | None,
                    *, required: bool) -> str | None:
    flag, default, aliases = _COLUMN_ROLES[role]
    columns = list(table.columns)
    available = ", ".join(columns)
    if given is not None:
        matches = [c for c in columns if c == given] or [c for c in columns if c.lower() == given.lower()]
        if len(matches) == 1:
            return matches[0]
        raise UserError(f"{where.file}: no column '{given}' ({flag}); available columns: {available}")
    if default in columns:
        return default
    candidates = [c for c in columns if _normalise(c) in aliases | {_normalise(default)}]
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


def _customer_ids(column: pd.Series, where: Where, name: str) -> pd.Series:
    """Ids as trimmed strings, empty -> NA; integral floats lose their '.0'."""
    if pd.api.types.is_float_dtype(column) and np.all(np.mod(column.dropna(), 1) == 0):
        column = column.astype("Int64")
    ids = column.astype("string").str.strip()
    ids = ids.mask(ids == "")
    if ids.isna().all():
        raise UserError(f"{where.file}: column '{name}' has no customer ids (every value is "
                        f"empty); choose the id column with --customer-col")
    return ids.astype(str)  # pandas' str dtype keeps the missing ids missing


def _order_ids(column: pd.Series, ts: pd.Series) -> pd.Series:
    ids = column.astype("string").str.strip()
    day_key = "day:" + ts.dt.strftime("%Y-%m-%d")
    return ids.mask(ids.isna() | (ids == ""), day_key).astype(str)


def _return_counts(transactions: pd.DataFrame) -> dict[str, float | int]:
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
