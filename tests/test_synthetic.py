"""The synthetic shop: determinism, the contract, recovery of its latent parameters, and the
oracle's exactness (P(alive) against brute-force simulation) and calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.synthetic import (
    N_MONTHS,
    SEGMENTS,
    START,
    generate,
    oracle_bucket_probabilities,
    probability_alive,
    season_factors,
)
from narrator.panel import MonthlyPanel, build_panel

ANCHOR = pd.Period("2023-06", freq="M")


def z_score(observed: float, expected: float, variance: float) -> float:
    return abs(observed - expected) / np.sqrt(variance)


@pytest.fixture(scope="module")
def shop():
    return generate(20_000, seed=1)


@pytest.fixture(scope="module")
def panel(shop):
    return build_panel(shop.transactions, "KRW")


@pytest.fixture(scope="module")
def latent_rows(shop, panel):
    """Latent parameters aligned to the panel's rows."""
    return shop.latent.set_index("customer_id").loc[panel.customer_ids]


def test_same_seed_same_shop_and_another_seed_another():
    a, b, c = generate(300, seed=5), generate(300, seed=5), generate(300, seed=6)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    pd.testing.assert_frame_equal(a.latent, b.latent)
    assert not a.latent["lambda"].equals(c.latent["lambda"])


def test_transactions_follow_the_contract(shop, panel):
    tx = shop.transactions
    assert tx["ts"].dtype == np.dtype("datetime64[ns]") and tx["amount"].dtype == np.float64
    assert tx["ts"].min() >= START.start_time and tx["ts"].max() <= (START + N_MONTHS - 1).end_time
    assert np.all(tx["amount"] % 100 == 0) and tx["amount"].min() >= 100
    assert tx["order_id"].is_unique
    assert panel.orders.sum() == len(tx)  # one row per order, every order counted


def test_latent_matches_what_happened(panel, latent_rows):
    first = panel.start + panel.first_idx
    assert np.array_equal(first, latent_rows["acquisition_month"].array.asi8 + 1970 * 12)
    death_col = latent_rows["death_month"].array.asi8 + 1970 * 12 - panel.start
    months = np.arange(panel.n_months)
    assert not (panel.orders[months[None, :] >= death_col[:, None]] > 0).any()


def test_segment_shares(latent_rows):
    n = len(latent_rows)
    for spec in SEGMENTS:
        observed = float((latent_rows["segment"] == spec.name).mean())
        assert z_score(observed, spec.share, spec.share * (1 - spec.share) / n) < 4, spec.name


def test_order_rate_and_order_value_recovered_per_segment(shop, panel, latent_rows):
    season = season_factors(panel.first_month, panel.n_months)
    acq = panel.first_idx[:, None]
    death = (latent_rows["death_month"].array.asi8 + 1970 * 12 - panel.start)[:, None]
    months = np.arange(panel.n_months)[None, :]
    alive_after_first = (months > acq) & (months < death)  # the first month has a forced order
    lam = latent_rows["lambda"].to_numpy()
    amounts = shop.transactions.merge(shop.latent, on="customer_id")
    for spec in SEGMENTS:
        rows = (latent_rows["segment"] == spec.name).to_numpy()
        mask = alive_after_first[rows]
        observed = panel.orders[rows][mask].sum()
        expected = (lam[rows, None] * season[None, :])[mask].sum()
        assert z_score(observed, expected, expected) < 4, spec.name  # Poisson given lambda
        seg = amounts[amounts["segment"] == spec.name]
        nu, q = seg["nu"].to_numpy(), seg["q"].to_numpy()
        # rounding to 100 won adds at most 50 per order; Gamma variance nu^2 / q per order
        assert z_score(seg["amount"].sum(), nu.sum(), (nu**2 / q).sum()) < 4, spec.name


def test_first_month_dropout_rate_matches_p(latent_rows):
    gone_next_month = latent_rows["death_month"].array.asi8 - latent_rows["acquisition_month"].array.asi8 == 1
    p = latent_rows["p_drop"].to_numpy()
    assert z_score(gone_next_month.sum(), p.sum(), (p * (1 - p)).sum()) < 4


def test_korean_seasonality():
    def factor(month: str) -> float:
        return float(season_factors(pd.Period(month, freq="M"), 1)[0])

    assert factor("2023-01") / factor("2024-01") == pytest.approx(1.3)  # 설날 22 Jan 2023 vs 10 Feb 2024
    assert factor("2024-02") / factor("2023-02") == pytest.approx(1.3)
    assert factor("2025-09") / factor("2024-09") == pytest.approx(1.0)  # 추석 6 Oct 2025: shopping in Sep
    assert factor("2025-10") / factor("2024-10") == pytest.approx(1.0)
    year = season_factors(pd.Period("2023-01", freq="M"), 12)
    assert year[10] > year[9] and year[11] > year[9]  # 11월 행사, 연말


def single_customer_panel(order_months: list[list[int]], n_months: int) -> MonthlyPanel:
    orders = np.zeros((len(order_months), n_months), dtype=np.int32)
    for row, months in enumerate(order_months):
        orders[row, months] = 1
    return MonthlyPanel(
        customer_ids=np.array([f"c{i}" for i in range(len(order_months))], dtype=object),
        start=START.ordinal + 1970 * 12,
        spend=orders * 1000.0,
        orders=orders,
        first_idx=np.zeros(len(order_months), dtype=np.int32),
        currency="KRW",
    )


def test_probability_alive_is_exact_bayes_against_brute_force():
    """Simulate one customer many times; among copies whose last order before the anchor
    was in month L (the sufficient statistic), the share still alive at the anchor must
    match the closed form."""
    lam, p, anchor_col, copies = 0.6, 0.08, 10, 400_000
    rng = np.random.default_rng(7)
    season = season_factors(START, anchor_col)
    death = rng.geometric(p, size=copies)  # acquired in month 0
    months = np.arange(anchor_col)
    alive = months[None, :] < death[:, None]
    orders = rng.poisson(lam * season[None, :], size=(copies, anchor_col)) * alive
    orders[:, 0] += 1
    last = anchor_col - 1 - np.argmax(orders[:, ::-1] > 0, axis=1)
    alive_at_anchor = death > anchor_col

    patterns = [0, 3, 6, 8, 9]
    cut = single_customer_panel([[0, last_month] for last_month in patterns], anchor_col)
    latent = pd.DataFrame({"customer_id": cut.customer_ids, "lambda": lam, "p_drop": p, "nu": 1.0, "q": 1.0})
    predicted = probability_alive(latent, cut, START + anchor_col)
    for last_month, prob in zip(patterns, predicted):
        chosen = alive_at_anchor[last == last_month]
        assert chosen.size > 2_000
        assert z_score(chosen.mean(), prob, prob * (1 - prob) / chosen.size) < 4, last_month


@pytest.fixture(scope="module")
def oracle_case(shop, panel):
    cut = panel.before(ANCHOR)
    edges = np.quantile(cut.spend[cut.spend > 0], [1 / 3, 2 / 3])
    ids, probs, expected = oracle_bucket_probabilities(shop.latent, cut, ANCHOR, edges, n_sims=400)
    out_ids, spend, _ = panel.outcome(ANCHOR)
    label = np.where(spend > 0, 1 + np.searchsorted(edges, spend, side="right"), 0)
    return cut, edges, ids, probs, expected, out_ids, spend, label


def test_oracle_shapes(oracle_case):
    cut, edges, ids, probs, expected, out_ids, *_ = oracle_case
    assert np.array_equal(ids, out_ids) and probs.shape == (len(ids), len(edges) + 2)
    assert np.all(probs > 0) and np.allclose(probs.sum(axis=1), 1.0)
    assert np.all(expected >= 0)


def test_oracle_no_purchase_is_exact_after_a_purchase_last_month(shop, oracle_case):
    cut, _, ids, probs, *_ = oracle_case
    bought_last_month = cut.orders[:, -1] > 0
    params = shop.latent.set_index("customer_id").loc[ids[bought_last_month]]
    s = season_factors(ANCHOR, 1)[0]
    exact = 1 - (1 - params["p_drop"]) * (1 - np.exp(-params["lambda"] * s))
    np.testing.assert_allclose(probs[bought_last_month, 0], exact.to_numpy(), rtol=1e-12)


def test_oracle_is_calibrated(oracle_case):
    *_, probs, expected, _, spend, label = oracle_case
    n = len(label)
    for bucket in range(probs.shape[1]):
        p = probs[:, bucket]
        observed = (label == bucket).sum()
        assert z_score(observed, p.sum(), (p * (1 - p)).sum()) < 4, bucket
    assert z_score(spend.mean(), expected.mean(), spend.var() / n) < 4


def test_probability_alive_is_calibrated_by_decile(shop, oracle_case):
    cut, _, ids, *_ = oracle_case
    predicted = probability_alive(shop.latent, cut, ANCHOR)
    actually_alive = (shop.latent.set_index("customer_id").loc[ids, "death_month"] > ANCHOR).to_numpy()
    bins = np.quantile(predicted, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, predicted, side="right") - 1, 0, 9)
    for b in range(10):
        p = predicted[which == b]
        if p.size:
            assert z_score(actually_alive[which == b].sum(), p.sum(), max((p * (1 - p)).sum(), 1.0)) < 4, b


def test_oracle_beats_climatology(oracle_case):
    *_, probs, _, _, _, label = oracle_case
    oracle_loss = -np.mean(np.log(probs[np.arange(len(label)), label]))
    climate = np.bincount(label, minlength=probs.shape[1]) / len(label)  # even in-sample
    climate_loss = -np.mean(np.log(climate[label]))
    assert oracle_loss < 0.9 * climate_loss


def test_oracle_rejects_bad_arguments(shop, panel):
    cut = panel.before(ANCHOR)
    with pytest.raises(ValueError, match="must be cut at"):
        oracle_bucket_probabilities(shop.latent, cut, ANCHOR + 1, np.array([1.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        oracle_bucket_probabilities(shop.latent, cut, ANCHOR, np.array([2.0, 1.0]))
    with pytest.raises(ValueError, match="no latent"):
        oracle_bucket_probabilities(shop.latent.iloc[1:], cut, ANCHOR, np.array([1.0]))
