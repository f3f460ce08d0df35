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

The purchase model takes ``log(index)`` as a fixed offset of its log-odds (see
:mod:`models.xgb`): for a customer who buys at rate lambda, P(buy) ~ lambda * season, so a
season shifts the log-odds by about log(season) whatever the customer's history; trees given
only the index as a split feature learn that shift from the few seasonal months among the
training anchors, and early stopping on a validation month outside the season does not
reward them for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from narrator.panel import MonthlyPanel

WINDOW_MONTHS = 12
SEASON_COLUMN = "season_index"  # the baseline feature; the purchase model's offset reads it
# the centred 2x12 moving average: months t-6..t+6, the two ends at half weight
_CENTRED_WEIGHTS = np.r_[0.5, np.ones(WINDOW_MONTHS - 1), 0.5] / WINDOW_MONTHS


def purchase_rates(cut: MonthlyPanel) -> np.ndarray:
    """``rate_t`` for every month of ``cut`` (NaN where nobody was acquired before t)."""
    months = np.arange(cut.n_months)
    existing = months[None, :] > cut.first_idx[:, None]
    bought = existing & (cut.spend > 0)
    counts = existing.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, bought.sum(axis=0) / counts, np.nan)


def seasonal_ratios(cut: MonthlyPanel) -> np.ndarray:
    """``s_t`` for every month of ``cut`` (NaN where the centred window is incomplete)."""
    rates = purchase_rates(cut)
    ratios = np.full(len(rates), np.nan)
    half = WINDOW_MONTHS // 2
    for t in range(half, len(rates) - half):  # a loop over months, not rows
        window = _CENTRED_WEIGHTS @ rates[t - half: t + half + 1]
        if np.isfinite(window) and window > 0:
            ratios[t] = rates[t] / window
    return ratios


def season_index(cut: MonthlyPanel, anchor: pd.Period) -> float:
    """The seasonal index of ``anchor``'s calendar month from ``cut = panel.before(anchor)``."""
    ratios = seasonal_ratios(cut)
    months = pd.period_range(cut.first_month, periods=cut.n_months, freq="M").month.to_numpy()
    same = (months == anchor.month) & np.isfinite(ratios)
    return float(ratios[same].mean()) if same.any() else float("nan")


def season_offset(index: np.ndarray) -> np.ndarray:
    """The purchase model's log-odds offset: ``log(index)``, 0 where the index is missing."""
    index = np.asarray(index, dtype=float)
    ok = np.isfinite(index) & (index > 0)
    return np.where(ok, np.log(np.where(ok, index, 1.0)), 0.0)
