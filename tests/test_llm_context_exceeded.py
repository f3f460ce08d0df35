"""A request that overflows the model's context is a failure of its own (``context_exceeded``),
not retried, whose detail says what to do: live (the SDK's errors made from the servers' 400
bodies) and in provider batch output lines.

llama.cpp's body is the one llama-server really sent (tests/fixtures/llama_server/
context_exceeded.json, recorded by ``make llm-local``). No OpenAI or vLLM server was reachable
here: their bodies below are the shapes those servers document and send (OpenAI's error object
with ``code: context_length_exceeded``; vLLM's ``BadRequestError`` whose message begins "This
model's maximum context length"), not recordings.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import openai
import pytest
from rich.console import Console

from llm.batch_import import read_output_line
from llm.client import transport_reason
from llm.ledger import PriceTable, UsageLedger
from llm.overflow import context_exceeded_detail
from llm.transport import is_transient
from structurer.schema import ForecastRecord

LLAMA = json.loads((Path(__file__).parent / "fixtures" / "llama_server" / "context_exceeded.json").read_text())["body"]
OPENAI = {"error": {
    "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 "
               "tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
VLLM = {"object": "error", "type": "BadRequestError", "param": None, "code": 400,
        "message": "This model's maximum context length is 4096 tokens. However, you requested 4210 tokens (3410 in "
                   "the messages, 800 in the completion). Please reduce the length of the messages or completion."}
OTHER_400 = {"error": {"message": "response_format type must be one of \"text\" or \"json_object\"",
                       "type": "invalid_request_error", "code": 400}}


def _sdk_error(body: dict) -> openai.APIStatusError:
    """The exception the SDK raises for a 400 with ``body``, made the SDK's own way."""
    client = openai.OpenAI(api_key="unused", base_url="http://server.test/v1")
    request = httpx2.Request("POST", "http://server.test/v1/chat/completions")
    return client._make_status_error_from_response(httpx2.Response(400, json=body, request=request))


@pytest.mark.parametrize("body", [LLAMA, OPENAI, VLLM], ids=["llama.cpp", "openai", "vllm"])
def test_each_servers_overflow_is_context_exceeded_and_not_retried(body):
    exc = _sdk_error(body)
    assert isinstance(exc, openai.BadRequestError)
    assert transport_reason(exc) == "context_exceeded" and not is_transient(exc)


def test_another_400_stays_a_bad_request():
    assert transport_reason(_sdk_error(OTHER_400)) == "bad_request"


@pytest.mark.parametrize("body", [LLAMA, OPENAI], ids=["llama.cpp", "openai"])
def test_a_batch_output_line_that_overflowed_says_what_to_do(body):
    # OpenAI's batch output: the request's status and error body under "response"
    line = {"id": "b1", "custom_id": "k1", "response": {"status_code": 400, "body": body}, "error": None}
    verdict = read_output_line(line)
    assert verdict.reason == "context_exceeded" and verdict.reply is None
    assert verdict.detail.startswith("요청이 모델의 컨텍스트 길이를 넘었습니다") and "--max-model-len" in verdict.detail
    assert body["error"]["message"][:40] in verdict.detail


def test_the_ledger_counts_it_apart_and_its_table_keeps_what_to_do():
    ledger = UsageLedger("m", PriceTable({}))
    detail = context_exceeded_detail("request (2697 tokens) exceeds the available context size (2560 tokens)", reask=True)
    ledger.add(ForecastRecord(customer_id="c", anchor="1998-01", provider="llm", model="m", prompt_version="v",
                              status="failed", reason="context_exceeded", detail=detail, attempts=2))
    assert ledger.summary()["failures_by_reason"] == {"context_exceeded": 1}
    console = Console(record=True, width=400)
    console.print(ledger.render_failures())
    shown = " ".join(console.export_text().split())
    assert "context_exceeded" in shown and "컨텍스트가 더 큰 모델을 쓰거나" in shown and "vLLM --max-model-len" in shown
