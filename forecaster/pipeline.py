"""The one place that knows the whole order: panel -> histories -> forecasts -> rows.

Rows are (customer, anchor month). Each anchor's row is built from ``panel.before(anchor)``
only — the baseline features, the forecaster's answer and the BTYD fit alike — and then
labelled with the anchor month's outcome.

The baseline reads the day-level purchase timing of the transaction log as well as the
monthly panel (:class:`models.timing.PurchaseDays`). The ``btyd`` features come from
day-level purchase timing too (:class:`DayLevelBTYD`: BG/NBD or Pareto/NBD, chosen on the
month before the anchor), or with ``monthly_btyd`` from the monthly panel (Pareto/NBD on
orders per month).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from models import bgnbd, btyd, metrics
from models.btyd import BTYDModel
from models.empirical import EmpiricalForecaster
from models.errors import ModelError
from models.features import baseline_feature_names, baseline_features
from models.repeat import RepeatContext
from models.rfm import DAYS_PER_WEEK, DayRFM, day_level_rfm
from models.season import SeasonContext
from models.timing import PurchaseDays
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
    """The monthly-panel ``btyd`` features of ``cut``'s customers (Pareto/NBD on orders per
    month, :class:`models.btyd.BTYDModel`), by customer id."""
    pred = BTYDModel().fit(cut).predict(cut).set_index("customer_id")
    return pred.rename(columns={
        "p_purchase_next_month": BTYD_P_PURCHASE,
        "expected_orders_next_month": BTYD_EXPECTED_ORDERS,
        "expected_spend_next_month": BTYD_EXPECTED_SPEND,
    })[BTYD_COLUMNS]


# -- the btyd features from day-level purchase timing -----------------------------------------
BTYD_MODEL = "btyd_model"  # row column: the repeat-purchase model behind the row's btyd features
BTYD_SELECTION = "btyd_selection"  # rows.attrs key: DayLevelBTYD.selection


@dataclass(frozen=True)
class RepeatModel:
    """A repeat-purchase model's fit and its forecasts of ``(T, T + t]`` (see models/)."""

    fit: Callable
    probability_purchase: Callable
    expected_purchases: Callable


REPEAT_MODELS = {
    "BG/NBD": RepeatModel(bgnbd.fit_bgnbd, bgnbd.probability_purchase, bgnbd.expected_purchases),
    "Pareto/NBD": RepeatModel(btyd.fit_pareto_nbd, btyd.probability_purchase, btyd.expected_purchases),
}
DEFAULT_REPEAT_MODEL = "Pareto/NBD"  # when no earlier month can choose (the monthly arm's model)


def _spend_per_purchase_day(rfm: DayRFM) -> np.ndarray:
    """Gamma-Gamma's posterior mean spend per purchase day, or (too few repeat buyers, q <=
    1) every customer's pooled spend per repeat purchase day: the level, no signal."""
    params, _ = btyd.fit_gamma_gamma(rfm.frequency, rfm.mean_value)
    if params is not None:
        return btyd.gamma_gamma_mean_spend(params, rfm.frequency, rfm.mean_value)
    pooled = np.nansum(rfm.mean_value * rfm.frequency) / rfm.frequency.sum()
    return np.full(len(rfm.frequency), pooled)


def day_level_forecasts(transactions: pd.DataFrame, anchor: pd.Period) -> dict[str, pd.DataFrame]:
    """Each repeat-purchase model's ``btyd`` features for ``anchor`` from the purchase days
    before it (``models.rfm.day_level_rfm``, weeks; "next month" is the anchor month's
    ``days / 7`` weeks; orders are purchase days; spend per purchase day from Gamma-Gamma).

    Parameters
    ----------
    transactions: ``customer_id``, ``ts``, ``amount``; rows from ``anchor`` on are not read.
    anchor: the month forecast.

    Returns
    -------
    Model name (a key of ``REPEAT_MODELS``) -> ``BTYD_COLUMNS`` by customer id, for the
    models that could be fitted (none before any repeat purchase).

    Example
    -------
    >>> day_level_forecasts(load_dataset("cdnow").transactions, pd.Period("1998-04", "M"))["BG/NBD"]  # doctest: +SKIP
    """
    try:
        rfm = day_level_rfm(transactions, anchor)
    except ModelError:  # nobody bought before the anchor
        return {}
    weeks = anchor.days_in_month / DAYS_PER_WEEK
    summary = (rfm.frequency, rfm.recency, rfm.T)
    spend_per_day, forecasts = None, {}
    for name, model in REPEAT_MODELS.items():
        try:
            params = model.fit(*summary)
        except ModelError:  # no repeat purchase yet, or no convergence: not a candidate
            continue
        spend_per_day = _spend_per_purchase_day(rfm) if spend_per_day is None else spend_per_day
        orders = model.expected_purchases(params, *summary, t=weeks)
        forecasts[name] = pd.DataFrame({
            BTYD_P_PURCHASE: model.probability_purchase(params, *summary, t=weeks),
            BTYD_EXPECTED_ORDERS: orders,
            BTYD_EXPECTED_SPEND: orders * spend_per_day,
        }, index=pd.Index(rfm.customer_ids, name="customer_id"))
    return forecasts


class DayLevelBTYD:
    """The ``btyd`` features of each anchor from day-level purchase timing.

    At anchor A both models are fitted on the purchase days before A; the one used is the
    one whose forecast of the month before A (fitted on the days before that month) had the
    lower purchase log loss against that month's buyers. In the backtest that month is
    the validation anchor of the origin whose test anchor is A, so a choice never reads a
    test month's outcome, and A's features read nothing dated A or later. With no earlier
    month to judge by, ``DEFAULT_REPEAT_MODEL``. Only the panel's customers' transactions
    are read (a sampled panel keeps its sample).

    ``selection`` records every choice: anchor -> ``{"model", "chosen_on", "log_loss"}``
    (``model`` None when neither model could be fitted; then the features are NaN).

    Example
    -------
    >>> day_level = DayLevelBTYD(dataset.transactions, dataset.panel)  # doctest: +SKIP
    >>> day_level.features(pd.Period("1998-04", "M")); day_level.selection["1998-04"]["model"]  # doctest: +SKIP
    """

    def __init__(self, transactions: pd.DataFrame, panel: MonthlyPanel):
        self.transactions = transactions[transactions["customer_id"].isin(panel.customer_ids)]
        self.panel = panel
        self.selection: dict[str, dict] = {}
        self._forecasts: dict[pd.Period, dict[str, pd.DataFrame]] = {}

    def _forecasts_at(self, anchor: pd.Period) -> dict[str, pd.DataFrame]:
        if anchor not in self._forecasts:  # consecutive anchors judge by each other's fits
            self._forecasts[anchor] = day_level_forecasts(self.transactions, anchor)
        return self._forecasts[anchor]

    def validation_log_loss(self, month: pd.Period) -> dict[str, float]:
        """Each model's purchase log loss on ``month``'s buyers (fitted before it)."""
        if month <= self.panel.first_month:  # nobody was acquired before the first month
            return {}
        forecasts = self._forecasts_at(month)
        ids, spend, _ = self.panel.outcome(month)
        out = {}
        for name, frame in forecasts.items():
            p = frame[BTYD_P_PURCHASE].reindex(ids).to_numpy()
            scored = np.isfinite(p)
            if scored.any():
                out[name] = metrics.binary_log_loss(p[scored], (spend[scored] > 0).astype(float))
        return out

    def features(self, anchor: pd.Period) -> pd.DataFrame:
        """``BTYD_COLUMNS`` and ``BTYD_MODEL`` by customer id for ``anchor``."""
        losses = self.validation_log_loss(anchor - 1)
        available = self._forecasts_at(anchor)
        preference = sorted(losses, key=losses.get) + [DEFAULT_REPEAT_MODEL, *REPEAT_MODELS]
        model = next((m for m in preference if m in available), None)
        self.selection[str(anchor)] = {"model": model, "chosen_on": str(anchor - 1), "log_loss": losses}
        if model is None:  # float NaN, so that the rows' btyd columns stay numeric
            return pd.DataFrame(columns=BTYD_COLUMNS, index=pd.Index([], name="customer_id"), dtype=float)
        return available[model].assign(**{BTYD_MODEL: model})


def model_features(batch: HistoryBatch, cut: MonthlyPanel | None, days: PurchaseDays, *columns: pd.DataFrame,
                   season: SeasonContext | None = None, repeat: RepeatContext | None = None) -> pd.DataFrame:
    """The models' input for ``batch``: its baseline features (``cut`` is
    ``panel.before(anchor)`` with every customer, ``days`` the log's purchase days), then each
    frame of further columns (a forecaster's, Pareto/NBD's) aligned on customer id; a
    customer a frame leaves out gets NaN there. Rows, batch and explain all put their
    features together here. ``season``, ``repeat``: the seasonal context and the repeat-purchase
    model already computed from ``cut`` (``cut`` may then be None: a Dask worker holds only its
    customers)."""
    frame = baseline_features(batch, cut, days, season, repeat)
    for extra in columns:
        frame = frame.join(extra.reindex(frame.index))
    return frame


def anchor_rows(
    panel: MonthlyPanel,
    anchor: pd.Period,
    scheme: BucketScheme,
    forecast_fn: ForecastFn | None,
    with_btyd: bool,
    days: PurchaseDays,
    history_months: int = HISTORY_MONTHS,
    empirical_fn: ForecastFn | None = None,
    day_level: DayLevelBTYD | None = None,
) -> pd.DataFrame:
    """Rows of one anchor: ids, features and (when the month is in the data) the outcome.
    A forecaster that answered for only some customers leaves the others' columns NaN.
    With ``with_btyd`` the btyd features come from ``day_level`` when given, else from
    the monthly panel."""
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
        extra.append(day_level.features(anchor) if day_level is not None else btyd_features(cut))
    frame = model_features(batch, cut, days, *extra).reset_index()
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
    *,
    transactions: pd.DataFrame,
    with_btyd: bool = True,
    monthly_btyd: bool = False,
    history_months: int = HISTORY_MONTHS,
    progress: Callable[[pd.Period], None] | None = None,
    empirical_fn: ForecastFn | None = None,
) -> tuple[pd.DataFrame, RowSpec]:
    """Every anchor's rows (:func:`anchor_rows`) and the :class:`RowSpec` of their columns.

    ``transactions`` is the log the panel was built from (the baseline's timing features).
    The btyd features (``with_btyd``) are day-level (:class:`DayLevelBTYD`): the rows then
    hold ``BTYD_MODEL`` and ``rows.attrs[BTYD_SELECTION]`` records each anchor's choice;
    with ``monthly_btyd`` they come from the monthly panel instead.
    Example: ``build_rows(ds.panel, anchors, scheme, None, transactions=ds.transactions)``.
    """
    days = PurchaseDays.from_transactions(transactions)
    day_level = DayLevelBTYD(transactions, panel) if with_btyd and not monthly_btyd else None
    frames = []
    for anchor in anchors:
        frames.append(anchor_rows(panel, anchor, scheme, forecast_fn, with_btyd, days, history_months, empirical_fn,
                                  day_level))
        if progress is not None:
            progress(anchor)
    rows = pd.concat(frames, ignore_index=True)
    if day_level is not None:
        rows.attrs[BTYD_SELECTION] = day_level.selection
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
