"""Customer histories -> short Korean narratives, rendered by a Jinja template.

The bundled template is ``prompts/narrative.j2`` (version ``prompts.NARRATIVE_VERSION``); a
user may pass a folder of their own holding a ``narrative.j2`` that uses the same variables.
Templates run in Jinja's ``SandboxedEnvironment`` (no access to private attributes or
unsafe callables), with ``StrictUndefined`` (a misspelt variable is an error, not an empty
string) and no autoescaping (the output is plain text).

Template variables (every amount is already formatted with the dataset's currency, every
month is already a Korean label such as ``1997년 7월``):

==========================  ====================================================================
``anchor_month``            the month being forecast (``1998년 1월``)
``first_month``             month of the first purchase
``tenure_months``           months from the first purchase month to the anchor month (int)
``window_months``           months shown in the record: up to H, never before the first purchase
``window_from_first``       True when the record starts at the first purchase month
``window_span``             label of the record's months (``1997년 2월~1998년 1월``)
``active_months``           months of the record with a purchase (int)
``lifetime_orders``         orders since the first purchase (int)
``lifetime_spend``          spend since the first purchase
``lifetime_active_months``  months with a purchase since the first purchase (int)
``average_order``           ``lifetime_spend / lifetime_orders``
``last_month``              month of the last purchase
``months_since_last``       anchor month minus last purchase month (1 = the month just before)
``trend``                   ``short`` (record of 3 months or fewer), ``none`` (no spend in
                            either part), ``up``, ``down`` or ``flat``: the mean monthly spend of
                            the last 3 months against that of the earlier months of the record,
                            ``up`` above ``TREND_RATIO`` times, ``down`` below 1/``TREND_RATIO``
``recent_months``           3 (the length of the recent part)
``recent_average``          mean monthly spend of the last 3 months
``earlier_months``          months of the record before those 3 (int, 0 when ``short``)
``earlier_average``         mean monthly spend of those earlier months
``months``                  the record, oldest first: ``(label, purchased, orders, spend)``
                            tuples (also ``m.label`` ...); a label is a month or a span of
                            consecutive months without purchase (``1997년 7월~10월``), naming
                            the year only on the first line and where the year changes
``currency``                the currency code (``USD``, ``KRW``)
==========================  ====================================================================

Filters: ``josa`` (``{{ last_month | josa('으로/로') }}``), ``particle`` (the particle
alone), ``amount``, ``month``, ``month_span`` (see :mod:`narrator.korean`). Nothing that identifies the customer is
given to the template.

The batch path computes every figure for the whole :class:`HistoryBatch` with numpy first
(each distinct amount is formatted once), so only the template rendering runs per customer.
There is one path: one customer (``forecaster narrate``, ``explain``, ``messages_for``) is
rendered as a batch of one (``render_distinct_narratives``, the dry run's path, renders each
distinct history of a batch once). A batch row holds H cells (NaN before the first purchase) where
that batch of one holds only the record's months, so no shown figure may depend on how many
cells were summed or in what order: every amount is first taken as whole minor units (won,
cents; ``np.rint``), sums are integer sums, and a mean (``average_order``, the two trend
averages) is formatted from its exact total and count, rounded once, half away from zero, to
the precision shown (``format_minor_amount``: a mean of 87.545 dollars reads 87.5달러);
the trend compares the exact means (one exactly ``TREND_RATIO`` times the other is ``flat``).
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple

import jinja2
import numpy as np
import pandas as pd
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment

from narrator.errors import NarratorError
from narrator.korean import format_minor_amount, format_month, format_month_span, install_filters, minor_unit_scale
from narrator.panel import CustomerHistory, HistoryBatch, month_ordinal, ordinal_to_period
from prompts import NARRATIVE_TEMPLATE, NARRATIVE_VERSION, template_dir_or_default, template_version

RECENT_MONTHS = 3
TREND_RATIO = Fraction(6, 5)  # a 20% change in mean monthly spend counts as a trend (exact)


class NarrativeTemplateError(NarratorError, ValueError):
    """A user's narrative template is missing, does not parse, or fails when rendered."""


class MonthLine(NamedTuple):
    """One line of the month-by-month record (a tuple: templates may unpack it, as the
    bundled one does because it is the fastest under the sandbox, or use ``m.label``)."""

    label: str
    purchased: bool
    orders: int
    spend: str


@lru_cache(maxsize=8)
def _environment(folder: Path) -> SandboxedEnvironment:
    environment = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install_filters(environment)
    return environment


def load_narrative_template(template_dir: Path | str | None = None) -> jinja2.Template:
    """The compiled ``narrative.j2`` of ``template_dir`` (default: the bundled one)."""
    folder = template_dir_or_default(template_dir)
    try:
        return _environment(folder).get_template(NARRATIVE_TEMPLATE)
    except jinja2.TemplateNotFound:
        raise NarrativeTemplateError(
            f"template folder {folder} has no {NARRATIVE_TEMPLATE}: add one or leave out the folder"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise NarrativeTemplateError(f"{exc.filename or NARRATIVE_TEMPLATE}, line {exc.lineno}: {exc.message}") from None


def narrative_version(template_dir: Path | str | None = None) -> str:
    """The version of the narrative wording in use (goes into cache keys and reports)."""
    return template_version(NARRATIVE_TEMPLATE, NARRATIVE_VERSION, template_dir)


def render_narrative(history: CustomerHistory, template_dir: Path | str | None = None) -> str:
    """The narrative of one customer: the batch path applied to a batch of one, so the
    text is the one ``render_narratives`` gives them in their whole anchor."""
    return render_narratives(_batch_of_one(history), template_dir)[0]


def render_narratives(batch: HistoryBatch, template_dir: Path | str | None = None) -> list[str]:
    """The narratives of a whole anchor population, in the batch's order."""
    template = load_narrative_template(template_dir)
    # ``Template.render`` copies the template's globals (a ChainMap) into a new dict for each
    # customer, and ``Template.new_context`` makes a set of their names (read only when a
    # template is imported as a module). Here the globals go into every row's variables as it
    # is made, and Jinja's ``new_context`` (which ``Template.new_context`` calls) takes the row
    # as is (``shared=True``): the same text for about half the CPU of rendering.
    contexts = _batch_contexts(batch, dict(template.globals))
    environment, name, blocks = template.environment, template.name, template.blocks
    root, concat = template.root_render_func, environment.concat
    try:
        return [concat(root(new_context(environment, name, blocks, context, True))) for context in contexts]
    except jinja2.TemplateError as exc:  # includes sandbox SecurityError and UndefinedError
        raise NarrativeTemplateError(f"{NARRATIVE_TEMPLATE} failed to render: {exc}") from None


def render_distinct_narratives(
    batch: HistoryBatch, template_dir: Path | str | None = None
) -> tuple[list[str], np.ndarray]:
    """Each distinct narrative of ``batch`` once, in order of first appearance, and for every
    row the index of its own: ``texts[codes[i]] == render_narratives(batch)[i]``.

    Rows with equal histories (every per-customer array but the id) get the same variables,
    so each is rendered once (at CDNOW's 17 anchors 56 % of the rows are distinct); different
    histories that read the same are merged after rendering.

    Example::

        texts, codes = render_distinct_narratives(panel.histories(pd.Period("1998-01", "M")))
    """
    rows, row_codes = _distinct_rows(batch)
    rendered = render_narratives(_take_rows(batch, rows), template_dir)
    first_of: dict[str, int] = {}  # a dict hashes the texts about 4 times faster than pd.factorize
    text_codes = np.fromiter((first_of.setdefault(text, len(first_of)) for text in rendered), dtype=np.intp,
                             count=len(rendered))
    return list(first_of), text_codes[row_codes]


def _per_customer_arrays(batch: HistoryBatch) -> dict[str, np.ndarray]:
    n = len(batch)
    values = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
    return {name: v for name, v in values.items() if isinstance(v, np.ndarray) and v.shape[:1] == (n,)}


def _distinct_rows(batch: HistoryBatch) -> tuple[np.ndarray, np.ndarray]:
    """(rows, codes): the first row of each distinct history, ascending, and for every row
    the position in ``rows`` of the one equal to it. Rows are compared on the bytes of every
    per-customer array but the id (two NaN cells are always equal: one bit pattern)."""
    n = len(batch)
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    parts = []
    for name, values in _per_customer_arrays(batch).items():
        if name == "customer_ids":  # nothing that identifies the customer reaches the template
            continue
        if values.dtype == object:
            values = pd.factorize(values.ravel())[0].reshape(values.shape)
        parts.append(np.ascontiguousarray(values).reshape(n, -1).view(np.uint8))
    keys = np.ascontiguousarray(np.hstack(parts))
    _, first, inverse = np.unique(keys.view(np.dtype((np.void, keys.shape[1]))).ravel(),
                                  return_index=True, return_inverse=True)
    order = np.argsort(first)  # the distinct rows in the batch's order
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    return first[order], position[inverse.ravel()]


def _take_rows(batch: HistoryBatch, rows: np.ndarray) -> HistoryBatch:
    return dataclasses.replace(batch, **{name: v[rows] for name, v in _per_customer_arrays(batch).items()})


def _batch_of_one(history: CustomerHistory) -> HistoryBatch:
    """A one-row batch whose window is exactly ``history``'s, so both paths share one code."""
    first_ord = month_ordinal(history.first_month)
    return HistoryBatch(
        customer_ids=np.array([history.customer_id], dtype=object),
        anchor=history.anchor,
        history_months=len(history.spend),
        spend=np.array([history.spend], dtype=np.float64),
        orders=np.array([history.orders], dtype=np.int32),
        first_idx=np.array([0], dtype=np.int32),
        panel_start=first_ord,
        last_idx=np.array([month_ordinal(history.last_purchase_month) - first_ord]),
        lifetime_spend=np.array([history.lifetime_spend]),
        lifetime_orders=np.array([history.lifetime_orders]),
        lifetime_active_months=np.array([history.lifetime_active_months]),
        currency=history.currency,
    )


def _minor_units(values: np.ndarray, currency: str, largest_factor: int = 1) -> np.ndarray:
    """Amounts as whole minor units (won, cents; NaN, a month before the first purchase, is
    0): every figure shown is computed from these integers, so sums are exact and do not
    depend on the order or the number of cells summed (a batch row has more cells than a
    one-customer window). int64 while sums and products of up to ``largest_factor`` times
    the largest amount fit in it, else Python ints (exact at any size; only absurd amounts)."""
    scaled = np.rint(np.nan_to_num(values) * minor_unit_scale(currency))
    if float(np.abs(scaled).max(initial=0.0)) * largest_factor < 2.0**62:
        return scaled.astype(np.int64)
    return np.array([int(v) for v in scaled.ravel().tolist()], dtype=object).reshape(scaled.shape)


def _format_amounts(totals: np.ndarray, counts: np.ndarray | int, currency: str) -> np.ndarray:
    """``totals / counts`` minor units formatted (see ``format_minor_amount``), each
    distinct (total, count) pair only once (hashing: far faster than np.unique here)."""
    total_codes, total_values = pd.factorize(totals.ravel())
    if np.ndim(counts) == 0:  # one count for every amount
        codes, distinct = total_codes, [(total, int(counts)) for total in total_values.tolist()]
    else:  # pairs keyed by their codes, which are small enough that this never overflows
        count_codes, count_values = pd.factorize(np.broadcast_to(counts, totals.shape).ravel())
        width, total_list, count_list = len(count_values), total_values.tolist(), count_values.tolist()
        codes, pairs = pd.factorize(total_codes.astype(np.int64) * width + count_codes)
        distinct = [(total_list[p // width], count_list[p % width]) for p in pairs.tolist()]
    texts = np.array([format_minor_amount(total, currency, count) for total, count in distinct], dtype=object)
    return texts[codes.reshape(totals.shape)]


def _month_labels(first_ordinal: int, last_ordinal: int) -> np.ndarray:
    """Korean labels of consecutive months, indexed by ``ordinal - first_ordinal``."""
    return np.array(
        [format_month(ordinal_to_period(o)) for o in range(first_ordinal, last_ordinal + 1)], dtype=object
    )


def _trend_factor(history_months: int) -> int:
    """How many times the largest amount the trend arithmetic on a row may reach: a sum of
    up to H cells times up to max(H, 3) months times the ratio's numerator."""
    return history_months * max(history_months, RECENT_MONTHS) * TREND_RATIO.numerator


def _trend_codes(minor: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, ...]:
    """(code, recent total, earlier months, earlier total) per row, totals in minor units
    (``minor`` from ``_minor_units`` with ``_trend_factor``); see the module docstring. The
    means are compared exactly, cross-multiplied as integers (recent / 3 > 6/5 x earlier / m
    <=>  5 m recent > 6 x 3 earlier), so a mean exactly TREND_RATIO times the other is
    ``flat`` and no code depends on how cells were summed."""
    recent_total = minor[:, -RECENT_MONTHS:].sum(axis=1)
    earlier_total = minor[:, :-RECENT_MONTHS].sum(axis=1)
    earlier_months = np.maximum(window - RECENT_MONTHS, 0)
    recent_side = recent_total * np.maximum(earlier_months, 1).astype(minor.dtype)  # recent mean x 3m
    earlier_side = earlier_total * RECENT_MONTHS  # earlier mean x 3m
    code = np.select(
        [
            window <= RECENT_MONTHS,
            (recent_total == 0) & (earlier_total == 0),
            recent_side * TREND_RATIO.denominator > earlier_side * TREND_RATIO.numerator,
            recent_side * TREND_RATIO.numerator < earlier_side * TREND_RATIO.denominator,
        ],
        ["short", "none", "up", "down"],
        default="flat",
    ).astype(object)
    return code, recent_total, earlier_months, earlier_total


@lru_cache(maxsize=64)
def _span_labels(first_ordinal: int, h: int, with_year: bool) -> np.ndarray:
    """(h, h) table: label of the months from column i to column j (j >= i) of a window of
    ``h`` months starting at month ``first_ordinal``."""
    periods = [ordinal_to_period(o) for o in range(first_ordinal, first_ordinal + h)]
    table = np.empty((h, h), dtype=object)
    for i in range(h):
        for j in range(i, h):
            table[i, j] = format_month_span(periods[i], periods[j], with_year=with_year)
    return table


def _record_lines(batch: HistoryBatch, minor: np.ndarray, window: np.ndarray) -> list[list[MonthLine]]:
    """The month-by-month record of every row, consecutive months without purchase merged.

    A line starts at the first month of the window, at every month with a purchase and at
    the month after one; it ends where the row's next line starts (or at the last month).
    A label names its year only on a row's first line and where the year changes, which
    saves about four tokens a line.
    """
    n, h = batch.spend.shape
    col = np.arange(h)
    first_col = (h - window)[:, None]
    in_window = col[None, :] >= first_col
    purchased = in_window & ((batch.orders > 0) | (batch.spend > 0))
    after_purchase = np.zeros_like(purchased)
    after_purchase[:, 1:] = purchased[:, :-1]
    row_start = col[None, :] == first_col
    starts = in_window & (purchased | after_purchase | row_start)

    rows, cols = np.nonzero(starts)  # row-major: each row's lines in month order
    ends = np.full_like(cols, h - 1)
    same_row = rows[1:] == rows[:-1]
    ends[:-1][same_row] = cols[1:][same_row] - 1
    first_ordinal = month_ordinal(batch.anchor) - h
    month_of_year = (first_ordinal + col) % 12  # 0 = January
    new_year = row_start[rows, cols] | (month_of_year[cols] == 0)
    labels = np.where(
        new_year,
        _span_labels(first_ordinal, h, True)[cols, ends],
        _span_labels(first_ordinal, h, False)[cols, ends],
    )
    bought = purchased[rows, cols]
    spend_text = _format_amounts(np.where(bought, minor[rows, cols], 0), 1, batch.currency)
    lines = [
        MonthLine(label, flag, count, text)
        for label, flag, count, text in zip(
            labels.tolist(), bought.tolist(), batch.orders[rows, cols].tolist(), spend_text.tolist()
        )
    ]
    bounds = np.searchsorted(rows, np.arange(n + 1)).tolist()
    return [lines[bounds[i] : bounds[i + 1]] for i in range(n)]


def _batch_contexts(batch: HistoryBatch, template_globals: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The template variables of every row, made as they are rendered (see the module
    docstring), after the template's globals (which a variable of the same name hides)."""
    n, h = batch.spend.shape
    if n == 0:
        return iter([])
    anchor_ord = month_ordinal(batch.anchor)
    first_ord = batch.panel_start + batch.first_idx.astype(np.int64)
    last_ord = batch.panel_start + batch.last_idx.astype(np.int64)
    window_start = np.maximum(first_ord, anchor_ord - h)
    window = anchor_ord - window_start

    label_base = int(first_ord.min())
    labels = _month_labels(label_base, anchor_ord)

    purchased = (batch.orders > 0) | (batch.spend > 0)
    minor = _minor_units(batch.spend, batch.currency, _trend_factor(h))
    trend, recent_total, earlier_months, earlier_total = _trend_codes(minor, window)
    lifetime_orders = batch.lifetime_orders.astype(np.int64)
    lifetime_total = _minor_units(batch.lifetime_spend, batch.currency)
    # each mean is formatted from its exact total and count (rounded once, see korean.py)
    amounts = _format_amounts(
        np.stack([lifetime_total, lifetime_total, recent_total, earlier_total]),
        np.stack([np.ones_like(lifetime_orders), np.maximum(lifetime_orders, 1),
                  np.full_like(lifetime_orders, RECENT_MONTHS), np.maximum(earlier_months, 1)]),
        batch.currency,
    )
    lines = _record_lines(batch, minor, window)

    columns = {
        "first_month": labels[first_ord - label_base],
        "tenure_months": anchor_ord - first_ord,
        "window_months": window,
        "window_from_first": window_start == first_ord,
        "window_span": _span_labels(anchor_ord - h, h, True)[h - window, h - 1],
        "active_months": purchased.sum(axis=1),
        "lifetime_orders": lifetime_orders,
        "lifetime_spend": amounts[0],
        "lifetime_active_months": batch.lifetime_active_months,
        "average_order": amounts[1],
        "last_month": labels[last_ord - label_base],
        "months_since_last": anchor_ord - last_ord,
        "trend": trend,
        "recent_average": amounts[2],
        "earlier_months": earlier_months,
        "earlier_average": amounts[3],
    }
    shared = {
        "anchor_month": format_month(batch.anchor),
        "recent_months": RECENT_MONTHS,
        "currency": batch.currency,
    }
    names = [*template_globals, *columns, "months", *shared]
    rows = zip(*map(repeat, template_globals.values()), *(np.asarray(values).tolist() for values in columns.values()),
               lines, *map(repeat, shared.values()))
    return map(dict, map(zip, repeat(names), rows))
