"""Baseline features, from a customer's history before the anchor only.

Monthly features come from a :class:`~narrator.panel.HistoryBatch`, built from
``panel.before(anchor)``; the seasonal index from that cut panel (:mod:`models.season`);
the day-level timing features from the purchase days before the anchor's first day
(:mod:`models.timing`): no value from the anchor month or later can reach a feature.
Cells before a customer's first purchase are missing (NaN), not zero: the customer did
not exist yet, which is different from a month without a purchase.

There is no raw calendar-month feature: see :mod:`models.season` for why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.repeat import REPEAT_COLUMN, RepeatContext
from models.season import ORDERS_COLUMN, SEASON_COLUMN, SHIFT_COLUMN, SeasonContext
from models.timing import TIMING_LABELS, PurchaseDays
from narrator.panel import HistoryBatch, MonthlyPanel, month_ordinal

LAGS = 6
WINDOWS = (3, 6, 12)

# Korean descriptions used by the explanation sentences and the report.
FEATURE_LABELS: dict[str, str] = {
    "recency": "마지막 구매 후 지난 개월 수",
    "tenure": "첫 구매 후 지난 개월 수",
    "lifetime_active_months": "구매한 달의 수(전체 기간)",
    "lifetime_orders": "누적 주문 수",
    "lifetime_spend": "누적 지출액",
    "monetary": "구매한 달의 평균 지출액",
    "order_value": "주문당 평균 지출액",
    "orders_per_month": "첫 구매 이후 월평균 주문 수",
    "orders_per_active_month": "구매한 달의 평균 주문 수",
    "active_share": "구매한 달의 비율",
    "trend_slope": "최근 12개월 지출 추세(월별 기울기)",
    SEASON_COLUMN: "예측 대상 월의 계절 지수(지난해들의 같은 달 구매율)",
    SHIFT_COLUMN: "예측 대상 월의 계절이 이 고객의 구매 로그오즈에 주는 변화",
    ORDERS_COLUMN: "예측 대상 월에 구매한다면 예상되는 주문 수(계절 반영)",
    REPEAT_COLUMN: "반복구매 모형(주문 빈도·이탈·계절)이 본 예측 대상 월의 구매 확률",
    **{f"spend_lag{k}": f"{k}개월 전 지출액" for k in range(1, LAGS + 1)},
    **{f"orders_lag{k}": f"{k}개월 전 주문 수" for k in range(1, LAGS + 1)},
    **{f"spend_mean{w}": f"최근 {w}개월 평균 지출액" for w in WINDOWS},
    **{f"spend_max{w}": f"최근 {w}개월 최대 월 지출액" for w in WINDOWS},
    **{f"active{w}": f"최근 {w}개월 중 구매한 달의 수" for w in WINDOWS},
    **TIMING_LABELS,
}


def baseline_feature_names() -> list[str]:
    return list(FEATURE_LABELS)


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    counts = (~np.isnan(x)).sum(axis=1)
    return np.where(counts > 0, np.nansum(x, axis=1) / np.maximum(counts, 1), np.nan)


def _nanmax_rows(x: np.ndarray) -> np.ndarray:
    filled = np.where(np.isnan(x), -np.inf, x).max(axis=1)
    return np.where(np.isfinite(filled), filled, np.nan)


def _slope(spend: np.ndarray) -> np.ndarray:
    """Least-squares slope of spend on month index over each row's observed months
    (NaN with fewer than 2 observed months)."""
    t = np.broadcast_to(np.arange(spend.shape[1], dtype=float), spend.shape)
    obs = ~np.isnan(spend)
    n = obs.sum(axis=1)
    y = np.where(obs, spend, 0.0)
    tt = np.where(obs, t, 0.0)
    t_mean = tt.sum(axis=1) / np.maximum(n, 1)
    y_mean = y.sum(axis=1) / np.maximum(n, 1)
    cov = (np.where(obs, (t - t_mean[:, None]) * (spend - y_mean[:, None]), 0.0)).sum(axis=1)
    var = (np.where(obs, (t - t_mean[:, None]) ** 2, 0.0)).sum(axis=1)
    return np.where((n >= 2) & (var > 0), cov / np.where(var > 0, var, 1.0), np.nan)


def baseline_features(batch: HistoryBatch, cut: MonthlyPanel | None, days: PurchaseDays,
                      season: SeasonContext | None = None, repeat: RepeatContext | None = None) -> pd.DataFrame:
    """One row per customer of the batch (index ``customer_id``), columns in
    :func:`baseline_feature_names` order. Needs ``history_months >= 12``.

    ``cut`` is ``panel.before(batch.anchor)`` with every customer (the seasonal index is the
    population's), ``days`` the purchase days of the transaction log; ``season`` the
    population's seasonal context (:class:`models.season.SeasonContext`: the index, and what
    the customer's seasonal shift and expected orders need) and ``repeat`` the fitted
    repeat-purchase model (:class:`models.repeat.RepeatContext`, the ``repeat_buy`` column)
    when the caller computed them once from that cut (then ``cut`` is not read)."""
    if batch.history_months < max(WINDOWS):
        raise ValueError(f"baseline features need at least {max(WINDOWS)} history months")
    spend = batch.spend[:, -max(WINDOWS):]
    orders = np.where(batch.orders[:, -max(WINDOWS):] < 0, np.nan, batch.orders[:, -max(WINDOWS):])
    a = month_ordinal(batch.anchor) - batch.panel_start
    season = SeasonContext.from_cut(cut, batch.anchor) if season is None else season
    repeat = RepeatContext.from_cut(cut, season.factors) if repeat is None else repeat
    tenure = a - batch.first_idx
    cols: dict[str, np.ndarray] = {
        "recency": (a - batch.last_idx).astype(float),
        "tenure": tenure.astype(float),
        "lifetime_active_months": batch.lifetime_active_months.astype(float),
        "lifetime_orders": batch.lifetime_orders.astype(float),
        "lifetime_spend": batch.lifetime_spend,
        "monetary": batch.lifetime_spend / np.maximum(batch.lifetime_active_months, 1),
        # ratios a tree cannot form from its two columns: the customer's order value (the
        # gamma-gamma model's nu) and order rate, which set the bucket given a purchase
        "order_value": batch.lifetime_spend / np.maximum(batch.lifetime_orders, 1),
        "orders_per_month": batch.lifetime_orders / np.maximum(tenure, 1),
        "orders_per_active_month": batch.lifetime_orders / np.maximum(batch.lifetime_active_months, 1),
        "active_share": batch.lifetime_active_months / np.maximum(tenure, 1),
        "trend_slope": _slope(spend),
        SEASON_COLUMN: np.full(len(batch), season.index),
        # the purchase model's offset and the bucket model's seasonal input (models/season.py)
        **season.columns(batch.lifetime_orders, batch.first_idx, batch.panel_start),
        **repeat.columns(batch.first_idx, batch.last_idx, batch.lifetime_orders, batch.panel_start),
    }
    for k in range(1, LAGS + 1):
        cols[f"spend_lag{k}"] = spend[:, -k]
    for k in range(1, LAGS + 1):
        cols[f"orders_lag{k}"] = orders[:, -k]
    for w in WINDOWS:
        cols[f"spend_mean{w}"] = _nanmean_rows(spend[:, -w:])
    for w in WINDOWS:
        cols[f"spend_max{w}"] = _nanmax_rows(spend[:, -w:])
    for w in WINDOWS:
        cols[f"active{w}"] = (np.nan_to_num(spend[:, -w:]) > 0).sum(axis=1).astype(float)
    frame = pd.DataFrame(cols, index=pd.Index(batch.customer_ids, name="customer_id"))
    frame = frame.join(days.features(batch.anchor, batch.customer_ids))
    return frame[baseline_feature_names()]
