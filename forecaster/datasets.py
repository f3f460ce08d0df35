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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.errors import UserError
from forecaster.synthetic import DEFAULT_CUSTOMERS, DEFAULT_SEED, generate
from narrator.panel import MonthlyPanel, build_panel

SHOP_TIMEZONE = "Asia/Seoul"
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
_TZ_SUFFIX = re.compile(r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$", re.I)
_KST_SUFFIX = re.compile(r"\s*KST$", re.I)
_AMOUNT_DECORATION = re.compile(r"[,\s₩$원]|KRW|USD", re.I)


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
    notes: tuple[str, ...] = ()


@dataclass(eq=False)
class Dataset:
    name: str
    transactions: pd.DataFrame
    currency: str
    cleaning: Cleaning
    latent: pd.DataFrame | None = None  # synthetic only: per-customer latent parameters

    @cached_property
    def panel(self) -> MonthlyPanel:
        return build_panel(self.transactions, self.currency)


def load_dataset(
    src: str = "cdnow",
    *,
    customer_col: str | None = None,
    date_col: str | None = None,
    amount_col: str | None = None,
    order_col: str | None = None,
    currency: str | None = None,
) -> Dataset:
    """The dataset ``src`` names (see the module docstring); UserError on bad input."""
    src = src.strip()
    kind = src.lower()
    mapping = {"--customer-col": customer_col, "--date-col": date_col,
               "--amount-col": amount_col, "--order-col": order_col, "--currency": currency}
    if kind == "cdnow" or kind == "synthetic" or kind.startswith("synthetic:"):
        given = [flag for flag, value in mapping.items() if value is not None]
        if given:
            raise UserError(
                f"{', '.join(given)} only apply to a CSV/Parquet file, not to the built-in "
                f"data '{src}'; drop them or pass --data with a file path"
            )
        return load_cdnow() if kind == "cdnow" else _load_synthetic(src)
    return load_user_file(
        Path(src), customer_col=customer_col, date_col=date_col, amount_col=amount_col,
        order_col=order_col, currency=currency,
    )


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
) -> Dataset:
    """A user's CSV/Parquet transactions, validated and cleaned per the module policies."""
    currency = _check_currency(currency or USER_FILE_CURRENCY)
    raw, is_csv = _read_table(path)
    where = _Where(path.name, is_csv)
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
    ts, converted = _parse_dates(table[date], where, date)
    transactions = pd.DataFrame({
        "customer_id": ids[keep],
        "ts": ts,
        "amount": _parse_amounts(table[amount], where, amount),
    })
    if not (transactions["amount"] > 0).any():
        raise UserError(f"{where.file}: column '{amount}' has no purchase (every amount is zero "
                        f"or negative); check the amount column or choose it with --amount-col")
    if order is not None:
        transactions["order_id"] = _order_ids(table[order], ts)
    transactions = transactions.reset_index(drop=True)
    cleaning = Cleaning(
        rows_read=rows_read,
        duplicate_rows_dropped=int((duplicated & ids.notna().to_numpy()).sum()),
        null_customer_rows_dropped=null_ids,
        timezone_rows_converted=converted,
        timezone=SHOP_TIMEZONE if converted else None,
        **_return_counts(transactions),
    )
    return Dataset(path.name, transactions, currency, cleaning)


@dataclass(frozen=True)
class _Where:
    """Names a place in the user's file the way the user sees it."""

    file: str
    is_csv: bool

    def row(self, position: int) -> str:
        """1-based data row (and, for CSV, the file line: the header is line 1)."""
        line = f" (line {position + 2})" if self.is_csv else ""
        return f"row {position + 1}{line}"


def _check_currency(currency: str) -> str:
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise UserError(f"--currency '{currency}' is not a 3-letter currency code; use e.g. KRW or USD")
    return code


def _read_table(path: Path) -> tuple[pd.DataFrame, bool]:
    """The raw table, every CSV cell as text (ids keep leading zeros; we parse ourselves)."""
    if not path.is_file():
        raise UserError(
            f"file not found: {path}; give cdnow, synthetic[:N[:SEED]] or the path of an "
            f"existing .csv or .parquet file"
        )
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        table = _read_csv(path)
    elif name.endswith((".parquet", ".pq")):
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise UserError(f"{path.name}: cannot read it as Parquet ({type(exc).__name__}); "
                            f"check the file or export it again as .parquet or .csv") from exc
    else:
        raise UserError(f"{path.name}: unknown file type '{path.suffix or '(none)'}'; "
                        f"give a .csv or .parquet file of transactions")
    if table.empty:
        raise UserError(f"{path.name}: no data rows; give a file with one row per transaction")
    table.columns = [str(c).strip() for c in table.columns]
    return table.reset_index(drop=True), not name.endswith((".parquet", ".pq"))


def _read_csv(path: Path) -> pd.DataFrame:
    # Korean spreadsheet exports are often CP949 rather than UTF-8.
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return pd.read_csv(path, dtype=str, encoding=encoding, skipinitialspace=True)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise UserError(f"{path.name}: the file is empty; give a CSV with a header row "
                            f"and one row per transaction") from None
        except (pd.errors.ParserError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[-1]
            raise UserError(f"{path.name}: cannot read it as CSV ({detail}); check the "
                            f"separator (comma) and quoting") from None
    raise UserError(f"{path.name}: text is neither UTF-8 nor CP949; save it as UTF-8 CSV")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", str(name)).lower()


def _resolve_column(table: pd.DataFrame, where: _Where, role: str, given: str | None,
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
    raise UserError(f"{where.file}: no {role} column '{default}'; available columns: "
                    f"{available}; name it with {flag}")


def _customer_ids(column: pd.Series, where: _Where, name: str) -> pd.Series:
    """Ids as trimmed strings, empty -> NA; integral floats lose their '.0'."""
    if pd.api.types.is_float_dtype(column) and np.all(np.mod(column.dropna(), 1) == 0):
        column = column.astype("Int64")
    ids = column.astype("string").str.strip()
    ids = ids.mask(ids == "")
    if ids.isna().all():
        raise UserError(f"{where.file}: column '{name}' has no customer ids (every value is "
                        f"empty); choose the id column with --customer-col")
    return ids.astype(str)  # pandas' str dtype keeps the missing ids missing


def _first_bad(mask: np.ndarray, column: pd.Series) -> tuple[int, object]:
    """(original row position, raw value) of the first True in ``mask``."""
    i = int(np.argmax(mask))
    return int(column.index[i]), column.iloc[i]


def _parse_dates(column: pd.Series, where: _Where, name: str) -> tuple[pd.Series, int]:
    """Naive datetime64[ns] in shop time, and how many aware values were converted."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert(SHOP_TIMEZONE).dt.tz_localize(None).astype("datetime64[ns]"), len(column)
    if pd.api.types.is_datetime64_dtype(column):
        parsed, converted = column, 0
    else:
        text = column.astype("string").str.strip()  # also 20240131 stored as a number
        text = text.str.replace(_KST_SUFFIX, "", regex=True)  # KST is shop time already
        empty = (text.isna() | (text == "")).to_numpy()
        if empty.any():
            row, _ = _first_bad(empty, column)
            raise UserError(f"{where.file}: column '{name}', {where.row(row)}: the date is "
                            f"empty; fill it in or remove the row")
        aware = text.str.contains(_TZ_SUFFIX).to_numpy(dtype=bool)
        parsed = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns]")
        if (~aware).any():
            parsed[~aware] = _to_datetime(text[~aware], utc=False)
        if aware.any():
            utc = _to_datetime(text[aware], utc=True)
            parsed[aware] = utc.dt.tz_convert(SHOP_TIMEZONE).dt.tz_localize(None)
        converted = int(aware.sum())
    bad = parsed.isna().to_numpy()
    if bad.any():
        row, value = _first_bad(bad, column)
        raise UserError(f"{where.file}: column '{name}', {where.row(row)}: cannot read "
                        f"'{value}' as a date; use e.g. 2024-03-15 or 2024-03-15 14:30")
    return parsed.astype("datetime64[ns]"), converted


def _to_datetime(text: pd.Series, *, utc: bool) -> pd.Series:
    """Fast path with one inferred format, then per-value parsing for what it missed."""
    parsed = pd.to_datetime(text, errors="coerce", utc=utc)
    missed = parsed.isna()
    if missed.any():
        parsed[missed] = pd.to_datetime(text[missed], errors="coerce", utc=utc, format="mixed")
    return parsed


def _parse_amounts(column: pd.Series, where: _Where, name: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.astype(np.float64)
    else:
        text = column.astype("string").str.replace(_AMOUNT_DECORATION, "", regex=True)
        values = pd.to_numeric(text, errors="coerce").astype(np.float64)
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        row, value = _first_bad(bad, column)
        what = "the amount is empty" if pd.isna(value) or str(value).strip() == "" else \
            f"'{value}' is not a number"
        raise UserError(f"{where.file}: column '{name}', {where.row(row)}: {what}; amounts "
                        f"must be numbers (negative for returns)")
    return values


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
