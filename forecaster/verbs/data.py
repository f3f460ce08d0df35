"""``forecaster data``: what the data looks like and what loading did to it.

The share of customers buying in a month is shown two ways: of the customers acquired by
then (first purchase in or before that month; 100% in the very first month by definition)
and of every customer in the data. The CDNOW README's "33–41% in Jan–Mar 1997" is the
second (of all 23,570); from April 1997 on, every customer is acquired and both agree.

The overview also shows how much of its first and last month the data covers and whether
the last month counts as complete (docs/data.md): the months, shares and quantiles are
those of the panel, which leaves a partial last month out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from forecaster.coverage import MonthCoverage
from forecaster.datasets import Dataset
from forecaster.verbs.options import (
    AmountColOption,
    CurrencyOption,
    CustomerColOption,
    DataOption,
    DateColOption,
    DateOptions,
    OrderColOption,
    dataset_from_options,
    with_date_options,
)
from narrator.korean import format_amount, format_month
from narrator.panel import NOT_ACQUIRED, MonthlyPanel

SPEND_QUANTILES = (0.25, 0.50, 0.75, 0.90)


@dataclass(frozen=True)
class DataSummary:
    customers: int
    purchasing_customers: int  # with at least one positive purchase
    transactions: int
    first_day: pd.Timestamp
    last_day: pd.Timestamp
    months: pd.PeriodIndex
    monthly: pd.DataFrame  # month, new, buyers, share_of_acquired, share_of_all
    spend_quantiles: dict[float, float]


def monthly_buying_share(panel: MonthlyPanel) -> pd.DataFrame:
    """Per month: new customers, buyers, and buyers as a share of the customers acquired
    by then and of every customer."""
    acquired = panel.first_idx != NOT_ACQUIRED
    new = np.bincount(panel.first_idx[acquired], minlength=panel.n_months)
    buyers = (panel.orders > 0).sum(axis=0)
    acquired_by_then = np.cumsum(new)
    return pd.DataFrame({
        "month": panel.months,
        "new": new,
        "buyers": buyers,
        "share_of_acquired": buyers / np.maximum(acquired_by_then, 1),
        "share_of_all": buyers / len(panel.customer_ids),
    })


def describe(dataset: Dataset) -> DataSummary:
    panel = dataset.panel
    ts = dataset.transactions["ts"]
    positive = panel.spend[panel.spend > 0]
    values = np.quantile(positive, SPEND_QUANTILES) if positive.size else [np.nan] * len(SPEND_QUANTILES)
    return DataSummary(
        customers=len(panel.customer_ids),
        purchasing_customers=int((panel.first_idx != NOT_ACQUIRED).sum()),
        transactions=len(dataset.transactions),
        first_day=ts.min(),
        last_day=ts.max(),
        months=panel.months,
        monthly=monthly_buying_share(panel),
        spend_quantiles=dict(zip(SPEND_QUANTILES, map(float, values))),
    )


def _overview_table(dataset: Dataset, summary: DataSummary) -> Table:
    table = Table(title=f"데이터 {dataset.name} ({dataset.currency})", show_header=False)
    table.add_column("항목", style="bold")
    table.add_column("값", overflow="fold")
    months = summary.months
    levels = "/".join(f"{q:.0%}".rstrip("%") for q in summary.spend_quantiles)
    amounts = " / ".join(format_amount(v, dataset.currency) for v in summary.spend_quantiles.values())
    quantiles = f"{amounts} ({levels}%)"
    table.add_row("고객 (customers)", f"{summary.customers:,}명 (구매 기록 있음 {summary.purchasing_customers:,}명)")
    table.add_row("거래 (transactions)", f"{summary.transactions:,}행")
    table.add_row("기간 (date range)", f"{summary.first_day:%Y-%m-%d} ~ {summary.last_day:%Y-%m-%d}")
    table.add_row("개월 (months)", f"{len(months)}개월 ({months[0]} ~ {months[-1]})")
    table.add_row("첫 달 기록 (first month coverage)", _coverage_text(dataset.coverage.first, leading=True))
    table.add_row("마지막 달 기록 (last month coverage)", _coverage_text(dataset.coverage.last, leading=False,
                                                                   kept=dataset.coverage.keep_partial))
    table.add_row("월 구매액 분위수 (positive monthly spend)", quantiles)
    return table


def _coverage_text(month: MonthCoverage, *, leading: bool, kept: bool = False) -> str:
    """``1998년 6월: 6월 30일까지 (100.0%), 온전한 달`` and the verdict's reason."""
    bound = "부터" if leading else "까지"
    covered = f"{format_month(month.month)}: {month.edge_text()}{bound} ({month.share:.1%})"
    if month.partial is None:
        return f"{covered}, 판단 보류 (비교할 달이나 주문이 적음), 그대로 사용"
    if not month.partial:
        return f"{covered}, 온전한 달"
    why = " (--data-end)" if month.decided_by == "data-end" else ""
    if leading:
        return f"{covered}, 불완전할 수 있음{why}, 그대로 사용 (첫 구매 달)"
    if kept:
        return f"{covered}, 불완전{why}, --keep-partial-month로 포함"
    return f"{covered}, 불완전{why} → 패널에서 제외 (거래 {month.rows:,}행, 구매 고객 {month.buyers:,}명)"


def _monthly_table(summary: DataSummary) -> Table:
    table = Table(title="월별 구매 고객 비율 (share of customers buying)")
    for name in ("month", "신규 (new)", "구매 (buyers)", "% of acquired so far", "% of all customers"):
        table.add_column(name, justify="right")
    for row in summary.monthly.itertuples(index=False):  # one row per month, not per transaction
        table.add_row(str(row.month), f"{row.new:,}", f"{row.buyers:,}",
                      f"{row.share_of_acquired:.1%}", f"{row.share_of_all:.1%}")
    return table


def _cleaning_table(dataset: Dataset) -> Table:
    c = dataset.cleaning
    table = Table(title="정리 내역 (cleaning)", show_header=False)
    table.add_column("항목", style="bold")
    table.add_column("값", overflow="fold")
    table.add_row("읽은 행 (rows read)", f"{c.rows_read:,}")
    table.add_row("중복 행 제거 (duplicate rows dropped)", f"{c.duplicate_rows_dropped:,}")
    table.add_row("고객 ID 없는 행 제거 (rows without customer id)", f"{c.null_customer_rows_dropped:,}")
    returns = "없음"
    if c.return_rows:
        returns = (f"{c.return_rows:,}행, 합계 -{format_amount(-c.return_total, dataset.currency)} "
                   f"(월 순액에서 차감, 주문 수에는 불포함); 순액이 음수라 0으로 처리한 고객-월 "
                   f"{c.months_floored:,}개")
    table.add_row("반품·취소 (returns: negative amounts)", returns)
    zone = f"{c.timezone_rows_converted:,}행을 {c.timezone} 기준으로 변환" if c.timezone else "변환 없음"
    table.add_row("시간대 (time zones)", zone)
    if c.date_range:
        table.add_row("기간 제한 (--date-range)", f"{c.date_range} 밖의 {c.date_range_rows_dropped:,}행 제외")
    for note in c.notes:
        table.add_row("참고 (note)", note)
    return table


def data(
    data: DataOption = "cdnow",
    customer_col: CustomerColOption = None,
    date_col: DateColOption = None,
    amount_col: AmountColOption = None,
    order_col: OrderColOption = None,
    currency: CurrencyOption = None,
    date_options: DateOptions = DateOptions(),
) -> None:
    """Describe the data: customers, transactions, months, share buying per month,
    quantiles of positive monthly spend, and what cleaning did."""
    dataset = dataset_from_options(data, customer_col=customer_col, date_col=date_col,
                                   amount_col=amount_col, order_col=order_col, currency=currency,
                                   date_options=date_options)
    summary = describe(dataset)
    console = Console()
    for table in (_overview_table(dataset, summary), _monthly_table(summary), _cleaning_table(dataset)):
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("data")(with_date_options(data))
