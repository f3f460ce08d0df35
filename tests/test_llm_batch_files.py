"""Batch request files and imports: each line's body is what the live path sends, one line
per distinct uncached prompt, the line and byte limits split the requests over several
files, and ``import`` reads a vLLM ``run-batch`` output file into the cache through the
live path's validation."""

from __future__ import annotations

import json

import pytest

from llm.batch import export_batch_requests, import_batch_outputs, run_batch_jobs
from llm.batch_files import BatchJobError, RequestSpec, pending_prompts, read_jsonl, write_request_files
from llm.batch_import import BatchOutcome
from llm.client import CallOutcome
from llm_batch_server import LoopbackBatchServer
from llm_server import make_histories


@pytest.fixture
def server():
    with LoopbackBatchServer(lifetime_s=60.0) as s:
        yield s


def _lines(files):
    return [line for f in files for line in read_jsonl(f.path)]


def test_each_request_line_is_the_body_the_live_path_sends(server, make_llm_forecaster, tmp_path):
    forecaster = make_llm_forecaster(server)
    histories = make_histories(3, seed=1)
    lines = _lines(export_batch_requests(forecaster, histories, folder=tmp_path / "out"))
    make_llm_forecaster(server, use_cache=False).forecast_many(histories)  # the live path, as the server saw it
    assert [line["body"] for line in lines] == server.chat_bodies
    for line, history in zip(lines, histories):
        messages = forecaster.messages_for(history)
        assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
        assert line["custom_id"] == forecaster.request_key(messages)
        assert [m["role"] for m in line["body"]["messages"]] == ["system", "user"]  # the stable prefix first


def test_one_line_per_distinct_uncached_prompt(server, make_llm_forecaster, tmp_path):
    forecaster = make_llm_forecaster(server)
    histories = make_histories(4, seed=2)
    forecaster.forecast_many(histories[:1])  # its answer is cached: no line for it
    asked = [histories[1], histories[2], histories[1], histories[3], histories[2], histories[0]]
    lines = _lines(export_batch_requests(forecaster, asked, folder=tmp_path / "out"))
    assert [line["custom_id"] for line in lines] == [
        forecaster.request_key(forecaster.messages_for(h)) for h in histories[1:]]

    # several history sets (e.g. a run's anchors) make one set of files, still one line a prompt
    both = _lines(export_batch_requests(forecaster, asked[:3], asked[2:], folder=tmp_path / "both"))
    assert [line["custom_id"] for line in both] == [line["custom_id"] for line in lines]


def test_request_files_are_split_at_the_line_and_byte_limits(server, make_llm_forecaster, tmp_path):
    forecaster = make_llm_forecaster(server)
    spec = RequestSpec.of(forecaster)
    prompts = pending_prompts(spec, [forecaster.messages_for(h) for h in make_histories(10, seed=3)], None)
    by_lines = write_request_files(spec, prompts, tmp_path / "lines", max_lines=3)
    assert [f.lines for f in by_lines] == [3, 3, 3, 1]
    assert [line["custom_id"] for line in _lines(by_lines)] == [p.key for p in prompts]

    longest = max(len(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()) + 1
                  for line in _lines(by_lines))
    limit = 2 * longest + 1  # room for two lines, never three (the shared system prompt makes them alike)
    by_bytes = write_request_files(spec, prompts, tmp_path / "bytes", max_bytes=limit)
    assert [f.lines for f in by_bytes] == [2, 2, 2, 2, 2]
    assert all(f.path.stat().st_size == f.bytes <= limit for f in by_bytes)
    assert [line["custom_id"] for line in _lines(by_bytes)] == [p.key for p in prompts]
    with pytest.raises(BatchJobError, match="over the"):
        write_request_files(spec, prompts, tmp_path / "tiny", max_bytes=longest // 2)


def test_a_run_over_the_limits_submits_one_job_per_file(server, make_llm_forecaster):
    forecaster = make_llm_forecaster(server)
    histories = make_histories(10, seed=4)
    outcome = run_batch_jobs(forecaster, histories, poll_interval_s=0, max_lines=4)
    assert (server.uploads, server.batches_created, outcome.answered) == (3, 3, 10)
    sizes = sorted(len(content.decode().splitlines()) for content in server.uploaded_contents())
    assert sizes == [2, 4, 4]


def _vllm_line(request, response_body, status=None, error=None):
    """One line as vLLM ``run-batch`` writes it: a successful line may leave the status out;
    an error line has a 400 status, no body and the error as a string."""
    response = {"request_id": "vllm-batch-1", "body": response_body}
    if status is not None:
        response["status_code"] = status
    return {"id": "vllm-1", "custom_id": request["custom_id"], "response": response, "error": error}


def test_import_reads_a_vllm_output_file_into_the_cache(server, make_llm_forecaster, tmp_path):
    forecaster = make_llm_forecaster(server)
    histories = make_histories(8, seed=5)
    requests = _lines(export_batch_requests(forecaster, histories, folder=tmp_path / "in"))
    out = []
    for i, request in enumerate(requests):
        if i % 4 == 0:  # valid, status left out
            out.append(_vllm_line(request, server.respond("valid", request["body"])[2]))
        elif i % 4 == 1:  # the request failed
            out.append(_vllm_line(request, None, 400, "Input validation error: too many tokens"))
        elif i % 4 == 2:  # answered, but the probabilities do not sum to 1: re-asked live
            out.append(_vllm_line(request, server.respond("bad_sum", request["body"])[2], 200))
        else:
            out.append(_vllm_line(request, server.respond("valid", request["body"])[2], 200))
    out.append({"id": "vllm-2", "custom_id": "from-another-run", "response": None, "error": "x"})
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in out), encoding="utf-8")

    outcome = import_batch_outputs(forecaster, histories, paths=[path])
    assert (outcome.answered, outcome.reasked, outcome.unmatched, outcome.prompts) == (4, 2, 1, 8)
    assert server.request_count == 2
    assert sorted(f.reason for f in outcome.failures.values()) == ["bad_request", "bad_request"]
    assert all("too many tokens" in f.detail for f in outcome.failures.values())
    before = server.request_count
    records = forecaster.forecast_many(histories)
    assert server.request_count - before == 2 and sum(r.cache_hit for r in records) == 6
    # every prompt is answered now (the live run asked the two failed ones): a second
    # import of the file leaves the cache as it is and asks nothing
    again = import_batch_outputs(forecaster, histories, paths=[path])
    assert (again.answered, again.already_cached, again.failures) == (0, 8, {})
    assert server.request_count - before == 2


def test_an_output_file_that_is_not_jsonl_is_one_clear_error(server, make_llm_forecaster, tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"custom_id": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(BatchJobError, match=r"results.jsonl:2 is not a JSON line"):
        import_batch_outputs(make_llm_forecaster(server), make_histories(1), paths=[path])


def test_batch_mode_needs_the_cache(server, make_llm_forecaster, tmp_path):
    with pytest.raises(BatchJobError, match="without --no-cache"):
        run_batch_jobs(make_llm_forecaster(server, use_cache=False), make_histories(1), poll_interval_s=0)


def test_an_outcome_survives_the_job_state_file():
    outcome = BatchOutcome(prompts=3, answered=1, batch_tokens_in=40, failures={
        "k": CallOutcome(reason="server_error", detail="batch line, status 500: x", requests=1, tokens_in=2)})
    back = BatchOutcome.from_json(json.loads(json.dumps(outcome.to_json())))
    assert back == outcome
