"""Metrics and the paired customer bootstrap: hand-computed values, agreement with
scikit-learn / scipy, tie and row-order invariance, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy import stats

from models import bootstrap as bs
from models import metrics as m

SCORE_ARM_KEYS = {
    "rps", "log_loss", "brier", "accuracy", "macro_f1", "ece", "purchase_log_loss",
    "purchase_brier", "pr_auc", "roc_auc", "precision_top20", "recall_top20", "lift_top10",
    "f1_at_threshold", "spend_mae", "spend_rmse", "spend_spearman", "spend_gini",
    "spend_bias", "base_rate", "n",
}


@pytest.fixture(scope="module")
def sample() -> dict[str, np.ndarray]:
    """4-bucket forecasts with rounded scores (so ties occur) and outcomes drawn from them."""
    rng = np.random.default_rng(7)
    n, k = 3000, 4
    P = rng.dirichlet(np.ones(k), n)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1)
    spend = np.where(y > 0, rng.gamma(2.0, 10.0, n), 0.0)
    pred_spend = np.round(np.maximum(spend + rng.normal(0, 15, n), 0), 0)
    return {"P": P, "y": y, "p": np.round(1 - P[:, 0], 2), "b": (y > 0).astype(int),
            "spend": spend, "pred_spend": pred_spend}


# ---------------------------------------------------------------- hand-computed values
def test_rps_three_row_hand_example():
    # K = 3, RPS_i = sum_{k=1}^{2} (F_ik - O_ik)^2 / 2
    # row 1: P = (.2, .5, .3), y = 1: F = (.2, .7), O = (0, 1): (.04 + .09) / 2 = .065
    # row 2: P = (1, 0, 0),    y = 0: F = (1, 1),   O = (1, 1): 0
    # row 3: P = (.6, .3, .1), y = 2: F = (.6, .9), O = (0, 0): (.36 + .81) / 2 = .585
    # mean = (.065 + 0 + .585) / 3 = .65 / 3
    P = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [0.6, 0.3, 0.1]])
    y = np.array([1, 0, 2])
    np.testing.assert_allclose(m.rps_rows(P, y), [0.065, 0.0, 0.585])
    assert m.rps(P, y) == pytest.approx(0.65 / 3)
    assert m.rps_skill(0.1, 0.2) == pytest.approx(0.5)


def test_rps_is_zero_for_a_perfect_forecast_and_one_for_the_worst():
    y = np.array([0, 3])
    assert m.rps(np.eye(4)[y], y) == 0.0
    assert m.rps(np.eye(4)[3 - y], y) == pytest.approx(1.0)


def test_ece_constructed_case():
    # confidences .9 (right), .9 (wrong), .7 (right), .6 (right), in bins (.8,.9], (.6,.7], (.5,.6]
    # ECE = 2/4 * |.5 - .9| + 1/4 * |1 - .7| + 1/4 * |1 - .6| = .2 + .075 + .1 = .375
    P = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert m.ece(P, y) == pytest.approx(0.375)


def test_ece_is_zero_when_confidence_matches_accuracy():
    P = np.tile([0.75, 0.25], (8, 1))
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1])  # 75% right at confidence .75
    assert m.ece(P, y) == pytest.approx(0.0)


def test_normalised_gini_small_example():
    # order by pred desc: actual 10, 30, 0, 0 -> cumsum 10, 40, 40, 40; sum / total = 3.25
    # Gini = (3.25 - 5/2) / 4 = .1875. By itself: 30, 10, 0, 0 -> 150/40 = 3.75 -> .3125.
    actual = np.array([0.0, 10.0, 0.0, 30.0])
    pred = np.array([0.1, 0.4, 0.2, 0.3])
    assert m.normalised_gini(pred, actual) == pytest.approx(0.1875 / 0.3125)
    assert m.normalised_gini(actual, actual) == pytest.approx(1.0)


def test_normalised_gini_ties_take_the_mean_over_orders():
    # rows 1 and 2 tie at the top: orders (10, 0) and (0, 10) give Gini 0 and -.0625
    actual = np.array([0.0, 10.0, 0.0, 30.0])
    pred = np.array([0.1, 0.4, 0.4, 0.3])
    assert m.normalised_gini(pred, actual) == pytest.approx(-0.03125 / 0.3125)
    assert m.normalised_gini(pred[::-1], actual[::-1]) == pytest.approx(-0.03125 / 0.3125)


def test_top_fraction_counts_a_straddling_tie_fractionally():
    # k = ceil(.4 * 5) = 2: .9 (hit) plus one of the two .8s (one hit): 1.5 expected hits
    p = np.array([0.9, 0.8, 0.8, 0.1, 0.5])
    b = np.array([1, 0, 1, 0, 1])
    precision, recall = m.precision_recall_at_top(p, b, 0.4)
    assert (precision, recall) == pytest.approx((0.75, 0.5))
    assert m.lift_at_top(p, b, 0.2) == pytest.approx(1 / 0.6)


def test_confusion_matrix():
    cm = m.confusion(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 0, 1], [0, 1, 1]])


# ------------------------------------------------------------- agreement with libraries
def test_bucket_metrics_agree_with_sklearn(sample):
    P, y = sample["P"], sample["y"]
    assert m.log_loss(P, y) == pytest.approx(skm.log_loss(y, P))
    assert m.brier_multiclass(P, y) == pytest.approx(skm.brier_score_loss(y, P, labels=[0, 1, 2, 3]))
    assert m.accuracy(P, y) == pytest.approx(skm.accuracy_score(y, P.argmax(axis=1)))
    assert m.macro_f1(P, y) == pytest.approx(skm.f1_score(y, P.argmax(axis=1), average="macro"))


def test_macro_f1_averages_over_buckets_seen_like_sklearn():
    P = np.eye(4)[[0, 0, 1, 1, 0]]
    y = np.array([0, 1, 1, 1, 0])  # buckets 2 and 3 never observed nor predicted
    assert m.macro_f1(P, y) == pytest.approx(skm.f1_score(y, P.argmax(axis=1), average="macro"))


def test_purchase_metrics_agree_with_sklearn(sample):
    p, b = sample["p"], sample["b"]
    assert m.pr_auc(p, b) == pytest.approx(skm.average_precision_score(b, p))
    assert m.roc_auc(p, b) == pytest.approx(skm.roc_auc_score(b, p))
    assert m.binary_log_loss(p, b) == pytest.approx(skm.log_loss(b, p))
    assert m.binary_brier(p, b) == pytest.approx(skm.brier_score_loss(b, p))
    for t in (0.3, 0.55, 0.8):
        assert m.f1_at_threshold(p, b, t) == pytest.approx(skm.f1_score(b, p >= t))


def test_best_f1_threshold_is_the_brute_force_best(sample):
    p, b = sample["p"], sample["b"]
    best = max(np.unique(p), key=lambda t: skm.f1_score(b, p >= t))
    t = m.best_f1_threshold(p, b)
    assert m.f1_at_threshold(p, b, t) == pytest.approx(skm.f1_score(b, p >= best))


def test_spend_metrics_agree_with_scipy_and_numpy(sample):
    pred, actual = sample["pred_spend"], sample["spend"]
    assert m.spearman(pred, actual) == pytest.approx(stats.spearmanr(pred, actual).statistic)
    assert m.mae(pred, actual) == pytest.approx(skm.mean_absolute_error(actual, pred))
    assert m.rmse(pred, actual) == pytest.approx(np.sqrt(skm.mean_squared_error(actual, pred)))
    assert m.aggregate_bias(pred, actual) == pytest.approx(pred.sum() / actual.sum() - 1)


def test_rank_metrics_do_not_depend_on_row_order(sample):
    order = np.random.default_rng(1).permutation(len(sample["p"]))
    p, b, pred, actual = (sample[k] for k in ("p", "b", "pred_spend", "spend"))
    for fn, x, z in [(m.pr_auc, p, b), (m.roc_auc, p, b), (m.lift_at_top, p, b),
                     (m.normalised_gini, pred, actual), (m.spearman, pred, actual)]:
        assert fn(x[order], z[order]) == pytest.approx(fn(x, z))
    assert m.precision_recall_at_top(p[order], b[order]) == pytest.approx(m.precision_recall_at_top(p, b))


# ------------------------------------------------------------------ score_arm, edges
def test_score_arm_keys_and_values(sample):
    s = m.score_arm(sample["P"], sample["y"], sample["pred_spend"], sample["spend"], threshold=0.5)
    assert set(s) == SCORE_ARM_KEYS
    assert s["rps"] == pytest.approx(m.rps(sample["P"], sample["y"]))
    assert s["pr_auc"] == pytest.approx(skm.average_precision_score(sample["b"], 1 - sample["P"][:, 0]))
    assert s["n"] == len(sample["y"]) and s["base_rate"] == pytest.approx(sample["b"].mean())
    assert all(np.isfinite(v) for v in s.values())
    assert np.isnan(m.score_arm(sample["P"], sample["y"], sample["pred_spend"], sample["spend"])["f1_at_threshold"])


def test_score_arm_with_a_single_class_gives_nan_not_a_crash():
    P = np.array([[0.7, 0.2, 0.1], [0.9, 0.05, 0.05], [0.5, 0.3, 0.2]])
    y = np.zeros(3, dtype=int)  # nobody bought
    s = m.score_arm(P, y, np.array([3.0, 1.0, 5.0]), np.zeros(3), threshold=0.2)
    for key in ("pr_auc", "roc_auc", "recall_top20", "lift_top10", "spend_gini", "spend_bias", "spend_spearman"):
        assert np.isnan(s[key]), key
    assert s["base_rate"] == 0 and s["precision_top20"] == 0
    assert np.isfinite(s["rps"]) and np.isfinite(s["log_loss"])


@pytest.mark.parametrize(
    "P, y, message",
    [
        (np.ones((3, 2)) / 2, np.array([0, 1]), "labels have shape"),
        (np.ones((2, 2)) / 2, np.array([0, 2]), "bucket ids in 0..1"),
        (np.ones(4), np.array([0, 1, 0, 1]), "2-D"),
        (np.ones((2, 2)) / 2, np.array([0.0, 1.0]), "integer"),
        (np.array([[0.5, 0.5], [np.nan, 1.0]]), np.array([0, 1]), "missing or infinite value at row 1"),
    ],
)
def test_bad_input_is_one_clear_error(P, y, message):
    with pytest.raises(ValueError, match=message):
        m.rps(P, y)


def test_missing_spend_forecast_names_the_row():
    with pytest.raises(ValueError, match="spend MAE: the prediction has a missing or infinite value at row 2"):
        m.mae(np.array([1.0, 2.0, np.nan]), np.zeros(3))


def test_log_loss_is_clipped_not_infinite():
    assert m.log_loss(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-np.log(1e-15))


# ---------------------------------------------------------------------- bootstrap
def _two_arms(rng: np.random.Generator, n_customers: int, rows_each: int, k: int = 4):
    groups = np.repeat(np.arange(n_customers), rows_each)
    n = len(groups)
    y = rng.integers(0, k, n)
    P_a = rng.dirichlet(np.ones(k), n)
    P_b = 0.8 * P_a + 0.2 * np.eye(k)[y]  # b is a better forecaster
    return groups, y, P_a, P_b


def test_fast_path_equals_the_generic_path():
    groups, y, P_a, P_b = _two_arms(np.random.default_rng(3), 300, 3)
    fast = bs.paired_bootstrap(bs.RPS, (P_a, y), (P_b, y), groups, n_resamples=200, seed=5)
    slow = bs.paired_bootstrap(lambda P, yy: m.rps(P, yy), (P_a, y), (P_b, y), groups, n_resamples=200, seed=5)
    for key in ("diff", "lo", "hi"):
        assert fast[key] == pytest.approx(slow[key], abs=1e-12)
    assert fast["diff"] == pytest.approx(m.rps(P_b, y) - m.rps(P_a, y))


def test_bootstrap_is_reproducible_with_a_seed():
    groups, y, P_a, P_b = _two_arms(np.random.default_rng(4), 200, 2)
    first = bs.paired_bootstrap(bs.LOG_LOSS, (P_a, y), (P_b, y), groups, n_resamples=300, seed=11)
    again = bs.paired_bootstrap(bs.LOG_LOSS, (P_a, y), (P_b, y), groups, n_resamples=300, seed=11)
    other = bs.paired_bootstrap(bs.LOG_LOSS, (P_a, y), (P_b, y), groups, n_resamples=300, seed=12)
    assert first == again
    assert (first["lo"], first["hi"]) != (other["lo"], other["hi"])


def test_interval_covers_the_known_difference_about_95_percent_of_the_time():
    # per-customer loss difference ~ N(0.1, 1), shared by the customer's 3 rows (clustered):
    # the true difference is 0.1; the customer bootstrap must cover it ~95% of the time
    rng = np.random.default_rng(0)
    covered = 0
    trials = 200
    for trial in range(trials):
        groups = np.repeat(np.arange(150), 3)
        per_customer = rng.normal(0.1, 1.0, 150)[groups]
        noise = rng.normal(0, 0.2, len(groups))
        zeros = np.zeros(len(groups))
        out = bs.paired_bootstrap(bs.MAE, (zeros, zeros), (per_customer + noise + 10, zeros), groups,
                                  n_resamples=200, seed=trial)
        covered += out["lo"] - 10 <= 0.1 <= out["hi"] - 10
    assert 0.89 <= covered / trials <= 0.99


def test_resampling_customers_widens_the_interval_for_clustered_rows():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(100), 5)
    pred = rng.normal(0, 1, 100)[groups]  # a customer's rows are identical
    actual = np.zeros(len(groups))
    by_customer = bs.paired_bootstrap(bs.MAE, (actual, actual), (pred, actual), groups, n_resamples=500)
    by_row = bs.paired_bootstrap(bs.MAE, (actual, actual), (pred, actual), np.arange(len(groups)), n_resamples=500)
    width = lambda r: r["hi"] - r["lo"]  # noqa: E731
    assert width(by_customer) > 1.8 * width(by_row)  # sqrt(5) ~ 2.24 in theory


def test_rmse_fast_path_and_nan_resamples_of_the_slow_path():
    rng = np.random.default_rng(6)
    groups = np.arange(40)
    pred_a, pred_b, actual = rng.normal(0, 1, 40), rng.normal(0, 0.5, 40), np.zeros(40)
    out = bs.paired_bootstrap(bs.RMSE, (pred_a, actual), (pred_b, actual), groups, n_resamples=100)
    assert out["diff"] == pytest.approx(m.rmse(pred_b, actual) - m.rmse(pred_a, actual))
    assert out["lo"] <= out["diff"] <= out["hi"]
    # 2 buyers in 40 rows: some resamples have no buyer, the AUC is nan there and left out
    b = np.zeros(40, dtype=int)
    b[:2] = 1
    auc = bs.paired_bootstrap(m.roc_auc, (pred_a, b), (pred_b, b), groups, n_resamples=100)
    assert 0 < auc["n_valid"] < 100 and np.isfinite(auc["lo"])


def test_bootstrap_rejects_misaligned_groups():
    with pytest.raises(ValueError, match="groups has 3 entries"):
        bs.paired_bootstrap(bs.MAE, (np.zeros(4), np.zeros(4)), (np.ones(4), np.zeros(4)), np.arange(3))



def test_pr_auc_bootstrap_fast_path_matches_the_slow_path():
    """The sparse block-sum PR-AUC replicates equal recomputing m.pr_auc on the
    gathered rows of the same resamples (same seed -> same draws)."""
    rng = np.random.default_rng(5)
    n = 600
    groups = rng.integers(0, 150, size=n)
    b = (rng.random(n) < 0.3).astype(float)
    pa = np.round(rng.random(n) * 0.5 + 0.3 * b, 2)  # rounded: plenty of ties
    pb = np.round(rng.random(n) * 0.5 + 0.4 * b, 2)
    codes, n_groups = bs._customer_codes(groups, n)
    step = bs._vectorised_step(bs.PR_AUC, (pa, b), (pb, b), codes, n_groups)
    fast, = bs._vectorised_replicates([step], n_groups, 30, np.random.default_rng(1))
    weights_rng = np.random.default_rng(1)
    expected = []
    for start in range(0, 30, bs.RESAMPLE_CHUNK):
        counts = bs._draw_counts(weights_rng, n_groups, min(bs.RESAMPLE_CHUNK, 30 - start))
        for row in counts:
            idx = np.repeat(np.arange(n), row[codes])
            expected.append(m.pr_auc(pb[idx], b[idx]) - m.pr_auc(pa[idx], b[idx]))
    assert fast == pytest.approx(np.array(expected), abs=1e-12)
    assert np.std(fast) > 0  # the resamples really differ
