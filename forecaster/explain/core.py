"""`forecaster explain`: one customer's forecast at one anchor, gathered from evidence.

Everything shown comes from the same objects `forecaster batch` uses, at that anchor and
on ``panel.before(anchor)`` only: the narrative, the forecaster's record (the empirical
forecaster's population prior is fitted on the whole cut panel, then the one customer is
forecast), the trained artifact's final (``xgb_base+forecaster``) and baseline
(``xgb_base``) models, the tuned threshold, the top-20% flag over the whole anchor
population (:mod:`forecaster.top_share`) and the model's training warnings. The
contributions are TreeSHAP values of the final model's purchase booster (Lundberg et al. 2020): in log-odds of purchase, they sum with the base value (``bias``)
to the customer's margin, ``P(buy) = 1 / (1 + exp(-margin))``.

The Korean sentences are in :mod:`forecaster.explain.sentences`, the rich rendering in
:mod:`forecaster.explain.render`.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import platformdirs

from forecaster import artifact, model_warnings, progress, top_share
from forecaster.batch import BatchJob
from forecaster.customers import locate_customer
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.explain.sentences import contribution_sentence, feature_label, value_text
from forecaster.pipeline import model_features
from forecaster.providers import DEFAULT_PROVIDER, ForecasterChoice
from models.arms import spend_from_probs
from narrator.panel import HistoryBatch, MonthlyPanel
from structurer.features import records_to_features
from structurer.schema import BucketScheme, ForecastRecord

TOP_CONTRIBUTIONS = 5
EXPLANATION_WIDTH = 100  # columns of .text and the notebook view
EXPLANATION_HTML = "<pre style=\"font-family:monospace;line-height:1.3\">{code}</pre>"
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
    cutoff: float | None  # the lowest flagged probability (None: nobody flagged, or not computed)
    population: int
    note: str | None = None
    flagged: int = 0
    tied: int = 0  # customers sharing the cut-off with this one (0 when elsewhere; above 1: the tie rule decided)
    rule: str = top_share.RULE


@dataclass(frozen=True)
class Actual:
    spend: float
    orders: int
    bucket: str
    label: str


@dataclass(frozen=True)
class Explanation:
    """One customer's forecast at one anchor and the evidence behind it (what
    ``TrainedModel.explain`` and ``forecaster explain`` return): the narrative, the
    forecaster's record and distribution, the final and baseline models' answers, the tuned
    threshold and decision, the top-20% flag, every feature's TreeSHAP contribution and, for
    a past month, what the customer really spent.

    ``.text`` is the Korean text the command line prints, ``.to_dict()`` its JSON
    (``explain --format json``); a notebook shows it formatted.

    Example: ``print(fc.TrainedModel.load("model/").explain(cdnow, "00145", "1998-06").text)``.
    """

    customer_id: str
    anchor: str
    data: str
    currency: str
    model_dir: str | None  # None for a model not saved
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
    warnings: list[str]  # the model's training warnings (model_warnings), shown first

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

    @property
    def text(self) -> str:
        """The explanation as ``forecaster explain`` prints it, as plain text."""
        return self._recorded().export_text()

    def _repr_html_(self) -> str:
        return self._recorded().export_html(inline_styles=True, code_format=EXPLANATION_HTML)

    def _recorded(self):
        from rich.console import Console

        from forecaster.explain.render import render  # render imports this module: here, not at the top

        console = Console(record=True, width=EXPLANATION_WIDTH, file=io.StringIO(), highlight=False, emoji=False,
                          markup=False)
        render(self, console)
        return console

    def to_dict(self) -> dict:
        """Every figure of the text output, as one JSON-ready object (``explain --format json``)."""
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
                      "anchor_in_training": self.anchor_in_training, "warnings": self.warnings},
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
            "top20_flagged": self.top20.flagged,
            "top20_tied_at_cutoff": self.top20.tied,
            "top20_rule": self.top20.rule,
            "contributions": [asdict(c) for c in self.contributions],
            "top_contributions": TOP_CONTRIBUTIONS,
            "base_value": self.base_value,
            "margin": self.margin,
            "actual": None if self.actual is None else asdict(self.actual),
        }


# -- checks the user can act on -------------------------------------------------------------


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


def ensure_default_model(dataset: Dataset) -> artifact.Artifact:
    """The cached default artifact (empirical forecaster, all anchors with an outcome),
    trained first if it is missing or was written by different code."""
    data_name, panel = dataset.name, dataset.panel
    folder = default_model_dir(data_name, panel)
    try:
        return artifact.load(folder)
    except UserError:  # missing, stale or damaged (artifact.load says which): ours to rebuild
        pass
    scheme = artifact.training_scheme(panel, "explain without --model (its default model)")  # too short: say so first
    progress.notice(f"--model이 없어 기본 모델(통계 규칙 기반 예측기, LLM 아님)을 이 데이터로 먼저 학습합니다 "
                    f"(한 번만; {folder}에 저장).")
    provider, tuning = artifact.training_provider(DEFAULT_PROVIDER, panel, scheme)
    trained = artifact.train(panel, dataset.transactions, scheme, provider.forecast_fn(), provider.info, data_name,
                             empirical_tuning=tuning)
    return artifact.save(trained, folder)


# -- gathering the evidence ----------------------------------------------------------------


def _forecaster_distribution(record: ForecastRecord, scheme: BucketScheme) -> list[BucketShare] | None:
    if record.status != "ok" or record.forecast is None:
        return None
    probs = record.forecast.probability_vector()
    return [BucketShare(bid, label, float(p)) for bid, label, p in zip(scheme.ids, scheme.labels, probs)]


def _model_view(name: str, model, features: pd.DataFrame, scheme: BucketScheme, rep_spend: np.ndarray) -> ModelView:
    probs = model.predict_proba(features)
    shares = [BucketShare(bid, label, float(p)) for bid, label, p in zip(scheme.ids, scheme.labels, probs[0])]
    return ModelView(name, shares, float(1.0 - probs[0, 0]), float(spend_from_probs(probs, rep_spend)[0]))


def _top_group(job: BatchJob, customer_id: str) -> TopGroup:
    """The customer's top-20% flag over the anchor population, computed exactly as
    `forecaster batch` does (:func:`forecaster.top_share.top_share`)."""
    n = len(job.histories)
    if job.provider.is_llm:
        return TopGroup(None, None, n, "LLM 예측기로 학습한 모델은 전체 고객을 LLM에 물어야 상위 20%를 정할 수 있어 "
                                       "계산하지 않았습니다 (forecaster batch로 확인하세요).")
    features = model_features(job.histories, job.cut, job.days, job.provider.features(job.histories, job.cut))
    purchase = 1.0 - job.art.models[artifact.AUGMENTED].predict_proba(features)[:, 0]
    flags, cutoff = top_share.top_share(purchase, job.histories.customer_ids)
    row = job.cut.row_of(customer_id)
    tied = top_share.tied_at_cutoff(purchase, cutoff) if purchase[row] == cutoff else 0
    return TopGroup(bool(flags[row]), cutoff, n, flagged=int(flags.sum()), tied=tied)


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


def explain_customer(dataset: Dataset, art: artifact.Artifact, customer_id: str, anchor: pd.Period,
                     forecaster: ForecasterChoice | None = None, default_model: bool = False) -> Explanation:
    """Explain one customer at ``anchor`` with the trained artifact ``art``.

    ``forecaster`` (if given) must be the provider the artifact was trained with (a name, or
    an :class:`~forecaster.providers.LLMForecaster` with the endpoint's settings). Raises
    UserError for an unknown or not yet acquired customer, an anchor outside the data, or
    another provider.
    """
    panel = dataset.panel
    customer_id = locate_customer(dataset, customer_id, anchor)
    row = panel.row_of(customer_id)
    job = BatchJob.open(art, dataset, anchor, None, forecaster)
    scheme, art = job.art.scheme, job.art
    one = HistoryBatch.from_panel(job.cut.take(np.array([job.cut.row_of(customer_id)])), anchor,
                                  art.config["history_months"])
    record = job.provider.records(one, job.fitted)[0]
    features = model_features(one, job.cut, job.days, records_to_features([record], scheme, index=one.customer_ids))
    final_model = art.models[artifact.AUGMENTED]
    final = _model_view(artifact.AUGMENTED, final_model, features, scheme, art.representative_spend)
    baseline = _model_view(artifact.BASE, art.models[artifact.BASE], features, scheme, art.representative_spend)
    contributions, base = _contributions(final_model, features, scheme, anchor)
    return Explanation(
        customer_id=customer_id, anchor=str(anchor), data=dataset.name, currency=panel.currency,
        model_dir=str(art.folder) if art.folder is not None else None, default_model=default_model,
        trained_anchors=tuple(art.config["trained_anchors"]), validation_anchor=art.config["validation_anchor"],
        narrative=job.provider.forecaster.narrative(one[0]), record=record, forecaster_is_llm=job.provider.is_llm,
        forecaster_distribution=_forecaster_distribution(record, scheme),
        final=final, baseline=baseline, threshold=art.threshold(artifact.AUGMENTED),
        top20=_top_group(job, customer_id),
        warnings=model_warnings.lines(art.config),
        contributions=contributions, base_value=base, margin=float(final_model.purchase_margin(features)[0]),
        actual=_actual(panel, row, anchor, scheme),
    )
