"""`forecaster batch`: forecast every customer for one anchor with a trained artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.errors import UserError
from forecaster.verbs.options import (AmountColOption, CurrencyOption, CustomerColOption, DataOption,
                                      DateColOption, OrderColOption, dataset_from_options)
from forecaster.verbs.provider_options import (BaseURLOption, CacheDirOption, ConcurrencyOption, LLMModelOption,
                                               YesOption, confirm_llm_cost, err)
from narrator.panel import parse_month


def batch(
    model: Annotated[Path, typer.Option("--model", help="Artifact folder written by `forecaster train`.")],
    out: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")],
    data: DataOption = "cdnow",
    customer_col: CustomerColOption = None, date_col: DateColOption = None, amount_col: AmountColOption = None,
    order_col: OrderColOption = None, currency: CurrencyOption = None,
    anchor: Annotated[str | None, typer.Option("--anchor", metavar="YYYY-MM",
                                               help="Month to forecast (default: the month after the data ends).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N customers.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate LLM calls, tokens and cost; send nothing.")] = False,
    llm_model: LLMModelOption = None, base_url: BaseURLOption = None, concurrency: ConcurrencyOption = 8,
    cache_dir: CacheDirOption = None, yes: YesOption = False,
) -> None:
    """One row per customer: the forecaster's answer and the trained model's distribution."""
    from forecaster import batch as batch_job  # heavy (xgboost): only when the verb runs

    if out.suffix.lower() not in (".parquet", ".csv"):
        raise UserError(f"--out {out}: use a .parquet or .csv file name")
    dataset = dataset_from_options(data, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                                   order_col=order_col, currency=currency)
    try:
        month = parse_month(anchor) if anchor else dataset.panel.last_month + 1
    except ValueError as exc:
        raise UserError(f"--anchor: {exc}") from exc
    job = batch_job.BatchJob.open(model, dataset, month, limit, llm_model, base_url, concurrency, cache_dir)
    if job.provider.llm_forecaster is not None:
        if dry_run:
            err.print(job.provider.llm_forecaster.dry_run(list(job.histories)).render())
            return
        confirm_llm_cost(job.provider, [job.histories], yes)
    elif dry_run:
        err.print("경험적 예측기는 LLM을 호출하지 않으므로 드라이런으로 추정할 호출·토큰·비용이 없습니다.")
        return
    frame = job.run(err)
    batch_job.write_atomically(frame, out)
    ok = int((frame["status"] == "ok").sum())
    err.print(f"{len(frame):,}명 중 {ok:,}명 예측 완료, 결과를 {out}에 썼습니다.")


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
