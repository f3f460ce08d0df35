"""Korean names of every feature column a model can use, for the report's figures and
tables and the explanation's sentences.

Baseline features are named in :data:`models.features.FEATURE_LABELS`; the forecaster's
columns (``fc_*``, and ``emp_*`` for the empirical forecaster kept beside an LLM) follow
:func:`structurer.features.forecast_feature_names`, and the Pareto/NBD columns
``btyd_*``. A column with no name here keeps its code, so a new feature is never dropped.
"""

from __future__ import annotations

from models.features import FEATURE_LABELS
from models.rows import BTYD_EXPECTED_ORDERS, BTYD_EXPECTED_SPEND, BTYD_P_PURCHASE, EMPIRICAL_PREFIX, FORECASTER_PREFIX
from narrator.korean import josa
from structurer.schema import Segment, Trend

FORECASTER_PREFIXES = {FORECASTER_PREFIX: "예측기", EMPIRICAL_PREFIX: "경험적 예측기"}
BTYD_LABELS = {
    BTYD_P_PURCHASE: "Pareto/NBD 다음 달 구매 확률",
    BTYD_EXPECTED_ORDERS: "Pareto/NBD 다음 달 기대 주문 수",
    BTYD_EXPECTED_SPEND: "Pareto/NBD 다음 달 기대 지출액",
}


def _forecaster_label(rest: str, who: str, bucket_labels: dict[str, str]) -> str | None:
    """The name of forecaster column ``<prefix><rest>``, ``who`` naming the forecaster."""
    fixed = {"purchase_prob": f"{who}의 구매 확률", "expected_spend": f"{who}의 기대 지출액",
             "expected_orders": f"{who}의 기대 주문 수", "entropy": f"{josa(who, '이/가')} 낸 분포의 엔트로피(불확실성)",
             "confidence": f"{who}의 확신도"}
    fixed.update({f"segment_{s.value}": f"{who} 세그먼트가 '{s.value}'인지" for s in Segment})
    fixed.update({f"trend_{t.value}": f"{who} 추세가 '{t.value}'인지" for t in Trend})
    if rest.startswith("p_") and rest[2:] in bucket_labels:
        return f"{who}의 '{bucket_labels[rest[2:]]}' 확률"
    return fixed.get(rest)


def feature_label(name: str, bucket_labels: dict[str, str]) -> str:
    """Korean name of feature column ``name``; ``bucket_labels`` maps bucket ids to their
    labels (``{"b0": "구매 없음", ...}``) for the per-bucket probability columns."""
    if name in FEATURE_LABELS:
        return FEATURE_LABELS[name]
    if name in BTYD_LABELS:
        return BTYD_LABELS[name]
    for prefix, who in FORECASTER_PREFIXES.items():
        if name.startswith(prefix):
            return _forecaster_label(name[len(prefix):], who, bucket_labels) or name
    return name
