"""Short or tiny data: every verb ends with a valid result or one line naming the minimum
(forecaster/minimum_data.py, docs/minimum-data.md), and an evaluation below the minimum test
rows/positives says the data cannot answer the question."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli

from forecaster import evaluation, minimum_data, pipeline
from forecaster.datasets import load_dataset

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DOCS = Path(__file__).resolve().parent.parent / "docs" / "minimum-data.md"


def _shop(path: Path, months: int, customers: int = 40, seed: int = 0, buy: float = 0.5) -> Path:
    """A CSV of ``customers`` who all first buy in month 1 and then each month with chance
    ``buy``; the first month starts on the 1st and the last ends on its last day, so neither
    looks like a partial month."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range("2024-01", periods=months, freq="M")
    rows = []
    for c in range(customers):
        for j, month in enumerate(periods):
            if j == 0 or rng.random() < buy:
                day = month.start_time if j == 0 else (month.end_time.normalize() if j == months - 1
                                                       else month.start_time + pd.Timedelta(days=14))
                rows.append((f"C{c:03d}", day.strftime("%Y-%m-%d"), float(rng.integers(5, 90) * 1000)))
    pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).to_csv(path, index=False)
    return path


def _one_line(code: int, out: str, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert lines[-1].startswith("오류: ") and sum(line.startswith("오류: ") for line in lines) == 1, err
    return lines[-1]


@pytest.mark.parametrize("months, verb, needle", [
    (1, "train", "train needs at least 4 complete months of data (it has 1)"),
    (2, "train", "train needs at least 4 complete months of data (it has 2)"),
    (3, "train", "train needs at least 4 complete months of data (it has 3)"),
    (1, "evaluate", "evaluate needs at least 5 complete months of data (it has 1)"),
    (4, "evaluate", "evaluate needs at least 5 complete months of data (it has 4)"),
    (2, "explain", "explain without --model (its default model) needs at least 4 complete months"),
])
def test_too_few_months_is_one_line_naming_the_minimum(months, verb, needle, tmp_path, monkeypatch, capsys):
    data = str(_shop(tmp_path / "shop.csv", months))
    args = {"train": ["train", "--data", data, "--out", str(tmp_path / "model")],
            "evaluate": ["evaluate", "--data", data, "--out", str(tmp_path / "report")],
            "explain": ["explain", "C001", "--anchor", "2024-02", "--data", data]}[verb]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    line = _one_line(*run_cli(args, monkeypatch, capsys))
    assert needle in line and "use data covering more months" in line
    assert not (tmp_path / "model").exists() and not (tmp_path / "report").exists()


def test_one_month_still_has_a_summary_and_a_narrative(tmp_path, monkeypatch, capsys):
    data = str(_shop(tmp_path / "shop.csv", 1, customers=1))
    code, out, err = run_cli(["data", "--data", data], monkeypatch, capsys)
    assert code == 0 and "1명" in out, err
    code, out, err = run_cli(["narrate", "C000", "--anchor", "2024-02", "--data", data], monkeypatch, capsys)
    assert code == 0 and "예측 대상: 2024년 2월" in out, err


@pytest.mark.parametrize("verb, months, needle", [
    ("train", 5, "train: none of the 40 customers bought in 2024-05, the validation month"),
    ("evaluate", 6, "evaluate (test month 2024-06): none of the 40 customers bought in 2024-05, the validation month"),
])
def test_no_buyer_in_a_validation_month_is_one_line(verb, months, needle, tmp_path, monkeypatch, capsys):
    path = _shop(tmp_path / "shop.csv", months)
    tx = pd.read_csv(path)
    # nobody buys in May; one return on its last day keeps the month from looking cut short
    tx = tx[~tx["ts"].str.startswith("2024-05")]
    tx = pd.concat([tx, pd.DataFrame([("C000", "2024-05-31", -1000.0)], columns=tx.columns)])
    tx.to_csv(path, index=False)
    line = _one_line(*run_cli([verb, "--data", str(path), "--out", str(tmp_path / "out")], monkeypatch, capsys))
    assert needle in line
    assert not (tmp_path / "out").exists()


def test_short_data_shrinks_the_default_test_months_and_says_so(tmp_path):
    panel = load_dataset(str(_shop(tmp_path / "shop.csv", 6))).panel
    anchors, note = evaluation.parse_test_anchors(None, panel)
    assert [str(a) for a in anchors] == ["2024-05", "2024-06"]  # 2024-02..04: fit, fit, validate
    assert note == ("참고: 데이터가 6개월뿐이라 평가 월을 기본 3개 대신 2개(2024-05~2024-06)로 줄였습니다. "
                    "그 앞의 3개월은 학습·검증에 씁니다.")
    anchors, note = evaluation.parse_test_anchors(None, load_dataset(str(_shop(tmp_path / "long.csv", 8))).panel)
    assert len(anchors) == evaluation.DEFAULT_TEST_MONTHS and note is None


def test_explicit_test_months_too_early_name_the_first_possible_one(tmp_path, monkeypatch, capsys):
    data = str(_shop(tmp_path / "shop.csv", 6))
    line = _one_line(*run_cli(["evaluate", "--data", data, "--out", str(tmp_path / "r"),
                               "--test-anchors", "2024-03..2024-06"], monkeypatch, capsys))
    assert "leave at least 3 earlier months" in line and "first possible test anchor: 2024-05" in line


@pytest.mark.parametrize("rows, positives, enough", [
    (199, 100, False), (200, 29, False), (200, 30, True), (70_506, 4_400, True), (15, 0, False)])
def test_minimum_test_rows_and_positives_both_sides(rows, positives, enough):
    fact = minimum_data.can_answer(rows, positives)
    assert fact["can_answer"] is enough
    assert (fact["reason"] is None) is enough
    if not enough:
        assert f"{rows:,}개" in fact["reason"] and "답할 수 없습니다" in fact["reason"]


def _sufficiency(data: str) -> dict:
    """The evaluation's own fact (the report's wording of it is tested with the report)."""
    setup = evaluation.prepare(load_dataset(data), None, None, seed=0, n_resamples=100)
    result = evaluation.run(setup, pipeline.empirical_forecast_fn(setup.scheme))
    return result.metrics["data_sufficiency"]


def test_five_customers_cannot_answer_and_the_run_says_so(tmp_path, monkeypatch, capsys):
    data = str(_shop(tmp_path / "shop.csv", 6, customers=5, buy=0.9))
    fact = _sufficiency(data)
    assert fact["can_answer"] is False and fact["test_rows"] == 5 * 2
    assert fact["min_test_rows"] == minimum_data.MIN_TEST_ROWS and fact["min_test_positives"] == minimum_data.MIN_TEST_POSITIVES
    code, _, err = run_cli(["evaluate", "--data", data, "--out", str(tmp_path / "report"), "--bootstrap", "100"],
                           monkeypatch, capsys)
    assert code == 0, err
    assert "평가 월을 기본 3개 대신 2개" in err and "경고: 평가 행이 10개" in err


def test_enough_test_rows_can_answer():
    fact = _sufficiency("synthetic:300")
    assert fact["can_answer"] is True and fact["reason"] is None
    assert fact["test_rows"] >= minimum_data.MIN_TEST_ROWS and fact["test_positives"] >= minimum_data.MIN_TEST_POSITIVES


def test_the_documented_minimums_are_the_constants():
    text = DOCS.read_text(encoding="utf-8")
    for name in ("MIN_TRAIN_MONTHS", "MIN_EVALUATE_MONTHS", "MIN_TEST_ROWS", "MIN_TEST_POSITIVES"):
        match = re.search(rf"`{name}` = ([\d,]+)", text)
        assert match, name
        assert int(match.group(1).replace(",", "")) == getattr(minimum_data, name)


def test_equal_spends_merge_the_bucket_edges():
    """Too few distinct amounts for terciles: the coinciding edges merge into fewer buckets."""
    from forecaster import artifact
    from narrator.panel import build_panel

    rows = [(f"C{c}", f"2024-0{m}-15", 10_000.0) for c in range(30) for m in range(1, 6) if m == 1 or (c + m) % 2]
    tx = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    tx["ts"] = pd.to_datetime(tx["ts"])
    scheme = artifact.training_scheme(build_panel(tx, "KRW"))
    assert scheme.edges == (10_000.0,) and scheme.n_buckets == 3
    assert scheme.labels == ["구매 없음", "1만 원 미만", "1만 원 이상"]
