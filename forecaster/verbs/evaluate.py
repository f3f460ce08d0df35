"""`forecaster evaluate`: the offline backtest and its report (:func:`forecaster.api.evaluation.evaluate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster import destination
from forecaster.errors import LLMRunFailed
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from forecaster.verbs.provider_options import LLMRunOptions, ProviderOption, err


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
    llm_sample_customers: Annotated[int | None, typer.Option(
        "--llm-sample-customers", min=100,
        help="Run the LLM arms on a stratified sample of this many customers (the others on everyone); "
             "the detectable difference is printed before any call.")] = None,
    target_mde: Annotated[float | None, typer.Option(
        "--target-mde", min=0.0, metavar="RPS",
        help="Run the LLM arms on the smallest customer sample that can detect this RPS difference.")] = None,
    llm: LLMRunOptions = LLMRunOptions(),
) -> None:
    """Out-of-time backtest of every arm; writes report.html, report.md, metrics.json, predictions.parquet."""
    from forecaster.api.evaluation import evaluate as run  # heavy (xgboost, matplotlib): only when the verb runs

    destination.check_folder(out, destination.REPORT)  # before the data is loaded: a run can take minutes
    try:
        result = run(dataset_from_options(data), llm.choice(provider), test_anchors=test_anchors,
                     sample_customers=sample_customers, seed=seed, bootstrap=bootstrap, max_failed=llm.max_failed,
                     confirm=llm.consent(), llm_sample_customers=llm_sample_customers, target_mde=target_mde)
    except LLMRunFailed as exc:  # a report whose LLM arm stands on too many failures would compare it unfairly
        raise exc.saying(f"실패가 이만큼 많은 LLM 비교군은 공정하게 비교할 수 없어 보고서를 {out}에 쓰지 않았습니다.") from None
    paths = result.write_report(out)
    err.print(f"보고서를 {paths['report_html']}에 썼습니다.")
    print(paths["report_html"])


def register(app: typer.Typer) -> None:
    app.command("evaluate")(with_options(evaluate))
