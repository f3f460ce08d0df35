"""The bayes arm: exact where the posterior concentrates (against the oracle), right where it
does not (against brute-force importance sampling of the generator), never better than the
oracle on average, blind to the anchor month and to the months before its window, and
scored as a bound beside the oracle in metrics.json and the report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from forecaster import evaluation, pipeline
from forecaster.bayes import bayes_bucket_probabilities
from forecaster.datasets import load_dataset
from forecaster.report import tables
from forecaster.report import text as report_text
from forecaster.report.core import build_report_data
from forecaster.synthetic import SEGMENTS, START, SegmentSpec, oracle_bucket_probabilities, season_factors
from models import metrics
from models.arm_specs import BOUND_ARMS
from models.rows import bayes_probability_names
from narrator.panel import HISTORY_MONTHS, MonthlyPanel, first_order_column, month_ordinal

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

RATIO_KEYS = ("rps_ratio_to_oracle", "log_loss_ratio_to_oracle", "rps_ratio_to_bayes", "log_loss_ratio_to_bayes")

# -- where it must agree with the oracle ------------------------------------------------------

ORDER_SHAPE = 2.5
KNOWN = 1e6  # a prior shape (or Beta a + b) this large: the parameter is known to ~0.1%


def known_segment(rate: float, p_drop: float, value: float, share: float = 1.0, name: str = "참",
                  rate_shape: float = KNOWN, value_shape: float = KNOWN, order_shape: float = ORDER_SHAPE) -> SegmentSpec:
    return SegmentSpec(name, share, rate_shape, rate, p_drop * KNOWN, (1 - p_drop) * KNOWN, value_shape, value,
                       order_shape)


def one_customer(orders: np.ndarray, rng: np.random.Generator, value: float) -> MonthlyPanel:
    """A panel of one customer acquired in its first month, with spend drawn for ``orders``
    (n orders of Gamma(q, mean nu) each: Gamma(n q, scale nu / q))."""
    spend = np.where(orders > 0, rng.gamma(np.maximum(orders, 1) * ORDER_SHAPE, value / ORDER_SHAPE), 0.0)
    return MonthlyPanel(np.array(["C1"], dtype=object), month_ordinal(START), spend[None, :],
                        orders[None, :].astype(np.int32), np.array([0], dtype=np.int32), "KRW")


def latent_of(rate: float, p_drop: float, value: float) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["C1"], "lambda": [rate], "p_drop": [p_drop], "nu": [value],
                         "q": [ORDER_SHAPE]})


def test_with_the_parameters_known_it_is_the_oracle():
    """Priors this tight leave only the death month unknown, and with an order inside the
    window the months before it say nothing more about that: both forecasts are the same."""
    rate, p_drop, value = 0.8, 0.05, 42_000.0
    orders = np.array([2, 0, 1, 3, 0, 0, 1, 2, 0, 1, 0, 0, 3, 1, 0, 2, 0, 1, 0, 1, 0, 0, 0, 0])  # idle since month 19
    panel = one_customer(orders, np.random.default_rng(5), value)
    anchor, edges = START + len(orders), np.array([30_000.0, 70_000.0])
    _, oracle, oracle_spend = oracle_bucket_probabilities(latent_of(rate, p_drop, value), panel, anchor, edges,
                                                          n_sims=200_000)
    _, bayes, bayes_spend = bayes_bucket_probabilities(panel, anchor, edges, (known_segment(rate, p_drop, value),))
    assert 1 - bayes[0, 0] == pytest.approx(1 - oracle[0, 0], rel=1e-3)  # P(buy): exact in the oracle
    assert 0.05 < 1 - oracle[0, 0] < 0.3  # the idle months leave P(alive) well inside (0, 1 - p)
    assert np.abs(bayes - oracle).max() < 0.004  # the buckets: Monte Carlo in the oracle (sd < 0.0011)
    assert bayes_spend[0] == pytest.approx(oracle_spend[0], rel=0.01)


def test_with_a_long_dense_history_it_learns_the_parameters_and_the_segment():
    """Default-like priors on lambda and nu, a decoy segment to rule out, and ~16,000 orders:
    the posterior concentrates on the truth (to the data's own sampling error, ~0.5%)."""
    rate, p_drop, value, months = 3.3, 0.01, 42_000.0, 4_800
    rng = np.random.default_rng(3)
    orders = rng.poisson(rate * season_factors(START, months))
    orders[0] += 1  # the acquisition month's certain order
    orders[-1] = max(orders[-1], 1)  # bought last month: P(alive) = 1 - p for both forecasts
    panel = one_customer(orders, rng, value)
    # the decoy differs in the spread of one order's amount alone: only the spend's shape tells them apart
    segments = (known_segment(3.0, p_drop, 50_000.0, 0.5, rate_shape=2.0, value_shape=4.0),
                known_segment(3.0, p_drop, 50_000.0, 0.5, "다른", rate_shape=2.0, value_shape=4.0, order_shape=1.0))
    anchor, edges = START + months, np.array([90_000.0, 160_000.0])
    _, oracle, oracle_spend = oracle_bucket_probabilities(latent_of(rate, p_drop, value), panel, anchor, edges,
                                                          n_sims=200_000)
    _, bayes, bayes_spend = bayes_bucket_probabilities(panel, anchor, edges, segments, history_months=months)
    assert 1 - bayes[0, 0] == pytest.approx(1 - oracle[0, 0], abs=1e-3)
    assert np.abs(bayes - oracle).max() < 0.01
    assert bayes_spend[0] == pytest.approx(oracle_spend[0], rel=0.02)
    assert 0.15 < bayes[0, 1:].min() and bayes[0, 1:].max() < 0.6  # the edges split a purchase: not a trivial case


# -- short histories: brute-force importance sampling of the generator ------------------------

PARAMETER_FIELDS = ("rate_shape", "rate_mean", "drop_a", "drop_b", "value_shape", "value_mean", "order_shape")


@pytest.fixture(scope="module")
def shop_2000():
    dataset = load_dataset("synthetic:2000")
    anchor = dataset.panel.last_month
    return dataset, anchor, dataset.panel.before(anchor)


def importance_sampled(cut: MonthlyPanel, row: int, edges: np.ndarray, draws: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(bucket probabilities, effective sample size) of one customer's anchor month: prior
    draws of every latent quantity (death month included), weighted by the likelihood of its
    window and tenure, then the generator run one month on."""
    a, first = cut.n_months, int(cut.first_idx[row])
    season = season_factors(cut.first_month, a + 1)
    seg = rng.choice(len(SEGMENTS), size=draws, p=[s.share for s in SEGMENTS])
    spec = {f: np.array([getattr(s, f) for s in SEGMENTS])[seg] for f in PARAMETER_FIELDS}
    lam = rng.gamma(spec["rate_shape"], spec["rate_mean"] / spec["rate_shape"])
    p = rng.beta(spec["drop_a"], spec["drop_b"])
    nu = rng.gamma(spec["value_shape"], spec["value_mean"] / spec["value_shape"])
    q = spec["order_shape"]
    death = first + rng.geometric(p)
    months = np.arange(max(a - HISTORY_MONTHS, first), a)
    n, y = cut.orders[row, months], cut.spend[row, months]
    alive = months[None, :] < death[:, None]
    free = n - (months == first)
    log_counts = np.where(alive, stats.poisson.logpmf(free, lam[:, None] * season[months]), np.where(n > 0, -np.inf, 0.0))
    log_spend = np.where(n > 0, stats.gamma.logpdf(y, np.maximum(n, 1) * q[:, None], scale=(nu / q)[:, None]), 0.0)
    log_w = (log_counts + log_spend).sum(axis=1)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    count = np.where(death > a, rng.poisson(lam * season[a]), 0)
    spend = np.where(count > 0, rng.gamma(np.maximum(count, 1) * q, nu / q), 0.0)
    bucket = np.where(spend > 0, 1 + np.searchsorted(edges, spend, side="right"), 0)
    return np.bincount(bucket, weights=w, minlength=len(edges) + 2), 1.0 / np.sum(w ** 2)


@pytest.mark.parametrize(("months_in", "case"), [
    (35, "empty window after a long unseen gap: dead in the gap, or alive and idle"),
    (35, "a few orders after the gap"),
    (35, "many orders after the gap"),
    (15, "acquired inside the window"),
])
def test_it_matches_brute_force_sampling_where_the_data_say_little(shop_2000, months_in, case):
    dataset, _, _ = shop_2000
    anchor = dataset.panel.first_month + months_in
    cut = dataset.panel.before(anchor)
    window_orders = cut.orders[:, -HISTORY_MONTHS:].sum(axis=1)
    gap = cut.first_idx < cut.n_months - HISTORY_MONTHS
    chosen = {"empty window": (window_orders == 0) & gap, "a few orders": (window_orders == 2) & gap,
              "many orders": (window_orders >= 6) & gap, "acquired inside": (window_orders >= 2) & ~gap}
    row = next(np.flatnonzero(mask)[0] for key, mask in chosen.items() if case.startswith(key))
    edges = np.array([20_000.0, 60_000.0])
    _, probs, _ = bayes_bucket_probabilities(cut, anchor, edges)
    sampled, ess = importance_sampled(cut, row, edges, 300_000, np.random.default_rng(11))
    se = np.sqrt(sampled * (1 - sampled) / ess) + 1e-4
    assert np.all(np.abs(probs[row] - sampled) < 5 * se), (probs[row], sampled, ess)


# -- a synthetic evaluation: never better than the oracle, close to it ------------------------


@pytest.fixture(scope="module")
def three_anchors(shop_2000):
    """(labels, oracle probabilities, bayes probabilities, bayes expected spend) of the last
    three months of synthetic:2000, pooled, with the scheme fitted before them."""
    dataset, last, _ = shop_2000
    panel, anchors = dataset.panel, [last - 2, last - 1, last]
    scheme = pipeline.fit_scheme(panel, anchors[0])
    edges = np.asarray(scheme.edges)
    labels, oracle, bayes, spend = [], [], [], []
    for anchor in anchors:
        cut = panel.before(anchor)
        ids, o, _ = oracle_bucket_probabilities(dataset.latent, cut, anchor, edges)
        ids_b, b, s = bayes_bucket_probabilities(cut, anchor, edges)
        _, outcome, _ = panel.outcome(anchor)
        assert np.array_equal(ids, ids_b)
        labels.append(scheme.assign(outcome))
        oracle.append(o)
        bayes.append(b)
        spend.append(s)
    return tuple(np.concatenate(x) for x in (labels, oracle, bayes, spend))


def test_on_average_it_never_beats_the_oracle_and_stays_close(three_anchors):
    label, oracle, bayes, _ = three_anchors
    rps_ratio = metrics.rps(bayes, label) / metrics.rps(oracle, label)  # 1.046 when written

    def log_loss(p: np.ndarray) -> float:
        return float(-np.log(p[np.arange(len(label)), label]).mean())

    assert 1.0 <= rps_ratio < 1.10
    assert 1.0 <= log_loss(bayes) / log_loss(oracle) < 1.15


def test_its_probabilities_are_a_distribution_and_its_purchase_rate_is_calibrated(three_anchors):
    label, _, bayes, spend = three_anchors
    assert np.all(bayes >= 0) and np.allclose(bayes.sum(axis=1), 1.0, atol=1e-9) and np.all(spend >= 0)
    p_buy, bought = 1 - bayes[:, 0], label > 0
    assert abs(p_buy.mean() - bought.mean()) < 3 * np.sqrt(np.sum(p_buy * (1 - p_buy))) / len(label)


def test_it_refuses_a_panel_not_cut_at_the_anchor_and_bad_edges(shop_2000):
    _, anchor, cut = shop_2000
    with pytest.raises(ValueError, match="cut at"):
        bayes_bucket_probabilities(cut, anchor + 1, np.array([1.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        bayes_bucket_probabilities(cut, anchor, np.array([2.0, 1.0]))


# -- what it reads: the window and the tenure, nothing else ----------------------------------


@pytest.fixture(scope="module")
def setup_300():
    setup = evaluation.prepare(load_dataset("synthetic:300"), None, None, seed=0, n_resamples=100)
    rows = pd.concat([pd.DataFrame({"customer_id": setup.panel.before(a).customer_ids, "anchor": str(a)})
                      for a in setup.test_anchors], ignore_index=True)
    return setup, rows, evaluation.add_bayes(rows, setup)


def rewritten(panel: MonthlyPanel, where: np.ndarray, rng: np.random.Generator) -> MonthlyPanel:
    """``panel`` with new orders and spend in the cells ``where`` (customers x months); the
    first purchase column follows the orders."""
    orders = np.where(where, rng.poisson(1.5, panel.orders.shape), panel.orders).astype(np.int32)
    new_spend = orders * rng.gamma(2.0, 30_000.0, panel.spend.shape)
    spend = np.where(where, new_spend, panel.spend)
    return MonthlyPanel(panel.customer_ids, panel.start, spend, orders, first_order_column(orders), panel.currency)


def bayes_columns(frame: pd.DataFrame, setup, anchors) -> pd.DataFrame:
    keep = frame["anchor"].isin([str(a) for a in anchors])
    return frame.loc[keep, bayes_probability_names(setup.scheme) + ["bayes_expected_spend"]].reset_index(drop=True)


@settings(max_examples=8, deadline=None)
@given(which=st.integers(0, 2), seed=st.integers(0, 2**32 - 1))
def test_the_anchor_month_and_later_change_nothing(setup_300, which, seed):
    setup, rows, before = setup_300
    anchor = setup.test_anchors[which]
    months = np.arange(setup.panel.n_months)[None, :]
    changed = rewritten(setup.panel, np.broadcast_to(months >= setup.panel.column(anchor), setup.panel.orders.shape),
                        np.random.default_rng(seed))
    after = evaluation.add_bayes(rows, dataclasses.replace(setup, panel=changed))
    unchanged = setup.test_anchors[: which + 1]
    pd.testing.assert_frame_equal(bayes_columns(after, setup, unchanged), bayes_columns(before, setup, unchanged))


def test_the_evaluation_arm_reads_the_whole_history_before_the_anchor(setup_300):
    """The XGBoost arms' lifetime features see every month before the anchor, so the bound
    must too: months before the 12-month window change its forecast."""
    setup, rows, before = setup_300
    rng = np.random.default_rng(7)
    panel, anchor = setup.panel, setup.test_anchors[0]
    months = np.arange(panel.n_months)[None, :]
    first = panel.first_idx[:, None]
    gap = (months > first) & (months < panel.column(anchor) - HISTORY_MONTHS)
    assert gap.any()
    changed = rewritten(panel, gap, rng)
    after = evaluation.add_bayes(rows, dataclasses.replace(setup, panel=changed))
    old, new = (bayes_columns(frame, setup, [anchor]) for frame in (before, after))
    assert not np.allclose(old.to_numpy(), new.to_numpy())


# -- scored as a bound: metrics.json and the report -------------------------------------------


@pytest.fixture(scope="module")
def report_300(setup_300):
    setup, _, _ = setup_300
    return build_report_data(setup, evaluation.run(setup, setup.forecaster.forecast_fn()))


def test_every_arm_has_its_ratios_to_both_bounds_and_the_bayes_arm_is_one_to_itself(report_300):
    arms = report_300["arms"]
    assert {"oracle", "bayes"} <= set(report_300["arm_order"])
    for entry in arms.values():
        for scores in [entry["pooled"], *entry["by_anchor"].values()]:
            assert all(np.isfinite(scores[k]) for k in RATIO_KEYS)
    assert arms["bayes"]["pooled"]["rps_ratio_to_bayes"] == 1.0
    assert arms["bayes"]["pooled"]["log_loss_ratio_to_bayes"] == 1.0
    assert arms["oracle"]["pooled"]["rps_ratio_to_oracle"] == 1.0
    best = min((a for a in arms if a not in {b.name for b in BOUND_ARMS}), key=lambda a: arms[a]["pooled"]["rps"])
    ratio = arms[best]["pooled"]["rps"] / arms["bayes"]["pooled"]["rps"]
    assert arms[best]["pooled"]["rps_ratio_to_bayes"] == pytest.approx(ratio)


def test_the_report_names_both_bounds_and_never_calls_one_the_best_arm(report_300):
    sentence = report_text.best_arm_sentence(report_300)
    assert "오라클의" in sentence and "베이즈 비교군의" in sentence and "완벽한 정보" in sentence
    chosen = sentence.split("가장 낮은 것은 ")[1].split("으로")[0]
    assert "(oracle)" not in chosen and "(bayes)" not in chosen
    shown = [row[0] for row in tables.pooled_table(report_300)["rows"]]
    assert "RPS / 베이즈 RPS ↓" in shown and "로그 손실 / 오라클 로그 손실 ↓" in shown
    assert "RPS / 베이즈 RPS ↓" in tables.by_anchor_table(report_300)["headers"]


def test_without_the_generator_the_bayes_arm_says_why_it_did_not_run(tmp_path):
    shop = tmp_path / "shop.csv"
    rows = [f"c{c},2024-{m:02d}-1{c % 9},{1000 + 37 * c * m}" for c in range(40) for m in range(1, 9)]
    shop.write_text("customer_id,ts,amount\n" + "\n".join(rows) + "\n")
    setup = evaluation.prepare(load_dataset(str(shop)), None, None, seed=0, n_resamples=100)
    assert setup.arms_not_run["bayes"] == evaluation.NO_PRIORS
