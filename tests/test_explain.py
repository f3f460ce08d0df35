"""``forecaster explain``: the contributions add up to the model's margin, the figures are
the ones `forecaster batch` and the training rows give, golden Korean texts for three CDNOW
customers, a synthetic customer pair with known latent rates, the cached default model, the
LLM path against the loopback server, and one-line errors through ``forecaster.cli.main``.

One CDNOW artifact is trained per module (a seeded 3,000-customer sample that holds the
golden customers); the synthetic check trains a 400-customer one and the cache check a
default model on synthetic:300. Regenerate the golden texts after an intended change with
``UPDATE_GOLDEN=1 pytest tests/test_explain.py``, then read them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import small_grid
from clitools import run_cli
from explain_text import render_text

from forecaster import artifact, pipeline
from forecaster.api.model import TrainedModel
from forecaster.datasets import Dataset, load_cdnow, load_dataset
from forecaster.explain.core import data_fingerprint
from forecaster.explain.sentences import contribution_sentence, value_text
from forecaster.providers import LLMForecaster, Provider
from models.timing import PurchaseDays
from narrator.narrative import render_narrative
from narrator.panel import MonthlyPanel
from structurer.schema import BucketScheme

GOLDEN = Path(__file__).parent / "golden"
ANCHOR = pd.Period("1998-01", freq="M")
# the customers of tests/test_narrative.py: one order in January 1997 / 10 of 12 months /
# 4 active months up to May 1997, then nothing for 7 months
GOLDEN_CUSTOMERS = {"one_time": "00001", "regular": "00145", "lapsed": "00547"}
USD = BucketScheme(edges=(19.99, 42.9), currency="USD")
KRW = BucketScheme(edges=(30_000.0, 80_000.0), currency="KRW")


@lru_cache(maxsize=None)
def dataset(src: str) -> Dataset:
    return load_cdnow() if src == "cdnow" else load_dataset(src)


def _rows(panel: MonthlyPanel, rows: np.ndarray) -> MonthlyPanel:
    return MonthlyPanel(panel.customer_ids[rows], panel.start, panel.spend[rows], panel.orders[rows],
                        panel.first_idx[rows], panel.currency)


def _train(panel: MonthlyPanel, transactions: pd.DataFrame, name: str, out: Path) -> Path:
    scheme = artifact.training_scheme(panel)
    provider = Provider("empirical", scheme)
    artifact.save(artifact.train(panel, transactions, scheme, provider.forecast_fn(), provider.info, name), out)
    return out


@pytest.fixture(scope="module")
def cdnow_model(tmp_path_factory) -> Path:
    panel = dataset("cdnow").panel
    sample = pipeline.sample_panel(panel, 3000, panel.last_month + 1, seed=0)
    rows = np.union1d(np.searchsorted(panel.customer_ids, sample.customer_ids),
                      [panel.row_of(c) for c in GOLDEN_CUSTOMERS.values()])
    return _train(_rows(panel, rows), dataset("cdnow").transactions, "cdnow-sample",
                  tmp_path_factory.mktemp("cdnow") / "model")




# -- the figures ---------------------------------------------------------------------------


def test_json_contributions_and_base_value_reproduce_the_training_rows_margin(cdnow_model, monkeypatch, capsys):
    code, out, err = run_cli(["explain", "00145", "--anchor", "1998-01", "--model", str(cdnow_model),
                              "--format", "json"], monkeypatch, capsys)
    assert code == 0 and err == ""
    result = json.loads(out)
    # the customer's row exactly as training builds it (an independent path to the features)
    art = artifact.load(cdnow_model)
    cdnow = dataset("cdnow")
    rows = pipeline.anchor_rows(cdnow.panel, ANCHOR, art.scheme, pipeline.empirical_forecast_fn(art.scheme),
                                with_btyd=False, days=PurchaseDays.from_transactions(cdnow.transactions))
    row = rows[rows["customer_id"] == "00145"]
    margin = float(art.models[artifact.AUGMENTED].purchase_margin(row)[0])
    total = result["base_value"] + sum(c["contribution"] for c in result["contributions"])
    assert total == pytest.approx(margin, abs=1e-5)
    assert result["margin"] == pytest.approx(margin, abs=1e-5)
    assert result["purchase_probability"] == pytest.approx(1 / (1 + math.exp(-margin)), abs=1e-6)
    assert len(result["contributions"]) == len(art.feature_columns[artifact.AUGMENTED])
    sizes = [abs(c["contribution"]) for c in result["contributions"]]
    assert sizes == sorted(sizes, reverse=True)
    assert {c["feature"] for c in result["contributions"]} == set(art.feature_columns[artifact.AUGMENTED])
    for c in result["contributions"]:
        value = row[c["feature"]].iloc[0]
        assert (c["value"] is None) == bool(np.isnan(value)) and (c["value"] is None or c["value"] == pytest.approx(value))
    # the forecaster record, both distributions and the outcome are all there
    assert result["forecaster"]["provider"] == "empirical" and result["forecaster"]["is_llm"] is False
    assert result["forecaster"]["prompt_version"] == "n/a (not an LLM)"
    assert result["forecaster"]["forecast"]["segment"] in {"VIP", "충성", "일반", "이탈위험", "휴면"}
    for key in ("final_model", "baseline_model"):
        shares = result[key]["distribution"]
        assert [s["bucket"] for s in shares] == art.scheme.ids and [s["label"] for s in shares] == art.scheme.labels
        assert sum(s["probability"] for s in shares) == pytest.approx(1.0)
    assert result["decision"] == (result["purchase_probability"] >= result["threshold"])
    assert result["actual"] == {"spend": float(row["spend"].iloc[0]), "orders": 0, "bucket": "b0", "label": "구매 없음"}


def test_probability_and_top_group_are_what_batch_computes(cdnow_model):
    data = dataset("cdnow")
    frame = TrainedModel.load(cdnow_model).predict(data, ANCHOR)
    frame = frame.set_index("customer_id")
    for customer in GOLDEN_CUSTOMERS.values():
        ex = TrainedModel.load(cdnow_model).explain(data, customer, ANCHOR)
        assert ex.final.purchase_probability == pytest.approx(frame.loc[customer, "purchase_prob"], abs=1e-6)
        assert ex.top20.member == bool(frame.loc[customer, "top20_target"])
        assert ex.decision == bool(frame.loc[customer, "decision"])
        assert ex.final.expected_spend == pytest.approx(frame.loc[customer, "expected_spend"], rel=1e-5)
        # the population is the customers forecast (the batch file also lists the others, unflagged)
        assert ex.top20.population == int(frame["purchase_prob"].notna().sum()) < len(frame)
        assert ex.top20.flagged == int(frame["top20_target"].sum()) == ex.top20.population // 5


def test_cdnow_batch_at_the_default_anchor_has_a_row_for_every_customer(cdnow_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cdnow.parquet"
    code, _, err = run_cli(["batch", "--model", str(cdnow_model), "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    frame = pd.read_parquet(out)
    assert len(frame) == dataset("cdnow").transactions["customer_id"].nunique() == 23_570
    assert frame["anchor"].unique().tolist() == ["1998-07"]
    # 68 customers have only zero-amount orders: a row each, with the reason and no forecast
    assert frame["status"].value_counts().to_dict() == {"ok": 23_502, "no_purchase": 68}
    assert frame.loc[frame["status"] == "no_purchase", "purchase_prob"].isna().all()
    assert int(frame["top20_target"].sum()) == 23_502 // 5
    assert "23,570명 중 23,502명 예측 완료 (구매 기록 없음 68명)" in err and "경고" not in err


@pytest.mark.parametrize("kind", sorted(GOLDEN_CUSTOMERS))
def test_golden_text(kind, cdnow_model):
    ex = TrainedModel.load(cdnow_model).explain(dataset("cdnow"), GOLDEN_CUSTOMERS[kind], ANCHOR)
    text = render_text(dataclasses.replace(ex, model_dir="MODEL_DIR"), width=80)  # not a tmp path
    path = GOLDEN / f"explain_{kind}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
    assert render_narrative(dataset("cdnow").panel.histories(ANCHOR).get(GOLDEN_CUSTOMERS[kind])) in text
    assert "통계 규칙 기반 예측기(LLM 아님)" in text and "로그 오즈" in text
    assert not any(mark in text for mark in ("(가)", "(를)", "(은)", "(는)", "(와)", "(으)"))


def test_synthetic_customers_with_opposite_latent_rates_point_in_opposite_directions(tmp_path):
    data = dataset("synthetic:3000")
    panel, latent = data.panel, data.latent.set_index("customer_id")
    anchor = pd.Period("2024-07", freq="M")
    # a model trained on a seeded sample of the same shop (training on all 3,000 takes a minute)
    model = _train(pipeline.sample_panel(panel, 400, panel.last_month + 1, seed=1), data.transactions, data.name,
                   tmp_path / "model")
    col = panel.column(anchor)
    acquired = panel.first_idx < col - 3
    alive = (latent.loc[panel.customer_ids, "death_month"] > anchor).to_numpy()
    recent = (panel.orders[:, col - 3: col] > 0).all(axis=1)
    rate = latent.loc[panel.customer_ids, "lambda"].to_numpy()
    high = panel.customer_ids[np.flatnonzero(acquired & alive & recent)[np.argmax(rate[acquired & alive & recent])]]
    quiet = acquired & ~alive & (panel.orders[:, col - 6: col].sum(axis=1) == 0)
    low = panel.customer_ids[np.flatnonzero(quiet)[np.argmin(rate[quiet])]]
    assert latent.loc[high, "lambda"] > 2 and latent.loc[low, "lambda"] < 0.1
    busy, gone = (TrainedModel.load(model).explain(data, c, anchor) for c in (high, low))
    assert busy.final.purchase_probability > 0.5 > 0.05 > gone.final.purchase_probability
    assert busy.margin > busy.base_value and gone.margin < gone.base_value
    assert sum(c.contribution for c in busy.contributions) > 0 > sum(c.contribution for c in gone.contributions)
    assert busy.currency == "KRW" and "만 원" in render_text(busy)


def test_default_model_is_trained_once_then_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    small_grid.install(monkeypatch)  # the cache, not the tuning (the golden texts keep the product's grid)
    args = ["explain", "C000002", "--anchor", "2023-06", "--data", "synthetic:300", "--format", "json"]
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    assert len(err.strip().splitlines()) == 1 and "기본 모델" in err and "LLM 아님" in err
    cached = Path(json.loads(out)["model"]["dir"])
    data = dataset("synthetic:300")
    assert cached.parent == tmp_path / "cache" / "llm-spend-forecaster" / "models"
    assert cached.name == f"{data_fingerprint(data.name, data.panel)}-{artifact.code_version()}"
    written = (cached / "config.json").stat().st_mtime_ns
    code, again, err = run_cli(args, monkeypatch, capsys)
    assert code == 0 and err == "" and json.loads(again) == json.loads(out)
    assert (cached / "config.json").stat().st_mtime_ns == written


def test_llm_provider_path_against_the_loopback_server(cdnow_model, llm_server, tmp_path, monkeypatch, capsys):
    from llm.prompt import prompt_version
    from prompts import NARRATIVE_VERSION

    llm_model = tmp_path / "llm-model"
    shutil.copytree(cdnow_model, llm_model)
    config = json.loads((llm_model / "config.json").read_text(encoding="utf-8"))
    config["forecaster"] = {"provider": "llm", "model": "loopback-test-model",
                            "prompt_version": prompt_version(NARRATIVE_VERSION)}
    (llm_model / "config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out, err = run_cli(["explain", "00547", "--anchor", "1998-01", "--model", str(llm_model),
                              "--base-url", llm_server.base_url, "--cache-dir", str(tmp_path / "llm-cache"),
                              "--format", "json"], monkeypatch, capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["forecaster"]["provider"] == "llm" and result["forecaster"]["is_llm"] is True
    assert result["forecaster"]["model"] == "loopback-test-model" and result["forecaster"]["status"] == "ok"
    assert result["top20"] is None and "LLM" in result["top20_note"]
    (request,) = llm_server.requests
    assert request.messages[-1]["content"] == result["narrative"]
    assert "00547" not in json.dumps(request.messages, ensure_ascii=False)
    # an answer that never validates: the record is failed, the forecaster features are
    # missing, and the explanation says so instead of inventing an answer
    llm_server.script(["refusal"] * 3)
    ex = TrainedModel.load(llm_model).explain(dataset("cdnow"), "00145", ANCHOR, forecaster=LLMForecaster(
        model="loopback-test-model", base_url=llm_server.base_url, cache_dir=tmp_path / "llm-cache"))
    assert ex.record.status == "failed" and ex.record.reason == "refusal" and ex.forecaster_distribution is None
    assert all(c.value is None for c in ex.contributions if c.feature.startswith("fc_"))
    assert "예측에 실패했습니다 (refusal)" in render_text(ex)


# -- the sentences -------------------------------------------------------------------------


@pytest.mark.parametrize("name, value, contribution, scheme, sentence", [
    ("active3", 0.0, -0.42, USD, "최근 3개월 동안 구매가 없어 구매 가능성을 낮췄습니다 (−0.42)"),
    ("recency", 11.0, -0.8, USD, "마지막 구매가 11개월 전이라 구매 가능성을 낮췄습니다 (−0.80)"),
    ("recency", 1.0, 0.3, USD, "마지막 구매가 바로 지난달이라 구매 가능성을 높였습니다 (+0.30)"),
    ("lifetime_orders", 10.0, 0.2, USD, "누적 주문이 10회라 구매 가능성을 높였습니다 (+0.20)"),
    ("monetary", 12_345.0, 0.1, KRW, "구매한 달의 평균 지출액이 1.2만 원이라 구매 가능성을 높였습니다 (+0.10)"),
    ("order_value", 38_000.0, 0.1, KRW, "주문당 평균 지출액이 3.8만 원이라 구매 가능성을 높였습니다 (+0.10)"),
    ("orders_per_month", 0.35, -0.1, USD, "첫 구매 이후 월평균 주문이 0.35회라 구매 가능성을 낮췄습니다 (−0.10)"),
    ("orders_per_active_month", 2.0, 0.1, USD, "구매한 달의 평균 주문이 2.00회라 구매 가능성을 높였습니다 (+0.10)"),
    ("spend_lag1", 29.3, 0.05, USD, "1997년 12월 지출액이 29.3달러라 구매 가능성을 높였습니다 (+0.05)"),
    ("spend_lag4", math.nan, -0.12, USD,
     "1997년 9월 지출액은 첫 구매 전이라 값이 없고, 이 점이 구매 가능성을 낮췄습니다 (−0.12)"),
    ("orders_lag3", math.nan, 0.004, USD,
     "1997년 10월 주문 수는 첫 구매 전이라 값이 없고, 이 점이 구매 가능성을 거의 바꾸지 않았습니다 (+0.00)"),
    ("orders_lag2", 0.0, -0.03, USD, "1997년 11월에는 주문이 없어 구매 가능성을 낮췄습니다 (−0.03)"),
    ("trend_slope", math.nan, 0.01, USD,
     "첫 구매 후 지난 기간이 한 달뿐이라 지출 추세를 잴 수 없고, 이 점이 구매 가능성을 높였습니다 (+0.01)"),
    ("trend_slope", -2.5, -0.07, USD,
     "최근 12개월 월 지출이 한 달에 약 2.5달러씩 줄어드는 추세라 구매 가능성을 낮췄습니다 (−0.07)"),
    ("season_index", 1.153, 0.07, USD,
     "지난해들의 같은 달 구매율이 앞뒤 1년 평균의 1.15배라 구매 가능성을 높였습니다 (+0.07)"),
    ("season_index", math.nan, 0.0, USD,
     "이전 해 같은 달의 자료가 없어 계절 지수를 잴 수 없고, 이 점이 구매 가능성을 거의 바꾸지 않았습니다 (+0.00)"),
    ("season_shift", 0.31, 0.31, KRW,
     "예측 대상 월이 이 고객의 평소보다 주문이 늘어나는 계절이라 구매 가능성을 높였습니다 (+0.31)"),
    ("season_shift", -0.05, -0.05, KRW,
     "예측 대상 월이 이 고객의 평소보다 주문이 줄어드는 계절이라 구매 가능성을 낮췄습니다 (−0.05)"),
    ("season_shift", 0.0, 0.0, USD,
     "예측 대상 월의 계절 효과를 잴 자료가 아직 없어 구매 가능성을 거의 바꾸지 않았습니다 (+0.00)"),
    ("season_orders", 1.42, 0.05, KRW,
     "예측 대상 월에 구매한다면 예상되는 주문이 1.42회라 구매 가능성을 높였습니다 (+0.05)"),
    ("repeat_buy", 0.31, 0.42, KRW,
     "주문 빈도·마지막 구매 시점·계절로 본 반복구매 확률이 31.0%라 구매 가능성을 높였습니다 (+0.42)"),
    ("repeat_buy", math.nan, 0.0, KRW,
     "반복구매 모형을 맞출 고객이 없어 반복구매 확률이 없고, 이 점이 구매 가능성을 거의 바꾸지 않았습니다 (+0.00)"),
    ("days_since_last_purchase", 45.0, -0.3, USD, "마지막 구매일이 45일 전이라 구매 가능성을 낮췄습니다 (−0.30)"),
    ("days_since_last_purchase", 3.0, 0.3, USD, "마지막 구매일이 3일 전이라 구매 가능성을 높였습니다 (+0.30)"),
    ("last_gap_days", 10.0, 0.1, USD, "마지막 두 구매일 사이가 10일이라 구매 가능성을 높였습니다 (+0.10)"),
    ("gap_mean_days", 21.0, 0.1, USD, "구매일 사이 평균 간격이 21일이라 구매 가능성을 높였습니다 (+0.10)"),
    ("gap_cv", 0.45, -0.02, USD, "구매 간격의 변동계수가 0.45라 구매 가능성을 낮췄습니다 (−0.02)"),
    ("gap_mean_days", math.nan, -0.2, USD,
     "구매한 날이 하루뿐이라 구매 간격을 잴 수 없고, 이 점이 구매 가능성을 낮췄습니다 (−0.20)"),
    ("overdue_ratio", 2.54, -0.4, USD,
     "마지막 구매 후 평소 구매 간격의 2.5배만큼 지나 구매 가능성을 낮췄습니다 (−0.40)"),
    ("purchase_days_last30d", 3.0, 0.6, USD, "최근 30일 중 3일 구매해 구매 가능성을 높였습니다 (+0.60)"),
    ("purchase_days_last90d", 0.0, -0.6, USD, "최근 90일 동안 구매한 날이 없어 구매 가능성을 낮췄습니다 (−0.60)"),
    ("spend_last30d", 8_500.0, 0.2, KRW, "최근 30일 지출액이 8,500원이라 구매 가능성을 높였습니다 (+0.20)"),
    ("spend_last90d", 0.0, -0.1, KRW, "최근 90일 동안 지출이 없어 구매 가능성을 낮췄습니다 (−0.10)"),
    ("active_share", 0.35, 0.02, USD, "첫 구매 이후 구매한 달의 비율이 35.0%라 구매 가능성을 높였습니다 (+0.02)"),
    ("fc_p_b3", 0.162, 0.08, USD, "예측기가 본 '42.9달러 이상' 확률이 16.2%라 구매 가능성을 높였습니다 (+0.08)"),
    ("fc_expected_spend", 18.9, 0.51, USD, "예측기의 기대 지출액이 18.9달러라 구매 가능성을 높였습니다 (+0.51)"),
    ("fc_segment_휴면", 1.0, -0.2, USD, "예측기가 이 고객을 '휴면'으로 분류해 구매 가능성을 낮췄습니다 (−0.20)"),
    ("fc_segment_VIP", 0.0, 0.001, USD,
     "예측기가 이 고객을 'VIP'로 분류하지 않아 구매 가능성을 거의 바꾸지 않았습니다 (+0.00)"),
    ("fc_trend_감소", 1.0, -0.05, USD, "예측기가 추세를 '감소'로 봐서 구매 가능성을 낮췄습니다 (−0.05)"),
    ("fc_confidence", math.nan, -0.3, USD,
     "예측기 응답이 실패해 예측기의 확신도가 없고, 이 점이 구매 가능성을 낮췄습니다 (−0.30)"),
])
def test_contribution_sentences(name, value, contribution, scheme, sentence):
    assert contribution_sentence(name, value, contribution, scheme, ANCHOR) == sentence


def test_feature_values_are_formatted_by_what_they_measure():
    assert value_text("spend_mean3", 1_250_000.0, "KRW") == "125만 원"
    assert value_text("recency", 7.0, "USD") == "7개월"
    assert value_text("fc_purchase_prob", 0.043, "USD") == "4.3%"
    assert value_text("fc_expected_orders", 0.346, "USD") == "0.35회"
    assert value_text("orders_lag3", math.nan, "USD") == "값 없음"
    assert value_text("fc_trend_증가", 0.0, "USD") == "아니요"


# -- errors --------------------------------------------------------------------------------


def _one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("오류: ")
    return err


def test_a_bare_number_finds_the_zero_padded_id_as_narrate_does(cdnow_model, monkeypatch, capsys):
    code, out, _ = run_cli(["explain", "145", "--anchor", "1998-01", "--model", str(cdnow_model)], monkeypatch, capsys)
    assert code == 0 and out.startswith("고객 00145 ")
    err = _one_line_error(*run_cli(["explain", "no-such", "--anchor", "1998-01", "--model", str(cdnow_model)],
                                   monkeypatch, capsys))
    assert "'no-such' is not in the data 'cdnow'" in err and "00001" in err


def test_customer_not_yet_acquired_names_the_first_purchase_month(cdnow_model, monkeypatch, capsys):
    panel = dataset("cdnow").panel
    march = panel.customer_ids[np.flatnonzero(panel.first_idx == 2)[0]]  # first purchase 1997-03
    err = _one_line_error(*run_cli(["explain", march, "--anchor", "1997-02", "--model", str(cdnow_model)],
                                   monkeypatch, capsys))
    assert "first purchase in 1997-03" in err and "--anchor 1997-04" in err


def test_anchor_outside_the_data(cdnow_model, monkeypatch, capsys):
    err = _one_line_error(*run_cli(["explain", "00145", "--anchor", "1999-01", "--model", str(cdnow_model)],
                                   monkeypatch, capsys))
    assert "1999-01 is outside the data" in err and "1998-07" in err


def test_provider_must_match_the_model(cdnow_model, monkeypatch, capsys):
    err = _one_line_error(*run_cli(["explain", "00145", "--anchor", "1998-01", "--model", str(cdnow_model),
                                    "--provider", "llm"], monkeypatch, capsys))
    assert "trained with the empirical forecaster" in err
    err = _one_line_error(*run_cli(["explain", "00145", "--anchor", "1998-01", "--provider", "llm"],
                                   monkeypatch, capsys))
    assert "needs a model trained with it" in err


def test_artifact_from_a_different_code_version(cdnow_model, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "stale"
    shutil.copytree(cdnow_model, stale)
    config = json.loads((stale / "config.json").read_text(encoding="utf-8"))
    config["code_version"] = "0.0.1"
    (stale / "config.json").write_text(json.dumps(config), encoding="utf-8")
    err = _one_line_error(*run_cli(["explain", "00145", "--anchor", "1998-01", "--model", str(stale)],
                                   monkeypatch, capsys))
    assert "code version 0.0.1 !=" in err and "forecaster train" in err
