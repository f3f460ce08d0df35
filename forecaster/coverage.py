"""How much of its first and last calendar month the data covers, and the verdict.

An export cut off four hours into a month makes that month look like one in which almost
nobody bought. The panel therefore holds complete months only: a trailing month judged
partial is cut off the panel (every customer stays, see :meth:`MonthlyPanel.through`), so
test and validation anchors are complete months and batch's default anchor is the partial
month itself, whose rows never reach a feature. docs/data.md explains the rule:

- Covered time: from the month's start to the last timestamp (with date-only timestamps
  the last day counts as covered). The gap is what remains of the month.
- Verdict: with ``r`` the median daily order rate of the (up to 3) months before it, a
  complete month would show no order in a gap of ``g`` days with probability
  ``exp(-r * g)``; below ``PARTIAL_P`` (and with more than one day missing) the month is
  partial. A small shop (0.3 orders a
  day) whose last order fell on the 28th stays complete; a busy shop with nothing after
  04:12 on the 1st does not.
- ``--data-end DATE`` replaces the guess: the month holding DATE is partial unless DATE is
  its last day. ``--keep-partial-month`` keeps a partial month (and says so).
- The first month is judged the same way from its first timestamp and only reported:
  it is the acquisition month of many customers, and nothing is forecast for it.
- With one month, or fewer than ``MIN_EVIDENCE_ORDERS`` orders in the months compared
  with, there is no reliable rate: a quiet end is said to be undecided, not guessed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from narrator.korean import format_month, josa
from narrator.panel import MonthlyPanel, ordinal_to_period

PARTIAL_P = 0.01  # below this chance of the observed quiet end, the month is partial
RATE_MONTHS = 3  # months whose order rate the gap is judged against
# a month missing at most its last (first) day is complete enough (>= 96% of it): a quiet
# last day of a daily export is no evidence of a cut-off
MIN_GAP_DAYS = 1.0
# fewer orders than this in the months compared with give no reliable rate: a quiet end is
# then reported as undecided, not cut
MIN_EVIDENCE_ORDERS = 20
_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class MonthCoverage:
    """One edge month: what the records cover of it and whether it counts as complete."""

    month: pd.Period
    edge: pd.Timestamp  # first (leading month) or last (trailing month) recorded time
    share: float  # share of the month's time covered by the records
    partial: bool | None  # None: too few months to judge
    decided_by: str  # "activity", "data-end", "too-few-months" or "too-few-orders"
    date_only: bool  # timestamps carry no time of day
    rows: int = 0  # transactions in the month
    buyers: int = 0  # customers with an order in the month

    def edge_text(self) -> str:
        """``7월 1일 04:12`` (the day only for date-only data)."""
        day = f"{self.edge.month}월 {self.edge.day}일"
        return day if self.date_only else f"{day} {self.edge:%H:%M}"


@dataclass(frozen=True)
class Coverage:
    first: MonthCoverage
    last: MonthCoverage
    keep_partial: bool = False

    @property
    def dropped_month(self) -> pd.Period | None:
        """The trailing month cut off the panel, if any."""
        return self.last.month if self.last.partial and not self.keep_partial else None

    def apply(self, panel: MonthlyPanel) -> MonthlyPanel:
        """The panel of complete months (the full panel when nothing is dropped)."""
        dropped = self.dropped_month
        return panel if dropped is None else panel.through(dropped - 1)

    def notices(self) -> tuple[str, ...]:
        """One-line Korean notes every verb prints (nothing for complete edge months)."""
        last, lines = self.last, []
        if last.decided_by == "too-few-months":
            return (f"참고: 데이터가 {format_month(last.month)} 한 달뿐이라 그 달이 온전히 기록되었는지 "
                    f"판단할 수 없어 그대로 사용합니다 (내보낸 끝 날짜를 알면 --data-end).",)
        if last.decided_by == "too-few-orders":
            lines.append(f"참고: 마지막 달 {josa(format_month(last.month), '은/는')} {last.edge_text()}까지만 "
                         f"기록되어 있지만(한 달의 {last.share:.1%}) 앞선 달의 주문이 적어 불완전한 달인지 판단할 "
                         f"수 없어 그대로 사용합니다 (내보낸 끝 날짜를 알면 --data-end).")
        if self.first.partial:
            lines.append(f"참고: 첫 달 {josa(format_month(self.first.month), '은/는')} "
                         f"{self.first.edge_text()}부터 기록되어 있어(한 달의 {self.first.share:.1%}) 불완전한 "
                         f"달일 수 있지만, 첫 구매가 몰리는 달이라 그대로 두었습니다.")
        if last.partial:
            lines.append(self._trailing_notice())
        return tuple(lines)

    def _trailing_notice(self) -> str:
        last = self.last
        month = josa(format_month(last.month), "은/는")
        covered = f"{last.edge_text()}까지만 기록되어 있어(한 달의 {last.share:.1%})"
        affected = f"거래 {last.rows:,}행, 구매 고객 {last.buyers:,}명"
        if self.keep_partial:
            return (f"참고: 마지막 달 {month} {covered} 불완전해 보이지만 --keep-partial-month에 따라 "
                    f"온전한 달로 보고 포함했습니다 ({affected}).")
        reason = "--data-end에 따라 " if last.decided_by == "data-end" else ""
        return (f"참고: 마지막 달 {month} {covered} {reason}불완전한 달로 보고 패널에서 제외했습니다 "
                f"({affected}; 포함하려면 --keep-partial-month, 내보낸 끝 날짜를 알면 --data-end).")


def judge_coverage(panel: MonthlyPanel, ts: np.ndarray, *, data_end: pd.Timestamp | None = None,
                   keep_partial: bool = False) -> Coverage:
    """The coverage of ``panel``'s first and last month; ``ts`` are the transactions'
    timestamps (datetime64[ns]) the panel was built from."""
    ts = np.asarray(ts, dtype="datetime64[ns]")
    date_only = bool((ts.astype("datetime64[D]") == ts).all())
    last_start = ordinal_to_period(panel.start + panel.n_months - 1).to_timestamp().to_datetime64()
    times = TimeSummary(pd.Timestamp(ts.min()), pd.Timestamp(ts.max()), date_only, int((ts >= last_start).sum()))
    return judge_summary(MonthTotals.of(panel), times, data_end=data_end, keep_partial=keep_partial)


@dataclass(frozen=True)
class MonthTotals:
    """What the coverage rule reads of the panel: its months (``months``, a panel without
    customers), the orders in each (summed over the customers) and how many customers bought
    in the last one. Totals of groups of customers add up (``a + b``), so a batch made
    partition by partition judges the whole data's months."""

    months: MonthlyPanel
    orders: np.ndarray  # int64 per month
    last_buyers: int

    @classmethod
    def of(cls, panel: MonthlyPanel) -> "MonthTotals":
        return cls(panel.take(np.zeros(0, dtype=np.intp)), panel.orders.sum(axis=0, dtype=np.int64),
                   int((panel.orders[:, -1] > 0).sum()))

    def __add__(self, other: "MonthTotals") -> "MonthTotals":
        return MonthTotals(self.months, self.orders + other.orders, self.last_buyers + other.last_buyers)


@dataclass(frozen=True)
class TimeSummary:
    """What the coverage rule reads of the timestamps: their range, whether every one is a
    whole day, and the rows in the panel's last month (the chunked reader sums these over
    its chunks instead of holding every timestamp)."""

    first: pd.Timestamp
    last: pd.Timestamp
    date_only: bool
    last_month_rows: int


def judge_summary(panel: MonthTotals, times: TimeSummary, *, data_end: pd.Timestamp | None = None,
                  keep_partial: bool = False) -> Coverage:
    """:func:`judge_coverage` from the panel's :class:`MonthTotals` and a :class:`TimeSummary`
    of the timestamps."""
    first_ts, last_ts, date_only = times.first, times.last, times.date_only
    span = _Span(panel, first_ts, last_ts + (_DAY if date_only else pd.Timedelta(0)))
    trailing = MonthCoverage(panel.months.last_month, last_ts, span.share(panel.months.n_months - 1), None,
                             "too-few-months",
                             date_only, rows=times.last_month_rows, buyers=panel.last_buyers)
    last = _stated(trailing, span, data_end) if data_end is not None else _trailing(trailing, span)
    return Coverage(_leading(span, first_ts, date_only), last, keep_partial)


def _trailing(month: MonthCoverage, span: "_Span") -> MonthCoverage:
    """The last month judged by its quiet end against the months before it."""
    n = span.panel.months.n_months
    if n == 1:
        return month
    cols = range(max(0, n - 1 - RATE_MONTHS), n - 1)
    quiet = _implausibly_quiet(span.median_rate(cols), (span.start_of(n) - span.covered_end) / _DAY)
    if quiet and span.orders(cols) < MIN_EVIDENCE_ORDERS:
        return dataclasses.replace(month, decided_by="too-few-orders")
    return dataclasses.replace(month, partial=quiet, decided_by="activity")


def _stated(month: MonthCoverage, span: "_Span", data_end: pd.Timestamp) -> MonthCoverage:
    """The last month as ``--data-end`` says: partial when DATE falls in it before its last day."""
    if data_end.to_period("M") != month.month:  # the export runs past the data's last month
        return dataclasses.replace(month, partial=False, decided_by="data-end")
    stated = _Span(span.panel, span.covered_start, data_end + _DAY)
    return dataclasses.replace(month, edge=data_end, date_only=True, share=stated.share(span.panel.months.n_months - 1),
                               partial=stated.covered_end < stated.start_of(span.panel.months.n_months),
                               decided_by="data-end")


def _leading(span: "_Span", first_ts: pd.Timestamp, date_only: bool) -> MonthCoverage:
    """The first month judged by its quiet start against the months after it."""
    month, n = span.panel.months.first_month, span.panel.months.n_months
    if n == 1:
        return MonthCoverage(month, first_ts, span.share(0), None, "too-few-months", date_only)
    cols = range(1, min(n, 1 + RATE_MONTHS))
    quiet = _implausibly_quiet(span.median_rate(cols), (span.covered_start - span.start_of(0)) / _DAY)
    return MonthCoverage(month, first_ts, span.share(0), quiet and span.orders(cols) >= MIN_EVIDENCE_ORDERS,
                         "activity", date_only)


def _implausibly_quiet(rate: float, gap_days: float) -> bool:
    """True when a complete month would show no order in ``gap_days`` with a chance below
    PARTIAL_P (orders as a Poisson process at ``rate`` a day)."""
    return gap_days > MIN_GAP_DAYS and math.exp(-rate * gap_days) < PARTIAL_P


@dataclass(frozen=True)
class _Span:
    """The recorded time span over the panel's months."""

    panel: MonthTotals
    covered_start: pd.Timestamp
    covered_end: pd.Timestamp  # first instant not covered

    def start_of(self, col: int) -> pd.Timestamp:
        return ordinal_to_period(self.panel.months.start + col).to_timestamp()

    def covered_days(self, col: int) -> float:
        lo = max(self.start_of(col), self.covered_start)
        hi = min(self.start_of(col + 1), self.covered_end)
        return max((hi - lo) / _DAY, 0.0)

    def share(self, col: int) -> float:
        return self.covered_days(col) / ((self.start_of(col + 1) - self.start_of(col)) / _DAY)

    def orders(self, cols: range) -> int:
        return int(self.panel.orders[cols.start:cols.stop].sum())

    def median_rate(self, cols: range) -> float:
        """Median orders per covered day over ``cols`` (months without covered time skipped)."""
        orders = self.panel.orders
        rates = [orders[c] / days for c in cols if (days := self.covered_days(c)) > 0]
        return float(np.median(rates)) if rates else 0.0
