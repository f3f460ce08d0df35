"""`forecaster explain CUSTOMER_ID --anchor YYYY-MM`: one customer's forecast explained in
Korean, from the same evidence `forecaster batch` uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from forecaster.errors import UserError
from forecaster.verbs.options import DataOptions, dataset_from_options, parse_anchor, with_options
from forecaster.verbs.provider_options import BaseURLOption, CacheDirOption, LLMModelOption, ProviderOption, err

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
    llm_model: LLMModelOption = None, base_url: BaseURLOption = None, cache_dir: CacheDirOption = None,
    output_format: Annotated[str, typer.Option("--format", metavar="text|json", help="text (rich, Korean) or json.")] = "text",
) -> None:
    """Explain one customer's forecast in Korean: narrative, forecaster answer, both models, top contributions."""
    # heavy imports (xgboost, scipy) only when the verb runs: `forecaster --help` stays fast
    from forecaster.customers import locate_customer
    from forecaster.explain.core import ensure_default_model, explain_customer
    from forecaster.explain.render import render
    from forecaster.providers import DEFAULT_PROVIDER, LLMOptions

    if output_format not in FORMATS:
        raise UserError(f"--format {output_format}: choose text or json")
    month = parse_anchor(anchor)
    if model is None and provider not in (None, DEFAULT_PROVIDER):  # the default model's provider
        raise UserError(f"--provider {provider} needs a model trained with it: run `forecaster train --provider "
                        f"{provider} --out DIR` and pass --model DIR")
    dataset = dataset_from_options(data)
    customer_id = locate_customer(dataset, customer_id, month)  # cheap checks before any training
    model_dir = model if model is not None else ensure_default_model(
        dataset.name, dataset.panel, lambda line: err.print(line, soft_wrap=True))
    result = explain_customer(dataset, model_dir, customer_id, month,
                              LLMOptions(model=llm_model, base_url=base_url, concurrency=1, cache_dir=cache_dir),
                              provider=provider, default_model=model is None)
    if output_format == "json":
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        render(result, Console(highlight=False, emoji=False, markup=False))


def register(app: typer.Typer) -> None:
    app.command("explain")(with_options(explain))
