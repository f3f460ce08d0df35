"""`forecaster train`: fit the models on every anchor with a known outcome (:func:`forecaster.api.model.train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster import destination
from forecaster.errors import LLMRunFailed, UserError
from forecaster.verbs.options import DaskOption, DataOptions, dataset_from_options, engine, with_options
from forecaster.verbs.provider_options import LLMRunOptions, ProviderOption, err


DaskTrainingOption = Annotated[bool, typer.Option(
    "--dask-training",
    help="With --dask: fit every XGBoost model on the cluster with xgboost.dask, on every training row (the "
    "--sample-customers sample's, if given), for rows too many to train on here. Without it the models are "
    "fitted here, which is faster whenever the rows fit this machine.")]


def train(
    out: Annotated[Path, typer.Option(
        "--out", help="Artifact folder to write: new, empty, or an earlier model folder (replaced atomically).")],
    data: DataOptions = DataOptions(),
    provider: ProviderOption = "empirical",
    sample_customers: Annotated[int | None, typer.Option("--sample-customers", min=100)] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    llm: LLMRunOptions = LLMRunOptions(),
    dask: DaskOption = None,
    dask_training: DaskTrainingOption = False,
) -> None:
    """Fit the bucket scheme and the baseline and augmented XGBoost models; write an artifact folder."""
    from forecaster.api.model import train as fit  # heavy (xgboost): only when the verb runs

    if dask_training and dask is None:
        raise UserError("--dask-training fits the models on a Dask cluster: give it with --dask ADDRESS "
                        "(e.g. --dask local:2)")
    destination.check_folder(out, destination.MODEL)  # before any data is loaded or anything trained
    if dask is not None:
        from forecaster.dask_engine import refuse_llm
        refuse_llm(provider)  # before a cluster is started

    def fitted(dataset, client=None):
        try:
            return fit(dataset, llm.choice(provider), sample_customers=sample_customers, seed=seed,
                       max_failed=llm.max_failed, confirm=llm.consent(), dask_client=client)
        except LLMRunFailed as exc:
            raise exc.saying(f"모델은 {out}에 저장하지 않았습니다.") from None

    # --dask builds the panel on the cluster; the models are fitted here, on --sample-customers,
    # unless --dask-training fits them on the cluster too (forecaster/dask_train.py)
    with engine(dask) as client:
        dataset = dataset_from_options(data, client)
        model = fitted(dataset, client) if dask_training else None
    if model is None:  # without --dask-training the cluster is closed before the fit
        model = fitted(dataset)
    model.save(out)
    recorded = f" (경고 {len(model.warnings_)}건은 config.json에도 기록했습니다)" if model.warnings_ else ""
    err.print(f"모델을 {out}에 저장했습니다{recorded}.", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("train")(with_options(train))
