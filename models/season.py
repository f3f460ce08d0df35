"""A population-level seasonal index of the anchor's calendar month, from months before it.

Why not the raw month number: in a shop whose customers mostly arrived together (CDNOW is
one cohort, acquired in 1997-Q1), the calendar month of a row is also the customers' age,
so a model fed ``anchor_month`` learns "April" from April 1997, when every customer was
three months old, and applies it to April 1998 (tests/test_season.py shows this). Here a
calendar month counts only through how much more or less existing customers bought in it
than in the year around it, measured on earlier years:

* ``rate_t``: the share of customers acquired before month t who bought in t;
* ``s_t = rate_t / mean(rate_{t-11..t})``: the month against the 12 months ending with it,
  so each calendar month is in the denominator once and the level (and a slow cohort
  decline) divides out; defined once 12 such rates exist;
* the index of calendar month c at anchor A is the mean of ``s_t`` over the months t < A
  of calendar month c; NaN when there is none (the data cannot yet tell that month's
  season from its customers' age: CDNOW's 18 months never can, at any test anchor).

This is the ratio-to-moving-average idea of classical seasonal decomposition (Macaulay
1931; the X-11 method), trailing instead of centred so that no month at or after the
anchor is read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from narrator.panel import MonthlyPanel

WINDOW_MONTHS = 12


def purchase_rates(cut: MonthlyPanel) -> np.ndarray:
    """``rate_t`` for every month of ``cut`` (NaN where nobody was acquired before t)."""
    months = np.arange(cut.n_months)
    existing = months[None, :] > cut.first_idx[:, None]
    bought = existing & (cut.spend > 0)
    counts = existing.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, bought.sum(axis=0) / counts, np.nan)


def seasonal_ratios(cut: MonthlyPanel) -> np.ndarray:
    """``s_t`` for every month of ``cut`` (NaN until 12 rates exist)."""
    rates = purchase_rates(cut)
    ratios = np.full(len(rates), np.nan)
    for t in range(WINDOW_MONTHS - 1, len(rates)):  # a loop over months, not rows
        window = rates[t - WINDOW_MONTHS + 1: t + 1]
        if np.isfinite(window).all() and window.mean() > 0:
            ratios[t] = rates[t] / window.mean()
    return ratios


def season_index(cut: MonthlyPanel, anchor: pd.Period) -> float:
    """The seasonal index of ``anchor``'s calendar month from ``cut = panel.before(anchor)``."""
    ratios = seasonal_ratios(cut)
    months = pd.period_range(cut.first_month, periods=cut.n_months, freq="M").month.to_numpy()
    same = (months == anchor.month) & np.isfinite(ratios)
    return float(ratios[same].mean()) if same.any() else float("nan")
