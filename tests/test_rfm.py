"""Day-level RFM: lifetimes' ``summary_data_from_transaction_data`` on CDNOW exactly, the
conventions by hand, and (property-based) no leakage from the anchor day onwards; the
monthly-panel summary by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecaster.datasets import load_cdnow
from models.errors import InsufficientData
from models.rfm import DayRFM, day_level_rfm, monthly_rfm
from narrator.panel import build_panel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes 0.11.3 sets a pandas option pandas 3 deprecates
    from lifetimes.utils import summary_data_from_transaction_data

CDNOW_ANCHOR = pd.Period("1997-10", freq="M")  # calibration 1997-01-01 .. 1997-09-30, as published
ANCHOR = pd.Period("2021-03", freq="M")
FIELDS = ("customer_ids", "frequency", "recency", "T", "mean_value")


def _transactions(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    ids, stamps, amounts = zip(*rows)
    return pd.DataFrame({"customer_id": list(ids), "ts": pd.to_datetime(list(stamps)).astype("datetime64[ns]"),
                         "amount": list(amounts)})


def _assert_same(left: DayRFM, right: DayRFM) -> None:
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(left, field), getattr(right, field), err_msg=field)


def test_matches_lifetimes_summary_on_cdnow():
    tx = load_cdnow().transactions
    rfm = day_level_rfm(tx, CDNOW_ANCHOR)
    theirs = summary_data_from_transaction_data(
        tx, "customer_id", "ts", monetary_value_col="amount", observation_period_end="1997-09-30", freq="D",
    ).sort_index()
    assert len(rfm.customer_ids) == 23_570
    np.testing.assert_array_equal(rfm.customer_ids, theirs.index.to_numpy())
    np.testing.assert_array_equal(rfm.frequency, theirs["frequency"].to_numpy())
    np.testing.assert_array_equal(rfm.recency, theirs["recency"].to_numpy() / 7.0)
    np.testing.assert_array_equal(rfm.T, theirs["T"].to_numpy() / 7.0)
    # lifetimes writes 0 where there is no repeat purchase; same-day sums may differ in the last bit
    np.testing.assert_array_equal(np.isnan(rfm.mean_value), rfm.frequency == 0)
    np.testing.assert_allclose(np.nan_to_num(rfm.mean_value), theirs["monetary_value"].to_numpy(), rtol=1e-12)


def test_conventions_by_hand():
    tx = _transactions([
        ("A", "2021-01-04 09:00", 10.0), ("A", "2021-01-04 18:30", 5.0),  # one purchase day
        ("A", "2021-01-11 12:00", 30.0), ("A", "2021-01-11 13:00", -30.0),  # a return is not netted
        ("A", "2021-02-28 23:59", 0.0),  # a zero amount is a purchase (CDNOW's free CDs)
        ("A", "2021-03-01 00:00", 99.0),  # the anchor's first day: not seen
        ("B", "2021-02-28 10:00", 20.0),  # first purchase on the last observed day
        ("C", "2021-02-01 10:00", -15.0),  # only a return: not a customer yet
    ])
    rfm = day_level_rfm(tx, ANCHOR, unit_days=1.0)
    assert list(rfm.customer_ids) == ["A", "B"]
    np.testing.assert_array_equal(rfm.frequency, [2, 0])
    np.testing.assert_array_equal(rfm.recency, [55.0, 0.0])  # 2021-01-04 .. 2021-02-28
    np.testing.assert_array_equal(rfm.T, [55.0, 0.0])  # the last observed day is 2021-02-28
    np.testing.assert_array_equal(rfm.mean_value, [15.0, np.nan])  # (30 + 0) / 2 repeat days
    np.testing.assert_array_equal(day_level_rfm(tx, ANCHOR).T, [55.0 / 7, 0.0])  # weeks by default


def test_nothing_before_the_anchor_is_insufficient_data():
    tx = _transactions([("A", "2021-03-02", 10.0), ("B", "2021-02-10", -5.0)])
    with pytest.raises(InsufficientData, match="no purchase before 2021-03-01"):
        day_level_rfm(tx, ANCHOR)


def test_a_missing_column_is_named():
    with pytest.raises(ValueError, match="lack column.s. amount"):
        day_level_rfm(pd.DataFrame({"customer_id": ["A"], "ts": pd.to_datetime(["2021-01-01"])}), ANCHOR)


# ------------------------------------------------------------ monthly panel
def test_monthly_rfm_by_hand():
    tx = _transactions([
        ("A", "1997-01-05", 10.0), ("A", "1997-01-20", 5.0),  # first month: not repeat orders
        ("A", "1997-03-02", 30.0), ("A", "1997-03-15", 10.0),  # two repeat orders in March
        ("B", "1997-02-10", 20.0),
        ("C", "1997-04-01", 99.0),  # first purchase in the anchor month: not in the population
    ])
    rfm = monthly_rfm(build_panel(tx, "USD").before(pd.Period("1997-04", freq="M")))
    assert list(rfm.customer_ids) == ["A", "B"]
    np.testing.assert_array_equal(rfm.frequency, [2, 0])
    np.testing.assert_array_equal(rfm.recency, [1.5, 0.0])  # clock starts at the end of January: mid-March
    np.testing.assert_array_equal(rfm.T, [2.0, 1.0])  # February and March; March
    np.testing.assert_array_equal(rfm.mean_repeat_spend, [20.0, np.nan])  # $40 over 2 repeat orders



# ------------------------------------------------------------------- leakage
AMOUNTS = st.sampled_from([12.0, 29.3, 0.0, 0.5, -8.0, 9800.0])
CUSTOMERS = st.sampled_from(["A", "B", "C", "D"])
ANCHOR_DAY = ANCHOR.start_time


@st.composite
def _rows(draw, days: st.SearchStrategy[int]) -> tuple[str, pd.Timestamp, float]:
    stamp = ANCHOR_DAY + pd.Timedelta(days=draw(days), minutes=draw(st.integers(0, 24 * 60 - 1)))
    return draw(CUSTOMERS), stamp, draw(AMOUNTS)


def _frame(rows: list[tuple[str, pd.Timestamp, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).astype({"ts": "datetime64[ns]"})


@st.composite
def _log_and_future(draw) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A log with at least one purchase before the anchor, and the same log with rows on or
    after the anchor's first day (new or known customers, returns) interleaved into it."""
    past = [("A", ANCHOR_DAY - pd.Timedelta(days=30), 10.0)]
    past += draw(st.lists(_rows(st.integers(-60, -1)), max_size=15))
    future = draw(st.lists(_rows(st.integers(0, 45)), min_size=1, max_size=10))
    positions = sorted(draw(st.lists(st.integers(0, len(past)), min_size=len(future), max_size=len(future))))
    mixed = list(past)
    for offset, (position, row) in enumerate(zip(positions, future)):
        mixed.insert(position + offset, row)
    return _frame(past), _frame(mixed)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_log_and_future())
def test_rows_on_or_after_the_anchor_never_change_the_summary(case):
    past, with_future = case
    _assert_same(day_level_rfm(past, ANCHOR), day_level_rfm(with_future, ANCHOR))
