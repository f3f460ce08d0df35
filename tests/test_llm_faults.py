"""Faults against the in-process OpenAI-compatible loopback server (no network).

Timing is asserted only as ordering and loose lower bounds (a Retry-After wait can only
make the gap longer), never as tight wall-clock figures.
"""

from __future__ import annotations

import time
import typing

import pytest

from conftest import FAST_RETRY
from llm.config import RetryPolicy
from llm.errors import RunAborted
from llm_server import FAULTS, LoopbackLLMServer, make_histories
from structurer.schema import FailureReason

TYPED_REASONS = set(typing.get_args(FailureReason))
TRANSPORT_FAULTS = {"rate_limit", "rate_limit_ms", "server_error", "hang"}
ANSWER_FAULTS = {"malformed_json", "bad_sum", "refusal", "truncated"}


def _one(make, server, script, **overrides):
    server.script(script)
    forecaster = make(server, **overrides)
    [record] = forecaster.forecast_many(make_histories(1))
    return record, forecaster


@pytest.mark.parametrize("behaviour", ["rate_limit", "rate_limit_ms"])
def test_429_waits_for_retry_after_then_succeeds(make_llm_forecaster, behaviour):
    with LoopbackLLMServer(retry_after_s=0.3) as server:
        record, forecaster = _one(make_llm_forecaster, server, [behaviour, "valid"])
        first, second = server.requests
    assert record.status == "ok" and record.transport_retries == 1 and record.reasks == 0
    assert record.attempts == 2 == server.request_count
    # the jittered backoff alone would wait at most 0.01 s here: a gap of at least the
    # server's Retry-After shows it was honoured
    assert second.received - first.received >= 0.3
    assert forecaster.ledger.summary()["transport_retries"] == 1


def test_500_then_success(make_llm_forecaster, llm_server):
    record, _ = _one(make_llm_forecaster, llm_server, ["server_error", "valid"])
    assert (record.status, record.transport_retries, record.attempts) == ("ok", 1, 2)
    assert [r.behaviour for r in llm_server.requests] == ["server_error", "valid"]


def test_hung_response_times_out_and_is_retried(make_llm_forecaster, llm_server):
    # timeout long enough that a loaded machine cannot make the valid answer time out too
    record, _ = _one(make_llm_forecaster, llm_server, ["hang", "valid"], timeout=1.0)
    assert (record.status, record.transport_retries, record.attempts) == ("ok", 1, 2)
    assert llm_server.requests[0].answered is None  # the client gave up on it


@pytest.mark.parametrize(("behaviour", "reason"), [
    ("hang", "timeout"), ("rate_limit", "rate_limited"), ("server_error", "server_error"),
])
def test_persistent_transport_fault_fails_with_typed_reason(make_llm_forecaster, llm_server, behaviour, reason):
    record, forecaster = _one(make_llm_forecaster, llm_server, [behaviour] * 3, timeout=0.3)
    assert (record.status, record.reason) == ("failed", reason)
    assert record.attempts == 3 == llm_server.request_count  # bounded: max_attempts
    assert record.transport_retries == 2 and record.reasks == 0
    assert forecaster.ledger.summary()["failures_by_reason"] == {reason: 1}


def test_connection_refused_fails_with_connection_error_and_nothing_counted_as_sent(make_llm_forecaster):
    server = LoopbackLLMServer().start()
    server.stop()  # nothing listens on that port any more
    record, forecaster = _one(make_llm_forecaster, server, [])
    # three attempts, none of which reached a server: not calls, but undelivered
    assert (record.status, record.reason, record.attempts, record.undelivered) == ("failed", "connection_error", 0, 3)
    summary = forecaster.ledger.summary()
    assert (summary["calls"], summary["undelivered"]) == (0, 3) and server.request_count == 0


def test_an_endpoint_that_never_answers_stops_the_run_instead_of_retrying_everyone(make_llm_forecaster):
    server = LoopbackLLMServer().start()
    server.stop()
    forecaster = make_llm_forecaster(server, concurrency=4, retry=RetryPolicy(**{**FAST_RETRY, "unreachable_after": 5}))
    with pytest.raises(RunAborted) as raised:
        forecaster.forecast_many(make_histories(50))
    message = str(raised.value)
    assert "\n" not in message and "connection_error" in message and server.base_url in message
    assert "5개가" in message  # stopped at the limit: not 50 customers x 3 attempts


def test_failures_after_a_first_answer_do_not_stop_the_run(make_llm_forecaster, llm_server):
    # the endpoint answered once: later 5xx are ordinary per-customer failures
    llm_server.script(["valid"] + ["server_error"] * 12)
    forecaster = make_llm_forecaster(llm_server, retry=RetryPolicy(**{**FAST_RETRY, "unreachable_after": 2}))
    records = forecaster.forecast_many(make_histories(5))
    assert [r.status for r in records] == ["ok"] + ["failed"] * 4
    assert {r.reason for r in records[1:]} == {"server_error"}


def test_malformed_json_is_reasked_with_the_error(make_llm_forecaster, llm_server):
    record, _ = _one(make_llm_forecaster, llm_server, ["malformed_json", "valid"])
    assert (record.status, record.reasks, record.transport_retries, record.attempts) == ("ok", 1, 0, 2)
    reask = llm_server.requests[1].messages
    assert [m["role"] for m in reask] == ["system", "user", "assistant", "user"]
    assert "올바른 JSON이 아닙니다" in reask[-1]["content"]
    assert reask[2]["content"].endswith('"probabilities": }')  # the broken answer, echoed back


def test_sum_07_is_reasked_then_fails_as_validation_error(make_llm_forecaster, llm_server):
    record, forecaster = _one(make_llm_forecaster, llm_server, ["bad_sum"] * 3)
    assert (record.status, record.reason) == ("failed", "validation_error")
    assert record.reasks == 2 and record.attempts == 3 == llm_server.request_count
    assert "sum to 0.700" in record.detail
    assert "검증을 통과하지 못했습니다" in llm_server.requests[-1].messages[-1]["content"]
    # tokens of the three rejected answers are all counted
    assert record.tokens_in == sum(r.tokens_in for r in llm_server.requests) > 0
    assert record.tokens_out == sum(r.tokens_out for r in llm_server.requests) > 0
    assert forecaster.ledger.summary()["reasks"] == 2


def test_sum_07_once_then_valid_is_ok(make_llm_forecaster, llm_server):
    record, _ = _one(make_llm_forecaster, llm_server, ["bad_sum", "valid"])
    assert (record.status, record.reasks) == ("ok", 1)
    assert abs(record.forecast.probability_vector().sum() - 1) < 1e-9


@pytest.mark.parametrize(("behaviour", "reason"), [("refusal", "refusal"), ("truncated", "truncated")])
def test_refusal_and_truncation_are_reasked_then_fail(make_llm_forecaster, llm_server, behaviour, reason):
    record, _ = _one(make_llm_forecaster, llm_server, [behaviour] * 3)
    assert (record.status, record.reason, record.reasks, record.attempts) == ("failed", reason, 2, 3)


def test_refusal_then_valid_is_ok(make_llm_forecaster, llm_server):
    record, _ = _one(make_llm_forecaster, llm_server, ["refusal", "valid"])
    assert (record.status, record.reasks) == ("ok", 1)
    assert "거절" in llm_server.requests[1].messages[-1]["content"]


@pytest.mark.parametrize("fatal", ["insufficient_quota", "unauthorized"])
def test_quota_and_auth_errors_stop_the_whole_run(make_llm_forecaster, fatal):
    # three requests hang in flight when the fourth gets the fatal answer: the run must
    # stop at once (cancelling them), not wait for their 5 s timeout, and start no more
    with LoopbackLLMServer(hang_s=10) as server:
        server.script(["hang", "hang", "hang", fatal])
        forecaster = make_llm_forecaster(server, concurrency=4, timeout=5.0)
        started = time.monotonic()
        with pytest.raises(RunAborted) as raised:
            forecaster.forecast_many(make_histories(20))
        elapsed = time.monotonic() - started
        assert server.request_count == 4
    assert elapsed < 5.0
    message = str(raised.value)
    assert "\n" not in message and ("insufficient_quota" in message or "401" in message)


def test_200_customers_with_20_percent_faults_all_accounted_for(make_llm_forecaster):
    with LoopbackLLMServer(fault_rate=0.2, faults=FAULTS + ("rate_limit_ms",), seed=7, retry_after_s=0.01) as server:
        # a client timeout only for the scripted hangs, never for a slow valid answer
        forecaster = make_llm_forecaster(server, concurrency=16, timeout=1.5)
        histories = make_histories(200, seed=3)
        records = forecaster.forecast_many(histories)
        seen = server.requests
    assert [r.customer_id for r in records] == [h.customer_id for h in histories]
    for record in records:
        if record.status == "ok":
            assert record.forecast is not None and record.reason is None
        else:
            assert record.reason in TYPED_REASONS and record.forecast is None
    summary = forecaster.ledger.summary()
    assert summary["ok"] + summary["failed"] == 200 == summary["customers"]
    assert summary["calls"] == len(seen) == sum(r.attempts for r in records)
    assert sum(summary["failures_by_reason"].values()) == summary["failed"]
    # every faulty request is either a counted retry/re-ask or the last word of a failure
    transport_faults = sum(r.behaviour in TRANSPORT_FAULTS for r in seen)
    answer_faults = sum(r.behaviour in ANSWER_FAULTS for r in seen)
    failed_transport = sum(r.status == "failed" and r.reason in {"timeout", "rate_limited", "server_error"} for r in records)
    failed_answer = summary["failed"] - failed_transport
    assert transport_faults == summary["transport_retries"] + failed_transport > 0
    assert answer_faults == summary["reasks"] + failed_answer > 0
    assert summary["tokens_in"] == sum(r.tokens_in for r in seen)
    assert summary["tokens_out"] == sum(r.tokens_out for r in seen)
