"""`forecaster explain CUSTOMER_ID --anchor YYYY-MM`: one customer's forecast explained in
Korean, from the same evidence `forecaster batch` uses
(:meth:`forecaster.api.model.TrainedModel.explain`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from forecaster.dates import parse_anchor
from forecaster.errors import UserError
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from forecaster.verbs.provider_options import LLMEndpointOptions, ProviderOption

FORMATS = ("text", "json")


def explain(
    customer_id: Annotated[str, typer.Argument(metavar="CUSTOMER_ID", help="The customer's id in the data.")],
    anchor: Annotated[str, typer.Option("--anchor", metavar="YYYY-MM",
                                        help="Month to forecast: a past month of the data or the month after it ends.")],
    model: Annotated[Path | None, typer.Option(
        "--model", metavar="DIR",
        help="Artifact folder written by `forecaster train` (default: train and cache a default model).")] = None,
    data: DataOptions = DataOptions(),
    provider: ProviderOption = None,
    llm: LLMEndpointOptions = LLMEndpointOptions(),
    output_format: Annotated[str, typer.Option("--format", metavar="text|json", help="text (rich, Korean) or json.")] = "text",
) -> None:
    """Explain one customer's forecast in Korean: narrative, forecaster answer, both models, top contributions."""
    # heavy imports (xgboost, scipy) only when the verb runs: `forecaster --help` stays fast
    from forecaster.api.model import TrainedModel, default_model
    from forecaster.customers import locate_customer
    from forecaster.explain.render import render
    from forecaster.providers import DEFAULT_PROVIDER

    if output_format not in FORMATS:
        raise UserError(f"--format {output_format}: choose text or json")
    month = parse_anchor(anchor)
    if model is None and provider not in (None, DEFAULT_PROVIDER):  # the default model's provider
        raise UserError(f"--provider {provider} needs a model trained with it: run `forecaster train --provider "
                        f"{provider} --out DIR` and pass --model DIR")
    given = TrainedModel.load(model) if model is not None else None  # a damaged model before the data is read
    dataset = dataset_from_options(data)
    locate_customer(dataset, customer_id, month)  # cheap checks before any training
    trained = given if given is not None else default_model(dataset)
    chosen = llm.choice(provider or trained.config_["forecaster"]["provider"])
    result = trained.explain(dataset, customer_id, month, forecaster=chosen)
    if output_format == "json":
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        render(result, Console(highlight=False, emoji=False, markup=False))


def register(app: typer.Typer) -> None:
    app.command("explain")(with_options(explain))
