"""BG/NBD: the published CDNOW fit, lifetimes' BetaGeoFitter at the same parameters, the
analytic gradient against finite differences, the purchase probability and expectation
against a simulation of the model, and recovery of known parameters."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from models import bgnbd
from models.errors import InsufficientData

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes 0.11.3 sets a pandas option pandas 3 deprecates
    from lifetimes import BetaGeoFitter
    from lifetimes.datasets import load_cdnow_summary

PUBLISHED_CDNOW_WEEKS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # paper, section 4
OTHER_PARAMS = [{"r": 1.7, "alpha": 0.9, "a": 3.2, "b": 0.6}, {"r": 0.05, "alpha": 60.0, "a": 0.2, "b": 25.0}]
RECOVERY_TRUTH = {"r": 0.5, "alpha": 5.0, "a": 1.5, "b": 4.0}  # weekly rate 0.1, mean dropout 0.27


def _lifetimes_bgnbd(params: dict[str, float]) -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(params)[list(bgnbd.PARAM_NAMES)]
    return fitter


@pytest.fixture(scope="module")
def cdnow() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = load_cdnow_summary(index_col=[0])
    return tuple(d[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))


# --------------------------------------------------- published fit and lifetimes
def test_fit_reproduces_the_published_cdnow_parameters(cdnow):
    assert len(cdnow[0]) == 2357
    params = bgnbd.BGNBDModel().fit(*cdnow).params_
    assert {k: round(v, 3) for k, v in params.items()} == PUBLISHED_CDNOW_WEEKS


@pytest.mark.parametrize("params", [PUBLISHED_CDNOW_WEEKS, *OTHER_PARAMS])
def test_log_likelihood_matches_lifetimes(cdnow, params):
    # lifetimes returns only the weighted mean, so random weights check the per-customer values
    weights = np.random.default_rng(7).uniform(0.1, 3.0, len(cdnow[0]))
    theirs = -BetaGeoFitter._negative_log_likelihood(np.log(list(params.values())), *cdnow, weights, 0.0)
    ours = weights @ bgnbd.bgnbd_log_likelihood(params, *cdnow) / weights.sum()
    assert ours == pytest.approx(theirs, rel=1e-8)


@pytest.mark.parametrize("params", [PUBLISHED_CDNOW_WEEKS, *OTHER_PARAMS])
def test_alive_and_expected_purchases_match_lifetimes(cdnow, params):
    fitter = _lifetimes_bgnbd(params)
    np.testing.assert_allclose(bgnbd.probability_alive(params, *cdnow),
                               fitter.conditional_probability_alive(*cdnow), rtol=1e-8)
    for t in (1.0, 4.0, 39.0):
        np.testing.assert_allclose(bgnbd.expected_purchases(params, *cdnow, t=t),
                                   fitter.conditional_expected_number_of_purchases_up_to_time(t, *cdnow),
                                   rtol=1e-8)


# --------------------------------------------------------------------- gradient
@pytest.mark.parametrize("params", [PUBLISHED_CDNOW_WEEKS, *OTHER_PARAMS])
def test_gradient_matches_central_finite_differences(cdnow, params):
    step = 1e-6
    log_params = np.log([params[k] for k in bgnbd.PARAM_NAMES])

    def loglik(shift: np.ndarray) -> np.ndarray:
        return bgnbd.bgnbd_log_likelihood(dict(zip(bgnbd.PARAM_NAMES, np.exp(log_params + shift))), *cdnow)

    basis = np.eye(len(log_params)) * step
    numeric = np.column_stack([(loglik(e) - loglik(-e)) / (2 * step) for e in basis])
    np.testing.assert_allclose(bgnbd.bgnbd_log_likelihood_gradient(params, *cdnow), numeric,
                               rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------- Monte Carlo
def _simulate_window(params, x, t_x, T, t, n, rng):
    """Importance-sampled simulation of BG/NBD given a history (x, t_x, T).

    Draw lambda and p from the population, and G ~ Geometric(p), the repeat purchase right
    after which the customer drops out; weight each draw by the density of the history
    (lambda^x exp(-lambda T) if G > x: alive at T; lambda^x exp(-lambda t_x) if G = x;
    0 if G < x), then run the process over (T, T+t]: alive customers buy at rate lambda,
    at most G - x times. Returns (P(>= 1 purchase), its standard error, E[purchases], its
    standard error)."""
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    g = rng.geometric(rng.beta(params["a"], params["b"], n))
    alive = g > x
    log_weight = np.where(g >= x, x * np.log(lam) - lam * np.where(alive, T, t_x), -np.inf)
    weight = np.exp(log_weight - log_weight.max())
    bought = alive & (rng.exponential(1 / lam) < t)
    count = np.where(alive, np.minimum(rng.poisson(lam * t), g - x), 0)
    total = weight.sum()

    def mean_and_se(values: np.ndarray) -> tuple[float, float]:
        mean = (weight * values).sum() / total
        return mean, np.sqrt(((weight * (values - mean)) ** 2).sum()) / total

    return (*mean_and_se(bought), *mean_and_se(count))


@pytest.mark.parametrize("x, t_x, T", [(0, 0.0, 38.86), (1, 5.0, 38.86), (3, 20.0, 30.0), (6, 36.0, 38.0),
                                       (2, 2.0, 10.0)])
def test_purchase_probability_and_expectation_match_monte_carlo(x, t_x, T):
    params, t = PUBLISHED_CDNOW_WEEKS, 4.0
    prob_mc, prob_se, count_mc, count_se = _simulate_window(params, x, t_x, T, t, 400_000,
                                                            np.random.default_rng(x * 100 + int(T)))
    prob = bgnbd.probability_purchase(params, x, t_x, T, t=t)[0]
    assert abs(prob - prob_mc) < 4 * prob_se
    assert abs(bgnbd.expected_purchases(params, x, t_x, T, t=t)[0] - count_mc) < 4 * count_se
    # the purchase probability is neither P(alive) nor the expected count
    assert prob < bgnbd.probability_alive(params, x, t_x, T)[0]
    assert prob < bgnbd.expected_purchases(params, x, t_x, T, t=t)[0]


def test_recent_buyers_are_more_likely_to_buy():
    t_x = np.array([5.0, 15.0, 25.0, 35.0])
    p = bgnbd.probability_purchase(PUBLISHED_CDNOW_WEEKS, np.full(4, 3.0), t_x, np.full(4, 38.0), t=4.0)
    assert np.all(np.diff(p) > 0)


# ---------------------------------------------------------------------- fitting
def _simulate_histories(params, n, T, rng):
    """x, t_x, T of ``n`` BG/NBD customers observed for ``T``: N ~ Poisson(lambda T)
    purchases if none dropped out, x = min(N, G), and t_x the x-th of N uniform arrival
    times, ``T * Beta(x, N - x + 1)``."""
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    purchases_if_alive = rng.poisson(lam * T)
    x = np.minimum(purchases_if_alive, rng.geometric(rng.beta(params["a"], params["b"], n)))
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), purchases_if_alive - x + 1), 0.0)
    return x, t_x, np.full(n, T)


def test_fit_recovers_the_parameters_of_simulated_customers():
    histories = _simulate_histories(RECOVERY_TRUTH, 20_000, 52.0, np.random.default_rng(0))
    params = bgnbd.fit_bgnbd(*histories)
    truth = RECOVERY_TRUTH
    assert params["r"] / params["alpha"] == pytest.approx(truth["r"] / truth["alpha"], rel=0.05)
    assert params["a"] / (params["a"] + params["b"]) == pytest.approx(truth["a"] / (truth["a"] + truth["b"]),
                                                                       rel=0.05)
    assert params == pytest.approx(truth, rel=0.1)
    assert bgnbd.fit_bgnbd(*histories) == params  # deterministic start: the same fit again


def test_the_fit_does_not_depend_on_the_time_unit(cdnow):
    x, t_x, T = cdnow
    weeks, days = bgnbd.fit_bgnbd(x, t_x, T), bgnbd.fit_bgnbd(x, 7 * t_x, 7 * T)
    assert days["alpha"] == pytest.approx(7 * weeks["alpha"], rel=1e-4)
    assert {k: days[k] for k in "rab"} == pytest.approx({k: weeks[k] for k in "rab"}, rel=1e-4)


def test_a_flat_ridge_is_a_fit_not_an_error():
    # six customers show no dropout heterogeneity: the likelihood rises as a and b grow together
    # (Beta(a, b) -> a point mass), and the line search ends where float precision does
    x, t_x, T = [0, 2, 1, 5, 0, 3], [0.0, 30.4, 1.7, 35.0, 0.0, 12.0], [38.9, 38.9, 38.9, 38.0, 37.1, 30.0]
    model = bgnbd.BGNBDModel().fit(x, t_x, T)
    assert model.params_["a"] > 1e4 and model.params_["b"] > 1e4
    p = model.probability_purchase(x, t_x, T, t=4.0)
    assert np.all((p > 0) & (p < 1))
    assert np.all(np.isfinite(model.expected_purchases(x, t_x, T, t=4.0)))


def test_no_repeat_purchase_is_insufficient_data():
    with pytest.raises(InsufficientData, match="no repeat purchase among 3 customers"):
        bgnbd.fit_bgnbd([0, 0, 0], [0.0, 0.0, 0.0], [10.0, 5.0, 2.0])


@pytest.mark.parametrize("frequency, recency, T", [([1, 2], [1.0], [3.0, 3.0]), ([1.5], [1.0], [3.0]),
                                                    ([1], [4.0], [3.0]), ([-1, 1], [0.0, 1.0], [3.0, 3.0])])
def test_invalid_summaries_are_refused(frequency, recency, T):
    with pytest.raises(ValueError, match="frequency"):
        bgnbd.fit_bgnbd(frequency, recency, T)


def test_predict_before_fit_is_an_error():
    with pytest.raises(RuntimeError, match="before fit"):
        bgnbd.BGNBDModel().probability_purchase([1], [1.0], [2.0], t=1.0)
