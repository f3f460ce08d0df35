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
  ``currency`` says otherwise), or to a folder of ``.parquet`` files (one table split
  over files, read in name order). A folder, a file over ``CHUNKED_FROM_BYTES`` or a given
  ``chunk_rows`` goes through the chunked reader (:mod:`forecaster.ingest`): the same
  Dataset with bounded memory, whose ``transactions`` are then the purchase-day log.

``from_table(frame)`` takes a pandas DataFrame or pyarrow Table already in memory (the
notebook API): it is read exactly as a Parquet file with the same cells would be.

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
- Separators and repeated header names: :mod:`forecaster.tables`; the column roles and
  ids: :mod:`forecaster.columns`; date formats:
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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecaster.columns import frame_table
from forecaster.coverage import Coverage, MonthTotals, judge_coverage, judge_summary
from forecaster.dates import DateRange, parse_data_end, parse_date_range, screen_dates
from forecaster.errors import UserError
from forecaster.synthetic import DEFAULT_CUSTOMERS, DEFAULT_SEED, generate
from forecaster.tables import Where, read_table
from models.timing import PurchaseDays
from narrator.panel import MonthlyPanel, build_panel

if TYPE_CHECKING:
    from forecaster.ingest_reduce import Ingested

USER_FILE_CURRENCY = "KRW"
CHUNKED_FROM_BYTES = 256 << 20  # a file this large is read in chunks (forecaster.ingest)


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
    """Transactions that follow the contract, what loading did to them, and their panel.

    Made by ``fc.load_dataset`` / ``fc.load_transactions``. Attributes: ``name``,
    ``transactions`` (``customer_id``, ``ts``, ``amount``[, ``order_id``]), ``currency``,
    ``cleaning`` (what loading changed), ``latent`` (synthetic data only), ``panel`` (the
    customer x month panel of complete months), ``coverage``, ``notices``. ``summary()`` is
    what ``forecaster data`` prints, ``monthly()`` its per-month table.

    Example: ``fc.load_dataset("synthetic:300").summary()``."""

    name: str
    transactions: pd.DataFrame
    currency: str
    cleaning: Cleaning
    latent: pd.DataFrame | None = None  # synthetic only: per-customer latent parameters
    keep_partial_month: bool = False  # --keep-partial-month: a partial last month stays
    data_end: pd.Timestamp | None = None  # --data-end: the last day the export covers
    read_notices: tuple[str, ...] = ()  # how the file was read (e.g. its separator)
    # read in chunks: the panel and row counts; ``transactions`` is then the purchase-day log
    ingested: "Ingested | None" = None
    # one partition of a shop read in chunks (forecaster.batch_partitioned): the whole data's coverage
    judged: Coverage | None = None

    @cached_property
    def full_panel(self) -> MonthlyPanel:
        """Every month with a transaction, complete or not."""
        if self.ingested is not None:
            return self.ingested.full_panel
        return build_panel(self.transactions, self.currency)

    @cached_property
    def coverage(self) -> Coverage:
        if self.judged is not None:
            return self.judged
        if self.ingested is not None:
            return judge_summary(MonthTotals.of(self.full_panel), self.ingested.times, data_end=self.data_end,
                                 keep_partial=self.keep_partial_month)
        return judge_coverage(self.full_panel, self.transactions["ts"].to_numpy(), data_end=self.data_end,
                              keep_partial=self.keep_partial_month)

    def transaction_count(self, customers: np.ndarray | None = None, *, complete_months: bool = False) -> int:
        """Rows of the data (of ``customers`` only; without a dropped partial month)."""
        if self.ingested is None:
            tx = self.transactions
            if customers is not None:
                tx = tx[tx["customer_id"].isin(customers)]
            if complete_months:
                tx = tx[tx["ts"] < (self.panel.last_month + 1).start_time]
            return len(tx)
        rows = self.ingested.rows - (self.ingested.last_month_rows if complete_months and
                                     self.coverage.dropped_month is not None else 0)
        if customers is not None:  # hashed: np.isin on object arrays is quadratic (300 s for 300,000 ids)
            rows = rows[pd.Index(self.full_panel.customer_ids).isin(customers)]
        return int(rows.sum())

    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first and last transaction time."""
        if self.ingested is not None:
            return self.ingested.times.first, self.ingested.times.last
        ts = self.transactions["ts"]
        return ts.min(), ts.max()

    @cached_property
    def panel(self) -> MonthlyPanel:
        """The panel of complete months (see :mod:`forecaster.coverage`)."""
        return self.coverage.apply(self.full_panel)

    @cached_property
    def purchase_days(self) -> PurchaseDays:
        """Every purchase day of the data (:class:`models.timing.PurchaseDays`): from the
        chunked reader's integer customer codes of its day log, else from ``transactions``."""
        if self.ingested is not None:
            return PurchaseDays.from_coded_log(self.transactions, self.ingested.day_rows, self.full_panel.customer_ids)
        return PurchaseDays.by_block(self.transactions)

    @property
    def notices(self) -> tuple[str, ...]:
        """One-line Korean notes on what loading decided, for every verb to print."""
        dropped = self.cleaning.date_range_rows_dropped if self.cleaning else 0
        clipped = (f"참고: --date-range {self.cleaning.date_range} 밖의 거래 {dropped:,}행을 제외했습니다.",) \
            if dropped else ()
        return self.read_notices + clipped + self.coverage.notices()

    # data_summary imports this module (for Dataset), so the methods below import it when called

    def summary(self) -> pd.DataFrame:
        """What ``forecaster data`` prints as one frame: ``section`` (``overview`` or
        ``cleaning``), ``item`` (the row label) and ``value`` (the cell text).

        Example: ``load_dataset("cdnow").summary()["value"].iloc[0]`` ->
        ``"23,570명 (구매 기록 있음 23,502명)"``.
        """
        from forecaster.data_summary import summary_frame
        return summary_frame(self)

    def monthly(self) -> pd.DataFrame:
        """Per month of the panel: ``month``, ``new`` customers, ``buyers``,
        ``share_of_acquired`` and ``share_of_all`` (the ``forecaster data`` monthly table).

        Example: ``load_dataset("cdnow").monthly()["buyers"].iloc[0]`` -> ``7814``.
        """
        from forecaster.data_summary import monthly_buying_share
        return monthly_buying_share(self.panel)

    def _repr_html_(self) -> str:
        """Jupyter's view: the name and currency, the notices and :meth:`summary` as a table."""
        from forecaster.data_summary import summary_html
        return summary_html(self)


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
    chunk_rows: int | None = None,
) -> Dataset:
    """The dataset ``src`` names (see the module docstring); UserError on bad input."""
    src = src.strip()
    kind = src.lower()
    mapping = {"--customer-col": customer_col, "--date-col": date_col, "--amount-col": amount_col,
               "--order-col": order_col, "--currency": currency, "--date-format": date_format,
               "--decimal-comma": decimal_comma or None, "--chunk-rows": chunk_rows}
    months = month_options(date_range, data_end, keep_partial_month)
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
        months=months, chunk_rows=chunk_rows,
    )


@dataclass(frozen=True)
class _MonthOptions:
    """The options that choose which dates and months the data holds."""

    date_range: DateRange | None = None
    data_end: pd.Timestamp | None = None
    keep_partial_month: bool = False


def month_options(date_range: str | None, data_end: str | None, keep_partial_month: bool) -> _MonthOptions:
    return _MonthOptions(parse_date_range(date_range) if date_range else None,
                         parse_data_end(data_end) if data_end else None, keep_partial_month)


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


def reads_in_chunks(path: Path, chunk_rows: int | None) -> bool:
    """Whether a file is read by the chunked reader: a folder, ``--chunk-rows`` given, or a
    file over CHUNKED_FROM_BYTES that is not gzip-compressed."""
    return path.is_dir() or chunk_rows is not None or (
        path.is_file() and path.stat().st_size > CHUNKED_FROM_BYTES and not path.name.lower().endswith(".gz"))


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
    chunk_rows: int | None = None,
) -> Dataset:
    """A user's CSV/Parquet transactions, validated and cleaned per the module policies."""
    code = check_currency(currency or USER_FILE_CURRENCY)
    if reads_in_chunks(path, chunk_rows):
        from forecaster.ingest import DEFAULT_CHUNK_ROWS, check_chunk_rows
        from forecaster.ingest_chunked import load_chunked
        return load_chunked(path, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                            order_col=order_col, currency=code, date_format=date_format,
                            decimal_comma=decimal_comma, months=months,
                            chunk_rows=check_chunk_rows(DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows))
    from forecaster.raw_tables import from_raw_table
    return from_raw_table(read_table(path), customer_col=customer_col, date_col=date_col,
                           amount_col=amount_col, order_col=order_col, currency=code,
                           date_format=date_format, decimal_comma=decimal_comma, months=months)


def from_table(
    table: object,
    *,
    name: str = "transactions",
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
    """Transactions already in memory, validated and cleaned exactly as a user's Parquet file.

    :param table: a pandas DataFrame or pyarrow Table (anything with ``to_pandas()``); not modified.
    :param name: the dataset's name, also naming the table in error messages.
    :param customer_col, date_col, amount_col, order_col, currency, date_format, decimal_comma,
        date_range, data_end, keep_partial_month: as the command line's ``--customer-col`` ...
        ``--keep-partial-month`` (messages name the flags); the currency defaults to KRW.
    :returns: the :class:`Dataset`, its ``cleaning`` saying what loading changed.
    :raises UserError: not a table, no rows, a repeated column name, or any problem a file
        with the same cells would have (a missing column, an unreadable date or amount...).

    Example::

        frame = pd.DataFrame({"고객번호": ["a", "b"], "주문일시": ["2024-01-05", "2024-02-07"],
                              "결제금액": ["12,300원", "8,000원"]})
        from_table(frame, name="shop").transactions["amount"].tolist()  # [12300.0, 8000.0]
    """
    code = check_currency(currency or USER_FILE_CURRENCY)
    months = month_options(date_range, data_end, keep_partial_month)
    from forecaster.raw_tables import from_raw_table
    return from_raw_table(frame_table(table, name), customer_col=customer_col, date_col=date_col,
                           amount_col=amount_col, order_col=order_col, currency=code,
                           date_format=date_format, decimal_comma=decimal_comma, months=months)


def check_currency(currency: str) -> str:
    code = currency.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise UserError(f"--currency '{currency}' is not a 3-letter currency code; use e.g. KRW or USD")
    return code
