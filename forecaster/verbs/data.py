"""``forecaster data``: what the data looks like (:mod:`forecaster.data_summary`) and what
loading did to it.

The overview also shows how much of its first and last month the data covers and whether
the last month counts as complete (docs/data.md): the months, shares and quantiles are
those of the panel, which leaves a partial last month out.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from forecaster.coverage import MonthCoverage
from forecaster.data_summary import DataSummary, describe
from forecaster.datasets import Dataset
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from narrator.korean import format_amount, format_month


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


def data(data: DataOptions = DataOptions()) -> None:
    """Describe the data: customers, transactions, months, share buying per month,
    quantiles of positive monthly spend, and what cleaning did."""
    dataset = dataset_from_options(data)
    summary = describe(dataset)
    console = Console()
    for table in (_overview_table(dataset, summary), _monthly_table(summary), _cleaning_table(dataset)):
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("data")(with_options(data))
