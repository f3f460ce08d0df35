"""`forecaster batch`: forecast every customer for one anchor with a trained artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.verbs.options import DataOptions, dataset_from_options, parse_anchor, with_options
from forecaster.verbs.provider_options import LLMRunOptions, check_failed_share, confirm_llm_cost, err

NOTHING_TO_ESTIMATE = "경험적 예측기는 LLM을 호출하지 않으므로 드라이런으로 추정할 호출·토큰·비용이 없습니다."


def batch(
    model: Annotated[Path, typer.Option("--model", help="Artifact folder written by `forecaster train`.")],
    out: Annotated[Path, typer.Option(
        "--out", help="Output file (.parquet or .csv; an existing file only with --force).")],
    data: DataOptions = DataOptions(),
    anchor: Annotated[str | None, typer.Option("--anchor", metavar="YYYY-MM",
                                               help="Month to forecast (default: the month after the data ends).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N customers of the data (by id).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate LLM calls, tokens and cost; send nothing.")] = False,
    llm: LLMRunOptions = LLMRunOptions(),
    force: Annotated[bool, typer.Option("--force", help="Replace --out if the file exists.")] = False,
) -> None:
    """One row per customer: the forecaster's answer and the trained model's distribution."""
    from forecaster import batch as batch_job  # heavy (xgboost): only when the verb runs
    from forecaster import model_warnings

    batch_job.check_output(out, force)  # before any data is loaded
    dataset = dataset_from_options(data)
    month = parse_anchor(anchor) if anchor else dataset.panel.last_month + 1
    job = batch_job.BatchJob.open(model, dataset, month, limit, llm.llm_model, llm.base_url, llm.concurrency,
                                  llm.cache_dir)
    if dry_run:
        estimate = job.provider.forecaster.dry_run(job.histories)
        err.print(NOTHING_TO_ESTIMATE if estimate is None else estimate.render())
        return
    confirm_llm_cost(job.provider, [job.histories], llm.yes)
    frame = job.run(err)
    batch_job.write_atomically(frame, out, force)
    err.print(f"{batch_job.status_counts(frame)}, 결과를 {out}에 썼습니다.", soft_wrap=True)
    for line in model_warnings.lines(job.art.config):
        err.print(line, style="bold red", soft_wrap=True, markup=False)
    # after writing: the rows were paid for (and their answers are cached), so they are kept
    check_failed_share(job.provider, llm.max_failed,
                       f"결과 {len(frame):,}행은 실패한 행(status failed)까지 {out}에 썼습니다.")


def register(app: typer.Typer) -> None:
    app.command("batch")(with_options(batch))
