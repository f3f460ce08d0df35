"""The ``btyd`` arm: Pareto/NBD repeat orders and Gamma-Gamma spend per order.

Models
------
* Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005 note 009 "A note
  on deriving the Pareto/NBD model and related expressions"): while alive a customer buys
  as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; the lifetime is
  exponential with rate ``mu ~ Gamma(s, beta)``.
* Gamma-Gamma (Fader, Hardie & Lee 2005 "RFM and CLV: using iso-value curves for customer
  base analysis"; Fader & Hardie 2013 note 025): a customer's transaction values are
  ``Gamma(p, nu)`` with ``nu ~ Gamma(q, v)``; the posterior mean value per transaction
  shrinks the customer's own mean toward the population mean ``p v / (q - 1)``.

Both are fitted by maximum likelihood here rather than through ``lifetimes`` (whose
Pareto/NBD likelihood uses a Gauss hypergeometric function that returns nan for some
parameters a CDNOW fit reaches, e.g. s = 167, beta = 4969, and whose optimiser starts at
a random point). ``tests/test_btyd.py`` checks this code against lifetimes: likelihoods,
P(alive), conditional expectations, and the published CDNOW fits.

From a monthly panel
--------------------
Time unit: months. The panel knows the month of an order, not its day, so the first
purchase month is not split: the customer's clock starts at the *end* of the first
purchase month and the events are the orders of the later months.

* ``frequency`` x = orders in the months after the first purchase month;
* ``recency`` t_x = last month with such an order - first purchase month - 0.5 (the middle
  of that month on this clock; 0 when x = 0);
* ``T`` = anchor - first purchase month - 1: the whole months observed after the first
  purchase month (0 for a customer first seen last month), so the anchor month is the
  window ``(T, T + 1]``.

Why: with the clock at the middle of the first month, half a month of exposure is counted
in which no repeat order can be recorded. On transactions simulated from a known
Pareto/NBD (true r/alpha = 0.125 per month, ``tests/test_btyd.py``) that convention fitted
r/alpha = 0.100-0.112, and counting purchase months instead of orders 0.085-0.090; this
one gives 0.120-0.127. On CDNOW the out-of-time purchase log loss of the four variants is
within 1.5% of each other. Repeat orders inside the first purchase month are not used.

Gamma-Gamma's transactions are the same repeat orders, their value the spend of the
repeat months divided by their orders (repeat transactions only, as Fader, Hardie & Lee
do: the first purchase is atypical).

Prediction for the anchor month
-------------------------------
Given alive at T, the posterior of (lambda, mu) is the independent pair
``Gamma(r + x, a)`` x ``Gamma(s, b)``, ``a = alpha + T``, ``b = beta + T`` (the alive
likelihood ``lambda^x exp(-(lambda + mu) T)`` factorises). With remaining lifetime
``Exp(mu)``, ``P(>= 1 event in (T, T+t] | lambda, mu, alive) = int_0^t lambda
exp(-(lambda + mu) u) du``: the first event must come before both the window's end and
death, so dying inside the month is accounted for exactly. In expectation,

    P(X(T, T+t) > 0 | x, t_x, T) = P(alive) * int_0^t (r+x)/(a+u) (a/(a+u))^(r+x) (b/(b+u))^s du
    E[X(T, T+t) | x, t_x, T]     = P(alive) * (r+x)/a * int_0^t (b/(b+u))^s du   (note 009, eq. 41)

and, from the likelihood split into "alive at T" and "died at tau in (t_x, T]",

    1/P(alive) - 1 = int_{t_x}^T s/(beta+tau) ((alpha+T)/(alpha+tau))^(r+x) ((beta+T)/(beta+tau))^s dtau.

All three integrals are computed by Gauss-Legendre quadrature, after taking the log of the
factor that can be sharply peaked (``(.)^(r+x)``) as the variable, which leaves a smooth
integrand for heavy buyers too (agreement with lifetimes' closed forms: ~1e-12).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from models.errors import InsufficientData
from narrator.panel import MonthlyPanel

MIN_REPEAT_CUSTOMERS = 30  # fewer repeat buyers than this: Gamma-Gamma is not fitted
QUADRATURE_NODES = 48
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
OMEGA_MAX = 40.0
LOG_PARAM_BOUND = 30.0  # |log parameter| <= 30 keeps degenerate (flat-ridge) fits finite
OPTIMISER_STARTS = (0.0, 1.0)  # log-parameters, see _maximum_likelihood
NELDER_MEAD_EVALUATIONS = 1500  # then L-BFGS-B; walking a flat ridge to the bound is slow
NOT_FINITE = 1e100

Params = dict[str, float]


@dataclass(frozen=True)
class MonthlyRFM:
    """Per-customer Pareto/NBD and Gamma-Gamma inputs from a cut panel (see module doc)."""

    customer_ids: np.ndarray
    frequency: np.ndarray  # repeat orders x (int)
    recency: np.ndarray  # months from the end of the first purchase month to the last order
    T: np.ndarray  # whole months observed after the first purchase month
    mean_repeat_spend: np.ndarray  # spend per repeat order (nan if x = 0)


def monthly_rfm(cut: MonthlyPanel) -> MonthlyRFM:
    """Vectorised RFM summary of ``cut = panel.before(anchor)``."""
    if len(cut.customer_ids) == 0:
        raise InsufficientData("no customers before the anchor month: nothing to fit a BTYD model on")
    anchor_col = cut.n_months
    first = cut.first_idx.astype(np.int64)
    later = np.arange(anchor_col)[None, :] > first[:, None]
    repeat_orders = np.where(later, cut.orders, 0)
    frequency = repeat_orders.sum(axis=1)
    last = anchor_col - 1 - np.argmax((repeat_orders > 0)[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_repeat_spend = np.where(frequency > 0, np.where(later, cut.spend, 0.0).sum(axis=1) / frequency, np.nan)
    return MonthlyRFM(
        customer_ids=cut.customer_ids,
        frequency=frequency.astype(np.int64),
        recency=np.where(frequency > 0, last - first - 0.5, 0.0),
        T=(anchor_col - first - 1).astype(np.float64),
        mean_repeat_spend=mean_repeat_spend,
    )


# ------------------------------------------------------------------ Pareto/NBD maths
def _gauss_legendre(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (n, m) and weights (n, m) of an m-point rule on each interval [lo_i, hi_i]."""
    half = (hi - lo)[:, None] / 2
    return lo[:, None] + half * (_GL_NODES[None, :] + 1), half * _GL_WEIGHTS[None, :]


def _as_arrays(*values) -> list[np.ndarray]:
    return [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values]


def _lomax_weighted_integral(k: np.ndarray, c: np.ndarray, span: np.ndarray, g) -> np.ndarray:
    """``int_0^span k/(c+u) (c/(c+u))^k g(u) du`` (a Lomax density times a smooth g).

    With ``omega = k log(1 + u/c)`` it is ``int_0^Omega exp(-omega) g(c expm1(omega/k))
    d omega``, ``Omega = k log(1 + span/c)``: smooth however peaked the density is. The range
    stops at ``OMEGA_MAX`` (the rest weighs less than exp(-40) of the whole).
    """
    omega_end = np.minimum(k * np.log1p(span / c), OMEGA_MAX)
    omega, w = _gauss_legendre(np.zeros_like(omega_end), omega_end)
    u = c[:, None] * np.expm1(omega / k[:, None])
    return (w * np.exp(-omega) * g(u)).sum(axis=1)


def _log_dead_over_alive(params: Params, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``log(1/P(alive) - 1)``, the log of the integral in the module doc.

    With ``tau = t_x + u``, ``c = alpha + t_x`` and ``k = r + x`` the integral is
    ``((alpha+T)/c)^k int_0^(T-t_x) k/(c+u) (c/(c+u))^k g(u) du`` with the smooth
    ``g = (alpha+tau)/k * s/(beta+tau) * ((beta+T)/(beta+tau))^s``.
    """
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    k, c = r + x, alpha + t_x

    def g(u: np.ndarray) -> np.ndarray:
        tau = t_x[:, None] + u
        return (alpha + tau) / k[:, None] * s / (beta + tau) * np.exp(s * np.log((beta + T)[:, None] / (beta + tau)))

    with np.errstate(divide="ignore"):  # t_x = T: nothing to integrate, log 0 = -inf
        return k * np.log((alpha + T) / c) + np.log(_lomax_weighted_integral(k, c, T - t_x, g))


def pareto_nbd_log_likelihood(params: Params, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood of (x, t_x, T) (note 009, eq. 18, constants dropped as
    lifetimes does): ``log L_alive + log(1 + dead/alive)``."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    log_alive = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
    )
    return log_alive + np.logaddexp(0.0, _log_dead_over_alive(params, x, t_x, T))


def probability_alive(params: Params, frequency, recency, T) -> np.ndarray:
    """``P(alive at T | x, t_x, T)`` (note 009, section 5.1)."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    return np.exp(-np.logaddexp(0.0, _log_dead_over_alive(params, x, t_x, T)))


def purchase_probability_if_alive(params: Params, frequency, T, t: float = 1.0) -> np.ndarray:
    """``P(at least one event in (T, T + t] | alive at T, x, T)``, death inside the window
    included (module doc)."""
    x, T = _as_arrays(frequency, T)
    a, b = params["alpha"] + T, params["beta"] + T
    return _lomax_weighted_integral(
        params["r"] + x, a, np.full_like(a, t), lambda u: np.exp(-params["s"] * np.log1p(u / b[:, None]))
    )


def expected_purchases_if_alive(params: Params, frequency, T, t: float = 1.0) -> np.ndarray:
    """``E[events in (T, T + t] | alive at T, x, T]`` (module doc)."""
    x, T = _as_arrays(frequency, T)
    a, b = params["alpha"] + T, params["beta"] + T
    u, w = _gauss_legendre(np.zeros_like(b), np.full_like(b, t))
    return (params["r"] + x) / a * (w * np.exp(-params["s"] * np.log1p(u / b[:, None]))).sum(axis=1)


def probability_purchase(params: Params, frequency, recency, T, t: float = 1.0) -> np.ndarray:
    """``P(X(T, T + t) > 0 | x, t_x, T)``: P(alive) times the probability if alive."""
    return probability_alive(params, frequency, recency, T) * purchase_probability_if_alive(params, frequency, T, t)


def expected_purchases(params: Params, frequency, recency, T, t: float = 1.0) -> np.ndarray:
    """``E[X(T, T + t) | x, t_x, T]`` (note 009, eq. 41)."""
    return probability_alive(params, frequency, recency, T) * expected_purchases_if_alive(params, frequency, T, t)


# ------------------------------------------------------------------ Gamma-Gamma maths
def gamma_gamma_log_likelihood(params: Params, frequency, mean_value) -> np.ndarray:
    """Per-customer log-likelihood of the mean ``m`` of ``x`` transaction values (note 025,
    eq. 1a, constants dropped as lifetimes does)."""
    p, q, v = params["p"], params["q"], params["v"]
    x, m = _as_arrays(frequency, mean_value)
    return (
        gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
        + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v)
    )


def gamma_gamma_mean_spend(params: Params, frequency, mean_value) -> np.ndarray:
    """Posterior mean value per transaction (note 025, eq. 5): ``w m + (1 - w) p v/(q - 1)``
    with ``w = p x / (p x + q - 1)``; without repeat transactions (x = 0) the population
    mean."""
    p, q, v = params["p"], params["q"], params["v"]
    x, m = _as_arrays(frequency, mean_value)
    weight = p * x / (p * x + q - 1)
    return weight * np.nan_to_num(m, nan=0.0) + (1 - weight) * p * v / (q - 1)


# ----------------------------------------------------------------------- fitting
def _maximum_likelihood(
    loglik: Callable[[Params], np.ndarray], names: tuple[str, ...], weights: np.ndarray
) -> Params:
    """Maximise ``sum(weights * loglik(params))`` over log-parameters, deterministically.

    From each of ``OPTIMISER_STARTS`` (log-parameters all 0, all 1): Nelder-Mead (robust to
    the non-finite corners), capped because walking a flat ridge is slow, then L-BFGS-B
    within ``|log param| <= LOG_PARAM_BOUND``; the best point wins. One start is not
    enough: on CDNOW's monthly spend Nelder-Mead from all-0 drifts onto a ridge toward
    p -> inf, 0.03 nats per customer short of the maximum.
    """
    total = weights.sum()
    bounds = [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * len(names)

    def objective(log_params: np.ndarray) -> float:
        log_params = np.clip(log_params, -LOG_PARAM_BOUND, LOG_PARAM_BOUND)
        with np.errstate(all="ignore"):
            value = -(weights * loglik(dict(zip(names, np.exp(log_params))))).sum() / total
        return float(value) if np.isfinite(value) else NOT_FINITE

    candidates = []
    for start in OPTIMISER_STARTS:
        coarse = minimize(objective, np.full(len(names), start), method="Nelder-Mead",
                          options={"maxfev": NELDER_MEAD_EVALUATIONS, "xatol": 1e-6, "fatol": 1e-10})
        polish_from = np.clip(coarse.x, -LOG_PARAM_BOUND, LOG_PARAM_BOUND)
        fine = minimize(objective, polish_from, method="L-BFGS-B", bounds=bounds)
        candidates += [(coarse.fun, coarse.x), (fine.fun, fine.x)]
    value, best = min(candidates, key=lambda c: c[0])
    if value >= NOT_FINITE:
        raise ValueError("the likelihood is not finite anywhere the optimiser looked")
    return {k: float(v) for k, v in zip(names, np.exp(np.clip(best, -LOG_PARAM_BOUND, LOG_PARAM_BOUND)))}


def fit_pareto_nbd(frequency, recency, T) -> Params:
    """Maximum-likelihood (r, alpha, s, beta) in the time unit of ``recency``/``T``.

    Customers with the same (x, t_x, T) are pooled into one weighted row (Fader and
    Hardie's trick), which on a monthly panel leaves a few hundred distinct rows whatever
    the number of customers.
    """
    table = pd.DataFrame({"x": frequency, "t_x": recency, "T": T})
    pooled = table.groupby(["x", "t_x", "T"], sort=True).size().reset_index(name="w")
    x, t_x, big_t = (pooled[c].to_numpy(dtype=np.float64) for c in ("x", "t_x", "T"))
    return _maximum_likelihood(
        lambda prm: pareto_nbd_log_likelihood(prm, x, t_x, big_t),
        ("r", "alpha", "s", "beta"),
        pooled["w"].to_numpy(dtype=np.float64),
    )


def fit_gamma_gamma(frequency, mean_value) -> tuple[Params | None, str]:
    """(p, q, v) fitted on customers with repeat transactions and a positive mean value,
    or ``(None, reason)`` when there are too few of them or the population mean is
    infinite (q <= 1)."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(mean_value, dtype=np.float64)
    usable = (x > 0) & (np.nan_to_num(m) > 0)
    if usable.sum() < MIN_REPEAT_CUSTOMERS:
        return None, f"only {int(usable.sum())} repeat customers (need {MIN_REPEAT_CUSTOMERS})"
    x, m = x[usable], m[usable]
    params = _maximum_likelihood(lambda prm: gamma_gamma_log_likelihood(prm, x, m), ("p", "q", "v"), np.ones_like(x))
    if params["q"] <= 1:
        return None, f"infinite population mean (q = {params['q']:.3g} <= 1)"
    return params, "gamma-gamma"


class BTYDModel:
    """Pareto/NBD + Gamma-Gamma forecaster of next month's purchase, orders and spend.

    ``fit(cut)`` with ``cut = panel.before(anchor)``. Fitted attributes: ``params_``
    (r, alpha, s, beta; months; ``None`` when no customer has a whole month observed after
    the first purchase month, so nothing about repeat buying can be learnt: then
    ``predict`` returns nan, a missing forecast rather than an invented one),
    ``spend_params_`` (p, q, v, or ``None``), ``spend_model_`` (``"gamma-gamma"`` or
    ``"population mean: <reason>"``) and ``order_value_`` (the cut's pooled spend per
    order). When Gamma-Gamma cannot be fitted (fewer than ``MIN_REPEAT_CUSTOMERS`` repeat
    customers, or q <= 1) every customer's spend per order is that pooled value: the
    right level, no customer-level signal.
    """

    def fit(self, cut: MonthlyPanel) -> "BTYDModel":
        rfm = monthly_rfm(cut)
        self.params_ = fit_pareto_nbd(rfm.frequency, rfm.recency, rfm.T) if rfm.T.max() > 0 else None
        self.spend_params_, reason = fit_gamma_gamma(rfm.frequency, rfm.mean_repeat_spend)
        self.spend_model_ = reason if self.spend_params_ else f"population mean: {reason}"
        self.order_value_ = float(cut.spend.sum() / cut.orders.sum())
        return self

    def predict(self, cut: MonthlyPanel) -> pd.DataFrame:
        """One row per customer of ``cut``: ``customer_id``; ``p_purchase_next_month`` =
        P(at least one order in the anchor month) (not P(alive));
        ``expected_orders_next_month``; ``expected_spend_next_month`` = expected orders x
        Gamma-Gamma spend per order."""
        if not hasattr(self, "params_"):
            raise RuntimeError("BTYDModel.predict called before fit")
        rfm = monthly_rfm(cut)
        if self.params_ is None:
            purchase = orders = np.full(len(rfm.customer_ids), np.nan)
        else:
            alive = probability_alive(self.params_, rfm.frequency, rfm.recency, rfm.T)
            purchase = alive * purchase_probability_if_alive(self.params_, rfm.frequency, rfm.T)
            orders = alive * expected_purchases_if_alive(self.params_, rfm.frequency, rfm.T)
        if self.spend_params_ is None:
            per_order = np.full(len(orders), self.order_value_)
        else:
            per_order = gamma_gamma_mean_spend(self.spend_params_, rfm.frequency, rfm.mean_repeat_spend)
        return pd.DataFrame(
            {
                "customer_id": rfm.customer_ids,
                "p_purchase_next_month": purchase,
                "expected_orders_next_month": orders,
                "expected_spend_next_month": orders * per_order,
            }
        )
