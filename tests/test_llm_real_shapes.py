"""What a real OpenAI-compatible server sent, read by the client as a live run reads it.

The bodies under tests/fixtures/llama_server/ were answered by llama.cpp's llama-server
serving SmolLM2-135M-Instruct to the project's own request (system prompt, a CDNOW narrative,
the strict json_schema response format, temperature 0, max_tokens 800), captured by
``make llm-local LLM_LOCAL_ARGS="--only shapes"`` (scripts/llm_local_shapes.py; each file says
what was varied). Unlike the loopback server's, these shapes were not written by us: llama.cpp's
extra fields (``timings``, ``system_fingerprint``, ``usage.prompt_tokens_details``), its
grammar-constrained JSON that still fails validation, an answer cut by a full slot, and its
error bodies. The exchanges run through ``StructuredCaller`` on an httpx2 ``MockTransport``
(no network), so the SDK parses the error bodies as it would from the server.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from llm.client import CallOutcome, StructuredCaller, Unusable, judge, reply_from_completion
from llm.config import LLMConfig, RetryPolicy
from structurer.schema import BucketScheme, spend_forecast_model

FIXTURES = Path(__file__).parent / "fixtures" / "llama_server"
# The captured requests were for a 4-bucket scheme (b0..b3); judging needs only the ids.
MODEL = spend_forecast_model(BucketScheme(edges=(15.0, 29.3), currency="USD"))
MESSAGES = [{"role": "system", "content": "시스템"}, {"role": "user", "content": "고객 기록"}]
# The fields of a chat completion in OpenAI's API reference; llama-server adds the rest.
OPENAI_FIELDS = {"id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier"}


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _body(name: str) -> dict[str, Any]:
    return _fixture(name)["body"]


def _ask(*names: str, max_reasks: int = 2,
         model: str = "smollm2-135m-instruct") -> tuple[CallOutcome, list[dict[str, Any]]]:
    """One ``StructuredCaller.ask`` whose successive requests get the named fixtures' status
    and body; returns the outcome and the request bodies the client sent."""
    replies = [_fixture(name) for name in names]
    sent: list[dict[str, Any]] = []

    def serve(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        reply = replies[min(len(sent), len(replies)) - 1]
        return httpx2.Response(reply["status"], json=reply["body"])

    config = LLMConfig(model=model, base_url="http://llama-server.test/v1", api_key="unused",
                       max_reasks=max_reasks, concurrency=1,
                       retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02))

    async def run() -> CallOutcome:
        http = openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(serve))
        client = openai.AsyncOpenAI(api_key=config.api_key, base_url=config.endpoint, max_retries=0, http_client=http)
        async with client:
            return await StructuredCaller(client, config, MODEL).ask(list(MESSAGES))

    return asyncio.run(run()), sent


# -- reading an answer -------------------------------------------------------------------------


def test_llama_server_extras_change_nothing_the_client_reads():
    body = _body("answer_validation_error")
    extras = set(body) - OPENAI_FIELDS
    assert {"timings"} <= extras and "prompt_tokens_details" in body["usage"]  # the real server's shape
    openai_only = {key: value for key, value in body.items() if key in OPENAI_FIELDS}
    openai_only["usage"] = {k: v for k, v in body["usage"].items() if k != "prompt_tokens_details"}
    reply = reply_from_completion(body)
    assert reply == reply_from_completion(openai_only)
    assert (reply.finish_reason, reply.tokens_in, reply.tokens_out, reply.refusal) == ("stop", 2096, 151, None)


def test_tokens_count_the_whole_prompt_including_the_cached_prefix():
    # usage.prompt_tokens counts the cached system prompt too (prompt_tokens_details says how
    # much was cached), so the ledger's tokens_in is the whole prompt, as with OpenAI
    body = _body("answer_truncated")
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    assert reply_from_completion(body).tokens_in == body["usage"]["prompt_tokens"] == 2118


def test_grammar_constrained_json_that_breaks_a_rule_is_a_validation_error():
    # the grammar made it JSON of the schema's shape; only pydantic sees the sum is 4
    reply = reply_from_completion(_body("answer_validation_error"))
    answer = json.loads(reply.content)
    assert set(answer) == set(MODEL.model_fields) and set(answer["probabilities"]) == {"b0", "b1", "b2", "b3"}
    verdict = judge(reply, MODEL)
    assert isinstance(verdict, Unusable) and verdict.kind == "validation_error"
    assert "sum to 4.000" in verdict.error


def test_the_same_body_with_a_proper_distribution_is_accepted():
    body = _body("answer_validation_error")
    answer = json.loads(body["choices"][0]["message"]["content"])
    answer["probabilities"] = {"b0": 0.7, "b1": 0.1, "b2": 0.1, "b3": 0.1}
    body["choices"][0]["message"]["content"] = json.dumps(answer, ensure_ascii=False)
    forecast = judge(reply_from_completion(body), MODEL)
    assert isinstance(forecast, MODEL) and forecast.segment.value == "충성"


@pytest.mark.parametrize("name", ["answer_truncated", "length", "unconstrained_truncated"])
def test_an_answer_stopped_by_a_limit_is_truncated(name):
    # a full slot (answer_truncated: prompt + answer = the slot's 2,560 tokens) and max_tokens
    # (length) both end with finish_reason "length" and half a JSON document
    reply = reply_from_completion(_body(name))
    assert reply.finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.content)
    verdict = judge(reply, MODEL)
    assert isinstance(verdict, Unusable) and verdict.kind == "truncated"


def test_without_the_response_format_the_answer_is_not_json_at_all():
    # asked without response_format the model echoes the narrative: no grammar, no JSON
    reply = reply_from_completion(_body("unconstrained_truncated"))
    assert not reply.content.lstrip().startswith("{")
    verdict = judge(reply._replace(finish_reason="stop"), MODEL)
    assert isinstance(verdict, Unusable) and verdict.kind == "invalid_json"


# -- whole exchanges through the client ---------------------------------------------------------


def test_a_rejected_answer_is_re_asked_with_the_servers_words_echoed_back():
    outcome, sent = _ask("answer_validation_error", "answer_truncated", max_reasks=1)
    assert (outcome.ok, outcome.reason, outcome.requests, outcome.reasks) == (False, "truncated", 2, 1)
    assert (outcome.tokens_in, outcome.tokens_out) == (2096 + 2118, 151 + 442)  # both answers paid for
    echoed = sent[1]["messages"][2]
    assert echoed["role"] == "assistant" and echoed["content"] == _body("answer_validation_error")[
        "choices"][0]["message"]["content"]
    assert "sum to 4.000" in sent[1]["messages"][3]["content"]


def test_a_llama_server_error_body_fails_once_as_a_bad_request():
    # HTTP 400 with llama.cpp's error object ({"error": {"code", "message", "type", ...}}):
    # not retried, not fatal, one typed failure that keeps the server's message
    outcome, sent = _ask("bad_response_format")
    assert (outcome.reason, outcome.requests, outcome.transport_retries, outcome.reasks) == ("bad_request", 1, 0, 0)
    assert len(sent) == 1 and "response_format type must be one of" in outcome.detail


def test_a_request_over_the_slot_fails_once_as_context_exceeded_saying_what_to_do():
    # llama.cpp's 400 exceed_context_size_error: its own reason, not retried, and a detail that
    # says what to do before the server's words
    outcome, sent = _ask("context_exceeded")
    assert (outcome.reason, outcome.requests, outcome.transport_retries, outcome.reasks) == ("context_exceeded", 1, 0, 0)
    assert len(sent) == 1 and outcome.detail.startswith("요청이 모델의 컨텍스트 길이를 넘었습니다")
    assert "--ctx-size" in outcome.detail and "exceeds the available context size (2560 tokens)" in outcome.detail


def test_a_re_ask_that_outgrows_the_slot_ends_as_context_exceeded_on_a_re_ask():
    # the re-ask carries the rejected answer and the error, so a prompt near the slot's size
    # comes back as exceed_context_size_error: the customer fails at once, no retry storm
    outcome, sent = _ask("answer_validation_error", "context_exceeded")
    assert (outcome.reason, outcome.requests, outcome.reasks, outcome.transport_retries) == ("context_exceeded", 2, 1, 0)
    assert _body("context_exceeded")["error"]["type"] == "exceed_context_size_error"
    assert outcome.detail.startswith("재질문(앞선 답과 오류를 덧붙인 요청)이 모델의 컨텍스트 길이를 넘었습니다")


def test_an_answer_under_another_model_name_is_still_read():
    # llama-server serves its one model whatever ``model`` says (no 404 for a wrong name) and
    # answers under its own alias; the client must not insist on the name it asked for
    body = _body("other_model_name")
    assert _fixture("other_model_name")["sent"] == "model 'no-such-model'" and body["model"] == "smollm2-135m-instruct"
    outcome, sent = _ask("other_model_name", max_reasks=0, model="no-such-model")
    assert sent[0]["model"] == "no-such-model"
    assert (outcome.reason, outcome.requests, outcome.tokens_in, outcome.tokens_out) == ("truncated", 1, 2096, 16)
