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

from forecaster.data_summary import DataSummary, cleaning_rows, describe, overview_rows, title
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options


def _rows_table(heading: str, rows: list[tuple[str, str]]) -> Table:
    """A two-column table of ``(item, value)`` rows without a header line."""
    table = Table(title=heading, show_header=False)
    table.add_column("항목", style="bold")
    table.add_column("값", overflow="fold")
    for item, value in rows:
        table.add_row(item, value)
    return table


def _monthly_table(summary: DataSummary) -> Table:
    table = Table(title="월별 구매 고객 비율 (share of customers buying)")
    for name in ("month", "신규 (new)", "구매 (buyers)", "% of acquired so far", "% of all customers"):
        table.add_column(name, justify="right")
    for row in summary.monthly.itertuples(index=False):  # one row per month, not per transaction
        table.add_row(str(row.month), f"{row.new:,}", f"{row.buyers:,}",
                      f"{row.share_of_acquired:.1%}", f"{row.share_of_all:.1%}")
    return table


def data(data: DataOptions = DataOptions()) -> None:
    """Describe the data: customers, transactions, months, share buying per month,
    quantiles of positive monthly spend, and what cleaning did."""
    dataset = dataset_from_options(data)
    summary = describe(dataset)
    console = Console()
    for table in (_rows_table(title(dataset), overview_rows(dataset, summary)), _monthly_table(summary),
                  _rows_table("정리 내역 (cleaning)", cleaning_rows(dataset))):
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("data")(with_options(data))
