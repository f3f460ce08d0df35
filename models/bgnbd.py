"""BG/NBD (Fader, Hardie & Lee 2005, "'Counting your customers' the easy way: an alternative
to the Pareto/NBD model", Marketing Science 24(2), 275-284), fitted by maximum likelihood
with an analytic gradient.

Model
-----
While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
right after each repeat purchase she drops out with probability ``p ~ Beta(a, b)``
(geometric dropout), so a customer without a repeat purchase is alive. Data per customer:
``x`` repeat purchases, the last at ``t_x``, observed over ``(0, T]`` (time unit of the
inputs; ``models.rfm.day_level_rfm`` gives weeks).

Likelihood (paper, eq. 6; constants kept, as in lifetimes' ``BetaGeoFitter``)::

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))

the first term "alive at T", the second "dropped out right after the purchase at t_x". Its
log is ``A1 + A2 + log(exp(A3) + [x > 0] exp(A4))`` with ``A1 = lnG(r+x) - lnG(r) + r ln
alpha``, ``A2 = ln B(a, b+x) - ln B(a, b)``, ``A3 = -(r+x) ln(alpha+T)`` and ``A4 = ln a -
ln(b+x-1) - (r+x) ln(alpha+t_x)``. With ``w = [x > 0] sigmoid(A4 - A3)`` (the posterior
weight of "dropped out") and ``psi`` the digamma function, the gradient is::

    d/dr     = psi(r+x) - psi(r) + ln alpha - (1-w) ln(alpha+T) - w ln(alpha+t_x)
    d/dalpha = r/alpha - (r+x) ((1-w)/(alpha+T) + w/(alpha+t_x))
    d/da     = psi(a+b) - psi(a+b+x) + w/a
    d/db     = psi(a+b) + psi(b+x) - psi(b) - psi(a+b+x) - w/(b+x-1)

and the optimiser works in log-parameters, ``d/dlog(theta) = theta d/dtheta``.

Predictions for (T, T+t]
------------------------
* ``P(alive at T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``
  (Fader, Hardie & Lee, note 021 "Computing P(alive) using the BG/NBD model").
* ``E[X(T, T+t)] = (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x;
  a+b+x-1; z)] P(alive)``, ``z = t/(alpha+T+t)`` (paper, eq. 10). The product in the
  bracket is computed in logs: from the 2F1 as written where it is finite and, where it
  overflows (heavy buyers, long windows), from Euler's transformation ``2F1(A, B; C; z) =
  (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)``, which gives ``(1-z)^(a-1) 2F1(a+b-1-r, a-1;
  a+b+x-1; z)`` (lifetimes does the same). Neither form serves alone: the transformed 2F1
  overflows in turn when a and b are large (a fit on the flat ridge a, b -> inf, where
  every customer has nearly the same dropout probability).
* ``P(X(T, T+t) > 0)``, derived here. A dead customer buys nothing. Given alive at T the
  next purchase arrives at rate lambda whatever p is (dropout happens only *after* a
  purchase), so no purchase in the window has probability ``exp(-lambda t)``. The alive
  term of the likelihood is ``lambda^x exp(-lambda T) (1-p)^x``, so given alive and the
  data ``lambda ~ Gamma(r+x, alpha+T)``, and ``E[exp(-lambda t)] = ((alpha+T)/(alpha+T+
  t))^(r+x)``. Hence::

      P(X(T, T+t) = 0) = (1 - P(alive)) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x)
      P(X(T, T+t) > 0) = P(alive) [1 - ((alpha+T)/(alpha+T+t))^(r+x)]

  ``tests/test_bgnbd.py`` checks it against a simulation of the model.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from models.btyd import START_SHAPES, maximise_log_likelihood, pooled_summary

Params = dict[str, float]
PARAM_NAMES = ("r", "alpha", "a", "b")


def _as_arrays(*values) -> list[np.ndarray]:
    return [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values]


def _log_likelihood_with_gradient(params: Params, x: np.ndarray, t_x: np.ndarray,
                                  T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer log-likelihood (n,) and its gradient in log-parameters (n, 4)."""
    r, alpha, a, b = (params[k] for k in PARAM_NAMES)
    repeat = x > 0
    k = r + x
    b_last = b + np.maximum(x, 1) - 1  # b + x - 1 where it is used (x > 0)
    a3 = -k * np.log(alpha + T)
    a4 = np.where(repeat, np.log(a) - np.log(b_last) - k * np.log(alpha + t_x), -np.inf)
    loglik = (gammaln(k) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
              + np.logaddexp(a3, a4))
    dropped = np.where(repeat, expit(a4 - a3), 0.0)  # posterior weight of the second term
    alive = 1.0 - dropped
    d_r = digamma(k) - digamma(r) + np.log(alpha) - alive * np.log(alpha + T) - dropped * np.log(alpha + t_x)
    d_alpha = r / alpha - k * (alive / (alpha + T) + dropped / (alpha + t_x))
    common_ab = digamma(a + b) - digamma(a + b + x)
    d_a = common_ab + dropped / a
    d_b = common_ab + digamma(b + x) - digamma(b) - dropped / b_last
    gradient = np.column_stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
    return loglik, gradient


def bgnbd_log_likelihood(params: Params, frequency, recency, T) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood of (x, t_x, T) (module doc, paper eq. 6).

    Parameters
    ----------
    params: ``{"r", "alpha", "a", "b"}``, all positive.
    frequency, recency, T: arrays (or scalars) of x, t_x and T, one entry per customer.

    Returns
    -------
    numpy.ndarray of log-likelihoods, one per customer.

    Example
    -------
    >>> bgnbd_log_likelihood({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, 2, 30.43, 38.86)
    array([-9.45...])
    """
    x, t_x, big_t = _as_arrays(frequency, recency, T)
    return _log_likelihood_with_gradient(params, x, t_x, big_t)[0]


def bgnbd_log_likelihood_gradient(params: Params, frequency, recency, T) -> np.ndarray:
    """Gradient (n, 4) of each customer's log-likelihood in (log r, log alpha, log a, log b).

    Parameters and example as :func:`bgnbd_log_likelihood`; the columns follow
    ``PARAM_NAMES``.
    """
    x, t_x, big_t = _as_arrays(frequency, recency, T)
    return _log_likelihood_with_gradient(params, x, t_x, big_t)[1]


def probability_alive(params: Params, frequency, recency, T) -> np.ndarray:
    """``P(alive at T | x, t_x, T)`` (note 021); 1 for customers without a repeat purchase.

    Parameters as :func:`bgnbd_log_likelihood`; returns one probability per customer.

    Example
    -------
    >>> probability_alive({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, [0, 2], [0, 30.43], [38.86, 38.86])
    array([1.        , 0.72...])
    """
    x, t_x, big_t = _as_arrays(frequency, recency, T)
    r, alpha, a, b = (params[k] for k in PARAM_NAMES)
    log_dead_over_alive = (r + x) * np.log((alpha + big_t) / (alpha + t_x)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.where(x > 0, expit(-log_dead_over_alive), 1.0)


def expected_purchases(params: Params, frequency, recency, T, t: float = 1.0) -> np.ndarray:
    """``E[X(T, T + t) | x, t_x, T]``: expected repeat purchases in the next ``t`` time
    units (paper eq. 10; module doc).

    Parameters as :func:`bgnbd_log_likelihood`, and ``t`` (> 0) in the same time unit;
    returns one expectation per customer.

    Example
    -------
    >>> expected_purchases({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, 2, 30.43, 38.86, t=39.0)
    array([1.2...])
    """
    x, t_x, big_t = _as_arrays(frequency, recency, T)
    r, alpha, a, b = (params[k] for k in PARAM_NAMES)
    z = t / (alpha + big_t + t)
    log_1_minus_z = -np.log1p(t / (alpha + big_t))
    c = a + b + x - 1
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # an overflow picks the other form
        direct = (r + x) * log_1_minus_z + np.log(hyp2f1(r + x, b + x, c, z))
        transformed = (a - 1) * log_1_minus_z + np.log(hyp2f1(a + b - 1 - r, a - 1, c, z))
    log_product = np.where(np.isfinite(direct), direct, transformed)
    return c / (a - 1) * -np.expm1(log_product) * probability_alive(params, x, t_x, big_t)


def probability_purchase(params: Params, frequency, recency, T, t: float = 1.0) -> np.ndarray:
    """``P(X(T, T + t) > 0 | x, t_x, T)``: at least one purchase in the next ``t`` time
    units, ``P(alive) [1 - ((alpha+T)/(alpha+T+t))^(r+x)]`` (derived in the module doc).

    Parameters as :func:`bgnbd_log_likelihood`, and ``t`` (> 0) in the same time unit;
    returns one probability per customer.

    Example
    -------
    >>> probability_purchase({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, 0, 0.0, 38.86, t=4.0)
    array([0.02...])
    """
    x, t_x, big_t = _as_arrays(frequency, recency, T)
    none_if_alive = np.exp(-(params["r"] + x) * np.log1p(t / (params["alpha"] + big_t)))
    return probability_alive(params, x, t_x, big_t) * (1.0 - none_if_alive)


# ----------------------------------------------------------------------- fitting
def _start(summary: tuple[np.ndarray, ...]) -> np.ndarray:
    """Deterministic start in log-parameters: shapes 1, and alpha = the mean T, so that the
    start's mean rate r/alpha is of the data's time scale whatever the unit (days or weeks)."""
    _, _, big_t, weights = summary
    mean_T = float(weights @ big_t / weights.sum())
    return np.log([START_SHAPES, mean_T, START_SHAPES, START_SHAPES])  # T > 0: someone has x > 0


def fit_bgnbd(frequency, recency, T) -> Params:
    """Maximum-likelihood (r, alpha, a, b) in the time unit of ``recency``/``T``.

    Identical (x, t_x, T) rows are pooled into one weighted row (Fader and Hardie's trick),
    then L-BFGS-B with the analytic gradient maximises the mean log-likelihood over
    log-parameters (``models.btyd.maximise_log_likelihood``), from :func:`_start`.

    Parameters
    ----------
    frequency, recency, T: x, t_x and T per customer (e.g. from ``day_level_rfm``).

    Returns
    -------
    ``{"r", "alpha", "a", "b"}``.

    Raises
    ------
    ValueError: inputs of different lengths, or not a valid (x, t_x, T).
    InsufficientData: no customer has a repeat purchase.
    ModelError: the optimiser ran out of iterations or reached no finite likelihood.

    Example
    -------
    >>> fit_bgnbd([0, 2, 1, 5, 0, 3], [0, 30.4, 1.7, 35.0, 0, 12.0], [38.9, 38.9, 38.9, 38.0, 37.1, 30.0])
    {'r': ..., 'alpha': ..., 'a': ..., 'b': ...}
    """
    summary = pooled_summary(frequency, recency, T, "BG/NBD")
    return maximise_log_likelihood(_log_likelihood_with_gradient, PARAM_NAMES, _start(summary), summary, "BG/NBD")


class BGNBDModel:
    """BG/NBD repeat-purchase model, scikit-learn style.

    ``fit(frequency, recency, T)`` sets ``params_`` (r, alpha, a, b in the inputs' time
    unit); the prediction methods take the same three arrays for the customers to score.

    Example
    -------
    >>> model = BGNBDModel().fit(rfm.frequency, rfm.recency, rfm.T)  # doctest: +SKIP
    >>> model.probability_purchase(rfm.frequency, rfm.recency, rfm.T, t=4.0)  # doctest: +SKIP
    """

    def fit(self, frequency, recency, T) -> "BGNBDModel":
        """Fit by maximum likelihood (:func:`fit_bgnbd`); returns ``self``."""
        self.params_ = fit_bgnbd(frequency, recency, T)
        return self

    def _fitted(self) -> Params:
        if not hasattr(self, "params_"):
            raise RuntimeError("BGNBDModel used before fit: call fit(frequency, recency, T) first")
        return self.params_

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        """``P(alive at T)`` per customer (:func:`probability_alive`)."""
        return probability_alive(self._fitted(), frequency, recency, T)

    def expected_purchases(self, frequency, recency, T, t: float = 1.0) -> np.ndarray:
        """Expected purchases in ``(T, T + t]`` per customer (:func:`expected_purchases`)."""
        return expected_purchases(self._fitted(), frequency, recency, T, t)

    def probability_purchase(self, frequency, recency, T, t: float = 1.0) -> np.ndarray:
        """``P(at least one purchase in (T, T + t])`` per customer (:func:`probability_purchase`)."""
        return probability_purchase(self._fitted(), frequency, recency, T, t)
