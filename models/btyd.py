"""The ``btyd`` arm's models: Pareto/NBD repeat purchases and Gamma-Gamma spend per
purchase, and the maximum-likelihood fitting they share with BG/NBD (:mod:`models.bgnbd`;
``forecaster.pipeline.DayLevelBTYD`` chooses between the two repeat-purchase models).

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
a random point), both by L-BFGS-B with the analytic gradients of their likelihoods
(:func:`_log_likelihood_with_gradient`, :func:`_gamma_gamma_with_gradient`). ``tests/test_btyd.py`` checks this code against
lifetimes: likelihoods, P(alive), conditional expectations, and the published CDNOW fits.
The inputs (x, t_x, T) come from :mod:`models.rfm`: day-level from transactions, or
monthly from a panel (:class:`BTYDModel`).

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

from typing import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, logsumexp

from models.errors import InsufficientData, ModelError
from models.rfm import monthly_rfm
from narrator.panel import MonthlyPanel

MIN_REPEAT_CUSTOMERS = 30  # fewer repeat buyers than this: Gamma-Gamma is not fitted
QUADRATURE_NODES = 48
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
OMEGA_MAX = 40.0
LOG_PARAM_BOUND = 30.0  # |log parameter| <= 30 keeps degenerate (flat-ridge) fits finite
PARAM_NAMES = ("r", "alpha", "s", "beta")
START_SHAPES = 1.0  # the fits start at shapes 1 and scales of the data's (see each fit)
# L-BFGS-B stops when the mean log-likelihood per customer changes by less than this
# (relative; scipy's default 2e-9 stops ~1e-6 short in the gradient) or its gradient is this small
CONVERGENCE_TOLERANCE = 1e-12
MAX_ITERATIONS = 1000
L_BFGS_B_TOO_MANY_ITERATIONS = 1  # scipy's OptimizeResult.status for L-BFGS-B

Params = dict[str, float]


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


def _dead_nodes(params: Params, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """Quadrature of ``1/P(alive) - 1``, the integral in the module doc, node by node.

    With ``k = r + x``, ``c = alpha + t_x`` and ``omega = k log((alpha+tau)/c)`` as the
    variable (module doc: the peaked factor becomes ``exp(-omega)``), the nodes are
    ``tau_j = t_x + c expm1(omega_j/k)`` and ``du = (alpha+tau)/k d omega``. Returns
    ``(tau, log_rho)``, both (n, m): ``rho_j`` is node j's share of ``dead/alive``, so
    ``1/P(alive) - 1 = sum_j rho_j`` (``log_rho = -inf`` everywhere when t_x = T).
    """
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    k, c = (r + x)[:, None], (alpha + t_x)[:, None]
    omega_end = np.minimum(k[:, 0] * np.log1p((T - t_x) / c[:, 0]), OMEGA_MAX)
    omega, w = _gauss_legendre(np.zeros_like(omega_end), omega_end)
    tau = t_x[:, None] + c * np.expm1(omega / k)
    log_beta_tau = np.log(beta + tau)
    with np.errstate(divide="ignore"):  # t_x = T: zero weights, log 0 = -inf
        log_rho = (np.log(w / k) + np.log(s) - omega + k * np.log((alpha + T)[:, None] / c)
                   + s * (np.log(beta + T)[:, None] - log_beta_tau) - log_beta_tau + np.log(alpha + tau))
    return tau, log_rho


def _log_dead_over_alive(params: Params, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``log(1/P(alive) - 1)`` (module doc)."""
    return logsumexp(_dead_nodes(params, x, t_x, T)[1], axis=1)


def _log_likelihood_with_gradient(params: Params, x: np.ndarray, t_x: np.ndarray,
                                  T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood (n,) and its gradient in log-parameters (n, 4).

    ``log L = K + log(A + D)`` with ``K = lnG(r+x) - lnG(r) + r ln alpha + s ln beta``, the
    alive term ``A = (alpha+T)^-(r+x) (beta+T)^-s`` and the died-at-tau term ``D = int_t_x^T
    f(tau) dtau``, ``f = s (alpha+tau)^-(r+x) (beta+tau)^-(s+1)``. The limits do not move
    with the parameters, so ``dD = int f dlog f``: the gradient is ``dK`` plus the
    posterior-weighted mean of ``dlog A`` (weight ``1/(1+R)``) and of ``dlog f`` at the
    nodes (weights ``rho_j/(1+R)``), ``R = sum_j rho_j``. It matches finite differences
    of :func:`pareto_nbd_log_likelihood` to ~1e-8 (``tests/test_btyd.py``).
    """
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    k = r + x
    tau, log_rho = _dead_nodes(params, x, t_x, T)
    log_alpha_T, log_beta_T = np.log(alpha + T), np.log(beta + T)
    log_1_plus_r = np.logaddexp(0.0, logsumexp(log_rho, axis=1))
    loglik = (gammaln(k) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
              - k * log_alpha_T - s * log_beta_T + log_1_plus_r)
    alive = np.exp(-log_1_plus_r)  # P(alive): the weight of A
    dead = np.exp(log_rho - log_1_plus_r[:, None])  # the nodes' weights, summing to 1 - P(alive)
    d_r = digamma(k) - digamma(r) + np.log(alpha) - alive * log_alpha_T - (dead * np.log(alpha + tau)).sum(axis=1)
    d_alpha = r / alpha - k * (alive / (alpha + T) + (dead / (alpha + tau)).sum(axis=1))
    d_s = np.log(beta) - alive * log_beta_T + (dead * (1 / s - np.log(beta + tau))).sum(axis=1)
    d_beta = s / beta - alive * s / (beta + T) - (s + 1) * (dead / (beta + tau)).sum(axis=1)
    return loglik, np.column_stack([r * d_r, alpha * d_alpha, s * d_s, beta * d_beta])


def pareto_nbd_log_likelihood(params: Params, frequency, recency, T) -> np.ndarray:
    """Per-customer log-likelihood of (x, t_x, T) (note 009, eq. 18, constants dropped as
    lifetimes does): ``log L_alive + log(1 + dead/alive)``.

    Example
    -------
    >>> pareto_nbd_log_likelihood({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, 2, 30.43, 38.86)
    array([-9.55...])
    """
    return _log_likelihood_with_gradient(params, *_as_arrays(frequency, recency, T))[0]


def pareto_nbd_log_likelihood_gradient(params: Params, frequency, recency, T) -> np.ndarray:
    """Gradient (n, 4) of each customer's log-likelihood in (log r, log alpha, log s,
    log beta); parameters as :func:`pareto_nbd_log_likelihood`."""
    return _log_likelihood_with_gradient(params, *_as_arrays(frequency, recency, T))[1]


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
def _gamma_gamma_with_gradient(params: Params, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood (n,) and its gradient in (log p, log q, log v) (n, 3)."""
    p, q, v = params["p"], params["q"], params["v"]
    px, log_total = p * x, np.log(x * m + v)
    loglik = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
              + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * log_total)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - log_total)
    d_q = digamma(px + q) - digamma(q) + np.log(v) - log_total
    d_v = q / v - (px + q) / (x * m + v)
    return loglik, np.column_stack([p * d_p, q * d_q, v * d_v])


def gamma_gamma_log_likelihood(params: Params, frequency, mean_value) -> np.ndarray:
    """Per-customer log-likelihood of the mean ``m`` of ``x`` transaction values (note 025,
    eq. 1a, constants dropped as lifetimes does)."""
    return _gamma_gamma_with_gradient(params, *_as_arrays(frequency, mean_value))[0]


def gamma_gamma_mean_spend(params: Params, frequency, mean_value) -> np.ndarray:
    """Posterior mean value per transaction (note 025, eq. 5): ``w m + (1 - w) p v/(q - 1)``
    with ``w = p x / (p x + q - 1)``; without repeat transactions (x = 0) the population
    mean."""
    p, q, v = params["p"], params["q"], params["v"]
    x, m = _as_arrays(frequency, mean_value)
    weight = p * x / (p * x + q - 1)
    return weight * np.nan_to_num(m, nan=0.0) + (1 - weight) * p * v / (q - 1)


# ----------------------------------------------------------------------- fitting
def pooled_summary(frequency, recency, T, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated (x, t_x, T) with identical rows pooled into one, and each row's weight
    (Fader and Hardie's trick: a monthly panel leaves a few hundred distinct rows).

    Raises ``ValueError`` for inputs of different lengths or an invalid (x, t_x, T), and
    ``InsufficientData`` when no customer has a repeat purchase (``model`` names the model
    in the message).
    """
    x, t_x, big_t = _as_arrays(frequency, recency, T)
    if not (len(x) == len(t_x) == len(big_t)):
        raise ValueError(f"frequency, recency and T have lengths {len(x)}, {len(t_x)}, {len(big_t)}: "
                         "pass one entry per customer in each")
    if len(x) == 0 or not (x > 0).any():
        raise InsufficientData(f"no repeat purchase among {len(x)} customers: "
                               f"{model} cannot learn a purchase or dropout rate; use a longer history")
    if not (np.all(x >= 0) and np.all(x == np.round(x)) and np.all((0 <= t_x) & (t_x <= big_t))):
        raise ValueError("frequency must be whole numbers >= 0 and 0 <= recency <= T for every customer: "
                         "build the inputs with models.rfm.day_level_rfm")
    pooled = pd.DataFrame({"x": x, "t_x": t_x, "T": big_t}).groupby(["x", "t_x", "T"], sort=True).size()
    columns = (pooled.index.get_level_values(c).to_numpy(dtype=np.float64) for c in ("x", "t_x", "T"))
    return *columns, pooled.to_numpy(dtype=np.float64)


def maximise_log_likelihood(loglik_and_gradient: Callable, names: tuple[str, ...], start: np.ndarray,
                            summary: tuple[np.ndarray, ...], model: str) -> Params:
    """Maximum-likelihood parameters from ``start`` (log-parameters), by L-BFGS-B with the
    analytic gradient on the weighted mean log-likelihood of a :func:`pooled_summary`,
    within ``|log theta| <= LOG_PARAM_BOUND``.

    ``loglik_and_gradient(params, x, t_x, T)`` returns per-row log-likelihoods (n,) and
    their gradient in log-parameters (n, len(names)). Raises ``ModelError`` when the
    optimiser runs out of iterations or reaches no finite likelihood.
    """
    *data, weights = summary
    total = weights.sum()

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        loglik, gradient = loglik_and_gradient(dict(zip(names, np.exp(log_params))), *data)
        return -float(weights @ loglik) / total, -(weights @ gradient) / total

    tolerances = {"ftol": CONVERGENCE_TOLERANCE, "gtol": CONVERGENCE_TOLERANCE, "maxiter": MAX_ITERATIONS}
    result = minimize(objective, start, jac=True, method="L-BFGS-B",
                      bounds=[(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * len(names), options=tolerances)
    # status 2 (ABNORMAL line search) is accepted: no further decrease exists at working
    # precision, as on a flat ridge (no dropout heterogeneity: a, b -> inf for BG/NBD,
    # s, beta -> inf for Pareto/NBD); only running out of iterations fails.
    if result.status == L_BFGS_B_TOO_MANY_ITERATIONS or not np.isfinite(result.fun):
        raise ModelError(f"{model} fit did not converge on {int(total)} customers ({result.message}); "
                         "check the inputs' time unit and history length")
    return {name: float(value) for name, value in zip(names, np.exp(result.x))}


def fit_pareto_nbd(frequency, recency, T) -> Params:
    """Maximum-likelihood (r, alpha, s, beta) in the time unit of ``recency``/``T``.

    L-BFGS-B with the analytic gradient (:func:`maximise_log_likelihood`) from shapes 1
    and scales the mean T, so the start's purchase and dropout rates are of the data's time
    scale whatever the unit. On the full CDNOW calibration period (23,570 customers, weeks)
    it takes under a second, a quarter of lifetimes' ParetoNBDFitter (``bench/btyd_fit.py``).

    Parameters
    ----------
    frequency, recency, T: x, t_x and T per customer (e.g. from ``models.rfm.day_level_rfm``).

    Returns
    -------
    ``{"r", "alpha", "s", "beta"}``.

    Raises
    ------
    ValueError: inputs of different lengths, or not a valid (x, t_x, T).
    InsufficientData: no customer has a repeat purchase.
    ModelError: the optimiser ran out of iterations or reached no finite likelihood.

    Example
    -------
    >>> fit_pareto_nbd([0, 2, 1, 5, 0, 3], [0, 30.4, 1.7, 35.0, 0, 12.0], [38.9, 38.9, 38.9, 38.0, 37.1, 30.0])
    {'r': ..., 'alpha': ..., 's': ..., 'beta': ...}
    """
    summary = pooled_summary(frequency, recency, T, "Pareto/NBD")
    mean_T = float(summary[3] @ summary[2] / summary[3].sum())
    start = np.log([START_SHAPES, mean_T, START_SHAPES, mean_T])
    return maximise_log_likelihood(_log_likelihood_with_gradient, PARAM_NAMES, start, summary, "Pareto/NBD")


def fit_gamma_gamma(frequency, mean_value) -> tuple[Params | None, str]:
    """(p, q, v) fitted on customers with repeat transactions and a positive mean value
    (L-BFGS-B with the analytic gradient), or ``(None, reason)`` when there are too few of
    them, the fit does not converge or the population mean is infinite (q <= 1)."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(mean_value, dtype=np.float64)
    usable = (x > 0) & (np.nan_to_num(m) > 0)
    if usable.sum() < MIN_REPEAT_CUSTOMERS:
        return None, f"only {int(usable.sum())} repeat customers (need {MIN_REPEAT_CUSTOMERS})"
    x, m = x[usable], m[usable]
    start = np.log([START_SHAPES, 2 * START_SHAPES, m.mean()])  # population mean p v/(q-1) = the data's
    try:
        params = maximise_log_likelihood(_gamma_gamma_with_gradient, ("p", "q", "v"), start,
                                         (x, m, np.ones_like(x)), "Gamma-Gamma")
    except ModelError as exc:
        return None, str(exc)
    if params["q"] <= 1:
        return None, f"infinite population mean (q = {params['q']:.3g} <= 1)"
    return params, "gamma-gamma"


class BTYDModel:
    """Pareto/NBD + Gamma-Gamma forecaster of next month's purchase, orders and spend.

    ``fit(cut)`` with ``cut = panel.before(anchor)``. Fitted attributes: ``params_``
    (r, alpha, s, beta; months; ``None`` when no customer has a repeat order after the
    first purchase month, so nothing about repeat buying can be learnt: then ``predict``
    returns nan, a missing forecast rather than an invented one),
    ``spend_params_`` (p, q, v, or ``None``), ``spend_model_`` (``"gamma-gamma"`` or
    ``"population mean: <reason>"``) and ``order_value_`` (the cut's pooled spend per
    order). When Gamma-Gamma cannot be fitted (fewer than ``MIN_REPEAT_CUSTOMERS`` repeat
    customers, or q <= 1) every customer's spend per order is that pooled value: the
    right level, no customer-level signal.
    """

    def fit(self, cut: MonthlyPanel) -> "BTYDModel":
        rfm = monthly_rfm(cut)
        repeat = (rfm.frequency > 0).any()
        self.params_ = fit_pareto_nbd(rfm.frequency, rfm.recency, rfm.T) if repeat else None
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
