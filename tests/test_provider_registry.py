"""A provider is one class implementing ``structurer.protocol.Forecaster`` and one entry in
``forecaster.providers.PROVIDERS``: the placebos below, defined and registered here only,
run through train, batch and evaluate on the command line with no other code change: one
that asks no one, and an LLM sent the months as a table instead of the narrative."""

import json

import numpy as np
import pandas as pd
import pytest
from clitools import run_cli
from llm_server import LoopbackLLMServer

from forecaster.datasets import load_dataset
from forecaster.providers import PROVIDERS, Provider, Registration
from forecaster.providers import LLMForecaster as LLMSettings
from narrator.panel import CustomerHistory, HistoryBatch, MonthlyPanel
from structurer.features import records_to_features
from llm.forecaster import LLMForecaster
from structurer.protocol import Forecaster
from structurer.schema import BucketScheme, ForecastRecord, spend_forecast_model

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:400:5"


class PlaceboForecaster:
    """Every customer gets the cut panel's share of months in each bucket: numbers that
    say nothing about the customer."""

    provider = "placebo"
    ledger = None

    def __init__(self, scheme: BucketScheme, options: LLMSettings) -> None:
        self.scheme = scheme

    def fit(self, cut: MonthlyPanel) -> "PlaceboForecaster":
        return self.fit_population(self.population(cut))

    def population(self, cut: MonthlyPanel) -> np.ndarray:
        """Bucket counts: a numpy array adds up over groups of customers as a summary must."""
        return np.bincount(self.scheme.assign(cut.spend[cut.spend >= 0]), minlength=self.scheme.n_buckets)

    def fit_population(self, counts: np.ndarray) -> "PlaceboForecaster":
        self.shares_ = counts / counts.sum()
        return self

    def forecast_many(self, histories, progress=None) -> list[ForecastRecord]:
        ids = histories.customer_ids if isinstance(histories, HistoryBatch) else [h.customer_id for h in histories]
        anchor = str(histories.anchor if isinstance(histories, HistoryBatch) else histories[0].anchor)
        forecast = spend_forecast_model(self.scheme).model_validate({
            "rationale": "전체 고객의 구간 비율을 그대로 씁니다.",
            "probabilities": dict(zip(self.scheme.ids, self.shares_.tolist())),
            "expected_spend": 0.0, "expected_orders": 0.0, "segment": "일반", "trend": "유지", "confidence": 0.0,
        })
        records = [ForecastRecord(customer_id=str(c), anchor=anchor, provider=self.provider, model="placebo-shares",
                                  prompt_version="n/a", status="ok", forecast=forecast) for c in ids]
        for record in records if progress is not None else []:
            progress(record)
        return records

    def forecast_features(self, batch: HistoryBatch) -> pd.DataFrame:
        frame = records_to_features(self.forecast_many(batch), self.scheme)
        frame.index = pd.Index(batch.customer_ids, name="customer_id")
        return frame

    def describe(self) -> dict:
        return {"provider": self.provider, "model": "placebo-shares", "prompt_version": "n/a", "note": "placebo"}

    def dry_run(self, histories) -> None:
        return None

    def narrative(self, history: CustomerHistory) -> str:
        return "(placebo: reads no history)"


@pytest.fixture
def placebo(monkeypatch):
    monkeypatch.setitem(PROVIDERS, "placebo", Registration(PlaceboForecaster, is_llm=False))


def test_the_placebo_implements_the_protocol(placebo):
    provider = Provider("placebo", BucketScheme(edges=(15.0, 29.3), currency="USD"))
    assert isinstance(provider.forecaster, Forecaster) and not provider.is_llm
    assert provider.info["provider"] == "placebo"


def test_a_provider_registered_in_one_place_trains_batches_and_evaluates(placebo, tmp_path, monkeypatch, capsys):
    model, rows, report = tmp_path / "model", tmp_path / "rows.csv", tmp_path / "report"
    code, _, err = run_cli(["train", "--data", DATA, "--provider", "placebo", "--out", str(model)], monkeypatch, capsys)
    assert code == 0, err
    config = json.loads((model / "config.json").read_text())
    assert config["forecaster"] == {"provider": "placebo", "model": "placebo-shares", "prompt_version": "n/a",
                                    "note": "placebo"}

    code, _, err = run_cli(["batch", "--model", str(model), "--data", DATA, "--out", str(rows)], monkeypatch, capsys)
    assert code == 0, err
    frame = pd.read_csv(rows)
    forecast = frame[frame["status"] == "ok"]
    assert len(forecast) > 300 and (forecast["provider"] == "placebo").all()
    shares = forecast[[f"forecaster_p_b{k}" for k in range(4)]].to_numpy()
    assert np.allclose(shares, shares[0]) and np.isclose(shares[0].sum(), 1.0)  # the same numbers for everyone
    assert (forecast["rationale"] == "전체 고객의 구간 비율을 그대로 씁니다.").all()

    code, _, err = run_cli(["evaluate", "--data", DATA, "--provider", "placebo", "--bootstrap", "100",
                            "--out", str(report)], monkeypatch, capsys)
    assert code == 0, err
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["forecaster"]["provider"] == "placebo" and metrics["forecaster"]["is_llm"] is False
    assert "xgb_base+forecaster" in metrics["arms"]


def test_an_unregistered_provider_is_refused_with_the_choices(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(["train", "--data", DATA, "--provider", "placebo", "--out", str(tmp_path / "m")], monkeypatch, capsys)
    assert code == 2 and "--provider placebo: choose one of empirical, llm" in err


def table_narrate(history: CustomerHistory) -> str:
    rows = [f"| {month} | {spend:g} | {orders} |" for month, spend, orders in zip(history.months, history.spend,
                                                                                  history.orders)]
    return "| 월 | 지출 | 주문 |\n" + "\n".join(rows) + f"\n예측 대상: {history.anchor}"


class TableForecaster(LLMForecaster):
    """The LLM, sent each customer's months as a table: the same numbers without the story."""

    provider = "llm-table"

    def __init__(self, scheme: BucketScheme, options: LLMSettings) -> None:
        super().__init__(scheme, model=options.model, base_url=options.base_url, concurrency=options.concurrency,
                         cache_dir=options.cache_dir, narrate=table_narrate, narrative_version="table-v1")


def test_an_llm_provider_under_another_name_is_asked_costed_and_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(PROVIDERS, "llm-table", Registration(TableForecaster, is_llm=True))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tx = load_dataset("synthetic:120:11").transactions
    data = tmp_path / "orders.csv"
    tx[tx["ts"] < pd.Timestamp("2022-07-01")].to_csv(data, index=False)
    args = ["--data", str(data), "--customer-col", "customer_id", "--date-col", "ts", "--amount-col", "amount",
            "--currency", "KRW"]
    model, rows = tmp_path / "model", tmp_path / "rows.csv"
    with LoopbackLLMServer(lifetime_s=240.0, max_requests=20_000) as server:
        llm = ["--llm-model", "loopback-test-model", "--base-url", server.base_url,
               "--cache-dir", str(tmp_path / "cache"), "--yes"]
        code, _, err = run_cli(["train", *args, "--provider", "llm-table", *llm, "--out", str(model)],
                               monkeypatch, capsys)
        assert code == 0, err
        assert "LLM 예상 사용량" in err  # the dry-run estimate, shown before anything was sent
        config = json.loads((model / "config.json").read_text())
        assert config["forecaster"] == {"provider": "llm-table", "model": "loopback-test-model",
                                        "prompt_version": "system-v2+table-v1", "endpoint": server.base_url}
        trained_with = server.request_count
        assert trained_with > 0 and all(r.messages[-1]["content"].startswith("| 월 | 지출 | 주문 |")
                                        for r in server.requests)
        code, _, err = run_cli(["batch", "--model", str(model), *args, *llm, "--out", str(rows)], monkeypatch, capsys)
        assert code == 0, err
        assert server.request_count > trained_with  # the new anchor's customers were asked
    frame = pd.read_csv(rows)
    forecast = frame[frame["status"] == "ok"]
    assert len(forecast) > 50 and (forecast["provider"] == "llm-table").all()
    assert (forecast["prompt_version"] == "system-v2+table-v1").all()
