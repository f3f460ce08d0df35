"""What a dataset looks like, as `forecaster data` shows it: customers, transactions, months,
the share of customers buying per month and the quantiles of positive monthly spend.

The share of customers buying in a month is given two ways: of the customers acquired by
then (first purchase in or before that month; 100% in the very first month by definition)
and of every customer in the data. The CDNOW README's "33–41% in Jan–Mar 1997" is the
second (of all 23,570); from April 1997 on, every customer is acquired and both agree.

The overview and cleaning rows (:func:`overview_rows`, :func:`cleaning_rows`) are built
here once: the command line prints them as tables, ``Dataset.summary()`` returns them as a
frame and ``Dataset._repr_html_()`` shows that frame in a notebook.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecaster.coverage import MonthCoverage
from forecaster.datasets import Dataset
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
    first_day, last_day = dataset.time_range()
    positive = panel.spend[panel.spend > 0]
    values = np.quantile(positive, SPEND_QUANTILES) if positive.size else [np.nan] * len(SPEND_QUANTILES)
    return DataSummary(
        customers=len(panel.customer_ids),
        purchasing_customers=int((panel.first_idx != NOT_ACQUIRED).sum()),
        transactions=dataset.transaction_count(),
        first_day=first_day,
        last_day=last_day,
        months=panel.months,
        monthly=monthly_buying_share(panel),
        spend_quantiles=dict(zip(SPEND_QUANTILES, map(float, values))),
    )


def title(dataset: Dataset) -> str:
    """The heading of a dataset's description, e.g. ``데이터 cdnow (USD)``."""
    return f"데이터 {dataset.name} ({dataset.currency})"


def overview_rows(dataset: Dataset, summary: DataSummary) -> list[tuple[str, str]]:
    """The overview as ``(item, value)`` rows, the texts ``forecaster data`` prints.

    :param dataset: the dataset ``summary`` describes (for its currency and month coverage).
    :param summary: ``describe(dataset)``.
    :returns: customers, transactions, date range, months, first and last month coverage and
        the quantiles of positive monthly spend, in that order.

    Example: ``overview_rows(ds, describe(ds))[0]`` -> ``("고객 (customers)", "23,570명 (구매 기록 있음 23,502명)")``.
    """
    months = summary.months
    levels = "/".join(f"{q:.0%}".rstrip("%") for q in summary.spend_quantiles)
    amounts = " / ".join(format_amount(v, dataset.currency) for v in summary.spend_quantiles.values())
    coverage = dataset.coverage
    return [
        ("고객 (customers)", f"{summary.customers:,}명 (구매 기록 있음 {summary.purchasing_customers:,}명)"),
        ("거래 (transactions)", f"{summary.transactions:,}행"),
        ("기간 (date range)", f"{summary.first_day:%Y-%m-%d} ~ {summary.last_day:%Y-%m-%d}"),
        ("개월 (months)", f"{len(months)}개월 ({months[0]} ~ {months[-1]})"),
        ("첫 달 기록 (first month coverage)", _coverage_text(coverage.first, leading=True)),
        ("마지막 달 기록 (last month coverage)", _coverage_text(coverage.last, leading=False,
                                                           kept=coverage.keep_partial)),
        ("월 구매액 분위수 (positive monthly spend)", f"{amounts} ({levels}%)"),
    ]


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


def cleaning_rows(dataset: Dataset) -> list[tuple[str, str]]:
    """What loading did as ``(item, value)`` rows, the texts ``forecaster data`` prints.

    :param dataset: any dataset; its ``cleaning`` holds the counts.
    :returns: rows read, duplicates, rows without a customer id, returns and time zones, then
        the ``--date-range`` row when one was given and one row per loading note.

    Example: ``cleaning_rows(ds)[0]`` -> ``("읽은 행 (rows read)", "69,659")``.
    """
    c = dataset.cleaning
    returns = "없음"
    if c.return_rows:
        returns = (f"{c.return_rows:,}행, 합계 -{format_amount(-c.return_total, dataset.currency)} "
                   f"(월 순액에서 차감, 주문 수에는 불포함); 순액이 음수라 0으로 처리한 고객-월 "
                   f"{c.months_floored:,}개")
    zone = f"{c.timezone_rows_converted:,}행을 {c.timezone} 기준으로 변환" if c.timezone else "변환 없음"
    rows = [
        ("읽은 행 (rows read)", f"{c.rows_read:,}"),
        ("중복 행 제거 (duplicate rows dropped)", f"{c.duplicate_rows_dropped:,}"),
        ("고객 ID 없는 행 제거 (rows without customer id)", f"{c.null_customer_rows_dropped:,}"),
        ("반품·취소 (returns: negative amounts)", returns),
        ("시간대 (time zones)", zone),
    ]
    if c.date_range:
        rows.append(("기간 제한 (--date-range)", f"{c.date_range} 밖의 {c.date_range_rows_dropped:,}행 제외"))
    return rows + [("참고 (note)", note) for note in c.notes]


def summary_frame(dataset: Dataset) -> pd.DataFrame:
    """The overview and cleaning rows as one tidy frame: ``section`` (``overview`` or
    ``cleaning``), ``item`` and ``value``, the texts ``forecaster data`` prints.

    Example: ``summary_frame(ds).query("section == 'cleaning'")["item"].iloc[0]`` ->
    ``"읽은 행 (rows read)"``.
    """
    sections = {"overview": overview_rows(dataset, describe(dataset)), "cleaning": cleaning_rows(dataset)}
    records = [(section, item, value) for section, rows in sections.items() for item, value in rows]
    return pd.DataFrame(records, columns=["section", "item", "value"])


def summary_html(dataset: Dataset) -> str:
    """An HTML fragment for a notebook: the title as a heading, the notices as a list and the
    summary frame as a table; every text escaped (names and notes come from the user's data).

    Example: ``summary_html(ds)`` -> ``"<h4>데이터 cdnow (USD)</h4>\n<table ...>...</table>"``.
    """
    parts = [f"<h4>{html.escape(title(dataset))}</h4>"]
    if dataset.notices:
        items = "".join(f"<li>{html.escape(notice)}</li>" for notice in dataset.notices)
        parts.append(f"<ul>{items}</ul>")
    parts.append(summary_frame(dataset).to_html(index=False, escape=True))
    return "\n".join(parts)
