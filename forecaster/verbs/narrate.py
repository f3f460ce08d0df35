"""``forecaster narrate CUSTOMER_ID --anchor YYYY-MM``: print the Korean narrative exactly as
it would be sent to the LLM (no LLM call)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from forecaster.customers import locate_customer
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.verbs.options import (
    AmountColOption,
    CurrencyOption,
    CustomerColOption,
    DataOption,
    DateColOption,
    DateOptions,
    OrderColOption,
    dataset_from_options,
    with_date_options,
)
from narrator.narrative import NarrativeTemplateError, render_narrative
from narrator.panel import parse_month

DEFAULT_HISTORY_MONTHS = 12
# Ten years: a narrative longer than this is no use to a reader or an LLM, and the history
# arrays are customers x months (--history-months 100000 once allocated 17.5 GiB).
MAX_HISTORY_MONTHS = 120


def _parse_anchor(text: str | pd.Period) -> pd.Period:
    try:
        return parse_month(text)
    except ValueError:
        raise UserError(f"--anchor '{text}' is not a month of the form YYYY-MM (e.g. 1998-01)") from None


def _check_history_months(history_months: int) -> None:
    if not 1 <= history_months <= MAX_HISTORY_MONTHS:
        raise UserError(f"--history-months {history_months}: give a whole number of months from 1 to "
                        f"{MAX_HISTORY_MONTHS} (e.g. 12)")


def customer_narrative(
    dataset: Dataset,
    customer_id: str,
    anchor_text: str | pd.Period,
    history_months: int = DEFAULT_HISTORY_MONTHS,
    template_dir: Path | None = None,
) -> str:
    """The narrative of one customer at one anchor; UserError for anything the user can fix."""
    anchor = _parse_anchor(anchor_text)
    _check_history_months(history_months)
    found_id = locate_customer(dataset, customer_id, anchor)
    history = dataset.panel.histories(anchor, history_months).get(found_id)
    try:
        return render_narrative(history, template_dir)
    except NarrativeTemplateError as exc:
        raise UserError(f"--templates: {exc}") from None


def register(app: typer.Typer) -> None:
    @app.command("narrate")
    @with_date_options
    def narrate(
        customer_id: Annotated[str, typer.Argument(metavar="CUSTOMER_ID", help="The customer's id in the data.")],
        anchor: Annotated[
            str, typer.Option("--anchor", metavar="YYYY-MM", help="The month to forecast; history ends the month before.")
        ],
        data: DataOption = "cdnow",
        history_months: Annotated[
            int, typer.Option("--history-months", metavar="H",
                              help=f"Months of history to narrate (1-{MAX_HISTORY_MONTHS}).")
        ] = DEFAULT_HISTORY_MONTHS,
        templates: Annotated[
            Path | None,
            typer.Option("--templates", metavar="DIR", help="Folder with your own narrative.j2 (same variables)."),
        ] = None,
        customer_col: CustomerColOption = None,
        date_col: DateColOption = None,
        amount_col: AmountColOption = None,
        order_col: OrderColOption = None,
        currency: CurrencyOption = None,
        date_options: DateOptions = DateOptions(),
    ) -> None:
        """Print a customer's Korean narrative exactly as it would be sent (no LLM call)."""
        _parse_anchor(anchor)  # a typo fails before the data is loaded
        _check_history_months(history_months)
        dataset = dataset_from_options(
            data, customer_col=customer_col, date_col=date_col, amount_col=amount_col,
            order_col=order_col, currency=currency, date_options=date_options,
        )
        print(customer_narrative(dataset, customer_id, anchor, history_months, templates))
