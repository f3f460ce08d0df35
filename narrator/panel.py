"""Transactions -> customer x calendar-month panel -> histories cut at an anchor month.

The panel is dense numpy arrays (customers x months), built with vectorised pandas/numpy
(factorize + bincount), never a Python loop over transactions. Everything downstream of
an anchor month goes through :meth:`MonthlyPanel.before`, which drops the anchor month and
every later month *and* every customer not yet acquired: that single cut is the leakage
firewall for histories, narratives and features alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from narrator.errors import AnchorOutsideData, EmptyData, MonthFormatError

NOT_ACQUIRED = np.iinfo(np.int32).max
HISTORY_MONTHS = 12  # the months of history a forecast sees, unless a caller asks for another window
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def month_ordinal(period: pd.Period) -> int:
    """Months since year 0 (1997-01 -> 1997*12): cheap integer month arithmetic."""
    return period.year * 12 + period.month - 1


def ordinal_to_period(ordinal: int) -> pd.Period:
    return pd.Period(year=int(ordinal) // 12, month=int(ordinal) % 12 + 1, freq="M")


def parse_month(text: str | pd.Period) -> pd.Period:
    """'1997-07' -> Period('1997-07', 'M'); a clear ValueError otherwise."""
    if isinstance(text, pd.Period):
        return text.asfreq("M")
    # strict: pandas alone would read "January" as 0001-01
    if not _MONTH.fullmatch(str(text).strip()):
        raise MonthFormatError(f"month '{text}' is not of the form YYYY-MM (e.g. 1997-07)")
    return pd.Period(str(text).strip(), freq="M")


@dataclass(frozen=True)
class MonthlyPanel:
    """Net spend and order counts per customer and calendar month.

    ``spend`` is the month's net amount (returns netted within the month) floored at 0;
    ``orders`` counts distinct purchase days (or distinct order ids) with a positive amount.
    ``first_idx`` is the column of the first month with an order (``NOT_ACQUIRED`` if none).
    """

    customer_ids: np.ndarray  # object array of str, sorted
    start: int  # month ordinal of column 0
    spend: np.ndarray  # float64 (n_customers, n_months)
    orders: np.ndarray  # int32 (n_customers, n_months)
    first_idx: np.ndarray  # int32 (n_customers,)
    currency: str

    @property
    def n_months(self) -> int:
        return self.spend.shape[1]

    @property
    def months(self) -> pd.PeriodIndex:
        return pd.period_range(ordinal_to_period(self.start), periods=self.n_months, freq="M")

    @property
    def first_month(self) -> pd.Period:
        return ordinal_to_period(self.start)

    @property
    def last_month(self) -> pd.Period:
        return ordinal_to_period(self.start + self.n_months - 1)

    def column(self, month: pd.Period) -> int:
        return month_ordinal(month) - self.start

    def check_anchor(self, anchor: pd.Period, *, needs_outcome: bool = False) -> None:
        """Raise ValueError unless ``anchor`` has at least one month of history before it
        and lies no later than the month after the data ends (or within the data when the
        outcome is needed)."""
        last_ok = self.last_month if needs_outcome else self.last_month + 1
        if not (self.first_month < anchor <= last_ok):
            raise AnchorOutsideData(
                f"anchor {anchor} is outside the data: choose a month from "
                f"{self.first_month + 1} to {last_ok}"
            )

    def before(self, anchor: pd.Period) -> "MonthlyPanel":
        """The panel as it was known at the start of ``anchor``: months strictly before it,
        customers whose first purchase is strictly before it."""
        self.check_anchor(anchor)
        a = self.column(anchor)
        keep = self.first_idx < a
        # everyone kept (a batch at the month after the data, as a rule): views of the
        # panel, not a copy of it (4.3 GB for 10M customers and 36 months)
        rows = slice(None) if keep.all() else keep
        return MonthlyPanel(
            customer_ids=self.customer_ids[rows],
            start=self.start,
            spend=self.spend[rows, :a],
            orders=self.orders[rows, :a],
            first_idx=self.first_idx[rows],
            currency=self.currency,
        )

    def take(self, rows: np.ndarray) -> "MonthlyPanel":
        """The customers at positions ``rows`` (strictly increasing, so the ids stay sorted),
        every month kept: the one way to take a subset of customers."""
        rows = np.asarray(rows, dtype=np.intp)
        if (np.diff(rows) <= 0).any():
            raise ValueError("take: row positions must be strictly increasing")
        return MonthlyPanel(self.customer_ids[rows], self.start, self.spend[rows], self.orders[rows],
                            self.first_idx[rows], self.currency)

    def through(self, last: pd.Period) -> "MonthlyPanel":
        """The months up to and including ``last`` with every customer kept: one whose
        orders all fall later stays as a not-acquired row."""
        end = self.column(last) + 1
        orders = np.ascontiguousarray(self.orders[:, :end])
        return MonthlyPanel(self.customer_ids, self.start, np.ascontiguousarray(self.spend[:, :end]), orders,
                            first_order_column(orders), self.currency)

    def outcome(self, anchor: pd.Period) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(customer_ids, spend, orders) in the anchor month for that anchor's population."""
        self.check_anchor(anchor, needs_outcome=True)
        a = self.column(anchor)
        keep = self.first_idx < a
        return self.customer_ids[keep], self.spend[keep, a], self.orders[keep, a]

    def row_of(self, customer_id: str) -> int:
        """Row index of a customer id, or KeyError."""
        i = int(np.searchsorted(self.customer_ids, customer_id))
        if i >= len(self.customer_ids) or self.customer_ids[i] != customer_id:
            raise KeyError(customer_id)
        return i

    def histories(self, anchor: pd.Period, history_months: int = HISTORY_MONTHS) -> "HistoryBatch":
        return HistoryBatch.from_panel(self.before(anchor), anchor, history_months)


def build_panel(transactions: pd.DataFrame, currency: str,
                months: tuple[int, int] | None = None) -> MonthlyPanel:
    """Vectorised transactions -> :class:`MonthlyPanel`.

    ``transactions`` follows the contract: ``customer_id`` (str), ``ts`` (datetime64,
    tz-naive), ``amount`` (float), optional ``order_id``. ``months`` = (first month as
    months since 1970-01, number of months) fixes the columns (the chunked reader builds
    one panel per group of customers over the whole data's months); by default they run
    from the first to the last transaction.
    """
    if transactions.empty:
        raise EmptyData("no transactions to build a panel from")
    codes, uniques = pd.factorize(transactions["customer_id"], sort=True)
    ts = transactions["ts"].to_numpy(dtype="datetime64[ns]")
    if "order_id" in transactions.columns:
        order_key = pd.factorize(transactions["order_id"])[0].astype(np.int64)
    else:
        order_key = ts.astype("datetime64[D]").astype(np.int64)
    start_m, spend, orders = panel_cells(codes, len(uniques), ts.astype("datetime64[M]").astype(np.int64),
                                         transactions["amount"].to_numpy(dtype=np.float64), order_key, months)
    start_ordinal = 1970 * 12 + start_m
    return MonthlyPanel(
        customer_ids=np.asarray(uniques, dtype=object),
        start=start_ordinal,
        spend=spend,
        orders=orders,
        first_idx=first_order_column(orders),
        currency=currency,
    )


def panel_cells(codes: np.ndarray, n_cust: int, month: np.ndarray, amount: np.ndarray, order_key: np.ndarray,
                months: tuple[int, int] | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """(first month since 1970-01, spend, orders) from each row's customer code, month since
    1970-01, amount and order key (any int64 equal exactly for rows of one order): the core of
    :func:`build_panel`, which the chunked reader calls on integer-coded rows."""
    start_m = int(month.min()) if months is None else months[0]
    col = (month - start_m).astype(np.int64)
    n_months = int(col.max()) + 1 if months is None else months[1]
    flat = codes.astype(np.int64) * n_months + col
    spend = np.bincount(flat, weights=amount, minlength=n_cust * n_months)
    np.maximum(spend, 0.0, out=spend)  # the month's net amount floored at 0
    positive = amount > 0
    # one order per distinct (customer, month, day-or-order id) among purchases: an order id
    # that reappears in a later month counts there too, so no later row can move an order
    # out of an earlier month (which would change history before an anchor)
    # distinct (cell, key) pairs, each packed into one int64 and found by a sort (~30x faster
    # than DataFrame.drop_duplicates on 10M rows); cells * keys stays far below 2**63
    key = order_key[positive]
    if key.size:
        key = key - key.min()
    n_keys = int(key.max(initial=0)) + 1
    pairs = np.sort(flat[positive] * n_keys + key)
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if pairs.size else pairs  # none: a chunk of returns
    cells = pairs // n_keys  # sorted
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]]) if cells.size else np.zeros(0, np.intp)
    orders = np.zeros(n_cust * n_months, dtype=np.int32)
    orders[cells[starts]] = np.diff(np.r_[starts, cells.size])
    return start_m, spend.reshape(n_cust, n_months), orders.reshape(n_cust, n_months)


def first_order_column(orders: np.ndarray) -> np.ndarray:
    """Per customer, the column of the first month with an order (``NOT_ACQUIRED`` if none)."""
    has_order = orders > 0
    return np.where(has_order.any(axis=1), has_order.argmax(axis=1), NOT_ACQUIRED).astype(np.int32)


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """One customer's record as known at the start of ``anchor``.

    ``spend``/``orders`` cover ``window_start`` .. ``anchor - 1`` (at most H months, never
    before the first purchase). Lifetime figures cover every month before the anchor.
    """

    customer_id: str
    anchor: pd.Period
    first_month: pd.Period
    window_start: pd.Period
    spend: tuple[float, ...]
    orders: tuple[int, ...]
    last_purchase_month: pd.Period
    lifetime_spend: float
    lifetime_orders: int
    lifetime_active_months: int
    currency: str

    @property
    def months(self) -> list[pd.Period]:
        return [self.window_start + i for i in range(len(self.spend))]

    @property
    def tenure_months(self) -> int:
        """Months from the first purchase month to the anchor (1 = bought last month only)."""
        return month_ordinal(self.anchor) - month_ordinal(self.first_month)


@dataclass(frozen=True)
class HistoryBatch:
    """Histories of a whole anchor population as arrays (fast path for features/narratives).

    ``spend``/``orders`` are (n, H) with the last column = the month before the anchor;
    cells before the customer's first purchase (or before the data) are NaN / -1.
    """

    customer_ids: np.ndarray
    anchor: pd.Period
    history_months: int
    spend: np.ndarray
    orders: np.ndarray
    first_idx: np.ndarray  # column of first purchase in the cut panel
    panel_start: int  # month ordinal of the cut panel's column 0
    last_idx: np.ndarray  # column of the last month with an order
    lifetime_spend: np.ndarray
    lifetime_orders: np.ndarray
    lifetime_active_months: np.ndarray
    currency: str

    @classmethod
    def from_panel(cls, cut: MonthlyPanel, anchor: pd.Period, history_months: int) -> "HistoryBatch":
        if history_months < 1:
            raise ValueError("history months must be at least 1")
        a, h = cut.n_months, history_months
        n = len(cut.customer_ids)
        spend = np.full((n, h), np.nan)
        orders = np.full((n, h), -1, dtype=np.int32)
        take = min(a, h)
        spend[:, h - take :] = cut.spend[:, a - take :]
        orders[:, h - take :] = cut.orders[:, a - take :]
        window_col = np.arange(a - h, a)
        before_first = window_col[None, :] < cut.first_idx[:, None]
        spend[before_first] = np.nan
        orders[before_first] = -1
        has_order = cut.orders > 0
        last_idx = a - 1 - np.argmax(has_order[:, ::-1], axis=1)
        return cls(
            customer_ids=cut.customer_ids,
            anchor=anchor,
            history_months=h,
            spend=spend,
            orders=orders,
            first_idx=cut.first_idx,
            panel_start=cut.start,
            last_idx=last_idx,
            lifetime_spend=cut.spend.sum(axis=1),
            lifetime_orders=cut.orders.sum(axis=1),
            lifetime_active_months=has_order.sum(axis=1),
            currency=cut.currency,
        )

    def __len__(self) -> int:
        return len(self.customer_ids)

    def __iter__(self) -> Iterator[CustomerHistory]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> CustomerHistory:
        h = self.history_months
        a_ord = month_ordinal(self.anchor)
        first_ord = self.panel_start + int(self.first_idx[i])
        start_ord = max(first_ord, a_ord - h)
        k = a_ord - start_ord
        return CustomerHistory(
            customer_id=str(self.customer_ids[i]),
            anchor=self.anchor,
            first_month=ordinal_to_period(first_ord),
            window_start=ordinal_to_period(start_ord),
            spend=tuple(float(x) for x in self.spend[i, h - k :]),
            orders=tuple(int(x) for x in self.orders[i, h - k :]),
            last_purchase_month=ordinal_to_period(self.panel_start + int(self.last_idx[i])),
            lifetime_spend=float(self.lifetime_spend[i]),
            lifetime_orders=int(self.lifetime_orders[i]),
            lifetime_active_months=int(self.lifetime_active_months[i]),
            currency=self.currency,
        )

    def get(self, customer_id: str) -> CustomerHistory:
        """The history of one customer, or KeyError if not in this anchor's population."""
        i = int(np.searchsorted(self.customer_ids, customer_id))
        if i >= len(self.customer_ids) or self.customer_ids[i] != customer_id:
            raise KeyError(customer_id)
        return self[i]
