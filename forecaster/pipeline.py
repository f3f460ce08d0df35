"""The one place that knows the whole order: panel -> histories -> forecasts -> rows.

Rows are (customer, anchor month). Each anchor's row is built from ``panel.before(anchor)``
only — the baseline features, the forecaster's answer and the BTYD fit alike — and then
labelled with the anchor month's outcome.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from models.btyd import BTYDModel
from models.empirical import EmpiricalForecaster
from models.features import baseline_feature_names, baseline_features
from models.rows import BTYD_COLUMNS, BTYD_EXPECTED_ORDERS, BTYD_EXPECTED_SPEND, BTYD_P_PURCHASE, RowSpec, \
    forecast_group_names
from narrator.panel import HISTORY_MONTHS, HistoryBatch, MonthlyPanel
from structurer.schema import BucketScheme

# anchor, that anchor's histories, the cut panel -> forecast feature frame by customer id
ForecastFn = Callable[[pd.Period, HistoryBatch, MonthlyPanel], pd.DataFrame]


def anchors_with_outcome(panel: MonthlyPanel) -> list[pd.Period]:
    """Every anchor with at least one month of history and a known outcome."""
    return list(pd.period_range(panel.first_month + 1, panel.last_month, freq="M"))


def empirical_forecast_fn(scheme: BucketScheme) -> ForecastFn:
    """The offline forecaster, refitted at every anchor on that anchor's past only."""

    def forecast(anchor: pd.Period, batch: HistoryBatch, cut: MonthlyPanel) -> pd.DataFrame:
        return EmpiricalForecaster(scheme).fit(cut).forecast_features(batch)

    return forecast


def btyd_features(cut: MonthlyPanel) -> pd.DataFrame:
    pred = BTYDModel().fit(cut).predict(cut).set_index("customer_id")
    return pred.rename(columns={
        "p_purchase_next_month": BTYD_P_PURCHASE,
        "expected_orders_next_month": BTYD_EXPECTED_ORDERS,
        "expected_spend_next_month": BTYD_EXPECTED_SPEND,
    })[BTYD_COLUMNS]


def model_features(batch: HistoryBatch, *columns: pd.DataFrame) -> pd.DataFrame:
    """The models' input for ``batch``: its baseline features, then each frame of further
    columns (a forecaster's, Pareto/NBD's) aligned on customer id; a customer a frame leaves
    out gets NaN there. Rows, batch and explain all put their features together here."""
    frame = baseline_features(batch)
    for extra in columns:
        frame = frame.join(extra.reindex(frame.index))
    return frame


def anchor_rows(
    panel: MonthlyPanel,
    anchor: pd.Period,
    scheme: BucketScheme,
    forecast_fn: ForecastFn | None,
    with_btyd: bool,
    history_months: int = HISTORY_MONTHS,
    empirical_fn: ForecastFn | None = None,
) -> pd.DataFrame:
    """Rows of one anchor: ids, features and (when the month is in the data) the outcome.
    A forecaster that answered for only some customers leaves the others' columns NaN."""
    cut = panel.before(anchor)
    batch = HistoryBatch.from_panel(cut, anchor, history_months)
    forecaster_columns = forecast_group_names(scheme, "forecaster")
    extra = []
    if forecast_fn is not None:
        extra.append(forecast_fn(anchor, batch, cut)[forecaster_columns])
    if empirical_fn is not None:  # the same columns under the empirical group's names
        emp = empirical_fn(anchor, batch, cut)[forecaster_columns]
        extra.append(emp.set_axis(forecast_group_names(scheme, "empirical"), axis=1))
    if with_btyd:
        extra.append(btyd_features(cut))
    frame = model_features(batch, *extra).reset_index()
    frame.insert(1, "anchor", str(anchor))
    if anchor <= panel.last_month:
        ids, spend, _ = panel.outcome(anchor)
        if not np.array_equal(ids, frame["customer_id"].to_numpy()):
            raise AssertionError("outcome and history populations differ")
        frame["spend"] = spend
        frame["label"] = scheme.assign(spend)
    return frame


def build_rows(
    panel: MonthlyPanel,
    anchors: list[pd.Period],
    scheme: BucketScheme,
    forecast_fn: ForecastFn | None,
    with_btyd: bool = True,
    history_months: int = HISTORY_MONTHS,
    progress: Callable[[pd.Period], None] | None = None,
    empirical_fn: ForecastFn | None = None,
) -> tuple[pd.DataFrame, RowSpec]:
    frames = []
    for anchor in anchors:
        frames.append(anchor_rows(panel, anchor, scheme, forecast_fn, with_btyd, history_months, empirical_fn))
        if progress is not None:
            progress(anchor)
    rows = pd.concat(frames, ignore_index=True)
    spec = RowSpec(
        base=baseline_feature_names(),
        forecaster=forecast_group_names(scheme, "forecaster") if forecast_fn is not None else [],
        btyd=BTYD_COLUMNS if with_btyd else [],
        empirical=forecast_group_names(scheme, "empirical") if empirical_fn is not None else [],
    )
    return rows, spec


BASE_SHARE_MONTHS = 6


def fit_scheme(panel: MonthlyPanel, before: pd.Period) -> BucketScheme:
    """Bucket edges at the terciles of positive monthly spend in months before ``before``,
    and each bucket's share of existing customers' months over the last
    ``BASE_SHARE_MONTHS`` of them (acquisition months left out: a purchase by definition)."""
    end = panel.column(before)
    cut = panel.spend[:, :end]
    scheme = BucketScheme.fit(cut[cut > 0], panel.currency, fitted_on=f"{panel.first_month}..{before - 1}")
    cols = np.arange(max(0, end - BASE_SHARE_MONTHS), end)
    existing = cols[None, :] > panel.first_idx[:, None]
    if not existing.any():
        return scheme
    counts = np.bincount(scheme.assign(panel.spend[:, cols][existing]), minlength=scheme.n_buckets)
    shares = tuple(round(float(c), 4) for c in counts / counts.sum())
    return scheme.model_copy(update={"base_shares": shares})


def sample_panel(panel: MonthlyPanel, n: int, before: pd.Period, seed: int = 0) -> MonthlyPanel:
    """A stratified random sample of ``n`` customers acquired before ``before``, by how many
    months they had bought in before it (1, 2, 3–5, 6+): the strata use no later data."""
    acquired = np.flatnonzero(panel.first_idx < panel.column(before))
    if n >= len(acquired):
        keep = acquired
    else:
        active = (panel.orders[acquired, : panel.column(before)] > 0).sum(axis=1)
        strata = np.digitize(active, [2, 3, 6])
        rng = np.random.default_rng(seed)
        keep_parts = []
        for s in np.unique(strata):
            members = acquired[strata == s]
            take = int(round(n * len(members) / len(acquired)))
            keep_parts.append(rng.choice(members, size=min(take, len(members)), replace=False))
        keep = np.sort(np.concatenate(keep_parts))
    return panel.take(keep)
