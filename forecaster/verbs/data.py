"""``forecaster data``: what the data looks like (:mod:`forecaster.data_summary`) and what
loading did to it.

The overview also shows how much of its first and last month the data covers and whether
the last month counts as complete (docs/data.md): the months, shares and quantiles are
those of the panel, which leaves a partial last month out.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from forecaster.data_summary import DataSummary, cleaning_rows, describe, overview_rows, title
from forecaster import memory
from forecaster.verbs.options import DaskOption, DataOptions, dataset_from_options, engine, with_options


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


def _memory_table(work: memory.Workload, estimates: dict[str, float], budget: int | None, stated: bool) -> Table:
    table = Table(title="예상 최대 메모리 (estimated peak memory)", show_header=False)
    table.add_column("항목", style="bold")
    table.add_column("값", overflow="fold")
    sample = f"--sample-customers {work.sample_customers:,}" if work.sample_customers else "전체 고객"
    notes = {"data": "데이터 읽기", "train": sample, "evaluate": sample,
             "batch": f"스필 파일 하나씩, --chunk-rows {work.chunk_rows:,}" if work.chunk_rows
             else f"--chunk-customers {work.chunk_customers:,}"}
    for verb, need in estimates.items():
        table.add_row(f"forecaster {verb}", f"{memory.size_text(need)} ({notes[verb]})")
    where = "--memory-limit" if stated else "사용 가능 (/proc/meminfo MemAvailable)"
    table.add_row("메모리 한도", f"{memory.size_text(budget)} ({where})" if budget else "알 수 없음 (/proc/meminfo 없음)")
    return table


def data(
    data: DataOptions = DataOptions(),
    memory_limit: Annotated[str | None, typer.Option(
        "--memory-limit", metavar="SIZE", help="Memory the runs may use, e.g. 8G (default: the machine's "
        "available memory); refused in one line when an estimate is above it.")] = None,
    sample_customers: Annotated[int | None, typer.Option(
        "--sample-customers", min=100, help="As you will pass to train/evaluate, for their estimate.")] = None,
    chunk_customers: Annotated[int, typer.Option(
        "--chunk-customers", min=1, help="As you will pass to batch, for its estimate.")] = memory.DEFAULT_CHUNK_CUSTOMERS,
    dask: DaskOption = None,
) -> None:
    """Describe the data: customers, transactions, months, share buying per month,
    quantiles of positive monthly spend, what cleaning did, and each verb's estimated
    peak memory (exit 2 when one would not fit)."""
    budget = memory.parse_size(memory_limit) if memory_limit is not None else None  # a typo fails before loading
    with engine(dask) as client:
        dataset = dataset_from_options(data, client)
    summary = describe(dataset)
    chunk_rows = (data.chunk_rows or memory.DEFAULT_CHUNK_ROWS) if dataset.ingested is not None else None
    work = memory.Workload(len(dataset.panel.customer_ids), dataset.panel.n_months, dataset.transaction_count(),
                           sample_customers, chunk_customers, chunk_rows)
    estimates = memory.estimate(work)
    stated = budget is not None
    budget = budget if stated else memory.available_bytes()
    console = Console()
    for table in (_rows_table(title(dataset), overview_rows(dataset, summary)), _monthly_table(summary),
                  _rows_table("정리 내역 (cleaning)", cleaning_rows(dataset)),
                  _memory_table(work, estimates, budget, stated)):
        console.print(table)
    if budget is not None:
        memory.check_fits(estimates, budget, work, stated)


def register(app: typer.Typer) -> None:
    app.command("data")(with_options(data))
