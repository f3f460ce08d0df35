"""Each anchor's histories are narrated once per LLM run: the dry run's narratives go on to the
provider batch jobs and the live run (llm/narratives.py), against the loopback servers."""

from __future__ import annotations

from collections import Counter

import pytest
from llm_batch_server import LoopbackBatchServer
from llm_server import LoopbackLLMServer

import forecaster as fc
from forecaster.datasets import load_dataset
from llm.narratives import NarrativeMemo
from narrator import narrative

pytestmark = pytest.mark.usefixtures("small_xgb_grid")  # not a test of the tuning: tests/small_grid.py

DATA = "synthetic:120:11"


@pytest.fixture
def renders(monkeypatch) -> Counter:
    """Rows rendered per anchor: every narrative of a batch goes through ``render_narratives``."""
    counted: Counter = Counter()
    original = narrative.render_narratives

    def counting(batch, template_dir=None):
        counted[str(batch.anchor)] += 1
        return original(batch, template_dir)

    monkeypatch.setattr(narrative, "render_narratives", counting)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # the loopback servers need no key
    return counted


def _llm(server, tmp_path, **settings) -> fc.LLMForecaster:
    return fc.LLMForecaster(model="loopback-test-model", base_url=server.base_url, cache_dir=tmp_path / "cache",
                            **settings)


def test_a_live_evaluate_narrates_each_anchor_once(renders, tmp_path):
    with LoopbackLLMServer(lifetime_s=120.0, max_requests=20_000) as server, fc.progress_hook(None):
        fc.evaluate(load_dataset(DATA, date_range="..2023-03"), _llm(server, tmp_path), bootstrap=50, confirm=True)
        assert server.request_count > 0
    assert renders and set(renders.values()) == {1}, renders


def test_a_batch_mode_train_narrates_each_anchor_once_for_the_dry_run_the_jobs_and_the_live_run(renders, tmp_path):
    with LoopbackBatchServer(lifetime_s=120.0, max_requests=20_000) as server, fc.progress_hook(None):
        fc.train(load_dataset(DATA, date_range="..2023-03"), forecaster=_llm(server, tmp_path, mode="batch", poll_interval_s=0.0), confirm=True)
        assert server.batches_created >= 1
    assert renders and set(renders.values()) == {1}, renders


def test_the_memo_keeps_no_more_rows_than_allowed_and_renders_again_past_them():
    panel = load_dataset(DATA).panel
    first, second = (panel.histories(panel.last_month - k) for k in (2, 1))
    rendered: list[str] = []

    def render(batch):
        rendered.append(str(batch.anchor))
        return narrative.render_distinct_narratives(batch)

    memo = NarrativeMemo(render, keep_rows=len(first))
    for batch in (first, second):  # the dry run: the second is over the limit
        memo.narrated(batch, keep=True)
    for batch in (panel.histories(first.anchor), second):  # the live run, with new batch objects
        memo.narrated(batch, keep=False)
    assert rendered == [str(first.anchor), str(second.anchor), str(second.anchor)]
