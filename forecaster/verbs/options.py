"""Data-selection options shared by every verb (data, narrate, train, batch, evaluate, explain).

Declared once as ``typing.Annotated`` constants so each verb spells them identically::

    def narrate(customer_id: str, data: DataOption = "cdnow",
                customer_col: CustomerColOption = None, date_col: DateColOption = None,
                amount_col: AmountColOption = None, order_col: OrderColOption = None,
                currency: CurrencyOption = None) -> None:
        dataset = dataset_from_options(data, customer_col=customer_col, date_col=date_col,
                                       amount_col=amount_col, order_col=order_col,
                                       currency=currency)

The options that choose dates and months (``--keep-partial-month``, ``--data-end``,
``--date-format``, ``--date-range``, ``--decimal-comma``) come as one :class:`DateOptions`
added to a verb by :func:`with_date_options`::

    @with_date_options
    def data(data: DataOption = "cdnow", ..., date_options: DateOptions = DateOptions()) -> None:
        dataset = dataset_from_options(data, ..., date_options=date_options)

``dataset_from_options`` prints the dataset's notices (a partial month left out, the
separator used...) on stderr, one line each.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, fields
from typing import Annotated, Any, Callable, get_type_hints

import typer
from rich.console import Console

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

KeepPartialMonthOption = Annotated[
    bool,
    typer.Option(
        "--keep-partial-month",
        help="Keep a last month the data covers only in part (by default it is left out of the panel).",
        rich_help_panel=_PANEL,
    ),
]
DataEndOption = Annotated[
    str | None,
    typer.Option(
        "--data-end",
        metavar="YYYY-MM-DD",
        help="The last day the export covers; its month is partial unless this is the month's last day.",
        rich_help_panel=_PANEL,
    ),
]
DateFormatOption = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        metavar="FMT",
        help="strptime format of every date in a user file, e.g. %d.%m.%Y or '%Y-%m-%d %H:%M'.",
        rich_help_panel=_PANEL,
    ),
]
DateRangeOption = Annotated[
    str | None,
    typer.Option(
        "--date-range",
        metavar="A..B",
        help="Keep only the rows from A to B (dates YYYY-MM-DD or months YYYY-MM; one side may be empty).",
        rich_help_panel=_PANEL,
    ),
]
DecimalCommaOption = Annotated[
    bool,
    typer.Option(
        "--decimal-comma",
        help="Amounts in a user file write 46,30 for 46.30 (and 1.234,56 for 1234.56).",
        rich_help_panel=_PANEL,
    ),
]


@dataclass(frozen=True)
class DateOptions:
    """The date and month options of every verb; each field's annotation is its option
    (see :func:`with_date_options`)."""

    keep_partial_month: KeepPartialMonthOption = False
    data_end: DataEndOption = None
    date_format: DateFormatOption = None
    date_range: DateRangeOption = None
    decimal_comma: DecimalCommaOption = False


def with_date_options(verb: Callable[..., Any]) -> Callable[..., Any]:
    """``verb`` (with a ``date_options: DateOptions`` parameter) as a Typer command that
    takes the DateOptions fields as separate options, declared once here."""
    signature = inspect.signature(verb, eval_str=True)  # real annotations: Typer reads them here
    params = [p for p in signature.parameters.values() if p.name != "date_options"]
    options = get_type_hints(DateOptions, include_extras=True)
    added = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=options[f.name])
             for f in fields(DateOptions)]

    @functools.wraps(verb)
    def command(*args: Any, **kwargs: Any) -> Any:
        chosen = DateOptions(**{f.name: kwargs.pop(f.name) for f in fields(DateOptions) if f.name in kwargs})
        return verb(*args, date_options=chosen, **kwargs)

    command.__signature__ = signature.replace(parameters=params + added)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params + added}
    del command.__wrapped__  # Typer must read the new signature, not the verb's
    return command


def dataset_from_options(
    data: str = "cdnow",
    *,
    customer_col: str | None = None,
    date_col: str | None = None,
    amount_col: str | None = None,
    order_col: str | None = None,
    currency: str | None = None,
    date_options: DateOptions = DateOptions(),
) -> Dataset:
    """The Dataset the data-selection options name (raises UserError on bad input); its
    notices go to stderr, one line each."""
    dataset = load_dataset(
        data,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        order_col=order_col,
        currency=currency,
        date_format=date_options.date_format,
        decimal_comma=date_options.decimal_comma,
        date_range=date_options.date_range,
        data_end=date_options.data_end,
        keep_partial_month=date_options.keep_partial_month,
    )
    notices = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
    for line in dataset.notices:
        notices.print(line)
    return dataset
