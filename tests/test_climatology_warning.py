"""The report says so when an arm scores worse than climatology: one Korean sentence per
such arm with the likely cause of its kind, none for an arm that beats it or for a
synthetic-data bound, and the sentence reaches the written report."""

from __future__ import annotations

import pandas as pd
import pytest

from forecaster.report import checks
from forecaster.report import core as report
from models.evaluate import score_predictions
from test_report import make_inputs

CLIMATOLOGY_RPS = 0.1805


def _data(rps: dict[str, float], base_rate: float = 0.83, n_train: int = 300_000) -> dict:
    """The report data the check reads: pooled scores, arm order, base rate, origins."""
    arms = {"climatology": CLIMATOLOGY_RPS, **rps}
    return {
        "arm_order": list(arms),
        "arms": {a: {"pooled": {"rps": r, "rps_skill": 1 - r / CLIMATOLOGY_RPS}} for a, r in arms.items()},
        "base_rate": {"pooled": base_rate},
        "split": {"origins": [{"n_train": n_train}, {"n_train": n_train + 900}]},
    }


def test_btyd_worse_on_frequent_shoppers_names_the_cause_in_one_sentence():
    (warning,) = checks.climatology_warnings(_data({"btyd": 0.1998, "xgb_base": 0.1500}))
    assert warning["code"] == "worse_than_climatology" and warning["arm"] == "btyd"
    assert warning["message"] == (
        "BTYD 모형 (btyd)의 평가 월 전체 RPS가 0.1998로 훈련 기간 구간 빈도 (climatology)의 0.1805보다 나쁜데"
        "(RPS 기술 점수 \u22120.107), 평가 월 행의 83.0%에 구매가 있을 만큼 자주 사는 고객이 많아, 구매가 드문 "
        "고객을 가정하는 BTYD 모형이 맞지 않았기 때문일 수 있습니다.")
    assert warning["message"].count(". ") == 0  # one sentence


def test_btyd_worse_on_rare_buyers_blames_too_few_repeat_purchases():
    (warning,) = checks.climatology_warnings(_data({"btyd": 0.1900}, base_rate=0.06))
    assert "반복 구매가 적어" in warning["message"] and "자주 사는" not in warning["message"]


@pytest.mark.parametrize("n_train, cause", [(300, "훈련 행이 가장 적은 평가 월에 300개뿐이라"),
                                            (300_000, "구매 양상이 달라졌기")])
def test_xgboost_worse_blames_too_little_training_data_only_when_there_is_little(n_train, cause):
    (warning,) = checks.climatology_warnings(_data({"xgb_base": 0.1810}, n_train=n_train))
    assert warning["arm"] == "xgb_base" and cause in warning["message"]
    assert "XGBoost 기본 (xgb_base)의 평가 월 전체 RPS가 0.1810으로" in warning["message"]


def test_no_warning_for_arms_that_beat_or_tie_climatology_nor_for_the_bounds():
    data = _data({"persistence": CLIMATOLOGY_RPS, "btyd": 0.1700, "xgb_base": 0.1500, "oracle": 0.1900})
    assert checks.climatology_warnings(data) == []
    data["arms"]["persistence"]["pooled"]["rps"] = 0.1806  # the rule does fire, just above climatology
    assert [w["arm"] for w in checks.climatology_warnings(data)] == ["persistence"]


def test_the_warning_reaches_the_written_report():
    setup, result = make_inputs()
    pred = result.predictions
    # a btyd arm, on the same rows, that always forecasts the top bucket (70% of rows buy nothing)
    worse = pred[pred["arm"] == "climatology"].assign(arm="btyd", purchase_prob=1.0)
    prob_cols = [f"p_{b}" for b in setup.scheme.ids]
    worse[prob_cols] = 0.0
    worse[prob_cols[-1]] = 1.0
    result.predictions = pd.concat([pred, worse], ignore_index=True)
    result.metrics["arms"] = score_predictions(result.predictions, setup.scheme)
    assert result.metrics["arms"]["btyd"]["pooled"]["rps"] > result.metrics["arms"]["climatology"]["pooled"]["rps"]

    data = report.build_report_data(setup, result)
    codes = [(w["code"], w.get("arm")) for w in data["warnings"]]
    assert ("worse_than_climatology", "btyd") in codes
    message = next(w["message"] for w in data["warnings"] if w.get("arm") == "btyd")
    assert f"> **경고:** {message}" in report.render_documents(data, {})["report_md"]
