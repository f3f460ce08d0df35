"""`forecaster train`: fit the models on every anchor with a known outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.verbs.options import (AmountColOption, CurrencyOption, CustomerColOption, DataOption,
                                      DateColOption, OrderColOption, dataset_from_options)
from forecaster.verbs.provider_options import (BaseURLOption, CacheDirOption, ConcurrencyOption, LLMModelOption,
                                               ProviderOption, YesOption, confirm_llm_cost, err, make_provider)


def train(
    out: Annotated[Path, typer.Option("--out", help="Artifact folder to write.")],
    data: DataOption = "cdnow",
    customer_col: CustomerColOption = None, date_col: DateColOption = None, amount_col: AmountColOption = None,
    order_col: OrderColOption = None, currency: CurrencyOption = None,
    provider: ProviderOption = "empirical",
    sample_customers: Annotated[int | None, typer.Option("--sample-customers", min=100)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    llm_model: LLMModelOption = None, base_url: BaseURLOption = None, concurrency: ConcurrencyOption = 8,
    cache_dir: CacheDirOption = None, yes: YesOption = False,
) -> None:
    """Fit the bucket scheme and the baseline and augmented XGBoost models; write an artifact folder."""
    from forecaster import artifact, pipeline  # heavy (xgboost): only when the verb runs

    dataset = dataset_from_options(data, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
                                   order_col=order_col, currency=currency)
    panel = dataset.panel
    if sample_customers is not None:
        panel = pipeline.sample_panel(panel, sample_customers, panel.last_month + 1, seed)
    scheme = artifact.training_scheme(panel)
    chosen = make_provider(provider, scheme, llm_model, base_url, concurrency, cache_dir)
    if provider == "llm":
        confirm_llm_cost(chosen, [panel.histories(a) for a in pipeline.anchors_with_outcome(panel)], yes)
    trained = artifact.train(panel, scheme, chosen.forecast_fn(), chosen.info, dataset.name, out, seed)
    summary = trained.config["summary"]
    for arm, figures in summary.items():
        err.print(f"{arm}: 검증 RPS {figures['validation_rps']:.4f}, PR-AUC {figures['validation_pr_auc']:.3f}")
    err.print(f"모델을 {out}에 저장했습니다.")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
