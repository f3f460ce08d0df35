"""Day-level timing features (models/timing.py): a hand-worked log, a per-customer
reference on a synthetic shop at several anchors, and the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.datasets import load_dataset
from models.timing import PurchaseDays, timing_feature_names

ANCHOR = pd.Period("2023-03", "M")


def _log() -> pd.DataFrame:
    rows = [
        ("A", "2023-01-03", 10.0), ("A", "2023-01-09", 5.0), ("A", "2023-01-09 18:00", 7.0),  # one purchase day
        ("A", "2023-02-02", 20.0), ("A", "2023-02-20", 30.0), ("A", "2023-02-25", -30.0),  # a return: no day
        ("A", "2023-03-01", 99.0), ("A", "2023-04-11", 99.0),  # the anchor month and later: never read
        ("B", "2022-12-31", 40.0),  # one purchase day
        ("C", "2023-02-10", -5.0),  # only a return
    ]
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    tx["ts"] = pd.to_datetime(tx["ts"], format="ISO8601")
    return tx


def test_a_hand_worked_log():
    f = PurchaseDays.from_transactions(_log()).features(ANCHOR, np.array(["A", "B", "C", "D"]))
    assert list(f.columns) == timing_feature_names() and list(f.index) == ["A", "B", "C", "D"]
    a = f.loc["A"]
    # purchase days Jan 3, Jan 9, Feb 2, Feb 20; today = Mar 1; gaps 6, 24, 18
    assert a["days_since_last_purchase"] == 9 and a["last_gap_days"] == 18 and a["gap_mean_days"] == 16
    assert a["gap_cv"] == pytest.approx(math.sqrt(56) / 16)
    assert a["overdue_ratio"] == pytest.approx(9 / 16)
    assert a["purchase_days_last14d"] == 1 and a["purchase_days_last30d"] == 2  # Feb 20; Feb 2 and Feb 20
    assert a["purchase_days_last90d"] == a["purchase_days_last365d"] == 4
    assert a["spend_last30d"] == 50 and a["spend_last90d"] == 72
    b = f.loc["B"]
    assert b["days_since_last_purchase"] == 60 and b["purchase_days_last90d"] == 1 and b["spend_last90d"] == 40
    assert np.isnan([b["last_gap_days"], b["gap_mean_days"], b["gap_cv"], b["overdue_ratio"]]).all()
    for absent in ("C", "D"):  # no purchase day before the anchor: no timing, nothing counted
        row = f.loc[absent]
        assert np.isnan(row["days_since_last_purchase"]) and row["purchase_days_last365d"] == 0
        assert row["spend_last90d"] == 0


def _reference(tx: pd.DataFrame, anchor: pd.Period, customer: str) -> dict[str, float]:
    """The definitions of models/timing.py, one customer at a time with pandas."""
    today = anchor.start_time
    mine = tx[(tx["customer_id"] == customer) & (tx["ts"] < today) & (tx["amount"] >= 0)]
    daily = mine.groupby(mine["ts"].dt.normalize())["amount"].sum().sort_index()
    age = (today - daily.index).days.to_numpy()
    gaps = np.diff(daily.index.to_numpy()).astype("timedelta64[D]").astype(float)
    out = {"days_since_last_purchase": float(age.min()) if len(age) else np.nan,
           "last_gap_days": gaps[-1] if len(gaps) else np.nan,
           "gap_mean_days": gaps.mean() if len(gaps) else np.nan,
           "gap_cv": gaps.std() / gaps.mean() if len(gaps) >= 2 else np.nan}
    out["overdue_ratio"] = out["days_since_last_purchase"] / out["gap_mean_days"]
    for k in (14, 30, 90, 180, 365):
        out[f"purchase_days_last{k}d"] = float((age <= k).sum())
    for k in (30, 90):
        out[f"spend_last{k}d"] = float(daily.to_numpy()[age <= k].sum())
    return out


@pytest.mark.parametrize("anchor", ["2022-03", "2023-07", "2024-12"])
def test_every_feature_equals_a_per_customer_reference(anchor):
    tx = load_dataset("synthetic:150:3").transactions
    anchor = pd.Period(anchor, "M")
    ids = np.sort(tx["customer_id"].unique())
    got = PurchaseDays.from_transactions(tx).features(anchor, ids)
    expected = pd.DataFrame([_reference(tx, anchor, c) for c in ids], index=pd.Index(ids, name="customer_id"))
    pd.testing.assert_frame_equal(got, expected[timing_feature_names()], check_exact=False, rtol=1e-12)
