"""Data-selection options shared by every verb (data, narrate, train, batch, evaluate, explain).

Declared once as ``typing.Annotated`` constants so each verb spells them identically::

    def narrate(customer_id: str, data: DataOption = "cdnow",
                customer_col: CustomerColOption = None, date_col: DateColOption = None,
                amount_col: AmountColOption = None, order_col: OrderColOption = None,
                currency: CurrencyOption = None) -> None:
        dataset = dataset_from_options(data, customer_col=customer_col, date_col=date_col,
                                       amount_col=amount_col, order_col=order_col,
                                       currency=currency)
"""

from __future__ import annotations

from typing import Annotated

import typer

from forecaster.datasets import Dataset, load_dataset

_PANEL = "데이터 (data)"

DataOption = Annotated[
    str,
    typer.Option(
        "--data",
        metavar="SRC",
        help="cdnow (bundled, default), synthetic, synthetic:N or synthetic:N:SEED, "
        "or a path to a .csv / .parquet file of transactions.",
        rich_help_panel=_PANEL,
    ),
]
CustomerColOption = Annotated[
    str | None,
    typer.Option(
        "--customer-col",
        metavar="COL",
        help="Column of the customer id in a user file (default: customer_id).",
        rich_help_panel=_PANEL,
    ),
]
DateColOption = Annotated[
    str | None,
    typer.Option(
        "--date-col",
        metavar="COL",
        help="Column of the transaction date/time in a user file (default: ts).",
        rich_help_panel=_PANEL,
    ),
]
AmountColOption = Annotated[
    str | None,
    typer.Option(
        "--amount-col",
        metavar="COL",
        help="Column of the amount in a user file (default: amount; negative = return).",
        rich_help_panel=_PANEL,
    ),
]
OrderColOption = Annotated[
    str | None,
    typer.Option(
        "--order-col",
        metavar="COL",
        help="Optional basket/invoice id column; without it an order is a distinct day.",
        rich_help_panel=_PANEL,
    ),
]
CurrencyOption = Annotated[
    str | None,
    typer.Option(
        "--currency",
        metavar="CODE",
        help="Currency of the amounts, e.g. KRW or USD (default: KRW for user files).",
        rich_help_panel=_PANEL,
    ),
]


def dataset_from_options(
    data: str = "cdnow",
    *,
    customer_col: str | None = None,
    date_col: str | None = None,
    amount_col: str | None = None,
    order_col: str | None = None,
    currency: str | None = None,
) -> Dataset:
    """The Dataset the data-selection options name (raises UserError on bad input)."""
    return load_dataset(
        data,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        order_col=order_col,
        currency=currency,
    )
