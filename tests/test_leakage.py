"""The leakage firewall: nothing dated in the anchor month or later may change what is known
at that anchor — not the HistoryBatch arrays, not a CustomerHistory, not the narrative.

Property-based: hypothesis draws a small transaction log and an anchor, then changes,
adds and deletes transactions dated at or after the anchor (and shuffles the rows, since
nothing may depend on row order) and checks the anchor's view is identical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.features import baseline_features
from models.timing import PurchaseDays
from narrator.narrative import render_narratives
from narrator.panel import HistoryBatch, build_panel

START = pd.Period("1997-01", freq="M")
N_MONTHS = 12
CUSTOMERS = ["C-1", "C-2", "C-3", "C-4"]
NEW_CUSTOMERS = ["C-8", "C-9"]
ORDER_IDS = ["o1", "o2", "o3", "o4", "o5"]
AMOUNTS = st.sampled_from([12.0, 29.3, 0.5, 150.0, -8.0, 9800.0])


def _ts(month: int, day: int) -> pd.Timestamp:
    return (START + month).to_timestamp() + pd.Timedelta(days=day)


def _row(customer: str, month: int, day: int, amount: float, order: str) -> dict:
    return {"customer_id": customer, "ts": _ts(month, day), "amount": amount, "order_id": order}


@st.composite
def rows(draw, customers: list[str], months: st.SearchStrategy[int]) -> dict:
    return _row(
        draw(st.sampled_from(customers)), draw(months), draw(st.integers(0, 27)),
        draw(AMOUNTS), draw(st.sampled_from(ORDER_IDS)),
    )


@st.composite
def log_and_future_edit(draw) -> tuple[pd.DataFrame, pd.DataFrame, pd.Period]:
    """(original log, log after editing only rows dated >= anchor, anchor)."""
    a = draw(st.integers(2, N_MONTHS - 1))
    anchor = START + a
    past = draw(st.lists(rows(CUSTOMERS, st.integers(0, a - 1)), min_size=1, max_size=12))
    future = draw(st.lists(rows(CUSTOMERS + NEW_CUSTOMERS, st.integers(a, N_MONTHS - 1)), max_size=10))
    # a customer who buys in the month before the anchor keeps the anchor inside the data
    sentinel = [_row("C-0", a - 1, 3, 20.0, "s1")]

    edited = []
    for row in future:
        action = draw(st.sampled_from(["keep", "delete", "amount", "date", "order"]))
        if action == "delete":
            continue
        if action == "amount":
            row = {**row, "amount": draw(AMOUNTS)}
        elif action == "date":  # moved anywhere at or after the anchor (a first purchase too)
            row = {**row, "ts": _ts(draw(st.integers(a, N_MONTHS - 1)), draw(st.integers(0, 27)))}
        elif action == "order":
            row = {**row, "order_id": draw(st.sampled_from(ORDER_IDS))}
        edited.append(row)
    edited += draw(st.lists(rows(CUSTOMERS + NEW_CUSTOMERS, st.integers(a, N_MONTHS - 1)), max_size=6))

    original = pd.DataFrame(past + sentinel + future)
    changed = pd.DataFrame(past + sentinel + edited)
    # future rows land anywhere among the past ones; the past rows keep their own order (a
    # float sum depends on the order of its terms, which is not what is tested here)
    order = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(len(changed))
    n_past = len(past) + len(sentinel)
    order[order < n_past] = np.arange(n_past)
    return original, changed.iloc[order].reset_index(drop=True), anchor


def _batch(transactions: pd.DataFrame, anchor: pd.Period, with_orders: bool) -> HistoryBatch:
    if not with_orders:
        transactions = transactions.drop(columns="order_id")
    return build_panel(transactions, "USD").histories(anchor, history_months=6)


def _assert_same_view(before: HistoryBatch, after: HistoryBatch) -> None:
    np.testing.assert_array_equal(before.customer_ids, after.customer_ids)
    for name in ["spend", "orders", "lifetime_spend", "lifetime_orders", "lifetime_active_months"]:
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name), err_msg=name)
    first_before = before.panel_start + before.first_idx
    first_after = after.panel_start + after.first_idx
    np.testing.assert_array_equal(first_before, first_after)
    np.testing.assert_array_equal(before.panel_start + before.last_idx, after.panel_start + after.last_idx)
    assert list(before) == list(after)  # every CustomerHistory
    assert render_narratives(before) == render_narratives(after)


SETTINGS = settings(
    max_examples=100, deadline=None, database=None, report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(log_and_future_edit())
def test_future_edits_never_change_the_anchor_view_orders_by_day(case) -> None:
    original, changed, anchor = case
    _assert_same_view(_batch(original, anchor, False), _batch(changed, anchor, False))


@SETTINGS
@given(log_and_future_edit())
def test_future_edits_never_change_the_anchor_view_with_order_ids(case) -> None:
    """An order id may reappear after the anchor (and rows come in any order): the order
    still counts in the month of its earliest row."""
    original, changed, anchor = case
    _assert_same_view(_batch(original, anchor, True), _batch(changed, anchor, True))


def _baseline(transactions: pd.DataFrame, anchor: pd.Period):
    """Every baseline feature at ``anchor``: monthly, seasonal and day-level timing."""
    cut = build_panel(transactions, "USD").before(anchor)
    batch = HistoryBatch.from_panel(cut, anchor, 12)
    return baseline_features(batch, cut, PurchaseDays.from_transactions(transactions))


@SETTINGS
@given(log_and_future_edit())
def test_future_edits_never_change_a_baseline_feature(case) -> None:
    """The day-level timing features read transaction days, not the panel: the same
    firewall, checked on every baseline column at once."""
    original, changed, anchor = case
    pd.testing.assert_frame_equal(_baseline(original, anchor), _baseline(changed, anchor), check_exact=True)


def test_a_purchase_on_the_last_day_before_the_anchor_is_read_and_one_on_its_first_day_is_not() -> None:
    anchor = pd.Period("1997-06", freq="M")
    log = pd.DataFrame([_row("C-1", 0, 3, 20.0, "a"), _row("C-1", 4, 30, 15.0, "b")])  # 1997-05-31
    edge = _baseline(log, anchor).loc["C-1"]
    assert edge["days_since_last_purchase"] == 1 and edge["purchase_days_last14d"] == 1
    later = pd.concat([log, pd.DataFrame([_row("C-1", 5, 0, 99.0, "c")])], ignore_index=True)  # 1997-06-01
    pd.testing.assert_frame_equal(_baseline(log, anchor), _baseline(later, anchor), check_exact=True)


def test_customer_first_buying_at_or_after_the_anchor_is_excluded() -> None:
    anchor = pd.Period("1997-04", freq="M")
    log = pd.DataFrame([
        _row("C-1", 0, 3, 20.0, "a"),
        _row("C-1", 2, 3, 15.0, "b"),
        _row("C-2", 3, 0, 30.0, "c"),  # first purchase in the anchor month
        _row("C-3", 1, 5, -5.0, "d"),  # only a return before the anchor: not acquired
        _row("C-3", 5, 5, 40.0, "e"),
    ])
    batch = build_panel(log, "USD").histories(anchor)
    assert batch.customer_ids.tolist() == ["C-1"]

    # moving C-2's first purchase later, or C-1's later purchase, changes nothing at the anchor
    later = log.copy()
    later.loc[2, "ts"] = pd.Timestamp("1997-09-01")
    later.loc[4, "amount"] = 400.0
    _assert_same_view(batch, build_panel(later, "USD").histories(anchor))
