"""A season-aware repeat-purchase model on the monthly panel: each customer's probability
of buying in the anchor month, with its population fitted on an additive summary of the cut.

The model (discrete months; one latent class):

* while alive, a customer's orders in month m are Poisson(lambda s_m), lambda ~ Gamma(r,
  rate alpha) across customers (the NBD of Pareto/NBD's purchasing, Schmittlein, Morrison &
  Colombo 1987, Management Science 33(1)); the first purchase month's first order is the
  acquisition, the rest of its orders count like any other month's;
* at the start of every month after the first purchase a customer still alive drops out with
  probability p, p ~ Beta(a, b): the beta-geometric dropout of BG/NBD (Fader, Hardie & Lee
  2005, Marketing Science 24(2)) and of the discrete-time BG/BB (Fader, Hardie & Shang 2010,
  Marketing Science 29(6));
* s_m is the order rate's seasonal index of month m's calendar month (the ``factors`` of
  :class:`models.season.SeasonContext`; 1 where unknown), so a month in the season is more
  exposure and a quiet December says more than a quiet July.

Given a customer's first purchase month F, last month with an order L and orders after the
first K (all before the anchor month A), the death month D (the first month gone) is summed
exactly over D = L+1, ..., A-1 and D >= A, and lambda and p are integrated in closed form
(gamma-Poisson and beta integrals, as in :func:`forecaster.bayes` with the generator's priors
replaced by fitted ones). ``repeat_buy`` is P(alive in A and at least one order in A | F, L,
K): the survival of A's own dropout draw times 1 - exp(-lambda s_A), integrated.

The population (r, alpha, a, b) is fitted by maximum likelihood on :class:`RepeatSummary`:
customer counts by (F, L, K) of ``panel.before(anchor)``, which add exactly over any split
of the customers (``summary(part 1) + summary(part 2)``), so a partitioned run fits on the
sum of its partitions' summaries. Only months before the anchor are read
(``tests/test_repeat.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, logsumexp

from narrator.panel import MonthlyPanel, month_ordinal, ordinal_to_period

REPEAT_COLUMN = "repeat_buy"  # the baseline feature: P(buy in the anchor month) from this model
_START = np.log([1.0, 2.0, 1.5, 15.0])  # (r, alpha, a, b) where the likelihood search starts
_LOG_BOUNDS = (-8.0, 8.0)


@dataclass(frozen=True)
class RepeatSummary:
    """Customers of a cut panel counted by (first purchase month, last month with an order,
    orders after the first); months are :func:`narrator.panel.month_ordinal` values."""

    anchor: int
    first: np.ndarray
    last: np.ndarray
    repeats: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, cut: MonthlyPanel) -> "RepeatSummary":
        """The summary of ``cut = panel.before(anchor)``: its anchor is the month after its last."""
        a = cut.start + cut.n_months
        has_order = cut.orders > 0
        last = cut.n_months - 1 - np.argmax(has_order[:, ::-1], axis=1)
        first = cut.start + cut.first_idx.astype(np.int64)
        return cls.counted(a, first, cut.start + last.astype(np.int64), _repeats(cut.orders.sum(axis=1)),
                           np.ones(len(first), dtype=np.int64))

    @classmethod
    def counted(cls, anchor: int, first: np.ndarray, last: np.ndarray, repeats: np.ndarray,
                count: np.ndarray) -> "RepeatSummary":
        """The summary of these (possibly repeated) keys, each with its count."""
        keys = np.stack([first, last, repeats], axis=1).astype(np.int64)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        total = np.bincount(inverse.ravel(), weights=count, minlength=len(unique)).astype(np.int64)
        return cls(anchor, unique[:, 0], unique[:, 1], unique[:, 2], total)

    def __add__(self, other: "RepeatSummary") -> "RepeatSummary":
        if self.anchor != other.anchor:
            raise ValueError("summaries of different anchors do not add")
        return self.counted(self.anchor, np.r_[self.first, other.first], np.r_[self.last, other.last],
                            np.r_[self.repeats, other.repeats], np.r_[self.count, other.count])


def _repeats(lifetime_orders: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(lifetime_orders, dtype=np.int64) - 1, 0)


def _season_weights(factors: np.ndarray, start: int, anchor: int) -> np.ndarray:
    """s_m for the months ``start``..``anchor`` (1 where the calendar month's factor is unknown)."""
    known = np.where(np.isfinite(factors) & (factors > 0), factors, 1.0)
    return known[np.arange(start, anchor + 1) % 12]


@dataclass(frozen=True)
class _Candidates:
    """Each key's death-month candidates (column 0: D >= A, alive at the anchor month's
    start; column 1 + d: D = d): the season-weighted months alive, the months survived, and
    log P(data, D) up to the key's ``common`` factor (-inf where D is impossible)."""

    exposure: np.ndarray
    survived: np.ndarray
    died: np.ndarray  # 1 where the candidate is a death (one more factor p), 0 for alive
    log_joint: np.ndarray
    common: np.ndarray


def _candidates(theta: np.ndarray, first: np.ndarray, last: np.ndarray, repeats: np.ndarray, weights: np.ndarray,
                start: int, anchor: int) -> _Candidates:
    """The death months D = L+1..A-1 and D >= A of each key (F, L, K), given (r, alpha, a, b):
    alive months F..D-1 give lambda^K exp(-lambda S) integrated over Gamma(r, alpha), the
    months survived x and a death y in {0, 1} give (1-p)^x p^y integrated over Beta(a, b)."""
    r, alpha, a, b = theta
    cumulative = np.r_[0.0, np.cumsum(weights)]  # [j]: s summed over months start..start+j-1
    f, n, k = first - start, anchor - start, repeats.astype(float)
    death = np.arange(n)
    from_first = cumulative[f]
    exposure = np.column_stack([cumulative[n] - from_first,
                                np.maximum(cumulative[death][None, :] - from_first[:, None], 0.0)])
    survived = np.clip(np.column_stack([n - f - 1, death[None, :] - f[:, None] - 1]), 0, None)
    died = np.r_[0.0, np.ones(n)][None, :]
    possible = np.column_stack([np.ones(len(f), dtype=bool), death[None, :] > (last - start)[:, None]])
    log_joint = betaln(a + died, b + survived) - (r + k)[:, None] * np.log(alpha + exposure)
    common = gammaln(r + k) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    return _Candidates(exposure, survived, died, np.where(possible, log_joint, -np.inf), common)


def _log_likelihood(x: np.ndarray, summary: "RepeatSummary", weights: np.ndarray, start: int) -> tuple[float, np.ndarray]:
    """The mean log-likelihood per customer of ``summary`` at (r, alpha, a, b) = exp(x), and
    its gradient in x (the posterior over D weighs each candidate's derivatives)."""
    theta = np.exp(x)
    r, alpha, a, b = theta
    c = _candidates(theta, summary.first, summary.last, summary.repeats, weights, start, summary.anchor)
    share = summary.count / summary.count.sum()
    total = logsumexp(c.log_joint, axis=1)
    weight = np.exp(c.log_joint - total[:, None])
    k = summary.repeats.astype(float)
    psi_ab = digamma(a + c.died + b + c.survived)
    d_r = digamma(r + k) - digamma(r) + np.log(alpha) - (weight * np.log(alpha + c.exposure)).sum(axis=1)
    d_alpha = r / alpha - (r + k) * (weight / (alpha + c.exposure)).sum(axis=1)
    d_a = digamma(a + b) - digamma(a) + (weight * (digamma(a + c.died) - psi_ab)).sum(axis=1)
    d_b = digamma(a + b) - digamma(b) + (weight * (digamma(b + c.survived) - psi_ab)).sum(axis=1)
    gradient = np.array([share @ d_r, share @ d_alpha, share @ d_a, share @ d_b]) * theta
    return float(share @ (total + c.common)), gradient


@dataclass(frozen=True)
class RepeatContext:
    """The fitted population at ``anchor``: ``theta`` = (r, alpha, a, b) (NaN when nobody was
    acquired before the anchor), the seasonal factors its exposure uses, and ``start``, the
    month the season-weighted exposures are summed from (the earliest first purchase of the
    fit), so that every group of customers gets the same values bit for bit."""

    anchor: pd.Period
    theta: np.ndarray
    factors: np.ndarray
    start: int

    @classmethod
    def fit(cls, summary: RepeatSummary, factors: np.ndarray) -> "RepeatContext":
        """Maximum likelihood of (r, alpha, a, b) on ``summary`` (of the whole cut, or added up
        over its groups of customers) by L-BFGS-B on their logs; ``factors``: the order rate's
        seasonal index of each calendar month (:meth:`models.season.SeasonStats.order_factors`)."""
        anchor = ordinal_to_period(summary.anchor)
        factors = np.asarray(factors, dtype=float)
        if not len(summary.count):
            return cls(anchor, np.full(4, np.nan), factors, summary.anchor)
        start = int(summary.first.min())
        weights = _season_weights(factors, start, summary.anchor)

        def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, gradient = _log_likelihood(x, summary, weights, start)
            return -value, -gradient

        found = minimize(loss, _START, jac=True, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * len(_START))
        return cls(anchor, np.exp(found.x), factors, start)

    @classmethod
    def from_cut(cls, cut: MonthlyPanel, factors: np.ndarray) -> "RepeatContext":
        """The context of ``cut = panel.before(anchor)``: :meth:`fit` on its summary."""
        return cls.fit(RepeatSummary.of(cut), factors)

    def probability_buy(self, first_idx: np.ndarray, last_idx: np.ndarray, lifetime_orders: np.ndarray,
                        panel_start: int) -> np.ndarray:
        """P(a purchase in the anchor month) of each customer (columns of a panel starting at
        month ordinal ``panel_start``); computed once per distinct (F, L, K)."""
        if not np.isfinite(self.theta).all() or not len(first_idx):
            return np.full(len(first_idx), np.nan)
        anchor = month_ordinal(self.anchor)
        keys = np.stack([panel_start + np.asarray(first_idx, dtype=np.int64),
                         panel_start + np.asarray(last_idx, dtype=np.int64), _repeats(lifetime_orders)], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        start = min(self.start, int(unique[:, 0].min()))
        weights = _season_weights(self.factors, start, anchor)
        r, alpha, a, b = self.theta
        c = _candidates(self.theta, unique[:, 0], unique[:, 1], unique[:, 2], weights, start, anchor)
        shape = r + unique[:, 2]
        alive_exposure = c.exposure[:, 0]
        quiet = -shape * np.log1p(weights[anchor - start] / (alpha + alive_exposure))  # log P(no order in A | alive)
        # alive at A's start, survives A's own dropout draw (one more month survived), orders in A
        log_buy = (betaln(a, b + c.survived[:, 0] + 1) - shape * np.log(alpha + alive_exposure)
                   + np.log(-np.expm1(quiet)))
        log_data = logsumexp(c.log_joint, axis=1)
        return np.exp(log_buy - log_data)[inverse.ravel()]

    def columns(self, first_idx: np.ndarray, last_idx: np.ndarray, lifetime_orders: np.ndarray,
                panel_start: int) -> dict[str, np.ndarray]:
        """The ``repeat_buy`` column of these customers."""
        return {REPEAT_COLUMN: self.probability_buy(first_idx, last_idx, lifetime_orders, panel_start)}

