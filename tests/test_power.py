"""The price of an answer's precision, known before an LLM run (forecaster/power.py): the
detectable difference from an empirical run's paired variance, the smallest sample for a
target, and an LLM evaluation whose LLM arms run on a sample while the others see everyone."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import small_grid

import forecaster as fc
from forecaster import evaluation, power
from forecaster.datasets import load_dataset
from forecaster.errors import UserError
from llm_server import LoopbackLLMServer

DATA = "synthetic:1500:2"


@pytest.fixture(scope="module")
def empirical_run():
    setup = evaluation.prepare(load_dataset(DATA), None, None, seed=0, n_resamples=100)
    result = evaluation.run(setup, setup.forecaster.forecast_fn())
    return setup, result.predictions


def test_the_detectable_difference_shrinks_as_one_over_the_root_of_the_customers(empirical_run):
    setup, predictions = empirical_run
    first = setup.test_anchors[0]
    everyone = power.detectable_difference(predictions, setup.scheme)
    small = power.detectable_difference(predictions, setup.scheme, power.sample_ids(setup.panel, 300, first, 0))
    assert abs(small.customers - 300) <= 3 and everyone.customers > 1000  # strata round
    expected = math.sqrt(everyone.customers / small.customers)
    assert 0.7 * expected < small.mde_rps / everyone.mde_rps < 1.4 * expected
    assert everyone.mde_rps == pytest.approx(2.8016 * everyone.se_rps, rel=1e-3)


def test_the_smallest_sample_detects_the_target_and_a_quarter_of_it_does_not(empirical_run):
    setup, predictions = empirical_run
    first = setup.test_anchors[0]
    target = 1.8 * power.detectable_difference(predictions, setup.scheme).mde_rps
    n, estimate = power.smallest_sample(predictions, setup.scheme, setup.panel, first, target)
    assert n is not None and n < 1500 and abs(estimate.customers - n) <= 3 and estimate.mde_rps <= target
    # a quarter of it: expected at twice the target. Half (expected at 1.41x) is within the
    # noise of an MDE estimated on a few hundred customers (0.90x the target on this shop
    # once the purchase offset became a tuned choice)
    quarter = power.detectable_difference(predictions, setup.scheme, power.sample_ids(setup.panel, n // 4, first, 0))
    assert quarter.mde_rps > target


def test_a_target_that_every_customer_cannot_detect_is_refused(empirical_run):
    setup, predictions = empirical_run
    target = power.detectable_difference(predictions, setup.scheme).mde_rps / 3
    with pytest.raises(UserError, match="even all 1,"):
        power.smallest_sample(predictions, setup.scheme, setup.panel, setup.test_anchors[0], target)


def test_sampling_options_belong_to_an_llm_run():
    data = load_dataset("synthetic:120:11")
    with pytest.raises(UserError, match="sends nothing"):
        fc.evaluate(data, llm_sample_customers=100)
    with pytest.raises(UserError, match="not both"):
        power.plan_llm_run(data, None, None, 0, 100, llm_sample_customers=100, target_mde=0.01)


def test_an_llm_evaluation_on_a_sample_asks_only_the_sample_and_reports_the_plan(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the loopback server needs no key
    small_grid.install(monkeypatch)  # who is asked, not the tuning (the MDE tests above keep the product's grid)
    data = load_dataset("synthetic:1200:5", date_range="2023-07..")  # about 370 customers, 17 anchors
    printed: list[str] = []
    with LoopbackLLMServer(lifetime_s=180.0, max_requests=20_000) as server:
        llm = fc.LLMForecaster(model="loopback-test-model", base_url=server.base_url, cache_dir=tmp_path / "cache")
        with fc.progress_hook(lambda event: printed.append(event.message)):
            ev = fc.evaluate(data, llm, llm_sample_customers=150, bootstrap=100, confirm=True)
        asked = server.request_count
    plan = ev.report_data["power"]
    assert plan["sample_customers"] == 150 and abs(plan["run"]["customers"] - 150) <= 3  # strata round
    assert plan["population"]["customers"] > 300 and plan["by_size"][-1]["customers"] == plan["population"]["customers"]
    sampled = set(ev.predictions["customer_id"])
    assert len(sampled) == plan["run"]["customers"]  # the LLM run's customers are the plan's sample
    n_anchors = len(pd.period_range("2023-08", "2024-12", freq="M"))
    assert 0 < asked <= 150 * n_anchors  # nobody outside the sample was asked
    assert any("검출할 수 있는 가장 작은 RPS 차이" in line for line in printed)
    report = (ev.write_report(tmp_path / "report")["report_md"]).read_text(encoding="utf-8")
    assert "고객 150명의 층화 표본에서만 평가했습니다" in report and "최소 검출 차이는 약" in report
