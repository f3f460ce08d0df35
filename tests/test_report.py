"""The evaluation report writer: files, numbers that match the predictions, escaping,
atomic writing, honest headline wording and Korean figures that render."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from forecaster.datasets import Cleaning, Dataset
from forecaster.errors import UserError
from forecaster.evaluation import EvaluationSetup
from forecaster.report import checks as report_checks
from forecaster.report import core as report
from forecaster.report import plots
from forecaster.report import text as report_text
from forecaster.api.evaluation import Evaluation
from models import metrics
from forecaster.minimum_data import can_answer
from models.evaluate import (EvaluationResult, bootstrap_differences, bootstrap_differences_by_anchor,
                             score_predictions)
from structurer.schema import BucketScheme

ARMS = ["climatology", "forecaster", "xgb_base", "xgb_base+forecaster"]
ANCHORS = ["2023-10", "2023-11", "2023-12"]
NOT_RUN = {"llm": "LLM 엔드포인트가 설정되지 않아 LLM 비교군은 실행하지 않았습니다."}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _transactions(n_customers: int, rng: np.random.Generator) -> pd.DataFrame:
    n = 8 * n_customers
    days = pd.to_datetime("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return pd.DataFrame({"customer_id": [f"C{i:03d}" for i in rng.integers(0, n_customers, n)],
                         "ts": days.astype("datetime64[ns]"), "amount": rng.gamma(2.0, 15_000.0, n)})


def _predictions(customers: list[str], scheme: BucketScheme, rng: np.random.Generator) -> pd.DataFrame:
    """Every arm on the same (customer, anchor) rows; the augmented arm is a sharper copy of
    the base arm so the two are paired like real arms."""
    n, k = len(customers) * len(ANCHORS), scheme.n_buckets
    label = rng.choice(k, size=n, p=[0.7, 0.1, 0.1, 0.1])
    spend = np.where(label > 0, rng.gamma(2.0, 20_000.0, n), 0.0)
    truth = np.eye(k)[label]
    frames = []
    for j, arm in enumerate(ARMS):
        weight = 0.15 * j  # later arms lean more toward the truth
        probs = (1 - weight) * rng.dirichlet(np.ones(k), n) + weight * truth
        frame = pd.DataFrame({"customer_id": np.tile(customers, len(ANCHORS)),
                              "anchor": np.repeat(ANCHORS, len(customers)), "arm": arm, "label_bucket": label,
                              "actual_spend": spend, "one_time_buyer": np.arange(n) % 3 == 0})
        for b in range(k):
            frame[f"p_b{b}"] = probs[:, b]
        frame["purchase_prob"] = 1 - probs[:, 0]
        frame["expected_spend"] = probs @ np.array([0.0, 5_000.0, 30_000.0, 90_000.0])
        frame["threshold"] = 0.4
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def make_inputs(name: str = "테스트 상점", n_customers: int = 40) -> tuple[EvaluationSetup, EvaluationResult]:
    """A small but complete setup and result, scored by the real metric code."""
    rng = np.random.default_rng(7)
    scheme = BucketScheme(edges=(10_000.0, 50_000.0), currency="KRW", fitted_on="2023-01..2023-09")
    tx = _transactions(n_customers, rng)
    dataset = Dataset(name, tx, "KRW", Cleaning(rows_read=len(tx), duplicate_rows_dropped=3))
    customers = sorted(tx["customer_id"].unique())
    pred = _predictions(customers, scheme, rng)
    origins = {a: {"validation_anchor": str(pd.Period(a, freq="M") - 1), "training_anchors": ["2023-02", "2023-08"],
                   "n_train": 300, "n_val": len(customers), "n_test": len(customers),
                   "notes": {"xgb_base": "rounds=12/8", "forecaster": "failed=0"}} for a in ANCHORS}
    features = ["recency", "frequency", "monetary", "fc_p_b0", "fc_expected_spend"]
    importance = pd.DataFrame({"purchase_gain": rng.uniform(1, 100, 5), "bucket_gain": rng.uniform(1, 100, 5),
                               "mean_abs_shap": rng.uniform(0, 1, 5)}, index=features)
    result_metrics = {
        "origins": origins,
        "arms": score_predictions(pred, scheme),
        "differences": bootstrap_differences(pred, scheme, n_resamples=50, seed=0),
        "differences_by_anchor": bootstrap_differences_by_anchor(pred, scheme, n_resamples=50, seed=0),
        "data_sufficiency": can_answer(len(customers) * len(ANCHORS),
                                       int((pred["label_bucket"] > 0).sum()) // len(ARMS)),
        "learning_curve": [{"customers": 10, "rows": 90, "xgb_base": 0.09, "xgb_base+forecaster": None,
                            "xgb_base+forecaster_note": "no purchases"},
                           {"customers": 40, "rows": 300, "xgb_base": 0.07, "xgb_base+forecaster": 0.065}],
        "importance_model": "xgb_base+forecaster",
    }
    result = EvaluationResult(pred, result_metrics, importance)
    setup = EvaluationSetup(
        dataset=dataset, panel=dataset.panel, test_anchors=[pd.Period(a, freq="M") for a in ANCHORS],
        scheme=scheme, representative_spend=np.array([0.0, 5_000.0, 30_000.0, 90_000.0]), provider="empirical",
        model="empirical-shrinkage-v1", prompt_version="n/a (not an LLM)", seed=0, sample_customers=None,
        n_resamples=50, arms_not_run=dict(NOT_RUN))
    return setup, result


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[dict[str, Path], EvaluationResult]:
    setup, result = make_inputs()
    out = tmp_path_factory.mktemp("report") / "out"
    return report.write_report(out, setup, result), result


def _strict_json(path: Path) -> dict:
    def reject(constant: str):
        raise ValueError(f"{path.name} holds {constant}, which is not JSON")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


def test_every_output_is_written(written):
    paths, _ = written
    out = paths["metrics"].parent
    for key in ("metrics", "predictions", "report_md", "report_html", "plot_reliability", "plot_pr_curve",
                "plot_gains", "plot_confusion", "plot_importance", "plot_learning_curve", "plot_differences"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
        assert paths[key].is_relative_to(out)
    for key in (k for k in paths if k.startswith("plot_")):
        assert paths[key].read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in out.parent.iterdir()] == ["out"], "a temporary or backup folder was left behind"


def test_metrics_json_is_strict_and_holds_every_arm(written):
    paths, result = written
    data = _strict_json(paths["metrics"])
    for arm in ARMS:
        expected = result.metrics["arms"][arm]["pooled"]["rps"]
        assert data["arms"][arm]["pooled"]["rps"] == pytest.approx(expected, rel=1e-12)
    assert data["scheme"]["edges"] == [10_000.0, 50_000.0]
    assert data["arms_not_run"] == NOT_RUN
    assert data["headline"]["comparison"] == "xgb_base+forecaster - xgb_base"
    assert data["learning_curve"][0]["xgb_base+forecaster"] is None


def test_rps_and_log_loss_recomputed_from_the_parquet_match_the_json(written):
    paths, result = written
    data = _strict_json(paths["metrics"])
    pred = pd.read_parquet(paths["predictions"])
    pd.testing.assert_frame_equal(pred, result.predictions)
    prob_cols = [f"p_b{k}" for k in range(4)]
    for arm, group in pred.groupby("arm"):
        P, y = group[prob_cols].to_numpy(), group["label_bucket"].to_numpy()
        assert data["arms"][arm]["pooled"]["rps"] == pytest.approx(metrics.rps(P, y), rel=1e-12)
        assert data["arms"][arm]["pooled"]["log_loss"] == pytest.approx(metrics.log_loss(P, y), rel=1e-12)


def test_html_is_self_contained(written):
    paths, _ = written
    html = paths["report_html"].read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 7 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in html and "http://" not in html and "https://" not in html


def test_report_states_arms_not_run_and_rps_scaling(written):
    paths, _ = written
    for key in ("report_md", "report_html"):
        text = paths[key].read_text(encoding="utf-8")
        assert "실행하지 않은 비교군" in text
        assert NOT_RUN["llm"] in text
        assert "3으로 나눈 값" in text  # K = 4 buckets, RPS divided by K - 1
        assert "LLM이 아닙니다" in text  # the empirical forecaster is never passed off as an LLM
        assert "이(가)" not in text and "을(를)" not in text and "은(는)" not in text


def test_data_strings_are_escaped(tmp_path):
    setup, result = make_inputs(name="<script>alert('x')</script>|*shop*")
    setup.arms_not_run["oracle"] = "<img src=x onerror=alert(1)>"
    paths = report.write_report(tmp_path / "out", setup, result)
    html = paths["report_html"].read_text(encoding="utf-8")
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    md = paths["report_md"].read_text(encoding="utf-8")
    assert re.search(r"(?<!\\)<", md) is None, "an unescaped < in the Markdown"
    assert r"\<script\>alert('x')\</script\>\|\*shop\*" in md


def test_a_failed_write_leaves_the_old_report_untouched(tmp_path, monkeypatch):
    setup, result = make_inputs()
    out = tmp_path / "out"
    out.mkdir()
    for name in ("metrics.json", "report.md"):
        (out / name).write_text("previous report")

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "gains_chart", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        Evaluation(setup, result).write_report(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md"]
    assert (out / "report.md").read_text() == "previous report"
    with pytest.raises(RuntimeError):
        Evaluation(setup, result).write_report(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_path_that_is_a_file_is_a_user_error(tmp_path):
    setup, result = make_inputs()
    target = tmp_path / "report.txt"
    target.write_text("not a folder")
    with pytest.raises(UserError, match="report.txt"):
        Evaluation(setup, result).write_report(target)
    assert target.read_text() == "not a folder"


def test_a_folder_of_other_files_is_never_replaced(tmp_path):
    setup, result = make_inputs()
    (tmp_path / "notes.txt").write_text("the user's own file")
    with pytest.raises(UserError, match="notes.txt and is not an earlier forecaster report"):
        Evaluation(setup, result).write_report(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_earlier_report_is_replaced(written, tmp_path):
    paths, result = written
    out = tmp_path / "out"
    shutil.copytree(paths["metrics"].parent, out)
    setup, _ = make_inputs(name="두 번째 실행")
    again = Evaluation(setup, result).write_report(out)
    assert "두 번째 실행" in again["report_md"].read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _headline_data(lo: float, hi: float, diff: float, can: bool = True) -> dict:
    d = {"diff": diff, "lo": lo, "hi": hi, "n_resamples": 1000, "n_valid": 1000, "a": 0.0600, "b": 0.0600 + diff,
         "se": (hi - lo) / 3.92, "mde": 2.8 * (hi - lo) / 3.92}
    sufficiency = can_answer(5000 if can else 15, 400 if can else 2)
    return {"headline": {"verdict": report_checks.judged("rps", d, can), "difference": d,
                         "relative_change": diff / 0.06},
            "dataset": {"currency": "USD"}, "data_sufficiency": sufficiency}


def test_headline_claims_improvement_only_when_the_interval_excludes_zero():
    both_sides = report_text.headline_sentences(_headline_data(-0.0004, 0.00022, -0.0001))[0]
    assert "근거는 없습니다" in both_sides and "개선했다는 근거가 있습니다" not in both_sides
    below = report_text.headline_sentences(_headline_data(-0.0009, -0.00023, -0.0005))[0]
    assert "개선했다는 근거가 있습니다" in below and "0.00050 낮았습니다" in below
    above = report_text.headline_sentences(_headline_data(0.0002, 0.0009, 0.0005))[0]
    assert "나빠졌다" in above and "0.00050 높았습니다" in above
    # real minus signs, a spaced tilde, and the particle read from the last digit: 이 -> 로, 삼 -> 으로
    assert "\u22120.00040 ~ +0.00022로 0을 포함" in both_sides
    assert "\u22120.00090 ~ \u22120.00023으로 전체가" in below


def test_below_the_minimum_test_rows_the_headline_draws_no_conclusion():
    lines = report_text.headline_sentences(_headline_data(-0.0009, -0.00023, -0.0005, can=False))
    text = " ".join(lines)
    assert "답할 수 없으므로" in text and "평가 행이 15개(구매한 행 2개)" in text
    for conclusion in ("근거가 있습니다", "근거는 없습니다", "나빠졌다", "개선했다"):
        assert conclusion not in text
    assert "\u22120.00090 ~ \u22120.00023" in text  # the interval is still shown


def test_verdict_direction_follows_the_metric():
    assert report_checks.verdict("pr_auc", {"lo": 0.01, "hi": 0.03}) == "improved"
    assert report_checks.verdict("rps", {"lo": 0.01, "hi": 0.03}) == "worse"
    assert report_checks.verdict("rps", {"lo": -0.01, "hi": 0.0}) == "no_evidence"
    assert report_checks.verdict("rps", {"lo": None, "hi": None}) == "undefined"
    assert report_checks.judged("rps", {"lo": 0.01, "hi": 0.03}, answerable=False) == "cannot_answer"


def test_korean_font_comes_from_the_package_and_has_hangul():
    family = plots.use_korean_font()
    path = font_manager.findfont(family, fallback_to_default=False)
    assert Path(path) == plots.korean_font_path()
    font = FT2Font(path)
    assert all(font.get_char_index(ord(ch)) for ch in "구매확률신뢰도")


def test_cumulative_gains_of_a_constant_score_is_the_diagonal():
    x, y = plots.cumulative_gains(np.full(1000, 0.3), np.arange(1000) % 7 == 0)
    assert np.allclose(np.interp([0.25, 0.5, 0.9], x, y), [0.25, 0.5, 0.9])


LEDGER = {"model": "gpt-4o-mini", "customers": 120, "ok": 118, "failed": 2, "calls": 131, "cache_hits": 0,
          "reasks": 9, "transport_retries": 2, "tokens_in": 98_765, "tokens_out": 12_345, "cached_tokens_in": 0,
          "cached_tokens_out": 0, "cost_usd": 0.0222, "cost_note": "", "latency_p50_s": 1.25,
          "latency_p95_s": 3.5, "failures_by_reason": {"schema": 2}}


def test_an_llm_run_shows_its_usage_ledger():
    setup, result = make_inputs()
    setup = dataclasses.replace(setup, provider="llm", model="gpt-4o-mini", prompt_version="narrative-v3",
                                arms_not_run={})
    data = report.build_report_data(setup, result, LEDGER)
    docs = report.render_documents(data, {})
    md = docs["report_md"]
    assert "| API 호출 | 131 |" in md and "| 입력 토큰 | 98,765 |" in md and "| 실패 사유: schema | 2 |" in md
    assert "narrative-v3" in md and "LLM이 아닙니다" not in md
    assert "모든 비교군을 실행했습니다" in md
    assert data["forecaster"]["ledger"]["tokens_in"] == 98_765  # the table's figures are in metrics.json too


def test_without_the_augmented_arm_the_headline_says_so():
    setup, result = make_inputs()
    result.metrics["differences"] = {}
    result.metrics["differences_by_anchor"] = {}
    docs = report.render_documents(report.build_report_data(setup, result), {})
    assert "실행되지 않아 예측기 특성의 효과는 평가하지 않았습니다" in docs["report_md"]
