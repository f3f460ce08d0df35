"""The ``bayes`` arm: the best next-month forecast of a synthetic customer that the data
allow, the posterior predictive under the generator's own hierarchical priors.

The oracle (:func:`forecaster.synthetic.oracle_bucket_probabilities`) knows each customer's
parameters; this arm knows only the priors of :mod:`forecaster.synthetic` (segment shares,
the Gamma / Beta / Gamma parameter distributions of each segment, the seasonality, the
Gamma order-amount shape q_g) and integrates the parameters out of what an arm may see:
the first purchase column F (tenure) and the orders n_m and spend y_m of the
``history_months`` months w = a - H, ..., a - 1 before the anchor column a. Nothing of the
anchor month or later is read, and of the months before the window only that F was the
first purchase (the acquisition month's prior does not depend on the parameters, so it
cancels).

Given the segment g the likelihood factorises, since given the counts the spend depends
on nu alone. With D the death month (D - F ~ Geometric(p); alive in months F..D-1):

- D is summed exactly: D <= w (gone before the window, possible only when F < w and every
  window month is empty; the months F..w-1 are unseen, their counts summed out), D = d for
  each window month after the last order, and D > a (alive in the anchor month);
- lambda ~ Gamma(r, rate alpha) by Gamma-Poisson conjugacy: the alive window months
  max(w, F)..D-1 give lambda^K exp(-lambda S) (K: their orders beyond the first purchase's
  certain one, S: their season factors summed), E = Gamma(r+K) alpha^r / (Gamma(r)
  (alpha+S)^(r+K)), and the anchor month's count given alive is negative binomial with
  shape r+K and rate alpha+S per unit of season;
- p ~ Beta(a, b) by Beta integrals, E[(1-p)^x p^y] = B(a+y, b+x) / B(a, b);
- nu ~ Gamma(k, mean m) by the trapezoidal rule on a uniform grid in log nu: the posterior
  is log-concave there and the rule converges geometrically for such smooth, fast-decaying
  integrands (Trefethen & Weideman 2014, SIAM Review 56(3)); the step is at most half the
  narrowest posterior's standard deviation. The spend of n orders given nu is
  Gamma(n q, scale nu/q), its bucket split a regularised incomplete gamma function.

Neglected: the rounding of each order to 100원 and its 100원 floor (spend is taken as
continuous), the prior mass of nu beyond its 1e-10 quantiles, and the anchor month's
negative-binomial tail beyond ~1e-12 (given the bucket split of the largest count kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import betaln, gammainc, gammaln, logsumexp

from forecaster.synthetic import MIN_ORDER_WON, SEGMENTS, SegmentSpec, season_factors
from narrator.panel import HISTORY_MONTHS, MonthlyPanel

_CUSTOMERS_PER_CHUNK = 2_000  # bounds the (customers x value grid) temporaries
_VALUE_PRIOR_TAIL = 1e-10  # the nu grid spans the prior's quantiles [tail, 1 - tail] ...
_VALUE_DATA_MARGIN = 3.0  # ... and every observed mean order value divided and multiplied by this
_MAX_LOG_STEP = 0.02
_COUNT_TAIL = 1e-12  # the anchor month's order counts are kept up to this survival probability


@dataclass(frozen=True)
class _Window:
    """What the arm sees of each customer: the first purchase column and the window's
    months w..a-1 (zeros before the data starts)."""

    first: np.ndarray  # (C,) column of the first purchase
    start: int  # w = a - H; negative when the data is shorter than the window
    orders: np.ndarray  # (C, H)
    spend: np.ndarray  # (C, H)

    def take(self, part: slice) -> "_Window":
        return _Window(self.first[part], self.start, self.orders[part], self.spend[part])

    @property
    def alive_from(self) -> np.ndarray:
        """The first window month the customer can be alive in: max(w, F)."""
        return np.maximum(self.first, self.start)

    @property
    def n_orders(self) -> np.ndarray:
        return self.orders.sum(axis=1)


@dataclass(frozen=True)
class _ValueGrid:
    """One segment's trapezoidal grid over log nu and its bucket split of n orders' spend."""

    log_value: np.ndarray  # (G,)
    step: float
    split: np.ndarray  # (G, n_max, n_buckets - 1): P(bucket | n = 1..n_max orders, nu)


def bayes_bucket_probabilities(
    cut: MonthlyPanel,
    anchor: pd.Period,
    edges: np.ndarray,
    segments: tuple[SegmentSpec, ...] = SEGMENTS,
    history_months: int = HISTORY_MONTHS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The posterior predictive of the anchor month for every customer of ``cut``
    (= ``panel.before(anchor)``), from the window before it and the tenure only.

    Parameters: ``edges`` the bucket scheme's strictly increasing spend edges (bucket 0 is
    no purchase; spend s > 0 is bucket 1 + #(edges <= s)); ``segments`` the generator's
    mixture (the default is the shop's own); ``history_months`` the window the arm sees.
    Returns (customer_ids, probs (n, len(edges) + 2), expected spend).
    Raises ValueError when ``cut`` does not end just before ``anchor`` or the edges are bad.

    Example: ``ids, probs, spend = bayes_bucket_probabilities(panel.before(a), a, scheme.edges)``.
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be a strictly increasing 1-d array")
    a = cut.column(anchor)
    if a != cut.n_months:
        raise ValueError(f"the panel must be cut at {anchor} (panel.before(anchor)); it ends at {cut.last_month}")
    window = _window(cut, a, history_months)
    season = season_factors(cut.first_month, a + 1)
    cum = np.concatenate([[0.0], np.cumsum(season)])  # cum[j] = sum of s_m for m < j
    n_max = _largest_count(window, segments, cum, a)
    grids = [_value_grid(window, seg, edges, n_max) for seg in segments]
    shares = np.array([seg.share for seg in segments])
    n = len(window.first)
    probs, spend = np.empty((n, len(edges) + 2)), np.empty(n)
    for lo in range(0, n, _CUSTOMERS_PER_CHUNK):
        part = slice(lo, lo + _CUSTOMERS_PER_CHUNK)
        probs[part], spend[part] = _chunk_forecast(window.take(part), segments, grids,
                                                   np.log(shares / shares.sum()), cum, a)
    return cut.customer_ids, probs, spend


def _window(cut: MonthlyPanel, a: int, history_months: int) -> _Window:
    start = a - history_months
    pad = max(0, -start)  # months of the window before the data: nothing happened there
    orders = np.pad(cut.orders[:, max(0, start):a], ((0, 0), (pad, 0))).astype(np.float64)
    spend = np.pad(cut.spend[:, max(0, start):a], ((0, 0), (pad, 0)))
    return _Window(cut.first_idx.astype(np.int64), start, orders, spend)


def _rate_prior(seg: SegmentSpec) -> tuple[float, float]:
    """(shape r, rate alpha) of lambda's Gamma prior."""
    return seg.rate_shape, seg.rate_shape / seg.rate_mean


def _extra_orders(window: _Window) -> np.ndarray:
    """K: the window's orders beyond the one the acquisition month always has."""
    return window.n_orders - (window.first >= window.start)


def _anchor_count(window: _Window, seg: SegmentSpec, cum: np.ndarray, a: int) -> tuple[np.ndarray, np.ndarray]:
    """(shape, rate) of lambda's posterior given the window and alive throughout it."""
    r, alpha = _rate_prior(seg)
    exposure = cum[a] - cum[window.alive_from]
    return r + _extra_orders(window), alpha + exposure


def _largest_count(window: _Window, segments, cum: np.ndarray, a: int) -> int:
    """The anchor month's order count beyond which every customer's predictive mass is below
    ``_COUNT_TAIL`` in every segment."""
    s_a = cum[a + 1] - cum[a]
    largest = 1
    for seg in segments:
        shape, rate = _anchor_count(window, seg, cum, a)
        largest = max(largest, int(stats.nbinom.isf(_COUNT_TAIL, shape, rate / (rate + s_a)).max()))
    return largest


def _value_grid(window: _Window, seg: SegmentSpec, edges: np.ndarray, n_max: int) -> _ValueGrid:
    """The log nu grid of one segment: its prior's bulk and every observed mean order value,
    spaced at most half the narrowest posterior's sd (about 1 / sqrt(k + N q))."""
    k, scale, q = seg.value_shape, seg.value_mean / seg.value_shape, seg.order_shape
    lo, hi = stats.gamma.ppf(_VALUE_PRIOR_TAIL, k, scale=scale), stats.gamma.isf(_VALUE_PRIOR_TAIL, k, scale=scale)
    n = window.n_orders
    if (n > 0).any():
        mean_order = window.spend.sum(axis=1)[n > 0] / n[n > 0]
        lo = min(lo, max(mean_order.min(), MIN_ORDER_WON) / _VALUE_DATA_MARGIN)
        hi = max(hi, mean_order.max() * _VALUE_DATA_MARGIN)
    step = min(_MAX_LOG_STEP, 0.5 / np.sqrt(k + q * n.max(initial=0)))
    log_value = np.arange(np.log(lo), np.log(hi) + step, step)
    counts = np.arange(1, n_max + 1)
    # P(spend of n orders < edge | nu): Gamma(n q, scale nu / q)
    below = gammainc((counts * q)[None, :, None], (edges * q)[None, None, :] / np.exp(log_value)[:, None, None])
    shape = below.shape[:2] + (1,)
    split = np.diff(np.concatenate([np.zeros(shape), below, np.ones(shape)], axis=2), axis=2)
    return _ValueGrid(log_value, step, split)


def _count_states(window: _Window, seg: SegmentSpec, cum: np.ndarray, a: int) -> np.ndarray:
    """log P(window counts, state | segment), up to a factor common to every segment and
    state, for the states [gone before the window, D = w+1, ..., D = a, alive at a]:
    shape (C, H + 2), -inf where the counts rule a state out."""
    r, alpha = _rate_prior(seg)
    drop_a, drop_b = seg.drop_a, seg.drop_b
    first, w, alive_from = window.first, window.start, window.alive_from
    extra = _extra_orders(window)[:, None]

    def rate_part(exposure: np.ndarray) -> np.ndarray:  # E[lambda^K exp(-lambda S)]
        return gammaln(r + extra) - gammaln(r) + r * np.log(alpha) - (r + extra) * np.log(alpha + exposure)

    h = window.orders.shape[1]
    has_order = window.orders > 0
    last = np.where(has_order.any(axis=1), w + h - 1 - np.argmax(has_order[:, ::-1], axis=1), w - 1)
    death = w + 1 + np.arange(h)[None, :]  # D = d: alive in months max(w, F)..d-1 of the window
    possible = (death > alive_from[:, None]) & (death > last[:, None])
    months_before = np.maximum(death - first[:, None] - 1, 0)  # survived draws before dying at d
    # clipped: a death month ruled out can lie before max(w, F); its weight is -inf below anyway
    exposure = np.maximum(cum[np.clip(death, 0, a)] - cum[alive_from][:, None], 0.0)
    died = betaln(drop_a + 1, drop_b + months_before) - betaln(drop_a, drop_b) + rate_part(exposure)
    died = np.where(possible, died, -np.inf)
    alive = (betaln(drop_a, drop_b + a - first) - betaln(drop_a, drop_b)
             + rate_part((cum[a] - cum[alive_from])[:, None])[:, 0])
    survive_gap = betaln(drop_a, drop_b + np.maximum(w - first, 0)) - betaln(drop_a, drop_b)
    can_be_gone = (first < w) & (window.n_orders == 0)
    with np.errstate(divide="ignore"):
        gone = np.where(can_be_gone, np.log(-np.expm1(survive_gap)), -np.inf)
    return np.column_stack([gone, died, alive])


def _spend_evidence(window: _Window, seg: SegmentSpec, grid: _ValueGrid) -> tuple[np.ndarray, np.ndarray]:
    """(log p(window spend | counts, segment), posterior weights of the nu grid (C, G))."""
    k, mean, q = seg.value_shape, seg.value_mean, seg.order_shape
    n, y = window.orders, np.maximum(window.spend, MIN_ORDER_WON)
    bought = n > 0
    shape = np.where(bought, n * q, 1.0)
    # the y-dependent factors of each month's Gamma(n q, nu / q) density: they differ by segment
    months = np.where(bought, (shape - 1) * np.log(y) - gammaln(shape), 0.0).sum(axis=1)
    n_total, y_total = n.sum(axis=1), np.where(bought, y, 0.0).sum(axis=1)
    t = grid.log_value[None, :]
    # log of nu^(-N q) exp(-Y q / nu) times the Gamma(k, mean m) prior density, per d(log nu)
    log_f = ((k - q * n_total)[:, None] * t - (k / mean) * np.exp(t) - (q * y_total)[:, None] * np.exp(-t)
             + k * np.log(k / mean) - gammaln(k))
    total = logsumexp(log_f, axis=1)
    evidence = months + q * n_total * np.log(q) + total + np.log(grid.step)
    return evidence, np.exp(log_f - total[:, None])


def _count_pmf(shape: np.ndarray, rate: np.ndarray, s_a: float, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(N = 0), P(N = n) for n = 1..n_max with the tail beyond n_max added to n_max) of
    the negative binomial anchor-month count."""
    counts = np.arange(1, n_max + 1)[None, :]
    log_keep, log_move = np.log(rate / (rate + s_a)), np.log(s_a / (rate + s_a))
    shape_ = shape[:, None]
    pmf = np.exp(gammaln(shape_ + counts) - gammaln(shape_) - gammaln(counts + 1)
                 + shape_ * log_keep[:, None] + counts * log_move[:, None])
    none = np.exp(shape * log_keep)
    pmf[:, -1] += np.maximum(0.0, 1.0 - none - pmf.sum(axis=1))
    return none, pmf


def _chunk_forecast(window: _Window, segments, grids: list[_ValueGrid], log_shares: np.ndarray,
                    cum: np.ndarray, a: int) -> tuple[np.ndarray, np.ndarray]:
    """(probs, expected spend) of one chunk of customers, mixed over segments and states."""
    s_a = cum[a + 1] - cum[a]
    joint, positive, mean_spend, no_order = [], [], [], []
    for seg, grid, log_share in zip(segments, grids, log_shares):
        evidence, weights = _spend_evidence(window, seg, grid)
        joint.append(log_share + evidence[:, None] + _count_states(window, seg, cum, a))
        shape, rate = _anchor_count(window, seg, cum, a)
        none, pmf = _count_pmf(shape, rate, s_a, grid.split.shape[1])
        split = (weights @ grid.split.reshape(len(grid.log_value), -1)).reshape(pmf.shape + (-1,))
        positive.append(np.einsum("cn,cnk->ck", pmf, split))
        mean_spend.append(shape / rate * s_a * (weights @ np.exp(grid.log_value)))
        no_order.append(none)
    joint = np.stack(joint, axis=1)  # (C, segments, states)
    alive = np.exp(joint[:, :, -1] - logsumexp(joint, axis=(1, 2))[:, None])  # P(segment, alive at a | data)
    probs_positive = np.einsum("cg,cgk->ck", alive, np.stack(positive, axis=1))
    p_none = 1.0 - np.einsum("cg,cg->c", alive, 1.0 - np.column_stack(no_order))
    return np.column_stack([p_none, probs_positive]), np.einsum("cg,cg->c", alive, np.column_stack(mean_spend))
