"""Units of the LLM stage: answer judging, Retry-After, fatal errors, configuration, the
cache, the ledger, token estimates and the dry run, concurrency and ordering."""

from __future__ import annotations

import json
import sqlite3

import httpx2
import openai
import pytest

import llm.tokens as tokens_module
from llm.cache import ResponseCache, cache_key
from llm.client import Reply, Unusable, fatal_message, judge, reached_server, retry_after_s, transport_reason
from llm.config import LOCAL_PLACEHOLDER_KEY, resolve_config
from llm.errors import LLMConfigError, LLMError, PriceFileError
from llm.ledger import OUTPUT_TOKENS_ASSUMED, Price, PriceTable, UsageLedger
from llm.tokens import TokenCounter, approximate_tokens
from llm.transport import is_transient
from llm_server import LoopbackLLMServer, make_histories, synthetic_answer
from structurer.schema import BucketScheme, spend_forecast_model

SCHEME = BucketScheme(edges=(15.0, 29.3), currency="USD")
MODEL = spend_forecast_model(SCHEME)


def _valid_text(prob_sum: float = 1.0) -> str:
    request = {"messages": [{"role": "user", "content": "x"}],
               "response_format": {"json_schema": {"schema": {"properties": {"probabilities": {"required": SCHEME.ids}}}}}}
    return json.dumps(synthetic_answer(request, prob_sum), ensure_ascii=False)


def _status_error(cls, status: int, headers: dict | None = None, body: dict | None = None):
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return cls("error", response=response, body=body)


# -- judging answers -------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "kind"), [
    (Reply(None, "I can't help with that.", "stop", 1, 1), "refusal"),
    (Reply('{"rationale": "잘', None, "length", 1, 1), "truncated"),
    (Reply("", None, "stop", 1, 1), "invalid_json"),
    (Reply('{"rationale": }', None, "stop", 1, 1), "invalid_json"),
    (Reply(_valid_text(0.7), None, "stop", 1, 1), "validation_error"),
    (Reply(_valid_text().replace('"rationale"', '"reason"'), None, "stop", 1, 1), "validation_error"),
])
def test_judge_names_why_an_answer_is_unusable(reply, kind):
    verdict = judge(reply, MODEL)
    assert isinstance(verdict, Unusable) and verdict.kind == kind


def test_judge_accepts_and_renormalises_a_valid_answer():
    answer = judge(Reply(_valid_text(1.015), None, "stop", 1, 1), MODEL)
    assert isinstance(answer, MODEL)
    assert abs(answer.probability_vector().sum() - 1) < 1e-12


# -- transport errors ------------------------------------------------------------------------


def test_retry_after_headers_are_read_like_the_sdk_does():
    assert retry_after_s(_status_error(openai.RateLimitError, 429, {"retry-after-ms": "250"})) == 0.25
    assert retry_after_s(_status_error(openai.RateLimitError, 429, {"retry-after": "2"})) == 2.0
    assert retry_after_s(_status_error(openai.RateLimitError, 429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_s(_status_error(openai.RateLimitError, 429, {"retry-after": "soon"})) is None
    assert retry_after_s(_status_error(openai.RateLimitError, 429)) is None
    assert retry_after_s(ValueError("not an HTTP error")) is None


def test_only_quota_and_auth_errors_are_fatal():
    quota = _status_error(openai.RateLimitError, 429, body={"code": "insufficient_quota", "type": "insufficient_quota"})
    assert "insufficient_quota" in fatal_message(quota)
    assert "401" in fatal_message(_status_error(openai.AuthenticationError, 401))
    assert "403" in fatal_message(_status_error(openai.PermissionDeniedError, 403))
    assert fatal_message(_status_error(openai.RateLimitError, 429, body={"code": "rate_limit_exceeded"})) is None
    assert fatal_message(_status_error(openai.InternalServerError, 500)) is None


@pytest.mark.parametrize(("error", "reason", "retried"), [
    (openai.RateLimitError, "rate_limited", True),
    (openai.InternalServerError, "server_error", True),
    (openai.ConflictError, "server_error", True),
    (openai.APIStatusError, "timeout", True),  # 408
    (openai.BadRequestError, "bad_request", False),
    (openai.NotFoundError, "other", False),
])
def test_transport_errors_get_typed_reasons(error, reason, retried):
    status = {openai.RateLimitError: 429, openai.InternalServerError: 503, openai.ConflictError: 409,
              openai.APIStatusError: 408, openai.BadRequestError: 400, openai.NotFoundError: 404}[error]
    exc = _status_error(error, status)
    assert transport_reason(exc) == reason and is_transient(exc) == retried


def _wrapped(cls, cause: Exception):
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    try:
        raise cls(request=request) from cause
    except cls as exc:
        return exc


@pytest.mark.parametrize(("error", "cause", "reached"), [
    (openai.APIConnectionError, httpx2.ConnectError("[Errno 111] Connection refused"), False),
    (openai.APITimeoutError, httpx2.ConnectTimeout("connect timed out"), False),
    (openai.APITimeoutError, httpx2.PoolTimeout("no free connection"), False),
    (openai.APITimeoutError, httpx2.ReadTimeout("read timed out"), True),  # written, the answer never came
    (openai.APIConnectionError, httpx2.RemoteProtocolError("Server disconnected"), True),
])
def test_only_attempts_that_never_connected_are_not_counted_as_requests(error, cause, reached):
    exc = _wrapped(error, cause)
    assert reached_server(exc) is reached and is_transient(exc)
    assert reached_server(_status_error(openai.InternalServerError, 500))  # any status code is an answer


# -- configuration ---------------------------------------------------------------------------


def test_flags_override_the_environment_and_local_servers_need_no_key():
    env = {"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "FORECASTER_MODEL": "env-model"}
    config = resolve_config(model="flag-model", env=env)
    assert (config.model, config.base_url, config.api_key) == ("flag-model", "http://127.0.0.1:8000/v1", "sk-env")
    local = resolve_config(env={"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "FORECASTER_MODEL": "llama3.1"})
    assert local.api_key == LOCAL_PLACEHOLDER_KEY and local.endpoint == "http://127.0.0.1:11434/v1"
    assert resolve_config(model="m", env={"OPENAI_API_KEY": "sk-x"}).endpoint == "https://api.openai.com/v1"
    assert "sk-env" not in repr(config)


@pytest.mark.parametrize(("env", "mentions"), [
    ({"OPENAI_API_KEY": "sk-x"}, "FORECASTER_MODEL"),
    ({"FORECASTER_MODEL": "gpt-4o-mini"}, "OPENAI_API_KEY"),
])
def test_missing_model_or_credentials_is_one_clear_line(env, mentions):
    with pytest.raises(LLMConfigError) as raised:
        resolve_config(env=env)
    assert isinstance(raised.value, LLMError)  # forecaster/providers.py makes it the one-line user error
    assert mentions in str(raised.value) and "\n" not in str(raised.value)


# -- cache -----------------------------------------------------------------------------------


def test_cache_key_covers_every_input_that_changes_the_answer():
    base = dict(endpoint="http://h/v1", model="m", prompt_version="p", messages=[{"role": "user", "content": "a"}],
                schema={"type": "object"}, sampling={"temperature": 0.0})
    key = cache_key(**base)
    assert cache_key(**{**base, "endpoint": "http://h/v1/"}) == key  # trailing slash is the same endpoint
    for change in ({"endpoint": "http://other/v1"}, {"model": "m2"}, {"prompt_version": "p2"},
                   {"messages": [{"role": "user", "content": "b"}]}, {"schema": {"type": "array"}},
                   {"sampling": {"temperature": 0.5}}):
        assert cache_key(**{**base, **change}) != key


def test_cache_survives_reopening_and_runs_in_wal_mode(tmp_path):
    with ResponseCache(tmp_path) as cache:
        cache.put("k", '{"a": 1}', 10, 5, "m")
    with ResponseCache(tmp_path) as cache:
        hit = cache.get("k")
        assert (hit.answer_json, hit.tokens_in, hit.tokens_out) == ('{"a": 1}', 10, 5)
        assert cache.get("missing") is None and len(cache) == 1
    assert sqlite3.connect(tmp_path / "llm-responses.sqlite3").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rerun_is_served_from_the_cache_and_failures_are_not_cached(make_llm_forecaster, llm_server):
    llm_server.script(["bad_sum"] * 3)  # the first customer fails: nothing to cache
    histories = make_histories(5)
    first = make_llm_forecaster(llm_server).forecast_many(histories)
    assert [r.status for r in first] == ["failed"] + ["ok"] * 4
    sent = llm_server.request_count
    again = make_llm_forecaster(llm_server)
    second = again.forecast_many(histories)
    assert [r.cache_hit for r in second] == [False] + [True] * 4
    assert llm_server.request_count == sent + 1  # only the failed customer is asked again
    assert [r.forecast for r in second[1:]] == [r.forecast for r in first[1:]]
    summary = again.ledger.summary()
    assert (summary["cache_hits"], summary["calls"]) == (4, 1)
    assert summary["cached_tokens_in"] == sum(r.tokens_in for r in first[1:])


# -- ledger, prices, tokens ------------------------------------------------------------------


def test_price_table_matches_snapshots_and_admits_unknown_models(tmp_path, monkeypatch):
    table = PriceTable()
    assert table.lookup("gpt-4o-mini-2024-07-18") == table.lookup("gpt-4o-mini") != table.lookup("gpt-4o")
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert table.cost("llama3.1:8b", 10, 10) is None
    prices = tmp_path / "prices.json"
    prices.write_text('{"llama3.1:8b": {"input": 0, "output": 0}, "gpt-4o-mini": {"input": 1, "output": 2}}')
    monkeypatch.setenv("FORECASTER_PRICES", str(prices))
    loaded = PriceTable.load()
    assert loaded.cost("llama3.1:8b", 10, 10) == 0.0 and loaded.cost("gpt-4o-mini", 10**6, 0) == 1.0
    prices.write_text('{"m": 3}')
    with pytest.raises(PriceFileError, match="prices.json"):
        PriceTable.load()


def test_ledger_summary_and_rendering(make_llm_forecaster, llm_server):
    llm_server.script(["server_error", "valid", "bad_sum", "valid"])
    forecaster = make_llm_forecaster(llm_server, model="gpt-4o-mini", prices=PriceTable({"gpt-4o-mini": Price(1.0, 2.0)}))
    records = forecaster.forecast_many(make_histories(3))
    summary = forecaster.ledger.summary()
    assert (summary["calls"], summary["transport_retries"], summary["reasks"]) == (5, 1, 1)
    assert summary["cost_usd"] == pytest.approx((summary["tokens_in"] * 1.0 + summary["tokens_out"] * 2.0) / 1e6)
    assert summary["latency_p50_s"] <= summary["latency_p95_s"]
    assert sum(r.latency_s for r in records) > 0
    unknown = UsageLedger("local-model", PriceTable({})).summary()
    assert unknown["cost_usd"] is None and "unknown price" in unknown["cost_note"]

    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(forecaster.ledger.render())
    text = console.export_text()
    assert "API 호출 (calls)" in text and "재질문 (re-asks)" in text and "$" in text


def test_token_approximation_matches_measured_o200k_counts():
    # reference counts measured once with the real o200k_base encoding (tiktoken 0.14)
    korean = "첫 구매는 1997년 1월로 12개월 전이며, 그때부터 12개월 중 4개월에 구매했습니다.\n누적 5회 주문에 96.4달러를 썼습니다."
    english = "The quick brown fox jumps over the lazy dog. Structured outputs make the model follow a JSON schema."
    assert approximate_tokens(korean) == pytest.approx(49, rel=0.1)
    assert approximate_tokens(english) == pytest.approx(20, rel=0.1)


def test_token_counter_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # no o200k file here
    import tiktoken.load

    def no_network(*args, **kwargs):
        raise AssertionError("tiktoken tried to download its BPE file")

    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    tokens_module._cached_o200k.cache_clear()
    try:
        counter = TokenCounter()
        assert counter.method.startswith("approximation") and counter.count("안녕하세요") > 0
    finally:
        tokens_module._cached_o200k.cache_clear()


def test_dry_run_sends_nothing_and_subtracts_cache_hits(make_llm_forecaster, llm_server):
    histories = make_histories(10)
    make_llm_forecaster(llm_server).forecast_many(histories[:4])
    sent = llm_server.request_count
    forecaster = make_llm_forecaster(llm_server, model="gpt-4o-mini")
    # gpt-4o-mini is another model: nothing cached for it, so all 10 would be called
    estimate = forecaster.dry_run(histories)
    assert (estimate.calls, estimate.cache_hits) == (10, 0)
    same_model = make_llm_forecaster(llm_server).dry_run(histories)
    assert (same_model.calls, same_model.cache_hits) == (6, 4)
    assert llm_server.request_count == sent
    assert estimate.output_tokens == 10 * OUTPUT_TOKENS_ASSUMED
    assert estimate.prompt_tokens > 10 * 300  # system prompt + schema + narrative each
    assert estimate.cost_usd == pytest.approx(PriceTable().cost("gpt-4o-mini", estimate.prompt_tokens, estimate.output_tokens))


# -- concurrency, order, progress ------------------------------------------------------------


def test_concurrency_is_bounded_and_records_keep_input_order(make_llm_forecaster):
    with LoopbackLLMServer(latency_s=0.05) as server:
        forecaster = make_llm_forecaster(server, concurrency=8)
        histories = make_histories(40)
        seen = []
        records = forecaster.forecast_many(histories, progress=seen.append)
        assert 4 <= server.max_in_flight <= 8  # bounded, and really concurrent
    assert [r.customer_id for r in records] == [h.customer_id for h in histories]
    assert sorted(r.customer_id for r in seen) == sorted(h.customer_id for h in histories)
    assert all(r.provider == "llm" and r.model == "loopback-test-model" for r in records)
