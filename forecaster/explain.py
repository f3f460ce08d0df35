"""`forecaster explain`: one customer's forecast at one anchor, gathered from evidence.

Everything shown comes from the same objects `forecaster batch` uses, at that anchor and
on ``panel.before(anchor)`` only: the narrative, the forecaster's record (the empirical
forecaster's population prior is fitted on the whole cut panel, then the one customer is
forecast), the trained artifact's final (``xgb_base+forecaster``) and baseline
(``xgb_base``) models, the tuned threshold and the top-20% cut-off over the whole anchor
population. The contributions are TreeSHAP values of the final model's purchase booster
(Lundberg et al. 2020): in log-odds of purchase, they sum with the base value (``bias``)
to the customer's margin, ``P(buy) = 1 / (1 + exp(-margin))``.

The rich rendering is in :mod:`forecaster.explain_render`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import platformdirs

from forecaster import artifact
from forecaster.batch import TOP_SHARE, BatchJob
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.providers import LLMOptions, Provider
from models.arms import spend_from_probs
from models.features import FEATURE_LABELS, baseline_features
from narrator.korean import format_amount, format_month, josa, particle_for
from narrator.narrative import render_narrative
from narrator.panel import NOT_ACQUIRED, HistoryBatch, MonthlyPanel
from structurer.features import PREFIX as FC
from structurer.features import records_to_features
from structurer.schema import BucketScheme, ForecastRecord, Segment, Trend

TOP_CONTRIBUTIONS = 5
CACHE_APP = "llm-spend-forecaster"


@dataclass(frozen=True)
class BucketShare:
    bucket: str
    label: str
    probability: float


@dataclass(frozen=True)
class ModelView:
    """One XGBoost model's answer for the customer."""

    name: str
    distribution: list[BucketShare]
    purchase_probability: float
    expected_spend: float


@dataclass(frozen=True)
class Contribution:
    feature: str
    label: str
    value: float | None  # None where the feature is missing (NaN)
    value_text: str
    contribution: float  # SHAP value, log-odds of purchase
    sentence: str


@dataclass(frozen=True)
class TopGroup:
    """Whether the customer is in the top 20% of the anchor population by the final
    model's purchase probability (None when that needs an LLM call per customer)."""

    member: bool | None
    cutoff: float | None
    population: int
    note: str | None = None


@dataclass(frozen=True)
class Actual:
    spend: float
    orders: int
    bucket: str
    label: str


@dataclass(frozen=True)
class Explanation:
    customer_id: str
    anchor: str
    data: str
    currency: str
    model_dir: str
    default_model: bool
    trained_anchors: tuple[str, str]
    validation_anchor: str
    narrative: str
    record: ForecastRecord
    forecaster_is_llm: bool
    forecaster_distribution: list[BucketShare] | None  # None when the forecaster failed
    final: ModelView
    baseline: ModelView
    threshold: float
    top20: TopGroup
    contributions: list[Contribution]  # every feature, largest |SHAP| first
    base_value: float
    margin: float
    actual: Actual | None

    @property
    def decision(self) -> bool:
        return self.final.purchase_probability >= self.threshold

    @property
    def top_contributions(self) -> list[Contribution]:
        return self.contributions[:TOP_CONTRIBUTIONS]

    @property
    def anchor_in_training(self) -> bool:
        """The artifact saw this anchor's outcome while training (or validating)."""
        return self.trained_anchors[0] <= self.anchor <= self.validation_anchor

    def to_json(self) -> dict:
        """Every figure of the text output, as one JSON-ready object."""
        fc = self.record.forecast if self.forecaster_distribution is not None else None
        forecast = None if fc is None else {
            "rationale": fc.rationale,
            "distribution": [asdict(s) for s in self.forecaster_distribution],
            "purchase_probability": fc.purchase_probability,
            "expected_spend": fc.expected_spend,
            "expected_orders": fc.expected_orders,
            "segment": fc.segment.value,
            "trend": fc.trend.value,
            "confidence": fc.confidence,
        }
        return {
            "customer_id": self.customer_id,
            "anchor": self.anchor,
            "data": self.data,
            "currency": self.currency,
            "model": {"dir": self.model_dir, "default": self.default_model,
                      "trained_anchors": list(self.trained_anchors), "validation_anchor": self.validation_anchor,
                      "anchor_in_training": self.anchor_in_training},
            "narrative": self.narrative,
            "forecaster": {
                "provider": self.record.provider, "is_llm": self.forecaster_is_llm, "model": self.record.model,
                "prompt_version": self.record.prompt_version, "status": self.record.status,
                "reason": self.record.reason, "detail": self.record.detail, "forecast": forecast,
            },
            "final_model": asdict(self.final),
            "baseline_model": asdict(self.baseline),
            "purchase_probability": self.final.purchase_probability,
            "threshold": self.threshold,
            "decision": self.decision,
            "top20": self.top20.member,
            "top20_cutoff": self.top20.cutoff,
            "top20_population": self.top20.population,
            "top20_note": self.top20.note,
            "contributions": [asdict(c) for c in self.contributions],
            "top_contributions": TOP_CONTRIBUTIONS,
            "base_value": self.base_value,
            "margin": self.margin,
            "actual": None if self.actual is None else asdict(self.actual),
        }


# -- Korean sentences ----------------------------------------------------------------------


def percent(p: float) -> str:
    return f"{p * 100:.1f}%"


def signed(x: float) -> str:
    """A contribution with its sign: ``+0.42`` / ``−0.42`` (a real minus sign)."""
    text = f"{abs(x):.2f}"
    return ("−" if x < 0 and text != "0.00" else "+") + text


def forecast_feature_labels(scheme: BucketScheme) -> dict[str, str]:
    """Korean descriptions of the forecaster feature columns (``fc_*``) of ``scheme``."""
    labels = {f"{FC}p_{bid}": f"예측기의 '{label}' 확률" for bid, label in zip(scheme.ids, scheme.labels)}
    labels.update({
        f"{FC}purchase_prob": "예측기의 구매 확률",
        f"{FC}expected_spend": "예측기의 기대 지출액",
        f"{FC}expected_orders": "예측기의 기대 주문 수",
        f"{FC}entropy": "예측 분포의 엔트로피(불확실성)",
        f"{FC}confidence": "예측기의 확신도",
    })
    labels.update({f"{FC}segment_{s.value}": f"예측기 세그먼트가 '{s.value}'인지" for s in Segment})
    labels.update({f"{FC}trend_{t.value}": f"예측기 추세가 '{t.value}'인지" for t in Trend})
    return labels


def feature_label(name: str, scheme: BucketScheme) -> str:
    return FEATURE_LABELS.get(name) or forecast_feature_labels(scheme)[name]


_AMOUNTS = ("lifetime_spend", "monetary", f"{FC}expected_spend", "spend_lag", "spend_mean", "spend_max")
_PERCENTS = ("active_share", f"{FC}purchase_prob", f"{FC}confidence", f"{FC}p_")
_MONTHS = ("recency", "tenure", "lifetime_active_months", "active")


def value_text(name: str, value: float, currency: str) -> str:
    """The customer's value of a feature, formatted by what it measures (amount, %, months,
    orders, yes/no)."""
    if math.isnan(value):
        return "값 없음"
    if name == "trend_slope":
        return f"월 {'+' if value >= 0 else '-'}{format_amount(abs(value), currency)}"
    if name == "anchor_month":
        return f"{value:.0f}월"
    if name == f"{FC}expected_orders":
        return f"{value:.2f}회"
    if name.startswith(_AMOUNTS):
        return format_amount(value, currency)
    if name.startswith(_PERCENTS):
        return percent(value)
    if name.startswith(_MONTHS):
        return f"{value:.0f}개월"
    if name.startswith(("lifetime_orders", "orders_lag")):
        return f"{value:.0f}회"
    if name.startswith((f"{FC}segment_", f"{FC}trend_")):
        return "예" if value >= 0.5 else "아니요"
    return f"{value:.2f}"


def _ra(word: str) -> str:
    """``word`` and the connective copula: 이라 after a final consonant as read (11개월 전이라,
    1.2만 원이라), 라 otherwise (29.3달러라, 35%라, 17회라)."""
    return word + ("이라" if particle_for(word, "이다/다") == "이다" else "라")


def _window(name: str) -> int:
    return int(re.search(r"\d+$", name).group(0))


def _history_clause(name: str, value: float, text: str, anchor: pd.Period, currency: str) -> str:
    """Why-clause of a baseline feature, e.g. ``마지막 구매가 11개월 전이라``."""
    if name == "recency":
        return "마지막 구매가 바로 지난달이라" if round(value) == 1 else f"마지막 구매가 {_ra(text + ' 전')}"
    if name == "tenure":
        return f"첫 구매가 {_ra(text + ' 전')}"
    if name == "trend_slope":
        step = format_amount(abs(value), currency)
        if step == format_amount(0.0, currency):
            return "최근 12개월 월 지출에 뚜렷한 추세가 없어"
        return f"최근 12개월 월 지출이 한 달에 약 {step}씩 {'늘어나는' if value > 0 else '줄어드는'} 추세라"
    fixed = {
        "lifetime_active_months": f"지금까지 구매한 달이 {_ra(text)}",
        "lifetime_orders": f"누적 주문이 {_ra(text)}",
        "lifetime_spend": f"누적 지출액이 {_ra(text)}",
        "monetary": f"구매한 달의 평균 지출액이 {_ra(text)}",
        "active_share": f"첫 구매 이후 구매한 달의 비율이 {_ra(text)}",
        "anchor_month": f"예측 대상 월이 {_ra(text)}",
    }
    if name in fixed:
        return fixed[name]
    k = _window(name)
    if name.startswith(("spend_lag", "orders_lag")):
        month = format_month(anchor - k)
        if name.startswith("spend_lag"):
            return f"{month}에는 지출이 없어" if value == 0 else f"{month} 지출액이 {_ra(text)}"
        return f"{month}에는 주문이 없어" if value == 0 else f"{month} 주문이 {_ra(text)}"
    if name.startswith("spend_mean"):
        return f"최근 {k}개월 월평균 지출액이 {_ra(text)}"
    if name.startswith("spend_max"):
        return (f"최근 {k}개월 중 가장 많이 쓴 달도 {_ra(text)}" if value == 0
                else f"최근 {k}개월 중 가장 많이 쓴 달의 지출액이 {_ra(text)}")
    return f"최근 {k}개월 동안 구매가 없어" if value == 0 else f"최근 {k}개월 중 {text}에 구매해"


def _forecast_clause(name: str, value: float, text: str, scheme: BucketScheme) -> str:
    """Why-clause of a forecaster feature, e.g. ``예측기가 본 구매 확률이 12.3%라``."""
    fixed = {
        f"{FC}purchase_prob": f"예측기가 본 구매 확률이 {_ra(text)}",
        f"{FC}expected_spend": f"예측기의 기대 지출액이 {_ra(text)}",
        f"{FC}expected_orders": f"예측기의 기대 주문 수가 {_ra(text)}",
        f"{FC}entropy": f"{josa(forecast_feature_labels(scheme)[name], '이/가')} {_ra(text)}",
        f"{FC}confidence": f"예측기의 확신도가 {_ra(text)}",
    }
    if name in fixed:
        return fixed[name]
    if name.startswith(f"{FC}p_"):
        label = scheme.labels[scheme.ids.index(name[len(FC) + 2:])]
        return f"예측기가 본 '{label}' 확률이 {_ra(text)}"
    yes = value >= 0.5
    if name.startswith(f"{FC}segment_"):
        segment = josa(f"'{name[len(FC) + 8:]}'", "(으)로")
        return f"예측기가 이 고객을 {segment} {'분류해' if yes else '분류하지 않아'}"
    trend = josa(f"'{name[len(FC) + 6:]}'", "(으)로")
    return f"예측기가 추세를 {trend} {'봐서' if yes else '보지 않아서'}"


def _missing_clause(name: str, scheme: BucketScheme, anchor: pd.Period) -> str:
    """Why-clause of a missing (NaN) value: XGBoost sends it down a learned default branch,
    so its absence has a contribution of its own."""
    if name.startswith(("spend_lag", "orders_lag")):
        what = "지출액" if name.startswith("spend") else "주문 수"
        return f"{format_month(anchor - _window(name))} {josa(what, '은/는')} 첫 구매 전이라 값이 없고, 이 점이"
    if name == "trend_slope":
        return "첫 구매 후 지난 기간이 한 달뿐이라 지출 추세를 잴 수 없고, 이 점이"
    label = feature_label(name, scheme)
    if name.startswith(FC):
        return f"예측기 응답이 실패해 {josa(label, '이/가')} 없고, 이 점이"
    return f"{josa(label, '은/는')} 값이 없고, 이 점이"


def contribution_sentence(name: str, value: float, contribution: float, scheme: BucketScheme,
                          anchor: pd.Period) -> str:
    """One Korean sentence: the feature's meaning and value, the direction and the size,
    e.g. ``최근 3개월 동안 구매가 없어 구매 가능성을 낮췄습니다 (−0.42)``."""
    if math.isnan(value):
        clause = _missing_clause(name, scheme, anchor)
    elif name.startswith(FC):
        clause = _forecast_clause(name, value, value_text(name, value, scheme.currency), scheme)
    else:
        clause = _history_clause(name, value, value_text(name, value, scheme.currency), anchor, scheme.currency)
    if abs(contribution) < 0.005:
        effect = "구매 가능성을 거의 바꾸지 않았습니다"
    else:
        effect = f"구매 가능성을 {'높였습니다' if contribution > 0 else '낮췄습니다'}"
    return f"{clause} {effect} ({signed(contribution)})"


# -- checks the user can act on -------------------------------------------------------------


def locate_customer(panel: MonthlyPanel, customer_id: str, anchor: pd.Period, data_name: str) -> int:
    """Row of the customer in ``panel``; UserError if the id is unknown (suggesting the
    zero-padded id a number stands for), the customer never bought, or was not yet
    acquired at ``anchor``."""
    try:
        panel.check_anchor(anchor)
    except ValueError as exc:
        raise UserError(f"--anchor: {exc} (data '{data_name}')") from None
    try:
        row = panel.row_of(customer_id)
    except KeyError:
        raise UserError(_unknown_customer(panel, customer_id, data_name)) from None
    first = int(panel.first_idx[row])
    if first == NOT_ACQUIRED:
        raise UserError(f"customer '{customer_id}' has no purchase in the data '{data_name}' (only returns)")
    if first >= panel.column(anchor):
        first_month = panel.first_month + first
        raise UserError(f"customer '{customer_id}' made their first purchase in {first_month}, so is not yet a "
                        f"customer at {anchor}; choose --anchor {first_month + 1} or later")
    return row


def _unknown_customer(panel: MonthlyPanel, customer_id: str, data_name: str) -> str:
    message = f"customer '{customer_id}' is not in the data '{data_name}'"
    if customer_id.isdigit():
        stripped = pd.Series(panel.customer_ids).str.lstrip("0").to_numpy()
        matches = panel.customer_ids[stripped == customer_id.lstrip("0")]
        if len(matches) == 1:
            return f"{message}; did you mean '{matches[0]}'? (ids there are zero-padded)"
    examples = ", ".join(str(c) for c in panel.customer_ids[:3])
    return f"{message}; check the id (ids there look like {examples})"


# -- the default model ---------------------------------------------------------------------


def data_fingerprint(data_name: str, panel: MonthlyPanel) -> str:
    """sha256 of the data's name and the panel the model would be trained on (ids, months,
    spend, orders, currency): a few milliseconds for CDNOW, and any change retrains."""
    digest = hashlib.sha256()
    digest.update(f"{data_name}|{panel.currency}|{panel.start}|{panel.spend.shape}".encode())
    digest.update("\n".join(map(str, panel.customer_ids)).encode())
    digest.update(np.ascontiguousarray(panel.spend).tobytes())
    digest.update(np.ascontiguousarray(panel.orders).tobytes())
    return digest.hexdigest()[:16]


def default_model_dir(data_name: str, panel: MonthlyPanel) -> Path:
    folder = f"{data_fingerprint(data_name, panel)}-{artifact.code_version()}"
    return Path(platformdirs.user_cache_dir(CACHE_APP)) / "models" / folder


def ensure_default_model(data_name: str, panel: MonthlyPanel, notify: Callable[[str], None]) -> Path:
    """The cached default artifact (empirical forecaster, all anchors with an outcome),
    trained first if it is missing or was written by different code."""
    folder = default_model_dir(data_name, panel)
    try:
        artifact.load(folder)
        return folder
    except (UserError, ValueError, OSError):  # missing, stale or damaged: ours to rebuild
        pass
    notify(f"--model이 없어 기본 모델(통계 규칙 기반 예측기, LLM 아님)을 이 데이터로 먼저 학습합니다 "
           f"(한 번만; {folder}에 저장).")
    scheme = artifact.training_scheme(panel)
    provider = Provider("empirical", scheme)
    artifact.train(panel, scheme, provider.forecast_fn(), provider.info, data_name, folder)
    return folder


# -- gathering the evidence ----------------------------------------------------------------


def _one_customer(cut: MonthlyPanel, row: int) -> MonthlyPanel:
    keep = slice(row, row + 1)
    return MonthlyPanel(cut.customer_ids[keep], cut.start, cut.spend[keep], cut.orders[keep],
                        cut.first_idx[keep], cut.currency)


def _forecaster_distribution(record: ForecastRecord, scheme: BucketScheme) -> list[BucketShare] | None:
    if record.status != "ok" or record.forecast is None:
        return None
    probs = record.forecast.probability_vector()
    return [BucketShare(bid, label, float(p)) for bid, label, p in zip(scheme.ids, scheme.labels, probs)]


def _model_view(name: str, model, features: pd.DataFrame, scheme: BucketScheme, rep_spend: np.ndarray) -> ModelView:
    probs = model.predict_proba(features)
    shares = [BucketShare(bid, label, float(p)) for bid, label, p in zip(scheme.ids, scheme.labels, probs[0])]
    return ModelView(name, shares, float(1.0 - probs[0, 0]), float(spend_from_probs(probs, rep_spend)[0]))


def _top_group(job: BatchJob, customer_probability: float) -> TopGroup:
    """The 80th percentile of the final model's purchase probability over the anchor
    population, as `forecaster batch` computes it."""
    n = len(job.histories)
    if job.provider.llm_forecaster is not None:
        return TopGroup(None, None, n, "LLM 예측기로 학습한 모델은 전체 고객을 LLM에 물어야 상위 20%를 정할 수 있어 "
                                       "계산하지 않았습니다 (forecaster batch로 확인하세요).")
    features = baseline_features(job.histories).join(
        job.provider.forecast_fn()(job.anchor, job.histories, job.cut))
    purchase = job.art.models[artifact.AUGMENTED].purchase_probability(features)
    cutoff = float(np.quantile(purchase, 1 - TOP_SHARE))
    return TopGroup(bool(customer_probability >= cutoff), cutoff, n)


def _contributions(model, features: pd.DataFrame, scheme: BucketScheme,
                   anchor: pd.Period) -> tuple[list[Contribution], float]:
    """Every feature's contribution, largest |SHAP| first, and the base value."""
    row = model.purchase_contributions(features).iloc[0]
    shap = row.drop("bias").astype(float)
    values = features.iloc[0]
    out = []
    for name in shap.abs().sort_values(ascending=False, kind="stable").index:
        value = float(values[name])
        out.append(Contribution(
            feature=name, label=feature_label(name, scheme),
            value=None if math.isnan(value) else value,
            value_text=value_text(name, value, scheme.currency),
            contribution=float(shap[name]),
            sentence=contribution_sentence(name, value, float(shap[name]), scheme, anchor),
        ))
    return out, float(row["bias"])


def _actual(panel: MonthlyPanel, row: int, anchor: pd.Period, scheme: BucketScheme) -> Actual | None:
    if anchor > panel.last_month:
        return None
    col = panel.column(anchor)
    spend = float(panel.spend[row, col])
    k = int(scheme.assign(np.array([spend]))[0])
    return Actual(spend, int(panel.orders[row, col]), scheme.ids[k], scheme.labels[k])


def _narrative(job: BatchJob, batch: HistoryBatch) -> str:
    """The text an LLM forecaster is (or would be) sent for this customer."""
    history = batch[0]
    llm = job.provider.llm_forecaster
    return llm.messages_for(history)[-1]["content"] if llm is not None else render_narrative(history)


def explain_customer(dataset: Dataset, model_dir: Path, customer_id: str, anchor: pd.Period,
                     llm: LLMOptions | None = None, provider: str | None = None,
                     default_model: bool = False) -> Explanation:
    """Explain one customer at ``anchor`` with the artifact in ``model_dir``.

    ``provider`` (if given) must be the one the artifact was trained with. Raises UserError
    for an unknown or not yet acquired customer, an anchor outside the data, or an artifact
    from different code.
    """
    panel = dataset.panel
    row = locate_customer(panel, customer_id, anchor, dataset.name)
    if provider is not None:  # checked before an LLM client is set up for the wrong provider
        trained_with = artifact.load(model_dir).config["forecaster"]["provider"]
        if provider != trained_with:
            raise UserError(f"--provider {provider}: the model in {model_dir} was trained with the {trained_with} "
                            f"forecaster; pass --provider {trained_with} or a model trained with {provider}")
    llm = llm or LLMOptions()
    job = BatchJob.open(model_dir, dataset, anchor, None, llm.model, llm.base_url, 1, llm.cache_dir)
    scheme, art = job.art.scheme, job.art
    one = HistoryBatch.from_panel(_one_customer(job.cut, job.cut.row_of(customer_id)), anchor,
                                  art.config["history_months"])
    record = job.provider.records(one, job.cut)[0]
    forecast_features = records_to_features([record], scheme)
    forecast_features.index = pd.Index(one.customer_ids, name="customer_id")
    features = baseline_features(one).join(forecast_features)
    final_model = art.models[artifact.AUGMENTED]
    final = _model_view(artifact.AUGMENTED, final_model, features, scheme, art.representative_spend)
    baseline = _model_view(artifact.BASE, art.models[artifact.BASE], features, scheme, art.representative_spend)
    contributions, base = _contributions(final_model, features, scheme, anchor)
    return Explanation(
        customer_id=customer_id, anchor=str(anchor), data=dataset.name, currency=panel.currency,
        model_dir=str(model_dir), default_model=default_model,
        trained_anchors=tuple(art.config["trained_anchors"]), validation_anchor=art.config["validation_anchor"],
        narrative=_narrative(job, one), record=record, forecaster_is_llm=job.provider.llm_forecaster is not None,
        forecaster_distribution=_forecaster_distribution(record, scheme),
        final=final, baseline=baseline, threshold=art.threshold(artifact.AUGMENTED),
        top20=_top_group(job, final.purchase_probability),
        contributions=contributions, base_value=base, margin=float(final_model.purchase_margin(features)[0]),
        actual=_actual(panel, row, anchor, scheme),
    )
