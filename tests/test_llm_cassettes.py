"""Replayed LLM exchanges (vcrpy cassettes under tests/cassettes/test_llm_cassettes/).

The ``openai`` SDK sends through httpx2, which vcrpy intercepts from 8.2 on; these tests
prove it: replay points the client at a port where nothing listens, so every answer can
only come from a cassette, and a request missing from the cassette must surface as
``CannotOverwriteExistingCassetteException``, never as a call that got through.

The committed cassettes were recorded against the in-process loopback server
(tests/llm_server.py: it speaks the OpenAI protocol but is not a language model; no real
endpoint exists where they were made). ``FORECASTER_RECORD=1`` re-records them: see
docs/llm.md. The scripted faults (an answer failing validation, a refusal) are always
recorded from the loopback server, since a real model cannot be made to produce them on
demand; the valid and the truncated exchange use ``OPENAI_BASE_URL``/``OPENAI_API_KEY``
when one is set.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException

from conftest import FAST_RETRY, RECORDING
from llm.config import RetryPolicy
from llm.forecaster import LLMForecaster
from llm_server import LoopbackLLMServer, make_histories
from structurer.schema import BucketScheme

CASSETTES = Path(__file__).parent / "cassettes" / "test_llm_cassettes"
NOWHERE = "http://127.0.0.1:9/v1"  # the discard port: nothing answers there
LOOPBACK_MODEL = "loopback-test-model"
NARRATIVE = (
    "첫 구매는 1997년 1월로 12개월 전이며, 그때부터 12개월 중 4개월에 구매했습니다.\n"
    "누적 5회 주문에 96.4달러를 썼습니다.\n"
    "마지막 구매는 1997년 11월로, 이후 1개월간 구매가 없었습니다.\n"
    "예측 대상: 1998년 1월"
)
REAL_ENDPOINT = RECORDING and bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def _recorded_model(cassette_name: str) -> str:
    """The model named in a cassette's first request (replay must send the same body)."""
    cassette = yaml.safe_load((CASSETTES / cassette_name).read_text(encoding="utf-8"))
    return json.loads(cassette["interactions"][0]["request"]["body"])["model"]


@pytest.fixture
def forecaster_for(request, tmp_path):
    """``make(script, real_ok, **overrides)``: replaying, an LLMForecaster aimed at nowhere;
    recording, one aimed at the loopback server playing ``script`` (or at the real
    endpoint when ``real_ok`` and one is configured)."""
    servers: list[LoopbackLLMServer] = []

    def make(script: list[str], real_ok: bool, **overrides) -> LLMForecaster:
        marker = request.node.get_closest_marker("vcr")
        name = marker.args[0] if marker.args else f"{request.node.name}.yaml"
        if not RECORDING:
            endpoint = dict(model=_recorded_model(name), base_url=NOWHERE, api_key="not-needed")
        elif real_ok and REAL_ENDPOINT:
            endpoint = dict(model=os.environ.get("FORECASTER_MODEL", "gpt-4o-mini"))
        else:
            server = LoopbackLLMServer().start()
            server.script(script)
            servers.append(server)
            endpoint = dict(model=LOOPBACK_MODEL, base_url=server.base_url, api_key="not-needed")
        options = dict(
            scheme=BucketScheme(edges=(15.0, 29.3), currency="USD"),
            concurrency=1, timeout=30.0 if RECORDING else 2.0, use_cache=False,
            narrate=lambda history: NARRATIVE, narrative_version="cassette-v1",
            retry=RetryPolicy(**{**FAST_RETRY, "max_attempts": 1}),
        )
        return LLMForecaster(**{**options, **endpoint, **overrides})

    yield make
    for server in servers:
        server.stop()


@pytest.mark.vcr
def test_valid_answer(forecaster_for, vcr):
    forecaster = forecaster_for(["valid"], real_ok=True)
    [record] = forecaster.forecast_many(make_histories(1))
    assert record.status == "ok", record.detail
    assert (record.attempts, record.reasks, record.transport_retries) == (1, 0, 0)
    assert abs(record.forecast.probability_vector().sum() - 1) < 1e-9
    assert record.tokens_in > 0 and record.tokens_out > 0
    assert vcr.play_count == (0 if RECORDING else 1) and (RECORDING or vcr.all_played)


@pytest.mark.vcr
def test_invalid_answer_then_valid_reask(forecaster_for, vcr):
    forecaster = forecaster_for(["bad_sum", "valid"], real_ok=False)
    [record] = forecaster.forecast_many(make_histories(1))
    assert (record.status, record.reasks, record.attempts) == ("ok", 1, 2)
    reask = json.loads(vcr.requests[1].body)["messages"]
    assert [m["role"] for m in reask] == ["system", "user", "assistant", "user"]
    assert "sum to 0.700" in reask[-1]["content"]
    assert vcr.play_count == (0 if RECORDING else 2) and (RECORDING or vcr.all_played)


@pytest.mark.vcr
def test_refusal(forecaster_for, vcr):
    forecaster = forecaster_for(["refusal"], real_ok=False, max_reasks=0)
    [record] = forecaster.forecast_many(make_histories(1))
    assert (record.status, record.reason, record.attempts) == ("failed", "refusal", 1)
    assert vcr.play_count == (0 if RECORDING else 1)


@pytest.mark.vcr
def test_truncated_answer(forecaster_for, vcr):
    # max_tokens=16 makes a real model stop mid-answer too (finish_reason "length")
    forecaster = forecaster_for(["truncated"], real_ok=True, max_reasks=0, max_tokens=16)
    [record] = forecaster.forecast_many(make_histories(1))
    assert (record.status, record.reason, record.attempts) == ("failed", "truncated", 1)
    assert vcr.play_count == (0 if RECORDING else 1)


@pytest.mark.skipif(RECORDING, reason="only meaningful when replaying")
@pytest.mark.vcr("test_valid_answer.yaml")
def test_a_request_missing_from_the_cassette_cannot_escape(forecaster_for, vcr):
    # same cassette as test_valid_answer, but another narrative: a body it does not hold
    forecaster = forecaster_for([], real_ok=False, narrate=lambda history: NARRATIVE + " (다른 고객)")
    with pytest.raises(CannotOverwriteExistingCassetteException):
        forecaster.forecast_many(make_histories(1))
    assert vcr.play_count == 0


def test_cassettes_hold_no_secret():
    texts = [path.read_text(encoding="utf-8") for path in sorted(CASSETTES.glob("*.yaml"))]
    assert len(texts) == 4
    for text in texts:
        assert not re.search(r"(?im)^\s*(authorization|openai-organization|openai-project|set-cookie|cookie):", text)
        assert "Bearer" not in text and not re.search(r"sk-[A-Za-z0-9_-]{10,}", text)
