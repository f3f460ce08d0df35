"""The calendar decision (models/season.py): no raw month number, a population seasonal
index measured on earlier years instead.

The reason, shown: in a one-cohort shop with no seasonality at all, the raw calendar month
of a row is the cohort's age, so "April" looks like a strong month (all the 1997 Aprils
were young customers) — the index stays flat. On the seasonal synthetic shop it recovers
the generator's seasonality; on CDNOW (one cohort, 18 months) it is never measurable, so the
data cannot tell a season from the cohort's age and the feature is missing, not invented.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.datasets import load_dataset
from forecaster.synthetic import season_factors
from models.season import ORDERS_COLUMN, SEASON_COLUMN, SHIFT_COLUMN, SeasonContext, season_index, season_shift
from models.xgb import HurdleXGB
from narrator.panel import HistoryBatch, MonthlyPanel, month_ordinal

START = pd.Period("2021-01", "M")


def _one_cohort_without_season(n: int = 100_000, months: int = 36, decay: float = 0.93) -> MonthlyPanel:
    """Everyone buys in the first month; in month t the first ``n * 0.5 * decay**t`` buy."""
    buyers = np.floor(n * 0.5 * decay ** np.arange(months)).astype(int)
    buyers[0] = n
    spend = (np.arange(n)[:, None] < buyers[None, :]) * 10.0
    return MonthlyPanel(np.array([f"C{i:06d}" for i in range(n)]), month_ordinal(START), spend,
                        (spend > 0).astype(np.int32), np.zeros(n, dtype=np.int32), "KRW")


def test_one_cohort_the_raw_month_number_is_age_and_the_index_stays_flat():
    panel = _one_cohort_without_season()
    rates = (panel.spend[:, 1:] > 0).mean(axis=0)
    # the first year's months (Feb..Dec 2021): the later the calendar month, the lower the rate
    first_year = rates[:11]
    assert (np.diff(first_year) < 0).all() and first_year[0] / first_year[-1] > 2
    anchor = START + 35  # 2023-12: every calendar month has a full earlier year
    cut = panel.before(anchor)
    index = np.array([season_index(cut, pd.Period(f"2023-{m:02d}", "M")) for m in range(1, 13)])
    assert np.isfinite(index).all() and index.max() / index.min() < 1.01


def test_the_index_recovers_the_synthetic_shops_seasonality():
    panel = load_dataset("synthetic:3000:0").panel
    cut = panel.before(pd.Period("2024-12", "M"))
    index = [season_index(cut, pd.Period(f"2024-{m:02d}", "M")) for m in range(1, 13)]
    truth = season_factors(pd.Period("2023-01", "M"), 12)
    assert np.corrcoef(index, truth)[0, 1] > 0.8


@pytest.mark.parametrize("anchor", ["1997-10", "1998-01", "1998-04", "1998-05", "1998-06"])
def test_cdnow_cannot_tell_season_from_age_so_the_index_is_missing(anchor):
    panel = load_dataset("cdnow").panel
    anchor = pd.Period(anchor, "M")
    assert np.isnan(season_index(panel.before(anchor), anchor))


def test_only_months_before_the_anchor_are_read():
    panel = load_dataset("synthetic:400:1").panel
    anchor = pd.Period("2024-10", "M")
    changed = panel.spend.copy()
    changed[:, panel.column(anchor):] = 0.0  # the anchor month and later: nobody buys
    edited = MonthlyPanel(panel.customer_ids, panel.start, changed, (changed > 0).astype(np.int32),
                          panel.first_idx, panel.currency)
    assert season_index(panel.before(anchor), anchor) == season_index(edited.before(anchor), anchor)
    earlier = changed.copy()
    earlier[:, panel.column(anchor - 12)] = 0.0  # the same month a year before: it must matter
    edited_earlier = MonthlyPanel(panel.customer_ids, panel.start, earlier, (earlier > 0).astype(np.int32),
                                  panel.first_idx, panel.currency)
    assert season_index(edited_earlier.before(anchor), anchor) != season_index(panel.before(anchor), anchor)


def test_the_centred_index_is_not_biased_by_the_shops_decline():
    """The synthetic shop's customers die off month by month; a trailing 12-month mean is
    above every month's rate in such a population and put every index below 1. The centred
    average has the decline on both sides, so the twelve indices average about 1."""
    panel = load_dataset("synthetic:3000:0").panel
    cut = panel.before(pd.Period("2024-12", "M"))
    index = np.array([season_index(cut, pd.Period(f"2024-{m:02d}", "M")) for m in range(1, 13)])
    assert np.isfinite(index).all() and abs(index.mean() - 1) < 0.05


def _rows(n: int, index: float, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    rate = rng.gamma(1.0, 0.05, n)
    X = pd.DataFrame({"rate": rate, SEASON_COLUMN: index})
    bought = rng.random(n) < 1 - np.exp(-rate * (1.0 if np.isnan(index) else index))
    return X, np.where(bought, rng.integers(1, 3, n), 0)


def test_the_purchase_model_moves_with_a_season_its_trees_never_saw():
    """Training rows without an index (the data's first year) or at 1.0; a test month at 1.4:
    trees cannot extrapolate to it, the offset carries it into the log-odds."""
    rng = np.random.default_rng(0)
    (X1, y1), (X2, y2) = _rows(20_000, np.nan, rng), _rows(20_000, 1.0, rng)
    X, y = pd.concat([X1, X2], ignore_index=True), np.concatenate([y1, y2])
    Xv, yv = _rows(5_000, 1.0, rng)
    model = HurdleXGB(n_buckets=3).fit(X, y, Xv, yv)
    probe = pd.DataFrame({"rate": np.full(2, 0.05), SEASON_COLUMN: [1.0, 1.4]})
    p_plain, p_season = model.purchase_probability(probe)
    assert 1.3 < p_season / p_plain < 1.45
    contrib = model.purchase_contributions(probe)
    assert np.allclose(contrib.sum(axis=1), model.purchase_margin(probe), atol=1e-5)
    assert contrib[SEASON_COLUMN].iloc[1] - contrib[SEASON_COLUMN].iloc[0] == pytest.approx(np.log(1.4), abs=1e-5)


# -- the per-customer seasonal shift (the purchase model's offset) -----------------------------
def test_the_shift_is_log_season_for_a_rare_buyer_and_grows_with_the_rate():
    """logit(1 - exp(-lambda s)) - logit(1 - exp(-lambda)): log(s) as lambda -> 0, about
    lambda (s - 1) for a frequent buyer; 0 where the season is unknown."""
    rates = np.array([1e-4, 0.1, 0.5, 1.0, 3.0])
    shift = season_shift(rates, 1.3)
    assert shift[0] == pytest.approx(np.log(1.3), abs=1e-4)
    assert np.all(np.diff(shift) > 0)
    assert shift[-1] == pytest.approx(3.0 * 0.3, abs=0.05)
    assert np.all(season_shift(rates, 0.8) < 0)
    assert np.all(season_shift(rates, float("nan")) == 0)


def _season_columns(panel: MonthlyPanel, anchor: pd.Period) -> dict[str, np.ndarray]:
    cut = panel.before(anchor)
    batch = HistoryBatch.from_panel(cut, anchor, 12)
    return SeasonContext.from_cut(cut, anchor).columns(batch.lifetime_orders, batch.first_idx, batch.panel_start)


def _with_orders(panel: MonthlyPanel, orders: np.ndarray) -> MonthlyPanel:
    spend = np.where(orders > 0, np.maximum(panel.spend, 1.0), 0.0)
    return MonthlyPanel(panel.customer_ids, panel.start, spend, orders.astype(np.int32), panel.first_idx,
                        panel.currency)


def test_the_shift_reads_only_months_before_the_anchor():
    panel = load_dataset("synthetic:400:1").panel
    anchor = pd.Period("2024-11", "M")
    before = _season_columns(panel, anchor)
    assert np.isfinite(before[ORDERS_COLUMN]).all() and (before[SHIFT_COLUMN] > 0).all()  # November: a high season
    later = panel.orders.copy()
    later[:, panel.column(anchor):] = 5  # the anchor month and later: everyone orders 5 times
    for name, values in _season_columns(_with_orders(panel, later), anchor).items():
        assert np.array_equal(values, before[name])
    earlier = panel.orders.copy()
    earlier[:, panel.column(anchor - 12)] += 3  # last November: it must matter
    assert not np.array_equal(_season_columns(_with_orders(panel, earlier), anchor)[SHIFT_COLUMN],
                              before[SHIFT_COLUMN])


def test_the_order_rate_index_recovers_the_generators_season():
    """The order-rate index of November is about the generator's November factor over its
    centred yearly mean (1.28 for 2022 and 2023), and a frequent buyer's shift is larger than
    a rare buyer's."""
    panel = load_dataset("synthetic:3000:0").panel
    anchor = pd.Period("2024-11", "M")
    context = SeasonContext.from_cut(panel.before(anchor), anchor)
    assert context.factor == pytest.approx(1.28, abs=0.06)
    rates = context.rates(np.array([2, 40]), np.array([0, 0]), panel.start)
    assert rates[1] > rates[0]
    shift = context.columns(np.array([2, 40]), np.array([0, 0]), panel.start)[SHIFT_COLUMN]
    assert shift[1] > shift[0] > 0


def test_the_shift_is_the_offset_and_its_shap_share():
    """With a ``season_shift`` column the purchase model starts each row from it, and the
    contributions give it to that column (each row still sums to the margin)."""
    rng = np.random.default_rng(1)
    n = 20_000
    rate = rng.gamma(1.0, 0.3, n)
    X = pd.DataFrame({"rate": rate, SHIFT_COLUMN: 0.0})
    y = np.where(rng.random(n) < 1 - np.exp(-rate), rng.integers(1, 3, n), 0)
    model = HurdleXGB(n_buckets=3).fit(X.iloc[:15_000], y[:15_000], X.iloc[15_000:], y[15_000:])
    probe = pd.DataFrame({"rate": [0.3, 0.3], SHIFT_COLUMN: [0.0, 0.4]})
    margin = model.purchase_margin(probe)
    assert margin[1] - margin[0] == pytest.approx(0.4, abs=1e-5)
    contrib = model.purchase_contributions(probe)
    assert np.allclose(contrib.sum(axis=1), margin, atol=1e-5)
    assert contrib[SHIFT_COLUMN].iloc[1] - contrib[SHIFT_COLUMN].iloc[0] == pytest.approx(0.4, abs=1e-5)
