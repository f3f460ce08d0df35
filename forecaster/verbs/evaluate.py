"""`forecaster evaluate`: the offline backtest and its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from forecaster import destination
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from forecaster.verbs.provider_options import (LLMRunOptions, ProviderOption, confirm_llm_cost, err,
                                               failure_checked)

if TYPE_CHECKING:
    from forecaster.evaluation import EvaluationSetup
    from models.evaluate import EvaluationResult


def evaluate(
    out: Annotated[Path, typer.Option(
        "--out", help="Report folder: new, empty, or an earlier report (replaced at the end, never half-written).")],
    data: DataOptions = DataOptions(),
    provider: ProviderOption = "empirical",
    test_anchors: Annotated[str | None, typer.Option("--test-anchors", metavar="A..B",
                                                     help="Test anchor months (default: the last 3 with an outcome, fewer when the data is short).")] = None,
    sample_customers: Annotated[int | None, typer.Option("--sample-customers", min=100,
                                                         help="Stratified, seeded sample of customers.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=100, help="Bootstrap resamples.")] = 1000,
    llm: LLMRunOptions = LLMRunOptions(),
) -> None:
    """Out-of-time backtest of every arm; writes report.html, report.md, metrics.json, predictions.parquet."""
    from forecaster import evaluation  # heavy (xgboost, matplotlib): only when the verb runs

    destination.check_folder(out, destination.REPORT)  # before the data is loaded: a run can take minutes
    setup = evaluation.prepare(dataset_from_options(data), test_anchors, sample_customers, seed, bootstrap,
                               provider, llm.endpoint())
    for note in setup.notes:
        err.print(note, soft_wrap=True)
    confirm_llm_cost(setup.forecaster, setup.histories(), llm.yes)
    # a report whose LLM arm stands on too many failed forecasts would compare it unfairly: refused
    forecast_fn = failure_checked(setup.forecaster, llm.max_failed, f"실패가 이만큼 많은 LLM 비교군은 공정하게 비교할 수 "
                                                                    f"없어 보고서를 {out}에 쓰지 않았습니다.")
    result = evaluation.run(setup, forecast_fn, progress=lambda msg: err.print(msg, style="dim"))
    paths = write_report_folder(out, setup, result, setup.forecaster.ledger_summary())
    if not result.metrics["data_sufficiency"]["can_answer"]:
        err.print(f"경고: {result.metrics['data_sufficiency']['reason']}", style="bold red", soft_wrap=True)
    err.print(f"보고서를 {paths['report_html']}에 썼습니다.")
    print(paths["report_html"])


def write_report_folder(out: Path, setup: EvaluationSetup, result: EvaluationResult,
                        ledger: dict | None = None) -> dict[str, Path]:
    """The report written into a temporary folder that atomically replaces ``out`` (a new or
    empty folder or an earlier report only); returns output name -> final path. ``ledger``:
    the LLM usage of the run, when it asked one."""
    from forecaster.report.core import write_report

    def write(staging: Path) -> dict[str, Path]:
        return {key: path.relative_to(staging) for key, path in write_report(staging, setup, result, ledger).items()}

    written = destination.publish_folder(out, destination.REPORT, write)
    return {key: Path(out).absolute() / rel for key, rel in written.items()}


def register(app: typer.Typer) -> None:
    app.command("evaluate")(with_options(evaluate))
