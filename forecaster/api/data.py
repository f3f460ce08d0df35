"""Loading data and reading one customer's narrative: ``fc.load_dataset``,
``fc.load_transactions``, ``fc.narrate``. Loading applies exactly the command line's checks,
cleaning and partial-month rule (docs/data.md); its notices go through the progress hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from forecaster import datasets, progress
from forecaster.customers import customer_narrative
from forecaster.datasets import Dataset
from forecaster.dates import parse_anchor
from narrator.panel import HISTORY_MONTHS


def _announced(dataset: Dataset) -> Dataset:
    for line in dataset.notices:
        progress.notice(line)
    return dataset


def load_dataset(src: str | Path = "cdnow", *, customer: str | None = None, date: str | None = None,
                 amount: str | None = None, order: str | None = None, currency: str | None = None,
                 date_format: str | None = None, decimal_comma: bool = False, date_range: str | None = None,
                 data_end: str | None = None, keep_partial_month: bool = False,
                 chunk_rows: int | None = None) -> Dataset:
    """The dataset the command line's ``--data SRC`` names.

    Parameters:
        src: ``"cdnow"`` (bundled, USD), ``"synthetic"``, ``"synthetic:N"`` or
            ``"synthetic:N:SEED"`` (KRW, with the generator's latent parameters), or the path
            of a .csv / .parquet file of transactions, or of a folder of .parquet files.
        customer, date, amount, order: a file's column names (``--customer-col`` ...;
            default: ``customer_id``, ``ts``, ``amount``, or the one column matching a
            common alias such as ``고객번호``, ``주문일시``, ``결제금액``).
        currency: of a file's amounts (default KRW).
        date_format, decimal_comma, date_range, data_end, keep_partial_month: as the flags
            of the same names (docs/data.md).
        chunk_rows: read a file in chunks of this many rows (``--chunk-rows``; a folder or a
            file over 256 MB is read in chunks of 1,000,000 rows anyway): same Dataset,
            bounded memory.

    Returns: a :class:`Dataset` (``.summary()``, ``.panel``, ``.notices``).

    Raises: ``UserError`` naming the file, column and row of the problem.

    Example::

        cdnow = fc.load_dataset("cdnow")
        shop = fc.load_dataset("orders.csv", currency="KRW", data_end="2026-11-30")
    """
    return _announced(datasets.load_dataset(
        str(src), customer_col=customer, date_col=date, amount_col=amount, order_col=order, currency=currency,
        date_format=date_format, decimal_comma=decimal_comma, date_range=date_range, data_end=data_end,
        keep_partial_month=keep_partial_month, chunk_rows=chunk_rows))


def load_transactions(data: pd.DataFrame | Any | str | Path, *, customer: str | None = None,
                      date: str | None = None, amount: str | None = None, order: str | None = None,
                      currency: str | None = None, name: str = "transactions", date_format: str | None = None,
                      decimal_comma: bool = False, date_range: str | None = None, data_end: str | None = None,
                      keep_partial_month: bool = False) -> Dataset:
    """Transactions from a pandas DataFrame, a pyarrow Table or a file path, one row per
    purchase (negative amounts are returns), checked and cleaned exactly as a file given to
    ``--data`` is. Nothing is written to disk, and the frame given is not changed.

    Parameters: as :func:`load_dataset`; ``name`` is how messages and reports call an
    in-memory table.

    Returns: a :class:`Dataset`. Raises: ``UserError``.

    Example::

        orders = pd.DataFrame({"고객번호": ["A1", "A1", "B7"],
                               "주문일시": ["2026-01-03", "2026-02-11", "2026-01-20"],
                               "결제금액": ["12,300원", "8,000원", "45,000원"]})
        shop = fc.load_transactions(orders, currency="KRW")
    """
    if isinstance(data, (str, Path)):
        return load_dataset(data, customer=customer, date=date, amount=amount, order=order, currency=currency,
                            date_format=date_format, decimal_comma=decimal_comma, date_range=date_range,
                            data_end=data_end, keep_partial_month=keep_partial_month)
    return _announced(datasets.from_table(
        data, name=name, customer_col=customer, date_col=date, amount_col=amount, order_col=order,
        currency=currency, date_format=date_format, decimal_comma=decimal_comma, date_range=date_range,
        data_end=data_end, keep_partial_month=keep_partial_month))


def narrate(dataset: Dataset, customer_id: str, anchor: str | pd.Period, *, history_months: int = HISTORY_MONTHS,
            templates: str | Path | None = None) -> str:
    """The Korean narrative of one customer's months before ``anchor``, exactly as it would be
    sent to an LLM (nothing is sent).

    Parameters: ``customer_id`` (as the data writes it; ``145`` also finds ``00145``),
    ``anchor`` (``"YYYY-MM"``: the month to forecast), ``history_months`` (1-120),
    ``templates`` (a folder with your own ``narrative.j2``).

    Raises: ``UserError`` for an unknown customer, one without history before the anchor, or
    an anchor outside the data.

    Example::

        print(fc.narrate(cdnow, "00145", "1998-01"))
    """
    return customer_narrative(dataset, str(customer_id), parse_anchor(anchor), history_months,
                              Path(templates) if templates is not None else None)
