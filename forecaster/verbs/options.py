"""Options shared by the verbs, declared once and added to a verb as bundles.

A bundle is a frozen dataclass whose fields' annotations are the options (``typing.Annotated``
with a ``typer.Option``); :func:`with_options` turns a verb's bundle parameter into those
options and hands the verb the bundle back::

    @with_options
    def data(data: DataOptions = DataOptions()) -> None:
        dataset = dataset_from_options(data)

:class:`DataOptions` holds the data-selection options of every verb (``--data``, the column
names, ``--currency`` and the :class:`DateOptions`: ``--keep-partial-month``, ``--data-end``,
``--date-format``, ``--date-range``, ``--decimal-comma``). ``dataset_from_options`` prints
the dataset's notices (a partial month left out, the separator used...) on stderr, one line
each. :func:`forecaster.dates.parse_anchor` reads ``--anchor`` for every verb that takes one.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Annotated, Any, Callable, Iterator, get_type_hints

import typer

from forecaster.datasets import Dataset

_PANEL = "데이터 (data)"

DataOption = Annotated[
    str,
    typer.Option(
        "--data",
        metavar="SRC",
        help="cdnow (bundled, default), synthetic, synthetic:N or synthetic:N:SEED, "
        "or a path to a .csv / .parquet file of transactions or to a folder of .parquet files.",
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

ChunkRowsOption = Annotated[
    int | None,
    typer.Option(
        "--chunk-rows",
        metavar="N",
        help="Read a file in chunks of N rows (memory set by N and the panel, not the file); "
        "a folder of .parquet files or a file over 256 MB is read in chunks of 1,000,000 rows anyway.",
        rich_help_panel=_PANEL,
    ),
]


@dataclass(frozen=True)
class DateOptions:
    """The date and month options of every verb; each field's annotation is its option."""

    keep_partial_month: KeepPartialMonthOption = False
    data_end: DataEndOption = None
    date_format: DateFormatOption = None
    date_range: DateRangeOption = None
    decimal_comma: DecimalCommaOption = False


@dataclass(frozen=True)
class DataOptions:
    """The data-selection options of every verb; each field's annotation is its option."""

    data: DataOption = "cdnow"
    customer_col: CustomerColOption = None
    date_col: DateColOption = None
    amount_col: AmountColOption = None
    order_col: OrderColOption = None
    currency: CurrencyOption = None
    chunk_rows: ChunkRowsOption = None
    dates: DateOptions = field(default_factory=DateOptions)


DaskOption = Annotated[
    str | None,
    typer.Option(
        "--dask",
        metavar="ADDRESS",
        help="Build the panel (and score a batch) on a Dask cluster: tcp://HOST:PORT of a running scheduler, "
        "or local:N for N worker processes on this machine. Needs the dask extra; not with --provider llm.",
    ),
]


@contextlib.contextmanager
def engine(address: str | None) -> Iterator[Any]:
    """The Dask client ``--dask`` names (None without the option: dask is then never imported)."""
    if address is None:
        yield None
        return
    from forecaster import dask_engine

    with dask_engine.connect(address) as client:
        yield client


def _is_bundle(annotation: Any) -> bool:
    return isinstance(annotation, type) and is_dataclass(annotation)


def _options(bundle: type, kind: inspect._ParameterKind) -> list[inspect.Parameter]:
    """The bundle's fields as parameters, a nested bundle's fields in its place."""
    hints = get_type_hints(bundle, include_extras=True)
    params: list[inspect.Parameter] = []
    for f in fields(bundle):
        if _is_bundle(hints[f.name]):
            params += _options(hints[f.name], kind)
        else:
            params.append(inspect.Parameter(f.name, kind, default=f.default, annotation=hints[f.name]))
    return params


def _gather(bundle: type, values: dict[str, Any]) -> Any:
    """The bundle from the options among ``values`` (taken out of it); a missing one keeps its default."""
    hints = get_type_hints(bundle, include_extras=True)
    return bundle(**{f.name: _gather(hints[f.name], values) if _is_bundle(hints[f.name]) else values.pop(f.name)
                     for f in fields(bundle) if _is_bundle(hints[f.name]) or f.name in values})


def with_options(verb: Callable[..., Any]) -> Callable[..., Any]:
    """``verb`` as a Typer command whose every bundle parameter (a dataclass such as
    :class:`DataOptions`) becomes the bundle's options, in its place; the verb is called
    with the bundles."""
    signature = inspect.signature(verb, eval_str=True)  # real annotations: Typer reads them here
    bundles = {p.name: p.annotation for p in signature.parameters.values() if _is_bundle(p.annotation)}
    params = [q for p in signature.parameters.values()
              for q in (_options(p.annotation, p.kind) if p.name in bundles else [p])]

    @functools.wraps(verb)
    def command(*args: Any, **kwargs: Any) -> Any:
        chosen = {name: _gather(bundle, kwargs) for name, bundle in bundles.items()}
        return verb(*args, **chosen, **kwargs)

    command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    del command.__wrapped__  # Typer must read the new signature, not the verb's
    return command


def dataset_from_options(options: DataOptions, client: Any = None) -> Dataset:
    """The Dataset the data-selection options name (:func:`forecaster.api.data.load_dataset`;
    UserError on bad input); its notices go to the progress hook, one line each. With a Dask
    ``client`` (``--dask``) the panel is built on its cluster (:mod:`forecaster.dask_engine`)."""
    from forecaster.api.data import load_dataset

    dates = options.dates
    if client is not None:
        return _dask_dataset(options, client)
    return load_dataset(
        options.data,
        customer=options.customer_col,
        date=options.date_col,
        amount=options.amount_col,
        order=options.order_col,
        currency=options.currency,
        date_format=dates.date_format,
        decimal_comma=dates.decimal_comma,
        date_range=dates.date_range,
        data_end=dates.data_end,
        keep_partial_month=dates.keep_partial_month,
        chunk_rows=options.chunk_rows,
    )


def scan_from_options(options: DataOptions) -> Any:
    """The data the options name scanned into spill files
    (:func:`forecaster.ingest_chunked.open_scan`), or None when it is read whole."""
    from forecaster.ingest_chunked import open_scan

    dates = options.dates
    return open_scan(options.data, customer_col=options.customer_col, date_col=options.date_col,
                     amount_col=options.amount_col, order_col=options.order_col, currency=options.currency,
                     date_format=dates.date_format, decimal_comma=dates.decimal_comma, date_range=dates.date_range,
                     data_end=dates.data_end, keep_partial_month=dates.keep_partial_month,
                     chunk_rows=options.chunk_rows)


def _dask_dataset(options: DataOptions, client: Any) -> Dataset:
    from forecaster import progress

    dataset = dask_source(options, client)
    for line in dataset.notices:
        progress.notice(line)
    return dataset


def dask_source(options: DataOptions, client: Any, gathered: bool = True) -> Any:
    """The data the options name, read on the cluster of ``client``: the Dataset
    (:func:`forecaster.dask_engine.load_dataset`), or with ``gathered=False`` its rows
    shuffled by customer and left on the workers (:func:`forecaster.dask_engine.shuffled`)."""
    from forecaster import dask_engine
    from forecaster.errors import UserError

    if options.chunk_rows is not None:
        raise UserError("--chunk-rows sets the single-machine reader's chunks; with --dask the partitions of the "
                        "files set them: drop one of the two")
    dates = options.dates
    build = dask_engine.load_dataset if gathered else dask_engine.shuffled
    return build(client, options.data, customer=options.customer_col, date=options.date_col,
                 amount=options.amount_col, order=options.order_col, currency=options.currency,
                 date_format=dates.date_format, decimal_comma=dates.decimal_comma,
                 date_range=dates.date_range, data_end=dates.data_end, keep_partial_month=dates.keep_partial_month)
