"""`forecaster train`: fit the models on every anchor with a known outcome (:func:`forecaster.api.model.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster import destination
from forecaster.errors import LLMRunFailed
from forecaster.verbs.options import DaskOption, DataOptions, dataset_from_options, engine, with_options
from forecaster.verbs.provider_options import LLMRunOptions, ProviderOption, err


def train(
    out: Annotated[Path, typer.Option(
        "--out", help="Artifact folder to write: new, empty, or an earlier model folder (replaced atomically).")],
    data: DataOptions = DataOptions(),
    provider: ProviderOption = "empirical",
    sample_customers: Annotated[int | None, typer.Option("--sample-customers", min=100)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    llm: LLMRunOptions = LLMRunOptions(),
    dask: DaskOption = None,
) -> None:
    """Fit the bucket scheme and the baseline and augmented XGBoost models; write an artifact folder."""
    from forecaster.api.model import train as fit  # heavy (xgboost): only when the verb runs

    destination.check_folder(out, destination.MODEL)  # before any data is loaded or anything trained
    if dask is not None:
        from forecaster.dask_engine import refuse_llm
        refuse_llm(provider)  # before a cluster is started
    # --dask builds the panel on the cluster; the models are fitted here, on --sample-customers
    with engine(dask) as client:
        dataset = dataset_from_options(data, client)
    try:
        model = fit(dataset, llm.choice(provider), sample_customers=sample_customers, seed=seed,
                    max_failed=llm.max_failed, confirm=llm.consent())
    except LLMRunFailed as exc:
        raise exc.saying(f"모델은 {out}에 저장하지 않았습니다.") from None
    model.save(out)
    recorded = f" (경고 {len(model.warnings_)}건은 config.json에도 기록했습니다)" if model.warnings_ else ""
    err.print(f"모델을 {out}에 저장했습니다{recorded}.", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train")(with_options(train))
