"""Pydantic contracts: the bucket scheme, the forecast an LLM (or the empirical
forecaster) must return for that scheme, and the record of one forecast attempt.

``SpendForecast`` is built per scheme so that its JSON schema names exactly the scheme's
buckets: the distribution is one named field per bucket (``b0`` = no purchase, ``b1``..),
a fixed-key object that OpenAI strict structured outputs can express (free-key maps
cannot be expressed there).
"""

from __future__ import annotations

import enum
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, create_model, model_validator

from narrator.korean import format_amount
from structurer.errors import SchemeError

SUM_TOLERANCE = 0.02
RATIONALE_MAX_CHARS = 400


class Segment(str, enum.Enum):
    VIP = "VIP"
    LOYAL = "충성"
    REGULAR = "일반"
    AT_RISK = "이탈위험"
    DORMANT = "휴면"


class Trend(str, enum.Enum):
    UP = "증가"
    FLAT = "유지"
    DOWN = "감소"


class BucketScheme(BaseModel):
    """Ordered spend buckets: ``b0`` is no purchase (spend 0); ``b1``.. split positive
    monthly spend at ``edges`` (ascending). A month's spend ``s > 0`` falls in bucket
    ``1 + #{edges <= s}``."""

    model_config = ConfigDict(frozen=True)

    edges: tuple[float, ...]
    currency: str
    fitted_on: str = Field(default="given", description="what the edges were fitted on")
    base_shares: tuple[float, ...] | None = Field(
        default=None,
        description="share of existing customers' months in each bucket over the last training "
        "months (acquisition months left out): the base rates an LLM is told",
    )

    @classmethod
    def fit(
        cls,
        positive_spend: np.ndarray,
        currency: str,
        quantiles: tuple[float, ...] = (1 / 3, 2 / 3),
        fitted_on: str = "training months",
    ) -> "BucketScheme":
        """Edges at ``quantiles`` of positive monthly spend (default terciles -> 4 buckets).

        Callers pass the *training* months only: the scheme must never see a test month.
        """
        values = np.asarray(positive_spend, dtype=float)
        values = values[values > 0]
        if values.size == 0:
            raise SchemeError("cannot fit a bucket scheme: no positive monthly spend in the training months")
        edges = np.unique(np.round(np.quantile(values, quantiles), 2))
        return cls(edges=tuple(float(e) for e in edges), currency=currency, fitted_on=fitted_on)

    @property
    def n_buckets(self) -> int:
        return len(self.edges) + 2

    @property
    def ids(self) -> list[str]:
        return [f"b{k}" for k in range(self.n_buckets)]

    @property
    def labels(self) -> list[str]:
        """Korean labels with the currency, e.g. 구매 없음 / 15달러 미만 / 15달러~29.3달러 / 29.3달러 이상."""
        amounts = [format_amount(e, self.currency) for e in self.edges]
        labels = ["구매 없음", f"{amounts[0]} 미만"]
        labels += [f"{lo}~{hi}" for lo, hi in zip(amounts[:-1], amounts[1:])]
        labels.append(f"{amounts[-1]} 이상")
        return labels

    def assign(self, spend: np.ndarray) -> np.ndarray:
        """Bucket index of each monthly spend (0 for no purchase)."""
        spend = np.asarray(spend, dtype=float)
        idx = 1 + np.searchsorted(np.asarray(self.edges), spend, side="right")
        return np.where(spend > 0, idx, 0).astype(np.int64)

    def representative_spend(self, positive_spend: np.ndarray) -> np.ndarray:
        """Mean spend inside each bucket (0 for b0), for turning a distribution into an
        expected amount. Fitted on the same training months as the edges."""
        values = np.asarray(positive_spend, dtype=float)
        values = values[values > 0]
        idx = self.assign(values)
        sums = np.bincount(idx, weights=values, minlength=self.n_buckets)
        counts = np.bincount(idx, minlength=self.n_buckets)
        return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


class SpendForecastBase(BaseModel):
    """Common behaviour of every scheme-specific ``SpendForecast``."""

    model_config = ConfigDict(extra="forbid")

    def probability_vector(self) -> np.ndarray:
        probs = self.probabilities.model_dump()  # type: ignore[attr-defined]
        return np.array([probs[f"b{k}"] for k in range(len(probs))], dtype=float)

    @property
    def purchase_probability(self) -> float:
        """Derived, never asked: 1 - p(no purchase)."""
        return 1.0 - float(self.probabilities.b0)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _check_distribution(self) -> "SpendForecastBase":
        probs = self.probabilities  # type: ignore[attr-defined]
        values = probs.model_dump()
        total = sum(values.values())
        if abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(
                f"bucket probabilities sum to {total:.3f}; they must sum to 1 "
                f"(within {SUM_TOLERANCE})"
            )
        for key, value in values.items():
            setattr(probs, key, value / total)
        return self


def _probability_field(label: str) -> Any:
    return (float, Field(ge=0.0, le=1.0, description=f"P(다음 달 지출이 '{label}')"))


@lru_cache(maxsize=32)
def spend_forecast_model(scheme: BucketScheme) -> type[SpendForecastBase]:
    """The ``SpendForecast`` pydantic model for ``scheme`` (cached per scheme)."""
    probabilities = create_model(
        "BucketProbabilities",
        __config__=ConfigDict(extra="forbid"),
        **{bid: _probability_field(label) for bid, label in zip(scheme.ids, scheme.labels)},
    )
    return create_model(
        "SpendForecast",
        __base__=SpendForecastBase,
        rationale=(str, Field(min_length=1, max_length=RATIONALE_MAX_CHARS,
                              description="근거를 먼저 짧은 한국어로 (2~3문장)")),
        probabilities=(probabilities, Field(description="다음 달 지출 구간별 확률, 합계 1")),
        expected_spend=(float, Field(ge=0.0, description=f"다음 달 기대 지출액 ({scheme.currency})")),
        expected_orders=(float, Field(ge=0.0, description="다음 달 기대 주문 수")),
        segment=(Segment, Field(description="고객 세그먼트")),
        trend=(Trend, Field(description="최근 추세")),
        confidence=(float, Field(ge=0.0, le=1.0, description="예측에 대한 확신 (0~1)")),
    )


_STRICT_KEYS = {"type", "properties", "required", "additionalProperties", "items", "enum", "description"}


def _strictify(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s and drop keywords that strict mode (and some local servers'
    grammars) reject; pydantic re-checks every bound on the way back, so nothing is lost."""
    if isinstance(node, list):
        return [_strictify(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _strictify(merged, defs)
    out = {k: _strictify(v, defs) for k, v in node.items() if k in _STRICT_KEYS}
    if "properties" in node:
        out["properties"] = {name: _strictify(v, defs) for name, v in node["properties"].items()}
        out["required"] = list(node["properties"])
        out["additionalProperties"] = False
    return out


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON schema of ``model`` valid for OpenAI strict structured outputs: every field
    required, ``additionalProperties: false`` everywhere, no ``$ref``, only basic keywords."""
    schema = model.model_json_schema()
    return _strictify(schema, schema.get("$defs", {}))


FailureReason = Literal[
    "invalid_json", "validation_error", "refusal", "truncated", "timeout",
    "rate_limited", "server_error", "connection_error", "bad_request", "context_exceeded", "other",
]


class ForecastRecord(BaseModel):
    """One customer's forecast at one anchor, with what it cost to get it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    customer_id: str
    anchor: str  # YYYY-MM
    provider: str  # its registry name: "empirical" (never an LLM), "llm", ...
    model: str
    prompt_version: str
    status: Literal["ok", "failed"]
    reason: FailureReason | None = None
    detail: str | None = None
    forecast: SerializeAsAny[SpendForecastBase] | None = None  # dumped with its scheme's fields
    attempts: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cache_hit: bool = False
