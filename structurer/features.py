"""Forecast records -> feature columns for the augmented XGBoost model.

A failed forecast leaves every column missing (NaN): XGBoost learns a default direction
for missing values, and imputing would invent an answer the forecaster never gave.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from structurer.schema import BucketScheme, ForecastRecord, Segment, Trend

PREFIX = "fc_"


def probability_feature_names(scheme: BucketScheme, prefix: str = PREFIX) -> list[str]:
    """The forecast bucket distribution's columns, one per bucket."""
    return [f"{prefix}p_{bid}" for bid in scheme.ids]


def expected_spend_feature(prefix: str = PREFIX) -> str:
    return f"{prefix}expected_spend"


def forecast_feature_names(scheme: BucketScheme, prefix: str = PREFIX) -> list[str]:
    """Column names, in order; ``prefix`` tells two forecasters' columns apart."""
    return (
        probability_feature_names(scheme, prefix)
        + [f"{prefix}purchase_prob", expected_spend_feature(prefix), f"{prefix}expected_orders",
           f"{prefix}entropy", f"{prefix}confidence"]
        + [f"{prefix}segment_{s.value}" for s in Segment]
        + [f"{prefix}trend_{t.value}" for t in Trend]
    )


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of a probability matrix."""
    p = np.clip(probs, 1e-12, 1.0)
    return -(probs * np.log(p)).sum(axis=1)


def records_to_features(records: Sequence[ForecastRecord], scheme: BucketScheme,
                        index: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per record (same order), columns :func:`forecast_feature_names`; indexed by
    ``index`` (the records' customer ids, named ``customer_id``) when given. The one way
    records become the model's forecaster columns."""
    n, k = len(records), scheme.n_buckets
    probs = np.full((n, k), np.nan)
    scalars = np.full((n, 3), np.nan)  # expected spend, expected orders, confidence
    segment = np.full(n, -1)
    trend = np.full(n, -1)
    segments, trends = list(Segment), list(Trend)
    for i, rec in enumerate(records):
        fc = rec.forecast
        if rec.status != "ok" or fc is None:
            continue
        probs[i] = fc.probability_vector()
        scalars[i] = (fc.expected_spend, fc.expected_orders, fc.confidence)
        segment[i] = segments.index(fc.segment)
        trend[i] = trends.index(fc.trend)
    return assemble_features(probs, scalars[:, 0], scalars[:, 1], scalars[:, 2], segment, trend, scheme, index)


def assemble_features(
    probs: np.ndarray,
    expected_spend: np.ndarray,
    expected_orders: np.ndarray,
    confidence: np.ndarray,
    segment_idx: np.ndarray,
    trend_idx: np.ndarray,
    scheme: BucketScheme,
    index: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The feature frame from arrays (the vectorised path the empirical forecaster uses),
    indexed by ``index`` (customer ids) when given.

    ``segment_idx``/``trend_idx`` index into ``Segment``/``Trend``; -1 marks a failed row,
    whose one-hot columns are NaN rather than 0 (absent, not "not this segment").
    """
    failed = np.isnan(probs).any(axis=1)
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(probability_feature_names(scheme)):
        cols[name] = probs[:, j]
    cols[f"{PREFIX}purchase_prob"] = 1.0 - probs[:, 0]
    cols[expected_spend_feature()] = expected_spend
    cols[f"{PREFIX}expected_orders"] = expected_orders
    cols[f"{PREFIX}entropy"] = np.where(failed, np.nan, entropy(np.nan_to_num(probs)))
    cols[f"{PREFIX}confidence"] = confidence
    for j, s in enumerate(Segment):
        cols[f"{PREFIX}segment_{s.value}"] = np.where(failed, np.nan, (segment_idx == j).astype(float))
    for j, t in enumerate(Trend):
        cols[f"{PREFIX}trend_{t.value}"] = np.where(failed, np.nan, (trend_idx == j).astype(float))
    frame = pd.DataFrame(cols)
    if index is not None:
        frame.index = pd.Index(index, name="customer_id")
    return frame
