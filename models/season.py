"""A population-level seasonal index of the anchor's calendar month, from months before it.

Why not the raw month number: in a shop whose customers mostly arrived together (CDNOW is
one cohort, acquired in 1997-Q1), the calendar month of a row is also the customers' age,
so a model fed ``anchor_month`` learns "April" from April 1997, when every customer was
three months old, and applies it to April 1998 (tests/test_season.py shows this). Here a
calendar month counts only through how much more or less existing customers bought in it
than in the year around it, measured on earlier years:

* ``rate_t``: the share of customers acquired before month t who bought in t;
* ``s_t = rate_t / MA_t``, ``MA_t`` the centred 2x12 moving average of the rates (months
  t-6..t+6, the two ends at half weight), so each calendar month counts once and the level
  and a slow cohort decline divide out on both sides of t; defined once those 13 rates exist
  and t+6 is still before the anchor. A trailing mean (months t-11..t) was used before: in a
  declining population it is above ``rate_t`` in every month, which biased every index low
  (0.68-0.98 on the synthetic shop, whose mean season is 1) and left its first year without
  any;
* the index of calendar month c at anchor A is the mean of ``s_t`` over the months t with
  t+6 < A of calendar month c; NaN when there is none (the data cannot yet tell that month's
  season from its customers' age: CDNOW's 18 months never can, at any test anchor).

This is the ratio-to-moving-average step of classical seasonal decomposition (Macaulay 1931;
the X-11 method's centred 2x12 average), computed only on months whose whole window lies
before the anchor, so that no month at or after the anchor is read.

The purchase model takes the season as a fixed offset of its log-odds (see
:mod:`models.xgb`): trees given only the index as a split feature learn the season from the
few seasonal months among the training anchors, and early stopping on a validation month
outside the season does not reward them for it. The offset is each customer's own
(:class:`SeasonContext`): with orders ~ Poisson(lambda * season), P(buy) = 1 - exp(-lambda
season), and a season moves the log-odds by about log(season) for a customer who rarely buys
but by about lambda (season - 1) for a frequent one (:func:`season_shift`). The season there
is the order rate's index (:meth:`SeasonStats.order_factors`: the same centred ratio on orders per
existing customer), since the share buying saturates: on synthetic:10000:0 at 2024-11 the
share-buying index of November is 1.13, the order rate's 1.26 (the generator's factor over
its centred yearly mean: 1.28). ``log(index)`` for everyone was the offset before (issue 11).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from narrator.panel import MonthlyPanel, month_ordinal

WINDOW_MONTHS = 12
SEASON_COLUMN = "season_index"  # the baseline feature; the purchase model's offset reads it
# the centred 2x12 moving average: months t-6..t+6, the two ends at half weight
_CENTRED_WEIGHTS = np.r_[0.5, np.ones(WINDOW_MONTHS - 1), 0.5] / WINDOW_MONTHS


def purchase_rates(cut: MonthlyPanel) -> np.ndarray:
    """``rate_t`` for every month of ``cut`` (NaN where nobody was acquired before t)."""
    return SeasonStats.of(cut).purchase_rates()


def seasonal_ratios(rates: np.ndarray) -> np.ndarray:
    """``s_t`` for every month of the rates per month (NaN where the centred window is
    incomplete)."""
    ratios = np.full(len(rates), np.nan)
    half = WINDOW_MONTHS // 2
    for t in range(half, len(rates) - half):  # a loop over months, not rows
        window = _CENTRED_WEIGHTS @ rates[t - half: t + half + 1]
        if np.isfinite(window) and window > 0:
            ratios[t] = rates[t] / window
    return ratios


def _calendar_index(first_month: pd.Period, ratios: np.ndarray, month: int) -> float:
    """The mean of ``ratios`` (one per month from ``first_month``) over the months of
    calendar month ``month`` (NaN: none)."""
    months = pd.period_range(first_month, periods=len(ratios), freq="M").month.to_numpy()
    same = (months == month) & np.isfinite(ratios)
    return float(ratios[same].mean()) if same.any() else float("nan")


def season_index(cut: MonthlyPanel, anchor: pd.Period) -> float:
    """The seasonal index of ``anchor``'s calendar month from ``cut = panel.before(anchor)``."""
    return SeasonStats.of(cut).index(anchor.month)


def season_offset(index: np.ndarray) -> np.ndarray:
    """The purchase model's log-odds offset: ``log(index)``, 0 where the index is missing."""
    index = np.asarray(index, dtype=float)
    ok = np.isfinite(index) & (index > 0)
    return np.where(ok, np.log(np.where(ok, index, 1.0)), 0.0)


# -- the per-customer seasonal shift of the purchase log-odds ----------------------------------
SHIFT_COLUMN = "season_shift"  # the purchase model's log-odds offset (models/xgb.py)
ORDERS_COLUMN = "season_orders"  # expected orders in the anchor month given a purchase


def _exposure(first_idx: np.ndarray, panel_start: int, anchor: pd.Period, factors: np.ndarray) -> np.ndarray:
    """Each customer's months from the first purchase to the month before ``anchor``, each
    weighted by its calendar month's factor (1 where it is unknown)."""
    a = month_ordinal(anchor)
    weight = np.where(np.isfinite(factors), factors, 1.0)
    months = np.arange(panel_start, a)  # month ordinals (narrator.panel.month_ordinal) before the anchor
    cumulative = np.r_[0.0, np.cumsum(weight[months % 12])]
    first = np.clip(np.asarray(first_idx, dtype=np.int64), 0, len(months))
    return cumulative[-1] - cumulative[first]



def _log_odds_of_any(x: np.ndarray) -> np.ndarray:
    """logit(1 - exp(-x)) = log(1 - exp(-x)) + x, for a Poisson mean x > 0."""
    return np.log(-np.expm1(-x)) + x


def season_shift(rate: np.ndarray, factor: float) -> np.ndarray:
    """The log-odds shift of P(any order) when a Poisson rate ``rate`` is multiplied by the
    season ``factor``: logit(1 - exp(-rate factor)) - logit(1 - exp(-rate)) =
    log((1 - exp(-rate factor)) / (1 - exp(-rate))) + rate (factor - 1). About log(factor) for
    a rare buyer, about rate (factor - 1) for a frequent one; 0 where the factor is unknown."""
    rate = np.maximum(np.asarray(rate, dtype=float), _MIN_RATE)
    if not (np.isfinite(factor) and factor > 0):
        return np.zeros(len(rate))
    return _log_odds_of_any(rate * factor) - _log_odds_of_any(rate)


def orders_if_bought(rate: np.ndarray, factor: float) -> np.ndarray:
    """E[orders | at least one] of a Poisson(rate x factor) month: x / (1 - exp(-x)) (factor 1
    where unknown)."""
    x = np.maximum(np.asarray(rate, dtype=float), _MIN_RATE) * (factor if np.isfinite(factor) and factor > 0 else 1.0)
    return x / -np.expm1(-x)


_MIN_RATE = 1e-9


_COUNT_BITS = 32  # a customer's key in SeasonStats: first month above, orders after the first below


@dataclass(frozen=True)
class SeasonStats:
    """What :class:`SeasonContext` reads of a cut panel, as integer counts over its
    customers: per month, the customers acquired before it, how many of them bought and their
    orders; and how many customers share each (first month, orders after the first) pair.
    Counts of groups of customers add up exactly to the whole cut's (``a + b``), so a batch
    made partition by partition gets the context of the whole panel bit for bit, and the
    moments of the rates are summed over the distinct pairs in one order whatever the
    customers' order."""

    first_month: pd.Period
    existing: np.ndarray
    buying: np.ndarray
    orders: np.ndarray
    keys: np.ndarray  # int64, sorted and distinct: first month << _COUNT_BITS | orders after the first
    counts: np.ndarray  # customers per key

    @classmethod
    def of(cls, cut: MonthlyPanel) -> "SeasonStats":
        existing = np.arange(cut.n_months)[None, :] > cut.first_idx[:, None]
        first = np.minimum(cut.first_idx.astype(np.int64), cut.n_months)
        after_first = np.maximum(cut.orders.sum(axis=1, dtype=np.int64) - 1, 0)
        keys, counts = np.unique((first << _COUNT_BITS) | after_first, return_counts=True)
        return cls(cut.first_month, existing.sum(axis=0), (existing & (cut.spend > 0)).sum(axis=0),
                   np.where(existing, cut.orders, 0).sum(axis=0, dtype=np.int64), keys, counts.astype(np.int64))

    def __add__(self, other: "SeasonStats") -> "SeasonStats":
        if other.first_month != self.first_month or len(other.existing) != len(self.existing):
            raise ValueError("season stats of different panels' months cannot be added")
        keys, at = np.unique(np.r_[self.keys, other.keys], return_inverse=True)
        counts = np.zeros(len(keys), dtype=np.int64)
        np.add.at(counts, at, np.r_[self.counts, other.counts])
        return SeasonStats(self.first_month, self.existing + other.existing, self.buying + other.buying,
                           self.orders + other.orders, keys, counts)

    def purchase_rates(self) -> np.ndarray:
        """``rate_t``: the share of the customers acquired before t who bought in t (NaN: nobody)."""
        return _per_existing(self.buying, self.existing)

    def index(self, calendar_month: int) -> float:
        """The seasonal index of a calendar month (1..12): :func:`season_index`."""
        return _calendar_index(self.first_month, seasonal_ratios(self.purchase_rates()), calendar_month)

    def order_factors(self) -> np.ndarray:
        """The order-rate seasonal index of each calendar month (January..December at 0..11):
        the ratio to the centred moving average of :func:`season_index`, on orders per
        existing customer instead of the share buying; NaN where the data cannot tell yet."""
        ratios = seasonal_ratios(_per_existing(self.orders, self.existing))
        return np.array([_calendar_index(self.first_month, ratios, m) for m in range(1, 13)])

    def rate_prior(self, anchor: pd.Period, factors: np.ndarray) -> tuple[float, float]:
        """(shape, mean) of the gamma prior of the order rates by the method of moments
        (:class:`SeasonContext`); shape inf when the rates vary no more than Poisson noise."""
        count = (self.keys & ((1 << _COUNT_BITS) - 1)).astype(float)
        exposure = _exposure(self.keys >> _COUNT_BITS, month_ordinal(self.first_month), anchor, factors)
        n, weights = self.counts.sum(), self.counts.astype(float)
        if not n or weights @ exposure <= 0:
            return float("inf"), float("nan")
        mean = float(weights @ count / (weights @ exposure))
        rate = count / exposure
        spread = float(weights @ (rate - weights @ rate / n) ** 2 / n - mean * (weights @ (1.0 / exposure)) / n)
        return (mean ** 2 / spread if spread > 0 and mean > 0 else float("inf")), mean


def _per_existing(values: np.ndarray, existing: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(existing > 0, values / existing, np.nan)


@dataclass(frozen=True)
class SeasonContext:
    """What the population tells about the anchor month's season, computed once from
    ``cut = panel.before(anchor)`` (:meth:`from_cut`), so that a chunk of customers (a batch
    chunk, a Dask worker) gets the same features as the whole panel.

    * ``index``: :func:`season_index` (the ``season_index`` feature);
    * ``factors``: :meth:`SeasonStats.order_factors`, the order rate's index per calendar month;
    * ``prior_shape``, ``prior_mean``: the gamma prior of the customers' order rates at
      season 1, by the method of moments over ``cut``'s customers (Poisson-gamma empirical
      Bayes: Morris 1983, JASA 78(381); Gelman et al. 2013, section 2.6). ``prior_shape``
      is inf when the rates vary no more than Poisson noise (everyone gets the mean).

    Each customer's rate (:meth:`rates`) is the posterior mean
    ``(shape + n) / (shape / mean + E)``: ``n`` the orders after the first (the acquisition
    month's first order is the acquisition, not a draw from the rate), ``E`` the months from
    the first purchase to the month before the anchor, each weighted by its calendar
    month's factor. Its :func:`season_shift` at the anchor's factor is the purchase
    model's offset (``season_shift``), :func:`orders_if_bought` the ``season_orders`` feature.
    Only months before the anchor are read (``tests/test_season.py``)."""

    anchor: pd.Period
    index: float
    factors: np.ndarray
    prior_shape: float
    prior_mean: float

    @classmethod
    def from_cut(cls, cut: MonthlyPanel, anchor: pd.Period) -> "SeasonContext":
        return cls.from_stats(SeasonStats.of(cut), anchor)

    @classmethod
    def from_stats(cls, stats: SeasonStats, anchor: pd.Period) -> "SeasonContext":
        """The context from the cut's :class:`SeasonStats` (of the whole cut, or added up
        over its groups of customers)."""
        factors = stats.order_factors()
        shape, mean = stats.rate_prior(anchor, factors)
        return cls(anchor, stats.index(anchor.month), factors, shape, mean)

    @property
    def factor(self) -> float:
        """The order rate's seasonal index of the anchor's calendar month (NaN: unknown)."""
        return float(self.factors[self.anchor.month - 1])

    def rates(self, lifetime_orders: np.ndarray, first_idx: np.ndarray, panel_start: int) -> np.ndarray:
        """Each customer's order rate per month at season 1 (class doc)."""
        count, exposure = _counts(lifetime_orders, first_idx, panel_start, self.anchor, self.factors)
        if not np.isfinite(self.prior_mean):
            return np.full(len(count), np.nan)
        if not np.isfinite(self.prior_shape):
            return np.full(len(count), self.prior_mean)
        return (self.prior_shape + count) / (self.prior_shape / self.prior_mean + exposure)

    def columns(self, lifetime_orders: np.ndarray, first_idx: np.ndarray, panel_start: int) -> dict[str, np.ndarray]:
        """The ``season_shift`` and ``season_orders`` columns of these customers."""
        rate = self.rates(lifetime_orders, first_idx, panel_start)
        known = np.isfinite(rate)
        safe = np.where(known, rate, 1.0)
        return {SHIFT_COLUMN: np.where(known, season_shift(safe, self.factor), 0.0),
                ORDERS_COLUMN: np.where(known, orders_if_bought(safe, self.factor), np.nan)}


def _counts(lifetime_orders: np.ndarray, first_idx: np.ndarray, panel_start: int, anchor: pd.Period,
            factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orders after the first, and the season-weighted months since the first purchase."""
    count = np.maximum(np.asarray(lifetime_orders, dtype=float) - 1.0, 0.0)
    return count, _exposure(first_idx, panel_start, anchor, factors)
