"""`forecaster batch`: forecast every customer for one anchor with a trained artifact, in
chunks written to the file as they are made
(:meth:`forecaster.api.model.TrainedModel.write_predictions`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from forecaster.memory import DEFAULT_CHUNK_CUSTOMERS
from forecaster.verbs.options import (DaskOption, DataOptions, dask_source, dataset_from_options, engine,
                                      scan_from_options, with_options)
from forecaster.verbs.provider_options import LLMRunOptions, err

if TYPE_CHECKING:
    from forecaster.api.model import TrainedModel

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
    chunk_customers: Annotated[int, typer.Option(
        "--chunk-customers", min=1, help="Customers forecast and written at a time: memory grows with it, not with "
        "the data's customers. A killed run, rerun with the same arguments, resumes from the last finished chunk.")
    ] = DEFAULT_CHUNK_CUSTOMERS,
    dask: DaskOption = None,
) -> None:
    """One row per customer: the forecaster's answer and the trained model's distribution."""
    from forecaster import batch as batch_job  # heavy (xgboost): only when the verb runs
    from forecaster.api.model import TrainedModel
    from forecaster.dates import parse_anchor

    batch_job.check_output(out, force)  # before any data is loaded
    month = parse_anchor(anchor) if anchor else None  # a typo fails before the data is loaded
    trained = TrainedModel.load(model)  # a damaged or outdated model too: reading 100M rows took minutes
    if dask is not None:
        _batch_on_dask(dask, trained, out, data, month, limit, force, chunk_customers)
        return
    scan = None if dry_run or limit is not None else scan_from_options(data)
    if scan is not None:  # read in chunks: scored one spill file of customers at a time
        with scan:
            counts = trained.write_predictions_from_scan(
                scan, out, month, force=force, chunk_customers=chunk_customers,
                forecaster=llm.choice(trained.config_["forecaster"]["provider"]), max_failed=llm.max_failed,
                confirm=llm.consent())
        err.print(f"{batch_job.status_line(counts)}, 결과를 {out}에 썼습니다.", soft_wrap=True)
        return
    dataset = dataset_from_options(data)
    forecaster = llm.choice(trained.config_["forecaster"]["provider"])
    if dry_run:
        estimate = trained.dry_run(dataset, month, limit=limit, forecaster=forecaster)
        err.print(NOTHING_TO_ESTIMATE if estimate is None else estimate.render())
        return
    # the rows of a run with too many failed LLM forecasts are written before LLMRunFailed (they were paid for)
    counts = trained.write_predictions(dataset, out, month, force=force, chunk_customers=chunk_customers, limit=limit,
                                       forecaster=forecaster, max_failed=llm.max_failed, confirm=llm.consent())
    err.print(f"{batch_job.status_line(counts)}, 결과를 {out}에 썼습니다.", soft_wrap=True)


def _batch_on_dask(address: str, trained: "TrainedModel", out: Path, data: DataOptions, month, limit: int | None,
                   force: bool, chunk_customers: int) -> None:
    """The customers scored on the Dask cluster (empirical forecaster only), partition by
    partition where the rows stay (:mod:`forecaster.dask_batch`); with ``--limit`` the panel
    is gathered on the client and scored in chunks on the workers (:func:`forecaster.dask_engine.write_batch`)."""
    from forecaster import batch as batch_job
    from forecaster.dask_engine import refuse_llm

    refuse_llm(trained.config_["forecaster"]["provider"])  # before a cluster is started
    with engine(address) as client:
        if limit is None:
            from forecaster import dask_batch

            counts = dask_batch.write_batch(client, trained, dask_source(data, client, gathered=False), out, month,
                                            force=force, chunk_customers=chunk_customers)
        else:
            from forecaster.dask_engine import write_batch

            counts = write_batch(client, trained, dataset_from_options(data, client), out, month, force=force,
                                 chunk_customers=chunk_customers, limit=limit)
    err.print(f"{batch_job.status_line(counts)}, 결과를 {out}에 썼습니다.", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("batch")(with_options(batch))
