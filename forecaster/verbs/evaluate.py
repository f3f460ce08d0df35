"""`forecaster evaluate`: the offline backtest and its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from forecaster import destination
from forecaster.verbs.options import (AmountColOption, CurrencyOption, CustomerColOption, DataOption,
                                      DateColOption, DateOptions, OrderColOption, dataset_from_options,
                                      with_date_options)
from forecaster.verbs.provider_options import (DEFAULT_MAX_FAILED, BaseURLOption, CacheDirOption, ConcurrencyOption,
                                               LLMModelOption, MaxFailedOption, ProviderOption, YesOption,
                                               confirm_llm_cost, err, failure_checked, make_provider)
from llm.config import ENV_BASE_URL, ENV_API_KEY

if TYPE_CHECKING:
    from forecaster.evaluation import EvaluationSetup
    from models.evaluate import EvaluationResult

NO_ENDPOINT = "LLM 엔드포인트가 설정되지 않아 LLM 비교군은 실행하지 않았습니다."
NOT_ASKED = "--provider llm을 지정하지 않아 LLM 비교군은 실행하지 않았습니다."


def evaluate(
    out: Annotated[Path, typer.Option(
        "--out", help="Report folder: new, empty, or an earlier report (replaced at the end, never half-written).")],
    data: DataOption = "cdnow",
    customer_col: CustomerColOption = None, date_col: DateColOption = None, amount_col: AmountColOption = None,
    order_col: OrderColOption = None, currency: CurrencyOption = None,
    date_options: DateOptions = DateOptions(),
    provider: ProviderOption = "empirical",
    test_anchors: Annotated[str | None, typer.Option("--test-anchors", metavar="A..B",
                                                     help="Test anchor months (default: the last 3 with an outcome, fewer when the data is short).")] = None,
    sample_customers: Annotated[int | None, typer.Option("--sample-customers", min=100,
                                                         help="Stratified, seeded sample of customers.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=100, help="Bootstrap resamples.")] = 1000,
    llm_model: LLMModelOption = None, base_url: BaseURLOption = None, concurrency: ConcurrencyOption = 8,
    cache_dir: CacheDirOption = None, yes: YesOption = False, max_failed: MaxFailedOption = DEFAULT_MAX_FAILED,
) -> None:
    """Out-of-time backtest of every arm; writes report.html, report.md, metrics.json, predictions.parquet."""
    import os

    from forecaster import evaluation, pipeline  # heavy (xgboost, matplotlib): only when the verb runs

    destination.check_folder(out, destination.REPORT)  # before the data is loaded: a run can take minutes
    dataset = dataset_from_options(data, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                                   order_col=order_col, currency=currency,
                                   date_options=date_options)
    setup = evaluation.prepare(dataset, test_anchors, sample_customers, seed, bootstrap)
    for note in setup.notes:
        err.print(note, soft_wrap=True)
    chosen = make_provider(provider, setup.scheme, llm_model, base_url, concurrency, cache_dir)
    setup.provider, setup.model, setup.prompt_version = (chosen.info[k] for k in ("provider", "model", "prompt_version"))
    if chosen.is_llm:  # its arm is compared with the empirical forecaster beside it
        anchors = [a for a in pipeline.anchors_with_outcome(setup.panel) if a <= setup.test_anchors[-1]]
        confirm_llm_cost(chosen, [setup.panel.histories(a) for a in anchors], yes)
        empirical_fn = pipeline.empirical_forecast_fn(setup.scheme)
    else:
        configured = os.environ.get(ENV_BASE_URL) or os.environ.get(ENV_API_KEY)
        setup.arms_not_run["llm"] = NOT_ASKED if configured else NO_ENDPOINT
        empirical_fn = None
    # a report whose LLM arm stands on too many failed forecasts would compare it unfairly: refused
    forecast_fn = failure_checked(chosen, max_failed, f"실패가 이만큼 많은 LLM 비교군은 공정하게 비교할 수 없어 보고서를 "
                                                      f"{out}에 쓰지 않았습니다.")
    result = evaluation.run(setup, forecast_fn, progress=lambda msg: err.print(msg, style="dim"),
                            empirical_fn=empirical_fn)
    setup.ledger = None if chosen.forecaster.ledger is None else chosen.forecaster.ledger.summary()
    paths = write_report_folder(out, setup, result)
    if not result.metrics["data_sufficiency"]["can_answer"]:
        err.print(f"경고: {result.metrics['data_sufficiency']['reason']}", style="bold red", soft_wrap=True)
    err.print(f"보고서를 {paths['report_html']}에 썼습니다.")
    print(paths["report_html"])


def write_report_folder(out: Path, setup: EvaluationSetup, result: EvaluationResult) -> dict[str, Path]:
    """The report written into a temporary folder that atomically replaces ``out`` (a new or
    empty folder or an earlier report only); returns output name -> final path."""
    from forecaster.report.core import write_report

    def write(staging: Path) -> dict[str, Path]:
        return {key: path.relative_to(staging) for key, path in write_report(staging, setup, result).items()}

    written = destination.publish_folder(out, destination.REPORT, write)
    return {key: Path(out).absolute() / rel for key, rel in written.items()}


def register(app: typer.Typer) -> None:
    app.command("evaluate")(with_date_options(evaluate))
