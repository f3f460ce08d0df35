"""The cost of the LLM stage at scale (issue 12 item 4), cut without changing what it does.

The dry run takes whole batches (bench/dry_run.py): the same estimate as pricing every
history on its own, for a fraction of the CPU. The live client posts a chat completion
without the SDK's per-request work (bench/llm_throughput.py): the same request and the same
exceptions as the SDK's ``client.post``.

The reference below is the dry run as it was: every ``CustomerHistory`` narrated on its own,
its messages keyed and looked up in the cache, and each distinct prompt's messages counted
message by message. The batch path must agree with it exactly: customers, calls, cache hits,
shared prompts and prompt tokens.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from functools import lru_cache

import httpx2
import numpy as np
import openai
import pytest

from forecaster import pipeline
from forecaster.datasets import load_cdnow
from forecaster.spending import approve_cost
from llm.cache import ResponseCache, content_keyer, request_keyer
from llm.client import ChatEndpoint, fatal_message, reached_server, response_format
from llm.forecaster import LLMForecaster
from llm.prompt import build_messages, system_prompt
from llm.tokens import TokenCounter, approximate_token_counts
from narrator import narrative
from narrator.narrative import render_distinct_narratives, render_narrative, render_narratives
from narrator.panel import HistoryBatch
from structurer.schema import BucketScheme, spend_forecast_model

SCHEME = BucketScheme(edges=(15.0, 29.3), currency="USD")
CUSTOMERS = 150  # the first CDNOW customers: a small data set, narrated one by one in the reference


@lru_cache(maxsize=1)
def small_batches() -> tuple[HistoryBatch, ...]:
    """The last 5 anchors of the first customers, and the last anchor once more: a prompt
    seen in an earlier batch is shared across batches too."""
    panel = load_cdnow().panel.take(np.arange(CUSTOMERS))
    batches = [panel.histories(a) for a in pipeline.anchors_with_outcome(panel)[-5:]]
    return (*batches, batches[-1])


def _forecaster(tmp_path, base_url: str = "http://127.0.0.1:9/v1") -> LLMForecaster:
    return LLMForecaster(SCHEME, model="loopback-test-model", base_url=base_url, api_key="not-needed",
                         cache_dir=tmp_path / "cache", concurrency=4, timeout=5.0)


def per_history_estimate(forecaster: LLMForecaster, batches, counter: TokenCounter) -> dict[str, int]:
    """The dry run as it was: one CustomerHistory at a time (see the module docstring)."""
    narratives = [render_narrative(history) for batch in batches for history in batch]
    distinct = [build_messages(system_prompt(SCHEME), n) for n in dict.fromkeys(narratives)]
    with ResponseCache(forecaster.config.cache_dir) as cache:
        pending = [m for m in distinct if cache.get(forecaster.request_key(m)) is None]
    schema = response_format(spend_forecast_model(SCHEME))["json_schema"]["schema"]
    schema_tokens = counter.count(json.dumps(schema, ensure_ascii=False))
    return {"customers": len(narratives), "calls": len(pending), "cache_hits": len(distinct) - len(pending),
            "shared_prompts": len(narratives) - len(distinct),
            "prompt_tokens": sum(counter.count_messages(m) + schema_tokens for m in pending)}


def test_the_batch_dry_run_equals_the_per_history_one(tmp_path, llm_server):
    batches = small_batches()
    first = batches[0]
    _forecaster(tmp_path, llm_server.base_url).forecast_many(list(first)[:40])  # these answers are now cached
    assert llm_server.request_count > 0

    forecaster = _forecaster(tmp_path, llm_server.base_url)  # the same endpoint: the same cache keys
    estimate = forecaster.dry_run(iter(batches), TokenCounter()).summary()
    expected = per_history_estimate(forecaster, batches, TokenCounter())
    assert {key: estimate[key] for key in expected} == expected
    assert expected["cache_hits"] > 0 and expected["calls"] > 0 and expected["shared_prompts"] >= len(batches[-1])


def test_loose_histories_and_a_batch_are_priced_alike(tmp_path):
    batch = small_batches()[-1]
    forecaster = _forecaster(tmp_path)
    as_batch = forecaster.dry_run(batch).summary()
    assert forecaster.dry_run(list(batch)).summary() == as_batch
    assert forecaster.dry_run(iter([batch, *list(batch)])).summary()["calls"] == as_batch["calls"]


def test_approve_cost_narrates_each_batch_once_and_never_one_history(tmp_path, monkeypatch):
    batches = small_batches()
    rendered = []

    def counted(batch, template_dir=None):
        rendered.append(len(batch))
        return render_narratives(batch, template_dir)

    def no_history(self, i):
        raise AssertionError("the dry run built a CustomerHistory")

    monkeypatch.setattr(narrative, "render_narratives", counted)
    monkeypatch.setattr(HistoryBatch, "__getitem__", no_history)
    approve_cost(_Provider(_forecaster(tmp_path)), iter(batches), confirm=True)
    # the last batch comes twice: the second time its narratives are the first's (llm/narratives.py)
    assert len(rendered) == len(batches) - 1
    assert all(0 < n <= len(b) for n, b in zip(rendered, batches))  # equal histories rendered once
    assert sum(rendered) < sum(map(len, batches[:-1]))


def test_distinct_narratives_give_back_every_rows_text():
    batch = load_cdnow().panel.histories(pipeline.anchors_with_outcome(load_cdnow().panel)[-1])
    texts, codes = render_distinct_narratives(batch)
    assert [texts[c] for c in codes] == render_narratives(batch)
    assert len(set(texts)) == len(texts) < len(batch)
    assert codes[0] == 0 and (np.diff(np.maximum.accumulate(codes)) <= 1).all()  # order of first appearance


# -- token counts -------------------------------------------------------------------------


def _approximate_by_regex(text: str) -> int:
    """The approximation as it was written before it was vectorised (regexes, one text)."""
    hangul = len(re.findall(r"[\uac00-\ud7a3]", text))
    latin = len(re.findall(r"[A-Za-z]", text))
    digits = len(re.findall(r"[0-9]", text))
    punctuation = len(text) - hangul - latin - digits - len(re.findall(r"\s", text))
    estimate = (0.34 * hangul + 1.35 * len(re.findall(r"[\uac00-\ud7a3]+", text)) + 0.77 * digits
                + 0.62 * punctuation + len(re.findall(r"[A-Za-z]+", text)))
    return math.ceil(estimate)


EDGE_TEXTS = ["", " ", "\n", "abc DEF 123", "가나다 라마", "가a1,나b2", "\u3000x\u2028y\x1c", "😀!? 😀",
              "a\ud800b", "x" * 70_000, "가" * 3000 + " " + "9" * 500, "첫 구매는 1997년 1월로 12개월 전이며,"]


def test_the_vectorised_approximation_counts_what_the_regexes_counted():
    narratives = render_narratives(small_batches()[0])
    texts = EDGE_TEXTS + narratives + EDGE_TEXTS  # several chunks' worth, edges at both ends
    texts = texts * (1 + 5000 // len(texts))
    assert approximate_token_counts(texts).tolist() == [_approximate_by_regex(t) for t in texts]
    assert approximate_token_counts([]).tolist() == []


# -- the live client's request ----------------------------------------------------------------


def _sdk_and_direct(respond) -> tuple[list, list[httpx2.Request]]:
    """What ``client.post`` (the SDK's way, as the client sent before) and
    :class:`ChatEndpoint` each return or raise for the same server, and the requests the
    server saw: each way posts twice, the second time after the server set a cookie."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return respond(request)

    async def both() -> list:
        http = openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(handler), timeout=7.0)
        async with openai.AsyncOpenAI(api_key="sk-test", base_url="http://llm.test/v1", timeout=7.0,
                                      max_retries=0, http_client=http) as client:
            body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "안녕"}]}).encode()
            direct = ChatEndpoint(client, 7.0)

            async def sdk() -> httpx2.Response:
                return await client.post("/chat/completions", cast_to=httpx2.Response, content=body,
                                         options={"headers": {"Content-Type": "application/json"}})

            outcomes = []
            for send in (sdk, sdk, lambda: direct.post(body), lambda: direct.post(body)):
                if len(outcomes) == 2:
                    http.cookies.clear()  # each way starts without the server's cookie
                try:
                    response = await send()
                    outcomes.append((response.status_code, response.content))
                except openai.APIError as exc:
                    outcomes.append((type(exc), str(exc), getattr(exc, "code", None), getattr(exc, "body", None),
                                     type(exc.__cause__), reached_server(exc), fatal_message(exc)))
            return outcomes

    return asyncio.run(both()), seen


def _request_parts(request: httpx2.Request) -> tuple:
    return request.method, str(request.url), sorted(request.headers.multi_items()), request.content, \
        request.extensions


def test_the_direct_post_sends_the_sdks_request_and_reads_its_answer():
    def answer(request):
        return httpx2.Response(200, json={"choices": []}, headers={"set-cookie": "lb=7; Path=/"})

    outcomes, seen = _sdk_and_direct(answer)
    assert outcomes[:2] == outcomes[2:] == [(200, b'{"choices":[]}')] * 2
    assert [_request_parts(r) for r in seen[:2]] == [_request_parts(r) for r in seen[2:]]
    assert seen[0].headers["authorization"] == "Bearer sk-test" and seen[1].headers["cookie"] == "lb=7"


@pytest.mark.parametrize("respond", [
    lambda r: httpx2.Response(429, json={"error": {"message": "no quota", "type": "insufficient_quota",
                                                   "code": "insufficient_quota"}}),
    lambda r: httpx2.Response(429, text="slow down", headers={"retry-after": "3"}),
    lambda r: httpx2.Response(401, json={"error": {"message": "bad key"}}),
    lambda r: httpx2.Response(503, text="<html>busy</html>"),
    lambda r: httpx2.Response(408, json={}),
], ids=["quota", "rate-limit", "key", "unavailable", "server-timeout"])
def test_the_direct_post_raises_what_the_sdk_raises_for_a_status(respond):
    outcomes, _ = _sdk_and_direct(respond)
    assert outcomes[0] == outcomes[2] and issubclass(outcomes[0][0], openai.APIStatusError)


@pytest.mark.parametrize("error", [httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ReadTimeout,
                                   httpx2.RemoteProtocolError, httpx2.PoolTimeout])
def test_the_direct_post_raises_what_the_sdk_raises_for_a_transport_error(error):
    def fail(request):
        raise error("nothing came back", request=request)

    outcomes, _ = _sdk_and_direct(fail)
    assert outcomes[0] == outcomes[2]
    assert outcomes[0][0] in (openai.APIConnectionError, openai.APITimeoutError) and outcomes[0][4] is error


# -- helpers ----------------------------------------------------------------------------------


class _Provider:
    """What approve_cost reads of a provider: its forecaster."""

    def __init__(self, forecaster: LLMForecaster) -> None:
        self.forecaster = forecaster


def test_the_dry_run_prices_both_modes():
    from llm.ledger import BATCH_PRICE_SHARE, DryRunEstimate

    estimate = DryRunEstimate("gpt-4o-mini", 10, 0, 0, 10, 5_000, 1_000, 0.0123, "approximate")
    summary = estimate.summary()
    assert summary["cost_usd_batch"] == pytest.approx(0.0123 * BATCH_PRICE_SHARE) and BATCH_PRICE_SHARE == 0.5
    assert "$0.0062" in _rendered(estimate)
    unpriced = DryRunEstimate("local", 10, 0, 0, 10, 5_000, 1_000, None, "approximate").summary()
    assert unpriced["cost_usd"] is None and unpriced["cost_usd_batch"] is None


def _rendered(estimate) -> str:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(estimate.render())
    return console.export_text()


@pytest.mark.parametrize("narrative", ["", "첫 구매는 1997년 1월로 \"따옴표\"와 \\ 역슬래시,\n줄바꿈\t탭", "😀 \u2028 \x7f",
                                       "\x00content\x00"])
def test_a_first_asks_key_from_its_narrative_alone_is_the_key_of_its_messages(narrative):
    identity = ("http://127.0.0.1:9/v1", "m", "v", {"type": "object"}, {"temperature": 0.0, "max_tokens": 800})
    system = system_prompt(SCHEME)
    keyer = content_keyer(build_messages(system, "placeholder"), *identity)
    assert keyer(narrative) == request_keyer(*identity)(build_messages(system, narrative))


def test_answered_keys_are_looked_up_in_chunks_as_one_by_one(tmp_path):
    keys = [f"{i:064x}" for i in range(1203)]
    with ResponseCache(tmp_path) as cache:
        for key in keys[::3]:
            cache.put(key, "{}", 1, 1, "m")
        assert cache.answered(keys) == {k for k in keys if cache.get(k) is not None} == set(keys[::3])
        assert cache.answered([]) == set()
