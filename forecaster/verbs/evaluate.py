"""`forecaster evaluate`: the offline backtest and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.verbs.options import (AmountColOption, CurrencyOption, CustomerColOption, DataOption,
                                      DateColOption, OrderColOption, dataset_from_options)
from forecaster.verbs.provider_options import (BaseURLOption, CacheDirOption, ConcurrencyOption, LLMModelOption,
                                               ProviderOption, YesOption, confirm_llm_cost, err, make_provider)
from llm.config import ENV_BASE_URL, ENV_API_KEY

NO_ENDPOINT = "LLM 엔드포인트가 설정되지 않아 LLM 비교군은 실행하지 않았습니다."
NOT_ASKED = "--provider llm을 지정하지 않아 LLM 비교군은 실행하지 않았습니다."


def evaluate(
    out: Annotated[Path, typer.Option("--out", help="Report folder (replaced at the end, never half-written).")],
    data: DataOption = "cdnow",
    customer_col: CustomerColOption = None, date_col: DateColOption = None, amount_col: AmountColOption = None,
    order_col: OrderColOption = None, currency: CurrencyOption = None,
    provider: ProviderOption = "empirical",
    test_anchors: Annotated[str | None, typer.Option("--test-anchors", metavar="A..B",
                                                     help="Test anchor months (default: the last 3 with an outcome).")] = None,
    sample_customers: Annotated[int | None, typer.Option("--sample-customers", min=100,
                                                         help="Stratified, seeded sample of customers.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=100, help="Bootstrap resamples.")] = 1000,
    llm_model: LLMModelOption = None, base_url: BaseURLOption = None, concurrency: ConcurrencyOption = 8,
    cache_dir: CacheDirOption = None, yes: YesOption = False,
) -> None:
    """Out-of-time backtest of every arm; writes report.html, report.md, metrics.json, predictions.parquet."""
    import os

    from forecaster import evaluation, pipeline  # heavy (xgboost, matplotlib): only when the verb runs
    from models.report import write_report

    dataset = dataset_from_options(data, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                                   order_col=order_col, currency=currency)
    setup = evaluation.prepare(dataset, test_anchors, sample_customers, seed, bootstrap)
    chosen = make_provider(provider, setup.scheme, llm_model, base_url, concurrency, cache_dir)
    setup.provider, setup.model, setup.prompt_version = (chosen.info[k] for k in ("provider", "model", "prompt_version"))
    if provider == "llm":
        anchors = [a for a in pipeline.anchors_with_outcome(setup.panel) if a <= setup.test_anchors[-1]]
        confirm_llm_cost(chosen, [setup.panel.histories(a) for a in anchors], yes)
        empirical_fn = pipeline.empirical_forecast_fn(setup.scheme)
    else:
        configured = os.environ.get(ENV_BASE_URL) or os.environ.get(ENV_API_KEY)
        setup.arms_not_run["llm"] = NOT_ASKED if configured else NO_ENDPOINT
        empirical_fn = None
    result = evaluation.run(setup, chosen.forecast_fn(), progress=lambda msg: err.print(msg, style="dim"),
                            empirical_fn=empirical_fn)
    setup.ledger = chosen.ledger
    paths = write_report(out, setup, result)
    err.print(f"보고서를 {paths['report_html']}에 썼습니다.")
    print(paths["report_html"])


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
