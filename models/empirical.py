"""EmpiricalForecaster: a transparent statistical forecaster in the LLM's seat. NOT an LLM.

For customer *i* at an anchor, with month weights ``w_t = 2^{-(t-1)/h}`` (t = 1 is the
month before the anchor, ``h`` the half-life) over the observed months of the window:

* purchase probability, a Beta-binomial posterior mean shrunk toward the population:

      q_i = (sum_t w_t 1[s_t > 0] + a * pi_buy) / (sum_t w_t + a)

  The acquisition month is left out of these sums because it is a purchase by
  definition (every customer enters the panel by buying), which would bias ``q`` upward.
* which spend bucket, given a purchase, a Dirichlet-multinomial posterior mean:

      r_ik = (sum_t w_t 1[bucket_t = k] + b * rho_k) / (sum_t w_t 1[s_t > 0] + b),  k >= 1

  (the acquisition month counts here: it says how much the customer spends).
* ``p_i0 = 1 - q_i`` and ``p_ik = q_i * r_ik``; expected spend ``q_i * m_i`` with ``m_i``
  the customer's weighted mean positive monthly spend shrunk toward the population mean with
  weight ``b``; expected orders likewise.

``pi_buy``, ``rho`` and the population means are fitted on the training months only
(:meth:`EmpiricalForecaster.fit`). See Gelman et al., *Bayesian Data Analysis*, ch. 2 and 5,
for the Beta/Dirichlet posterior means. ``h``, ``a`` and ``b`` are an
:class:`EmpiricalSettings`; a run chooses them on a validation month
(:func:`models.tuning.tune_empirical`).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel

from narrator.korean import format_amount, josa
from narrator.narrative import render_narrative
from narrator.panel import CustomerHistory, HistoryBatch, MonthlyPanel, month_ordinal
from structurer.features import assemble_features
from structurer.protocol import Histories, Progress, ProviderInfo
from structurer.schema import BucketScheme, ForecastRecord, Segment, Trend, spend_forecast_model

MODEL_NAME = "empirical-shrinkage-v1"
PROMPT_VERSION = "n/a (not an LLM)"
NOTE = "통계 규칙 기반 예측기(EmpiricalForecaster)이며 LLM이 아닙니다."
SEGMENTS, TRENDS = list(Segment), list(Trend)


@dataclass(frozen=True)
class EmpiricalSettings:
    """The forecaster's smoothing: ``half_life`` h (months), ``purchase_prior_strength`` a
    and ``bucket_prior_strength`` b (pseudo-months of the population's rates; module doc).

    Example: ``EmpiricalForecaster.from_settings(scheme, EmpiricalSettings(6.0, 10.0, 1.0))``."""

    half_life: float = 3.0
    purchase_prior_strength: float = 3.0
    bucket_prior_strength: float = 2.0


DEFAULT_SETTINGS = EmpiricalSettings()  # the first commit's values, kept when no search runs


@dataclass(frozen=True)
class EmpiricalOutput:
    """Vectorised forecasts for a batch, plus the numbers the rationale quotes."""

    customer_ids: np.ndarray
    probs: np.ndarray
    expected_spend: np.ndarray
    expected_orders: np.ndarray
    confidence: np.ndarray
    segment_idx: np.ndarray
    trend_idx: np.ndarray
    active_months: np.ndarray
    window_months: np.ndarray
    recency: np.ndarray
    mean_positive_spend: np.ndarray


@dataclass(frozen=True)
class EmpiricalPopulation:
    """What :meth:`EmpiricalForecaster.fit` reads of a cut panel: (customer-months, of which
    with a purchase) over the last ``prior_months`` after and from each customer's
    acquisition month, (orders, months) over the months with a purchase, and the spends of
    those months. Integer counts and a list of arrays, so the populations of groups of
    customers add up exactly (``a + b``) to the whole cut's; the fit sorts the spends
    before it averages them, so their order does not matter either."""

    after_acquisition: tuple[int, int]
    from_acquisition: tuple[int, int]
    active_orders: tuple[int, int]
    positive: tuple[np.ndarray, ...]

    def __add__(self, other: "EmpiricalPopulation") -> "EmpiricalPopulation":
        def plus(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
            return a[0] + b[0], a[1] + b[1]
        return EmpiricalPopulation(plus(self.after_acquisition, other.after_acquisition),
                                   plus(self.from_acquisition, other.from_acquisition),
                                   plus(self.active_orders, other.active_orders), self.positive + other.positive)


_ASSIGN_CHUNK = 1 << 22  # spends put into buckets at a time (the bucket codes are int64)


def _bucket_counts(scheme: BucketScheme, positive: np.ndarray) -> np.ndarray:
    """How many of the positive spends fall in each bucket 1..K."""
    counts = np.zeros(scheme.n_buckets, dtype=np.int64)
    for lo in range(0, len(positive), _ASSIGN_CHUNK):
        counts += np.bincount(scheme.assign(positive[lo:lo + _ASSIGN_CHUNK]), minlength=scheme.n_buckets)
    return counts[1:].astype(float)


class EmpiricalForecaster:
    """Recency-weighted bucket frequencies shrunk toward the population's (see module doc).
    A :class:`structurer.protocol.Forecaster` that asks no one: no ledger, no cost."""

    provider = "empirical"
    ledger = None

    def __init__(
        self,
        scheme: BucketScheme,
        half_life: float = DEFAULT_SETTINGS.half_life,
        purchase_prior_strength: float = DEFAULT_SETTINGS.purchase_prior_strength,
        bucket_prior_strength: float = DEFAULT_SETTINGS.bucket_prior_strength,
        prior_months: int = 6,
    ) -> None:
        self.scheme = scheme
        self.half_life = half_life
        self.a = purchase_prior_strength
        self.b = bucket_prior_strength
        self.prior_months = prior_months
        self.model = MODEL_NAME
        self.prompt_version = PROMPT_VERSION

    @classmethod
    def from_settings(cls, scheme: BucketScheme, settings: EmpiricalSettings = DEFAULT_SETTINGS) -> "EmpiricalForecaster":
        """The forecaster with ``settings`` (e.g. those :func:`models.tuning.tune_empirical` chose)."""
        return cls(scheme, settings.half_life, settings.purchase_prior_strength, settings.bucket_prior_strength)

    @property
    def settings(self) -> EmpiricalSettings:
        return EmpiricalSettings(self.half_life, self.a, self.b)

    def fit(self, train: MonthlyPanel) -> "EmpiricalForecaster":
        """Population rates from ``train``, a panel already cut before the first month it
        must not see: the purchase rate over its last ``prior_months`` months; the bucket
        shares given a purchase, mean positive spend, orders per active month and the VIP
        spend level over all its months."""
        return self.fit_population(self.population(train))

    def population(self, train: MonthlyPanel) -> "EmpiricalPopulation":
        """What :meth:`fit` reads of ``train`` (:class:`EmpiricalPopulation`)."""
        months = min(self.prior_months, train.n_months)
        cols = np.arange(train.n_months - months, train.n_months)
        bought = train.spend[:, cols] > 0
        after_acq = cols[None, :] > train.first_idx[:, None]
        from_acq = cols[None, :] >= train.first_idx[:, None]
        active = train.spend > 0
        return EmpiricalPopulation(
            after_acquisition=(int(after_acq.sum()), int((bought & after_acq).sum())),
            from_acquisition=(int(from_acq.sum()), int((bought & from_acq).sum())),
            active_orders=(int(train.orders[active].sum(dtype=np.int64)), int(active.sum())),
            positive=(train.spend[active],))

    def fit_population(self, population: "EmpiricalPopulation") -> "EmpiricalForecaster":
        """The population rates from a cut's :class:`EmpiricalPopulation`; with only one month
        of data (no month after anyone's acquisition) the purchase rate counts the
        acquisition months."""
        months, bought = population.after_acquisition
        if not months:
            months, bought = population.from_acquisition
        self.purchase_rate_ = bought / months if months else float("nan")
        positive = np.concatenate(population.positive)
        positive.sort()  # the mean and the quantile then do not depend on the customers' order
        counts = _bucket_counts(self.scheme, positive)
        self.bucket_shares_ = counts / counts.sum()
        self.mean_positive_spend_ = float(positive.mean())
        orders, active = population.active_orders
        self.orders_per_active_month_ = orders / active
        self.vip_spend_ = float(np.quantile(positive, 0.8))
        return self

    def describe(self) -> ProviderInfo:
        return {"provider": self.provider, "model": self.model, "prompt_version": self.prompt_version,
                "note": NOTE}

    def dry_run(self, histories: Histories) -> None:
        """Nothing to estimate: no call is sent."""
        return None

    def narrative(self, history: CustomerHistory) -> str:
        """The narrative an LLM would be sent; this forecaster reads the same months as numbers."""
        return render_narrative(history)

    # -- vectorised core ------------------------------------------------------------
    def forecast_arrays(self, batch: HistoryBatch) -> EmpiricalOutput:
        spend, orders = batch.spend, batch.orders.astype(float)
        n, h = spend.shape
        observed = ~np.isnan(spend)
        w = 2.0 ** (-np.arange(h)[::-1] / self.half_life)  # last column = last month, weight 1
        acq_col = (batch.first_idx - (month_ordinal(batch.anchor) - batch.panel_start - h))
        is_acq = np.arange(h)[None, :] == acq_col[:, None]
        bought = observed & (np.nan_to_num(spend) > 0)

        w_obs = w * (observed & ~is_acq)
        n_eff = w_obs.sum(axis=1)
        q = ((w_obs * bought).sum(axis=1) + self.a * self.purchase_rate_) / (n_eff + self.a)

        buckets = self.scheme.assign(np.nan_to_num(spend))
        w_pos = w * bought
        k = self.scheme.n_buckets
        bucket_w = np.stack([(w_pos * (buckets == j)).sum(axis=1) for j in range(1, k)], axis=1)
        pos_w = w_pos.sum(axis=1)
        r = (bucket_w + self.b * self.bucket_shares_) / (pos_w + self.b)[:, None]
        probs = np.column_stack([1.0 - q, q[:, None] * r])

        mean_spend = ((w_pos * np.nan_to_num(spend)).sum(axis=1) + self.b * self.mean_positive_spend_) / (pos_w + self.b)
        mean_orders = ((w_pos * np.clip(orders, 0, None)).sum(axis=1)
                       + self.b * self.orders_per_active_month_) / (pos_w + self.b)
        recency = month_ordinal(batch.anchor) - (batch.panel_start + batch.last_idx)
        trend_idx = self._trend(spend, observed)
        segment_idx = self._segment(q, mean_spend, recency)
        return EmpiricalOutput(
            customer_ids=batch.customer_ids, probs=probs, expected_spend=q * mean_spend,
            expected_orders=q * mean_orders, confidence=n_eff / (n_eff + self.a),
            segment_idx=segment_idx, trend_idx=trend_idx,
            active_months=bought.sum(axis=1), window_months=observed.sum(axis=1),
            recency=recency, mean_positive_spend=mean_spend,
        )

    @staticmethod
    def _trend(spend: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """증가/유지/감소 from the mean spend of the last 3 months vs the months before
        (ratio >= 1.25 / <= 0.8); 유지 when fewer than 2 earlier months are observed."""
        s = np.nan_to_num(spend)
        recent = s[:, -3:].sum(axis=1) / np.maximum(observed[:, -3:].sum(axis=1), 1)
        n_before = observed[:, :-3].sum(axis=1)
        before = s[:, :-3].sum(axis=1) / np.maximum(n_before, 1)
        ratio = (recent + 1e-9) / (before + 1e-9)
        idx = np.full(len(s), TRENDS.index(Trend.FLAT))
        idx[(ratio >= 1.25) & (n_before >= 2)] = TRENDS.index(Trend.UP)
        idx[(ratio <= 0.8) & (n_before >= 2)] = TRENDS.index(Trend.DOWN)
        return idx

    def _segment(self, q: np.ndarray, mean_spend: np.ndarray, recency: np.ndarray) -> np.ndarray:
        """Rules, first match wins: 휴면 = no purchase for 7+ months; 이탈위험 = 4–6 months;
        VIP = q >= 0.5 and typical month >= the training 80th percentile of monthly spend;
        충성 = q >= 0.4; otherwise 일반."""
        idx = np.full(len(q), SEGMENTS.index(Segment.REGULAR))
        idx[q >= 0.4] = SEGMENTS.index(Segment.LOYAL)
        idx[(q >= 0.5) & (mean_spend >= self.vip_spend_)] = SEGMENTS.index(Segment.VIP)
        idx[(recency >= 4) & (recency <= 6)] = SEGMENTS.index(Segment.AT_RISK)
        idx[recency >= 7] = SEGMENTS.index(Segment.DORMANT)
        return idx

    # -- outputs ----------------------------------------------------------------------
    def forecast_features(self, batch: HistoryBatch) -> pd.DataFrame:
        """The augmented model's feature columns, straight from the arrays."""
        out = self.forecast_arrays(batch)
        return assemble_features(out.probs, out.expected_spend, out.expected_orders, out.confidence,
                                 out.segment_idx, out.trend_idx, self.scheme, index=out.customer_ids)

    def rationales(self, out: EmpiricalOutput) -> list[str]:
        """Korean template sentences that state the numbers used (never an LLM's words).

        Built per customer but with the repeated parts (the history clause, the percentage
        with its particle) looked up rather than formatted again: this loop is most of the
        cost of a record."""
        prior = f"{self.purchase_rate_ * 100:.0f}%"
        percents = [josa(f"{k}%", "으로/로") for k in range(101)]
        q_pct = np.rint((1.0 - out.probs[:, 0]) * 100).astype(int).tolist()
        histories: dict[tuple[int, int, int], str] = {}
        texts = []
        for window, active, recency, q, spend in zip(out.window_months.tolist(), out.active_months.tolist(),
                                                     out.recency.tolist(), q_pct, out.mean_positive_spend.tolist()):
            key = (window, active, recency)
            history = histories.get(key)
            if history is None:
                history = histories[key] = _history_clause(window, active, recency)
            amount = josa(format_amount(spend, self.scheme.currency), "으로/로")
            texts.append(
                f"{history} 본인 이력과 전체 고객의 월 구매율({prior})을 함께 반영해 다음 달 구매 확률을 "
                f"{percents[q]} 추정했고, 구매한다면 지출은 {amount} 예상합니다. "
                "(통계 규칙 기반 추정이며 LLM의 응답이 아닙니다.)"
            )
        return texts

    def forecast_many(self, histories: Histories, progress: Progress | None = None) -> list[ForecastRecord]:
        """Every record at once, in order. ``progress`` is not called: the whole batch takes
        about a second per 100k customers, so a progress display simply ends complete."""
        batch = histories if isinstance(histories, HistoryBatch) else stack_histories(list(histories))
        out = self.forecast_arrays(batch)
        model = spend_forecast_model(self.scheme)
        probs_model = model.model_fields["probabilities"].annotation
        ids, anchor = self.scheme.ids, str(batch.anchor)
        segments = [SEGMENTS[k] for k in out.segment_idx.tolist()]
        trends = [TRENDS[k] for k in out.trend_idx.tolist()]
        columns = zip(out.customer_ids.tolist(), self.rationales(out), out.probs.tolist(),
                      out.expected_spend.tolist(), out.expected_orders.tolist(), segments, trends,
                      out.confidence.tolist())
        with _collector_paused():
            return [self._record(model, probs_model, ids, anchor, *row) for row in columns]

    def _record(self, model, probs_model, ids, anchor, customer_id, rationale, probs, spend, orders, segment,
                trend, confidence) -> ForecastRecord:
        forecast = _construct(model, {
            "rationale": rationale, "probabilities": _construct(probs_model, dict(zip(ids, probs))),
            "expected_spend": spend, "expected_orders": orders, "segment": segment, "trend": trend,
            "confidence": confidence,
        })
        return _construct(ForecastRecord, {
            "customer_id": str(customer_id), "anchor": anchor, "provider": self.provider,
            "model": self.model, "prompt_version": self.prompt_version, "status": "ok", "reason": None,
            "detail": None, "forecast": forecast, "attempts": 0, "tokens_in": 0, "tokens_out": 0,
            "latency_s": 0.0, "cache_hit": False,
        })


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects: each
    record is three objects, and the collections that this many allocations trigger took
    4/5 of the time (100k records: 3.0 s of CPU with the collector, 0.64 s without)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _history_clause(window: int, active: int, recency: int) -> str:
    if active == 0:
        return f"최근 {window}개월 동안 구매가 없었고 마지막 구매는 {recency}개월 전입니다."
    if recency == 1:
        return f"최근 {window}개월 중 {active}개월에 구매했고 지난달에도 구매했습니다."
    return f"최근 {window}개월 중 {active}개월에 구매했고 마지막 구매는 {recency}개월 전입니다."


def _construct(cls: type[BaseModel], values: dict) -> BaseModel:
    """``cls.model_construct(**values)`` without its per-field default handling, for values
    that are complete and valid by construction (every field given; probabilities sum to 1
    exactly). Validating or even model_construct-ing 50k+ records a second would dominate
    the run (bench/empirical.py, records with rationale: 112k customers/s here, 46k with
    ``model_construct(_fields_set=...)``, 58k copying a constructed prototype with
    ``model_copy(update=...)``); tests check these records against full pydantic validation."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def stack_histories(histories: Sequence[CustomerHistory]) -> HistoryBatch:
    """Arrays of a list of histories of one anchor (for callers holding single histories)."""
    if not histories:
        raise ValueError("no histories to forecast")
    anchor = histories[0].anchor
    if any(hh.anchor != anchor for hh in histories):
        raise ValueError("histories of different anchors cannot be stacked")
    h = max(len(hh.spend) for hh in histories)
    n = len(histories)
    spend, orders = np.full((n, h), np.nan), np.full((n, h), -1, dtype=np.int32)
    for i, hh in enumerate(histories):
        k = len(hh.spend)
        spend[i, h - k:], orders[i, h - k:] = hh.spend, hh.orders
    panel_start = min(month_ordinal(hh.first_month) for hh in histories)
    first_idx = np.array([month_ordinal(hh.first_month) - panel_start for hh in histories])
    last_idx = np.array([month_ordinal(hh.last_purchase_month) - panel_start for hh in histories])
    return HistoryBatch(
        customer_ids=np.array([hh.customer_id for hh in histories], dtype=object), anchor=anchor,
        history_months=h, spend=spend, orders=orders, first_idx=first_idx, panel_start=panel_start,
        last_idx=last_idx, lifetime_spend=np.array([hh.lifetime_spend for hh in histories]),
        lifetime_orders=np.array([hh.lifetime_orders for hh in histories]),
        lifetime_active_months=np.array([hh.lifetime_active_months for hh in histories]),
        currency=histories[0].currency,
    )
