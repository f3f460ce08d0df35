"""The population pieces a batch needs of every customer (the seasonal context, the empirical
forecaster's fit) add up over groups of customers to exactly the whole panel's: what lets
`forecaster batch` read a shop partition by partition (forecaster/batch_partitioned.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.datasets import load_dataset
from models.empirical import EmpiricalForecaster
from models.season import SeasonContext, SeasonStats
from narrator.panel import MonthlyPanel
from structurer.schema import BucketScheme

FITTED = ("purchase_rate_", "bucket_shares_", "mean_positive_spend_", "orders_per_active_month_", "vip_spend_")


def _groups(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` groups of the rows 0..n-1, each in increasing order, of random sizes."""
    which = np.random.default_rng(seed).integers(0, k, n)
    return [np.flatnonzero(which == g) for g in range(k)]


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic:2000:3").panel


@pytest.mark.parametrize("anchor,k,seed", [("2023-06", 2, 0), ("2024-11", 5, 1), ("2024-12", 17, 2)])
def test_season_context_from_groups_is_the_whole_panels_bit_for_bit(synthetic, anchor, k, seed):
    anchor = pd.Period(anchor, "M")
    cut = synthetic.before(anchor)
    whole = SeasonContext.from_cut(cut, anchor)
    parts = [SeasonStats.of(cut.take(rows)) for rows in _groups(len(cut.customer_ids), k, seed)]
    summed = SeasonContext.from_stats(sum(parts[1:], parts[0]), anchor)
    assert np.isfinite(whole.prior_mean) and np.array_equal([whole.index], [summed.index], equal_nan=True)
    assert (whole.prior_shape, whole.prior_mean) == (summed.prior_shape, summed.prior_mean)
    assert np.array_equal(whole.factors, summed.factors, equal_nan=True)


def test_season_stats_of_other_months_do_not_add(synthetic):
    a, b = synthetic.before(pd.Period("2024-10", "M")), synthetic.before(pd.Period("2024-11", "M"))
    with pytest.raises(ValueError):
        SeasonStats.of(a) + SeasonStats.of(b)


@pytest.mark.parametrize("name", ["synthetic", "cdnow"])
def test_empirical_fit_from_groups_is_the_whole_panels_bit_for_bit(synthetic, name):
    panel = synthetic if name == "synthetic" else load_dataset("cdnow").panel
    scheme = BucketScheme.fit(panel.spend[panel.spend > 0], panel.currency)
    for anchor in panel.months[[1, len(panel.months) // 2, -1]]:
        cut = panel.before(pd.Period(anchor, "M"))
        whole = EmpiricalForecaster(scheme).fit(cut)
        forecaster = EmpiricalForecaster(scheme)
        parts = [forecaster.population(cut.take(rows)) for rows in _groups(len(cut.customer_ids), 7, 3)]
        summed = forecaster.fit_population(sum(parts[1:], parts[0]))
        for name_ in FITTED:
            assert np.array_equal(getattr(whole, name_), getattr(summed, name_)), name_


def test_the_mean_spend_does_not_depend_on_the_customers_order(synthetic):
    cut = synthetic.before(pd.Period("2024-06", "M"))
    scheme = BucketScheme.fit(cut.spend[cut.spend > 0], cut.currency)
    order = np.random.default_rng(0).permutation(len(cut.customer_ids))
    shuffled = MonthlyPanel(cut.customer_ids[order], cut.start, cut.spend[order], cut.orders[order],
                            cut.first_idx[order], cut.currency)
    a, b = EmpiricalForecaster(scheme).fit(cut), EmpiricalForecaster(scheme).fit(shuffled)
    assert a.mean_positive_spend_ == b.mean_positive_spend_ and a.vip_spend_ == b.vip_spend_
