"""The season-aware repeat-purchase model (models/repeat.py): its population summary adds
exactly over any split of the customers, its fit recovers the parameters of data drawn from
the model, and a customer's probability reads no month at or after the anchor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.datasets import load_dataset
from models.repeat import REPEAT_COLUMN, RepeatContext, RepeatSummary
from models.season import SeasonContext
from narrator.panel import HistoryBatch, MonthlyPanel, month_ordinal
from test_season import _with_orders

START = pd.Period("2021-01", "M")


def _drawn(n: int, months: int, theta: tuple[float, float, float, float], seed: int = 0) -> MonthlyPanel:
    """Customers acquired over the first 12 months, then exactly the model at season 1."""
    r, alpha, a, b = theta
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 12, n)
    rate = rng.gamma(r, 1.0 / alpha, n)
    death = first + rng.geometric(rng.beta(a, b, n))
    col = np.arange(months)[None, :]
    alive = (col >= first[:, None]) & (col < death[:, None])
    orders = np.where(alive, rng.poisson(rate[:, None], (n, months)), 0) + (col == first[:, None])
    return MonthlyPanel(np.array([f"C{i:06d}" for i in range(n)]), month_ordinal(START), orders * 1000.0,
                        orders.astype(np.int32), first.astype(np.int32), "KRW")


def test_the_summary_adds_exactly_over_a_split_of_the_customers():
    panel = load_dataset("synthetic:600:2").panel
    anchor = pd.Period("2024-06", "M")
    cut = panel.before(anchor)
    whole = RepeatSummary.of(cut)
    parts = np.array_split(np.random.default_rng(0).permutation(len(cut.customer_ids)), 3)
    summed = sum((RepeatSummary.of(cut.take(np.sort(p))) for p in parts[1:]),
                 RepeatSummary.of(cut.take(np.sort(parts[0]))))
    for field in ("first", "last", "repeats", "count"):
        assert np.array_equal(getattr(summed, field), getattr(whole, field))
    assert whole.count.sum() == len(cut.customer_ids)
    factors = SeasonContext.from_cut(cut, anchor).factors
    assert np.array_equal(RepeatContext.fit(summed, factors).theta,
                          RepeatContext.fit(whole, factors).theta)


def test_the_fit_recovers_the_parameters_of_data_from_the_model():
    truth = (0.8, 2.0, 1.5, 12.0)
    panel = _drawn(30_000, 30, truth)
    anchor = START + 30
    theta = RepeatContext.from_cut(panel.before(anchor), np.full(12, np.nan)).theta
    r, alpha, a, b = theta
    assert r / alpha == pytest.approx(0.4, rel=0.05)  # mean rate
    assert r == pytest.approx(0.8, rel=0.15)
    assert a / (a + b) == pytest.approx(1.5 / 13.5, rel=0.1)  # mean dropout


def test_the_probability_is_calibrated_and_ranks_like_the_generators_posterior():
    """On the synthetic shop the one-class fit's P(buy) is about as sharp as the posterior
    under the generator's own (three-segment) priors."""
    from forecaster.bayes import bayes_bucket_probabilities

    panel = load_dataset("synthetic:2000:0").panel
    anchor = pd.Period("2024-11", "M")
    cut = panel.before(anchor)
    batch = HistoryBatch.from_panel(cut, anchor, 12)
    context = RepeatContext.from_cut(cut, SeasonContext.from_cut(cut, anchor).factors)
    p = context.columns(batch.first_idx, batch.last_idx, batch.lifetime_orders, batch.panel_start)[REPEAT_COLUMN]
    _, probs, _ = bayes_bucket_probabilities(cut, anchor, np.array([30_000.0, 80_000.0]),
                                             history_months=cut.n_months)
    bayes = 1.0 - probs[:, 0]
    bought = panel.outcome(anchor)[1] > 0
    assert p.mean() == pytest.approx(bought.mean(), abs=0.01)
    assert np.corrcoef(p, bayes)[0, 1] > 0.98

    def log_loss(q: np.ndarray) -> float:
        return float(-np.mean(np.where(bought, np.log(q), np.log1p(-q))))

    assert log_loss(p) < log_loss(bayes) * 1.01


def _repeat_column(panel: MonthlyPanel, anchor: pd.Period) -> np.ndarray:
    cut = panel.before(anchor)
    batch = HistoryBatch.from_panel(cut, anchor, 12)
    context = RepeatContext.from_cut(cut, SeasonContext.from_cut(cut, anchor).factors)
    return context.columns(batch.first_idx, batch.last_idx, batch.lifetime_orders, batch.panel_start)[REPEAT_COLUMN]


def test_the_probability_reads_only_months_before_the_anchor():
    panel = load_dataset("synthetic:400:1").panel
    anchor = pd.Period("2024-11", "M")
    before = _repeat_column(panel, anchor)
    assert np.isfinite(before).all() and ((before > 0) & (before < 1)).all()
    later = panel.orders.copy()
    later[:, panel.column(anchor):] = 5  # the anchor month and later: everyone orders 5 times
    assert np.array_equal(_repeat_column(_with_orders(panel, later), anchor), before)
    earlier = panel.orders.copy()
    earlier[:, panel.column(anchor) - 1] += 1  # the month before: it must matter
    assert not np.array_equal(_repeat_column(_with_orders(panel, earlier), anchor), before)


def test_nobody_acquired_gives_a_missing_column():
    summary = RepeatSummary.counted(month_ordinal(START), *(np.zeros(0, dtype=np.int64),) * 4)
    context = RepeatContext.fit(summary, np.full(12, np.nan))
    assert np.isnan(context.columns(np.zeros(2, int), np.zeros(2, int), np.ones(2), month_ordinal(START) - 3)[
        REPEAT_COLUMN]).all()


def test_groups_of_customers_get_the_columns_of_the_whole_bit_for_bit():
    panel = load_dataset("synthetic:600:2").panel
    anchor = pd.Period("2024-06", "M")
    cut = panel.before(anchor)
    context = RepeatContext.from_cut(cut, SeasonContext.from_cut(cut, anchor).factors)
    batch = HistoryBatch.from_panel(cut, anchor, 12)
    whole = context.probability_buy(batch.first_idx, batch.last_idx, batch.lifetime_orders, batch.panel_start)
    late = np.flatnonzero(batch.first_idx > np.median(batch.first_idx))  # a group without the earliest customers
    part = context.probability_buy(batch.first_idx[late], batch.last_idx[late], batch.lifetime_orders[late],
                                   batch.panel_start)
    assert np.array_equal(part, whole[late])
