"""The pydantic contracts: bucket scheme, SpendForecast per scheme, strict JSON schema."""

import json

import numpy as np
import pytest
from pydantic import ValidationError

from structurer.schema import BucketScheme, spend_forecast_model, strict_json_schema


def _scheme(currency="USD"):
    return BucketScheme(edges=(15.0, 30.0), currency=currency)


def _answer(**over):
    answer = {
        "rationale": "최근 석 달 연속 구매했습니다.",
        "probabilities": {"b0": 0.4, "b1": 0.2, "b2": 0.2, "b3": 0.2},
        "expected_spend": 12.5, "expected_orders": 0.8,
        "segment": "충성", "trend": "유지", "confidence": 0.6,
    }
    answer.update(over)
    return answer


def test_fit_uses_terciles_of_positive_spend_only():
    spend = np.array([0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9], dtype=float)
    scheme = BucketScheme.fit(spend, "USD")
    assert scheme.edges == (pytest.approx(3.67), pytest.approx(6.33))
    assert scheme.n_buckets == 4 and scheme.ids == ["b0", "b1", "b2", "b3"]


def test_assign_puts_zero_in_bucket_zero_and_edges_in_the_upper_bucket():
    scheme = _scheme()
    got = scheme.assign(np.array([0.0, 0.01, 14.99, 15.0, 29.99, 30.0, 500.0]))
    assert got.tolist() == [0, 1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("currency, expected", [
    ("USD", ["구매 없음", "15달러 미만", "15달러~30달러", "30달러 이상"]),
])
def test_labels_are_korean_with_currency(currency, expected):
    assert _scheme(currency).labels == expected


def test_krw_labels_use_man_won():
    scheme = BucketScheme(edges=(15000.0, 30000.0), currency="KRW")
    assert scheme.labels == ["구매 없음", "1.5만 원 미만", "1.5만 원~3만 원", "3만 원 이상"]


def test_scheme_round_trips_through_json():
    scheme = _scheme()
    assert BucketScheme.model_validate_json(scheme.model_dump_json()) == scheme


def test_valid_answer_and_derived_purchase_probability():
    model = spend_forecast_model(_scheme())
    fc = model.model_validate(_answer())
    assert fc.purchase_probability == pytest.approx(0.6)
    assert fc.probability_vector().tolist() == pytest.approx([0.4, 0.2, 0.2, 0.2])


def test_sum_within_tolerance_is_renormalised():
    model = spend_forecast_model(_scheme())
    fc = model.model_validate(_answer(probabilities={"b0": 0.41, "b1": 0.2, "b2": 0.2, "b3": 0.2}))
    assert fc.probability_vector().sum() == pytest.approx(1.0)
    assert fc.probabilities.b0 == pytest.approx(0.41 / 1.01)


@pytest.mark.parametrize("probabilities", [
    {"b0": 0.1, "b1": 0.2, "b2": 0.2, "b3": 0.2},           # sums to 0.7
    {"b0": 1.2, "b1": -0.2, "b2": 0.0, "b3": 0.0},          # out of [0, 1]
    {"b0": 0.4, "b1": 0.2, "b2": 0.4},                      # a bucket missing
    {"b0": 0.4, "b1": 0.2, "b2": 0.2, "b3": 0.1, "b4": 0.1},  # an unknown bucket
])
def test_bad_distributions_are_rejected(probabilities):
    with pytest.raises(ValidationError):
        spend_forecast_model(_scheme()).model_validate(_answer(probabilities=probabilities))


@pytest.mark.parametrize("field, value", [
    ("expected_spend", -1.0), ("segment", "고래"), ("trend", "급등"), ("confidence", 1.5), ("rationale", ""),
])
def test_bad_fields_are_rejected(field, value):
    with pytest.raises(ValidationError):
        spend_forecast_model(_scheme()).model_validate(_answer(**{field: value}))


def test_extra_fields_are_rejected():
    with pytest.raises(ValidationError):
        spend_forecast_model(_scheme()).model_validate(_answer(purchase_probability=0.6))


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_strict_schema_requires_every_field_and_forbids_extras():
    schema = strict_json_schema(spend_forecast_model(_scheme()))
    assert list(schema["properties"])[0] == "rationale"  # reasons before committing to numbers
    assert "$ref" not in json.dumps(schema)
    for node in _walk(schema):
        if "properties" in node:
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
    assert list(schema["properties"]["probabilities"]["properties"]) == ["b0", "b1", "b2", "b3"]
    assert "purchase_probability" not in json.dumps(schema)
    assert set(schema["properties"]["segment"]["enum"]) == {"VIP", "충성", "일반", "이탈위험", "휴면"}
