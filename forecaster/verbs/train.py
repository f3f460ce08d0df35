"""`forecaster train`: fit the models on every anchor with a known outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster import destination
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from forecaster.verbs.provider_options import (LLMRunOptions, ProviderOption, confirm_llm_cost, err,
                                               failure_checked, make_provider)


def train(
    out: Annotated[Path, typer.Option(
        "--out", help="Artifact folder to write: new, empty, or an earlier model folder (replaced atomically).")],
    data: DataOptions = DataOptions(),
    provider: ProviderOption = "empirical",
    sample_customers: Annotated[int | None, typer.Option("--sample-customers", min=100)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    llm: LLMRunOptions = LLMRunOptions(),
) -> None:
    """Fit the bucket scheme and the baseline and augmented XGBoost models; write an artifact folder."""
    from forecaster import artifact, model_warnings, pipeline  # heavy (xgboost): only when the verb runs

    destination.check_folder(out, destination.MODEL)  # before any data is loaded or anything trained
    dataset = dataset_from_options(data)
    panel = artifact.training_panel(dataset.panel, sample_customers, seed)
    scheme = artifact.training_scheme(panel)
    chosen = make_provider(provider, scheme, llm)
    confirm_llm_cost(chosen, (panel.histories(a) for a in pipeline.anchors_with_outcome(panel)), llm.yes)
    forecast_fn = failure_checked(chosen, llm.max_failed, f"모델은 {out}에 저장하지 않았습니다.")
    trained = artifact.train(panel, scheme, forecast_fn, chosen.info, dataset.name, out, seed)
    for arm, figures in trained.config["summary"].items():
        err.print(f"{arm}: 검증 RPS {figures['validation_rps']:.4f}, PR-AUC {figures['validation_pr_auc']:.3f}")
    warnings = model_warnings.lines(trained.config)
    for line in warnings:
        err.print(line, style="bold red", soft_wrap=True, markup=False)
    recorded = f" (경고 {len(warnings)}건은 config.json에도 기록했습니다)" if warnings else ""
    err.print(f"모델을 {out}에 저장했습니다{recorded}.", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train")(with_options(train))
