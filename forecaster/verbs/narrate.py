"""``forecaster narrate CUSTOMER_ID --anchor YYYY-MM``: print the Korean narrative exactly as
it would be sent to the LLM (no LLM call; :func:`forecaster.api.data.narrate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.api.data import narrate as narrative_of
from forecaster.customers import MAX_HISTORY_MONTHS, check_history_months
from forecaster.dates import parse_anchor
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from narrator.panel import HISTORY_MONTHS


def narrate(
    customer_id: Annotated[str, typer.Argument(metavar="CUSTOMER_ID", help="The customer's id in the data.")],
    anchor: Annotated[
        str, typer.Option("--anchor", metavar="YYYY-MM", help="The month to forecast; history ends the month before.")
    ],
    data: DataOptions = DataOptions(),
    history_months: Annotated[
        int, typer.Option("--history-months", metavar="H", help=f"Months of history to narrate (1-{MAX_HISTORY_MONTHS}).")
    ] = HISTORY_MONTHS,
    templates: Annotated[
        Path | None, typer.Option("--templates", metavar="DIR", help="Folder with your own narrative.j2 (same variables).")
    ] = None,
) -> None:
    """Print a customer's Korean narrative exactly as it would be sent (no LLM call)."""
    month = parse_anchor(anchor)  # a typo fails before the data is loaded
    check_history_months(history_months)
    print(narrative_of(dataset_from_options(data), customer_id, month, history_months=history_months,
                       templates=templates))


def register(app: typer.Typer) -> None:
    app.command("narrate")(with_options(narrate))
