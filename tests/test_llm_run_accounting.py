"""What an LLM run sends and what its ledger says, against the loopback server (no network):
identical prompts are sent once, the ledger's calls equal the requests the server
received, the dry run prices what the run will send, and the failures are tabulated."""

from __future__ import annotations

import dataclasses

import pytest
import typer
from rich.console import Console

from forecaster.verbs.provider_options import parse_share
from llm_server import LoopbackLLMServer, make_histories


def _with_copies(n_distinct: int, copies: int) -> list:
    """``n_distinct`` histories, each followed by ``copies`` others with the same months and
    amounts under new customer ids (so the same prompt)."""
    histories = []
    for k, history in enumerate(make_histories(n_distinct, seed=5)):
        histories.append(history)
        histories += [dataclasses.replace(history, customer_id=f"D-{k}-{j}") for j in range(copies)]
    return histories


@pytest.mark.parametrize("use_cache", [True, False])
def test_identical_prompts_are_sent_once_per_run(make_llm_forecaster, use_cache):
    histories = _with_copies(6, 4)  # 30 customers, 6 distinct prompts
    with LoopbackLLMServer(latency_s=0.05) as server:  # slow enough that copies would be in flight together
        forecaster = make_llm_forecaster(server, concurrency=8, use_cache=use_cache)
        seen = []
        records = forecaster.forecast_many(histories, progress=seen.append)
        bodies = server.body_counts()
    assert server.request_count == 6 and set(bodies.values()) == {1}
    assert [r.customer_id for r in records] == [h.customer_id for h in histories]
    assert len(seen) == 30 and all(r.status == "ok" for r in records)
    originals = records[::5]
    assert not any(r.shared_prompt for r in originals) and all(r.attempts == 1 for r in originals)
    for k, original in enumerate(originals):
        for copy in records[5 * k + 1: 5 * k + 5]:
            assert copy.shared_prompt and copy.forecast == original.forecast
            assert (copy.attempts, copy.tokens_in, copy.tokens_out, copy.cache_hit) == (0, 0, 0, False)
    summary = forecaster.ledger.summary()
    assert (summary["customers"], summary["calls"], summary["shared_prompts"], summary["ok"]) == (30, 6, 24, 30)
    assert summary["tokens_in"] == sum(r.tokens_in for r in server.requests)


def test_a_failed_prompt_fails_every_customer_who_shares_it_but_is_paid_once(make_llm_forecaster, llm_server):
    llm_server.script(["bad_sum"] * 3)  # the first prompt: three unusable answers
    records = make_llm_forecaster(llm_server).forecast_many(_with_copies(2, 2))
    assert [r.status for r in records] == ["failed"] * 3 + ["ok"] * 3
    assert [r.attempts for r in records] == [3, 0, 0, 1, 0, 0]
    assert {r.reason for r in records[:3]} == {"validation_error"} and llm_server.request_count == 4


def test_ledger_calls_equal_the_requests_the_server_received(make_llm_forecaster):
    with LoopbackLLMServer(hang_s=5.0) as server:
        # first run: 3 customers answered and cached
        make_llm_forecaster(server).forecast_many(make_histories(3, seed=1))
        before = server.request_count
        server.script([
            "rate_limit", "valid",                    # 429, then an answer
            "server_error", "valid",                  # 500, then an answer
            "hang", "valid",                          # a timeout, then an answer
            "malformed_json", "valid",                # re-ask
            "bad_sum", "refusal", "truncated",        # re-asks, then failed
            "rate_limit_ms", "server_error", "hang",  # transport failure to the end
        ])
        forecaster = make_llm_forecaster(server, timeout=1.0)
        histories = make_histories(3, seed=1) + make_histories(7, seed=2)
        histories.append(dataclasses.replace(histories[-1], customer_id="D-copy"))  # an identical prompt
        records = forecaster.forecast_many(histories)
        received = server.requests[before:]
    summary = forecaster.ledger.summary()
    assert summary["calls"] == len(received) == 15  # 14 scripted + the last customer's one ask
    assert (summary["cache_hits"], summary["shared_prompts"], summary["undelivered"]) == (3, 1, 0)
    assert summary["transport_retries"] == 5 and summary["reasks"] == 3
    assert summary["failures_by_reason"] == {"truncated": 1, "timeout": 1}
    assert summary["tokens_in"] == sum(r.tokens_in for r in received)
    assert summary["tokens_out"] == sum(r.tokens_out for r in received)
    assert sum(r.attempts for r in records) == summary["calls"]


def test_the_dry_run_prices_each_distinct_prompt_once(make_llm_forecaster, llm_server):
    histories = _with_copies(4, 2)  # 12 customers, 4 prompts
    make_llm_forecaster(llm_server).forecast_many(histories[:3])  # the first prompt is now cached
    sent = llm_server.request_count
    forecaster = make_llm_forecaster(llm_server)
    estimate = forecaster.dry_run(histories)
    assert (estimate.customers, estimate.calls, estimate.cache_hits, estimate.shared_prompts) == (12, 3, 1, 8)
    assert llm_server.request_count == sent
    forecaster.forecast_many(histories)
    assert llm_server.request_count - sent == estimate.calls  # the estimate is what the run sent


def test_failures_are_tabulated_by_reason_with_an_example(make_llm_forecaster, llm_server):
    llm_server.script(["bad_sum"] * 3 + ["refusal"] * 3 + ["bad_sum"] * 3)
    forecaster = make_llm_forecaster(llm_server)
    forecaster.forecast_many(make_histories(4))
    ledger = forecaster.ledger
    assert ledger.failed_share == pytest.approx(0.75)
    console = Console(record=True, width=200)
    console.print(ledger.render_failures())
    text = console.export_text()
    assert "validation_error" in text and "refusal" in text and "50.0%" in text and "25.0%" in text
    assert "sum to 0.700" in text  # the first detail of that reason, on one line


@pytest.mark.parametrize(("text", "share"), [("0.1", 0.1), ("10%", 0.1), ("0", 0.0), ("100%", 1.0), ("0.25", 0.25)])
def test_max_failed_reads_a_share_or_a_percentage(text, share):
    assert parse_share(text) == pytest.approx(share)


@pytest.mark.parametrize("text", ["-0.1", "1.5", "120%", "many", ""])
def test_max_failed_refuses_anything_else(text):
    with pytest.raises(typer.BadParameter):
        parse_share(text)


def test_the_llm_stage_errors_become_the_one_line_user_error(tmp_path, monkeypatch):
    # llm/ never imports forecaster/: its own errors are translated where forecaster/ calls it
    from forecaster.errors import UserError
    from forecaster.providers import LLMForecaster, Provider
    from llm.errors import PriceFileError
    from structurer.schema import BucketScheme

    prices = tmp_path / "prices.json"
    prices.write_text("not json")
    monkeypatch.setenv("FORECASTER_PRICES", str(prices))
    with pytest.raises(UserError, match="prices.json") as raised:
        Provider("llm", BucketScheme(edges=(15.0, 29.3), currency="USD"),
                 LLMForecaster(model="m", base_url="http://127.0.0.1:9/v1"))
    assert isinstance(raised.value.__cause__, PriceFileError)
