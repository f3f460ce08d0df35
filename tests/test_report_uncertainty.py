"""The report answers with its uncertainty: per-month differences and their intervals, the
minimum detectable difference, the warnings, "cannot answer" below the minimum test data,
the interval format and Korean feature names in the figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.ft2font import FT2Font

from clitools import run_cli
from forecaster.minimum_data import MIN_TEST_POSITIVES, MIN_TEST_ROWS, can_answer
from forecaster.labels import feature_label
from forecaster.pipeline import BTYD_COLUMNS
from forecaster.report import checks as report_checks
from forecaster.report import core as report
from forecaster.report import format as report_format
from forecaster.report import plots
from models import bootstrap as bs
from models import metrics
from models.evaluate import EvaluationResult, bootstrap_differences, bootstrap_differences_by_anchor, score_predictions
from models.features import baseline_feature_names
from structurer.features import forecast_feature_names
from test_report import ANCHORS, make_inputs

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

MINUS = "\u2212"
COMPARISON = "xgb_base+forecaster - xgb_base"
CONCLUSIONS = ("근거가 있습니다", "근거는 없습니다", "나빠졌다고", "개선 (신뢰구간", "악화 (신뢰구간", "차이의 근거 없음")


def _probabilities(label: np.ndarray, k: int, sharpness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Forecasts that lean toward the truth by ``sharpness`` (0 = pure noise) per row."""
    return (1 - sharpness)[:, None] * rng.dirichlet(np.ones(k) * 3, len(label)) + sharpness[:, None] * np.eye(k)[label]


def crafted(rates: list[float], gains: list[float], n_customers: int = 400, n_resamples: int = 200,
            seed: int = 3) -> tuple:
    """A setup and result whose test month j has purchase rate ``rates[j]`` and where the
    augmented arm is sharper than the baseline by ``gains[j]`` in that month only."""
    setup, _ = make_inputs(n_customers=10)
    rng = np.random.default_rng(seed)
    scheme, k = setup.scheme, setup.scheme.n_buckets
    customers = [f"C{i:04d}" for i in range(n_customers)]
    anchor = np.repeat(ANCHORS, n_customers)
    bought = rng.random(len(anchor)) < np.repeat(rates, n_customers)
    label = np.where(bought, rng.integers(1, k, len(anchor)), 0)
    base_sharp = np.full(len(anchor), 0.3)
    noise_seed = rng.integers(1 << 30)
    frames = []
    for arm, sharp in (("xgb_base", base_sharp), ("xgb_base+forecaster", base_sharp + np.repeat(gains, n_customers))):
        probs = _probabilities(label, k, sharp, np.random.default_rng(noise_seed))  # same noise: paired arms
        frame = pd.DataFrame({"customer_id": np.tile(customers, len(ANCHORS)), "anchor": anchor, "arm": arm,
                              "label_bucket": label, "actual_spend": np.where(label > 0, 20_000.0, 0.0),
                              "one_time_buyer": np.arange(len(anchor)) % 3 == 0})
        for b in range(k):
            frame[f"p_b{b}"] = probs[:, b]
        frame["purchase_prob"] = 1 - probs[:, 0]
        frame["expected_spend"] = probs @ setup.representative_spend
        frame["threshold"] = 0.4
        frames.append(frame)
    pred = pd.concat(frames, ignore_index=True)
    result_metrics = {
        "origins": {a: {"validation_anchor": "2023-09", "training_anchors": ["2023-02", "2023-08"], "n_train": 900,
                        "n_val": n_customers, "n_test": n_customers, "notes": {}} for a in ANCHORS},
        "arms": score_predictions(pred, scheme),
        "differences": bootstrap_differences(pred, scheme, n_resamples, 0),
        "differences_by_anchor": bootstrap_differences_by_anchor(pred, scheme, n_resamples, 0),
        "data_sufficiency": can_answer(int(len(anchor)), int(bought.sum())),
        "learning_curve": [], "importance_model": "xgb_base+forecaster",
    }
    importance = pd.DataFrame({"purchase_gain": [1.0], "bucket_gain": [1.0], "mean_abs_shap": [0.1]}, index=["recency"])
    return setup, EvaluationResult(pred, result_metrics, importance)


def _codes(ids: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, codes = np.unique(ids, return_inverse=True)
    return codes, len(uniques)


def _hand_bootstrap(base_rows: np.ndarray, aug_rows: np.ndarray, ids: np.ndarray, n_resamples: int,
                    seed: int) -> np.ndarray:
    """The customer bootstrap written out: each resample weights every row by how often its
    customer was drawn, and the difference is the weighted mean of the per-row differences."""
    codes, n_groups = _codes(ids)
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_resamples, bs.RESAMPLE_CHUNK):
        for drawn in bs._draw_counts(rng, n_groups, min(bs.RESAMPLE_CHUNK, n_resamples - start)):
            w = drawn[codes]
            out.append((w * (aug_rows - base_rows)).sum() / w.sum())
    return np.array(out)


# -- per-month differences -----------------------------------------------------------------


def test_per_month_differences_and_intervals_equal_a_hand_computation():
    setup, result = make_inputs()
    data = report.build_report_data(setup, result)
    pred, cols = result.predictions, [f"p_b{k}" for k in range(4)]
    total = 0.0
    for anchor in ANCHORS:
        rows = pred[pred["anchor"] == anchor].sort_values("customer_id")
        base, aug = rows[rows["arm"] == "xgb_base"], rows[rows["arm"] == "xgb_base+forecaster"]
        rps_base = metrics.rps_rows(base[cols].to_numpy(), base["label_bucket"].to_numpy())
        rps_aug = metrics.rps_rows(aug[cols].to_numpy(), aug["label_bucket"].to_numpy())
        replicates = _hand_bootstrap(rps_base, rps_aug, base["customer_id"].to_numpy(), 50, seed=0)
        got = data["differences_by_anchor"][COMPARISON][anchor]["rps"]
        assert got["diff"] == pytest.approx(rps_aug.mean() - rps_base.mean(), abs=1e-15)
        assert [got["lo"], got["hi"]] == pytest.approx(np.percentile(replicates, [2.5, 97.5]), abs=1e-15)
        assert got["se"] == pytest.approx(replicates.std(ddof=1), rel=1e-12)
        total += len(base) * got["diff"]
        # the report's table shows that month's interval, with real minus signs and a spaced tilde
        text = " ~ ".join(("+" if v > 0 else MINUS) + f"{abs(v):.5f}" for v in (got["lo"], got["hi"]))
        md = report.render_documents(data, {})["report_md"]
        row = f"| RPS | {report_format.month(anchor)} | "
        assert any(row in line and text in line for line in md.splitlines()), (row, text)
    # the pooled difference of a mean over rows is the row-weighted sum of the monthly ones
    pooled = data["differences"][COMPARISON]["rps"]["diff"]
    assert pooled == pytest.approx(total / len(pred[pred["arm"] == "xgb_base"]), rel=1e-12)


def test_minimum_detectable_difference_is_2_8_standard_errors():
    assert bs.minimum_detectable_difference(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-6)
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 300, 900)
    a, b = rng.normal(0, 1, 900), rng.normal(0.1, 1, 900)
    out = bs.paired_bootstrap(bs.MAE, (a, np.zeros(900)), (b, np.zeros(900)), ids, n_resamples=300, seed=4)
    hand = _hand_bootstrap(np.abs(a), np.abs(b), ids, 300, seed=4)
    assert out["se"] == pytest.approx(hand.std(ddof=1), rel=1e-12)
    assert out["mde"] == pytest.approx(out["se"] * (1.959964 + 0.841621), rel=1e-6)


def test_the_shared_draws_give_the_same_intervals_as_one_call_per_metric():
    setup, result = make_inputs()
    pred = result.predictions
    base = pred[pred["arm"] == "xgb_base"].sort_values(["anchor", "customer_id"])
    aug = pred[pred["arm"] == "xgb_base+forecaster"].sort_values(["anchor", "customer_id"])
    cols = [f"p_b{k}" for k in range(4)]
    y, ids = base["label_bucket"].to_numpy(), base["customer_id"].to_numpy()
    one = bs.paired_bootstrap(bs.LOG_LOSS, (base[cols].to_numpy(), y), (aug[cols].to_numpy(), y), ids, 50, 0)
    pr = bs.paired_bootstrap(bs.PR_AUC, (base["purchase_prob"].to_numpy(), y > 0),
                             (aug["purchase_prob"].to_numpy(), y > 0), ids, 50, 0)
    both = result.metrics["differences"][COMPARISON]
    assert both["log_loss"] == pytest.approx(one, rel=1e-12)
    assert both["pr_auc"] == pytest.approx(pr, rel=1e-12)


# -- warnings ------------------------------------------------------------------------------


def _rates_data(rates: list[float], n: int) -> dict:
    by_anchor = {a: {"n": n, "base_rate": r} for a, r in zip(ANCHORS, rates)}
    return {"base_rate": {"by_anchor": dict(zip(ANCHORS, rates))}, "arm_order": ["xgb_base"],
            "arms": {"xgb_base": {"by_anchor": by_anchor}}}


def test_base_rate_warning_fires_on_a_cut_short_month_only():
    partial = report_checks.base_rate_warnings(_rates_data([0.83, 0.83, 0.03], 2_000))
    assert [w["anchor"] for w in partial] == ["2023-12"]
    assert "기본 구매율 3.0%는" in partial[0]["message"] and "중앙값 83.0%" in partial[0]["message"]
    # CDNOW's test months (1998-04..06): 6.1%, 6.3%, 6.4% of 23,502 rows each
    assert report_checks.base_rate_warnings(_rates_data([0.0611, 0.0633, 0.0641], 23_502)) == []
    # a handful of rows moves a rate by 2x by chance: no warning from 1 buyer of 5 against 3 of 5
    assert report_checks.base_rate_warnings(_rates_data([0.6, 0.2, 0.6], 5)) == []


def test_base_rate_warning_reaches_the_report_and_metrics_json(tmp_path):
    setup, result = crafted(rates=[0.4, 0.4, 0.05], gains=[0.0, 0.0, 0.0])
    paths = report.write_report(tmp_path / "out", setup, result)
    data = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    assert [(w["code"], w["anchor"]) for w in data["warnings"]] == [("base_rate_outlier", "2023-12")]
    md = paths["report_md"].read_text(encoding="utf-8")
    summary = md[: md.index("## 데이터")]
    assert "> **경고:** 2023년 12월의 기본 구매율" in summary


def test_one_month_driving_the_pooled_result_is_flagged():
    setup, result = crafted(rates=[0.3, 0.3, 0.3], gains=[0.0, 0.0, 0.5])
    data = report.build_report_data(setup, result)
    assert data["headline"]["verdict"] == "improved"
    drives = [w for w in data["warnings"] if w["code"] == "one_month_drives"]
    assert [w["anchor"] for w in drives] == ["2023-12"] and drives[0]["share"] > 0.99
    assert "2023년 12월 한 달에서" in report.render_documents(data, {})["report_md"]


def test_an_effect_spread_over_the_months_is_not_flagged():
    setup, result = crafted(rates=[0.3, 0.3, 0.3], gains=[0.3, 0.3, 0.3])
    data = report.build_report_data(setup, result)
    assert data["headline"]["verdict"] == "improved"
    assert data["warnings"] == []
    shares = [d["rps"]["diff"] for d in data["differences_by_anchor"][COMPARISON].values()]
    assert max(shares) / sum(shares) < report_checks.DRIVER_SHARE


def test_no_one_month_warning_without_a_pooled_result():
    setup, result = crafted(rates=[0.3, 0.3, 0.3], gains=[0.0, 0.0, 0.0])
    data = report.build_report_data(setup, result)
    assert data["headline"]["verdict"] == "no_evidence"
    assert report_checks.driver_warnings(data) == []


# -- cannot answer -------------------------------------------------------------------------


def test_five_customers_cannot_answer_and_no_conclusion_is_drawn():
    setup, result = make_inputs(n_customers=5)
    result.metrics["data_sufficiency"] = can_answer(15, 4)
    data = report.build_report_data(setup, result)
    assert data["headline"]["verdict"] == "cannot_answer"
    assert data["warnings"][0]["code"] == "cannot_answer"
    md = report.render_documents(data, {})["report_md"]
    assert f"최소 기준(평가 행 {MIN_TEST_ROWS}개, 구매한 행 {MIN_TEST_POSITIVES}개)에 못 미칩니다" in md
    assert "답할 수 없으므로" in md
    for conclusion in CONCLUSIONS:
        assert conclusion not in md, conclusion
    assert "판단하지 않음" in md and "95% 신뢰구간" in md  # the intervals are still shown


def test_an_interval_without_variation_is_said_in_words():
    setup, result = make_inputs(n_customers=5)
    pred = result.predictions
    base = pred[pred["arm"] == "xgb_base"]
    same = base.assign(arm="xgb_base+forecaster")
    pred = pd.concat([pred[pred["arm"] != "xgb_base+forecaster"], same], ignore_index=True)
    result.metrics["differences"] = bootstrap_differences(pred, setup.scheme, 50, 0)
    result.metrics["differences_by_anchor"] = bootstrap_differences_by_anchor(pred, setup.scheme, 50, 0)
    result.metrics["data_sufficiency"] = can_answer(15, 4)
    md = report.render_documents(report.build_report_data(setup, result), {})["report_md"]
    assert "+0.00000" not in md and "0.00000 ~ 0.00000" not in md
    assert "폭 0, 모든 재표본에서 0.00000" in md and "신뢰구간의 폭이 0입니다" in md


def test_a_five_customer_run_says_the_data_cannot_answer(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(3)
    rows = [(f"C{c}", f"2023-{m:02d}-{rng.integers(1, 28):02d}", float(rng.integers(5, 200) * 100))
            for c in range(5) for m in range(1, 13) for _ in range(rng.integers(1, 3))]
    csv = tmp_path / "five.csv"
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(csv, index=False)
    code, _, err = run_cli(["evaluate", "--data", str(csv), "--bootstrap", "100", "--out", str(tmp_path / "rep")],
                           monkeypatch, capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "rep" / "metrics.json").read_text(encoding="utf-8"))
    assert data["data_sufficiency"]["can_answer"] is False and data["headline"]["verdict"] == "cannot_answer"
    md = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    headline = md[md.index("## 요약"): md.index("## 데이터")]
    assert "평가 행이 15개" in headline and "답할 수 없으므로" in headline
    for conclusion in CONCLUSIONS:
        assert conclusion not in md, conclusion


# -- formatting ----------------------------------------------------------------------------


def test_interval_format_uses_a_real_minus_and_a_spaced_tilde():
    assert report_format.interval("rps", {"lo": -0.00377, "hi": -0.00298}) == f"{MINUS}0.00377 ~ {MINUS}0.00298"
    assert report_format.interval("rps", {"lo": -0.00009, "hi": 0.00003}) == f"{MINUS}0.00009 ~ +0.00003"
    assert report_format.interval("spend_mae", {"lo": -77.2, "hi": 372.6}, "KRW") == f"{MINUS}77 ~ +373"
    # width 0: said in words, never "+0.00000 ~ +0.00000"
    assert report_format.interval("rps", {"lo": 0.0, "hi": 0.0}) == "폭 0, 모든 재표본에서 0.00000"
    # ends that would print alike get more decimals
    assert report_format.interval("rps", {"lo": 0.0000112, "hi": 0.0000141}) == "+0.000011 ~ +0.000014"
    assert report_format.interval("rps", {"lo": None, "hi": 0.1}) == "—"


def test_numbers_carry_a_real_minus_and_zero_has_no_sign():
    assert report_format.signed(-0.0012) == f"{MINUS}0.0012" and report_format.signed(0.0012) == "+0.0012"
    assert report_format.signed(-0.000001, 5) == "0.00000" and report_format.signed(0.0, 5) == "0.00000"
    assert report_format.number(-0.017, 3) == f"{MINUS}0.017"
    assert report_format.signed_percent(-0.001) == f"{MINUS}0.1%" and report_format.percent(0.063) == "6.3%"
    assert report.markdown_escape(f"{MINUS}0.1 ~ +0.2, a~b") == f"{MINUS}0.1 ~ +0.2, a\\~b"


# -- Korean feature names ------------------------------------------------------------------


def test_every_feature_column_has_a_korean_name_that_the_font_can_draw():
    setup, _ = make_inputs()
    buckets = dict(zip(setup.scheme.ids, setup.scheme.labels))
    columns = (baseline_feature_names() + BTYD_COLUMNS + forecast_feature_names(setup.scheme)
               + forecast_feature_names(setup.scheme, prefix="emp_"))
    labels = {c: feature_label(c, buckets) for c in columns}
    assert all(label != column for column, label in labels.items())
    assert labels["fc_p_b1"] == "예측기의 '1만 원 미만' 확률"
    assert labels["emp_expected_spend"] == "경험적 예측기의 기대 지출액"
    assert feature_label("unknown_column", buckets) == "unknown_column"
    font = FT2Font(str(plots.korean_font_path()))
    missing = {ch for label in labels.values() for ch in label if not ch.isspace() and not font.get_char_index(ord(ch))}
    assert not missing


def test_the_importance_figure_is_drawn_with_korean_feature_names(monkeypatch):
    setup, result = make_inputs()
    data = report.build_report_data(setup, result)
    seen = {}
    real = plots.importance_chart

    def spy(top, model_label):
        seen["labels"] = list(top.index)
        return real(top, model_label)

    monkeypatch.setattr(plots, "importance_chart", spy)
    images = report.render_plots(data, result.predictions)
    assert images["importance"].startswith(b"\x89PNG")
    expected = {feature_label(f["feature"], dict(zip(setup.scheme.ids, setup.scheme.labels)))
                for f in data["importance"]["features"]}
    assert set(seen["labels"]) == expected and "마지막 구매 후 지난 개월 수" in seen["labels"]
