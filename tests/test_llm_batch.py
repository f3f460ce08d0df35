"""Batch mode end to end against the loopback Batch API server (tests/llm_batch_server.py):
upload, job status changes, an output file with valid, invalid and failed lines and an error
file, the live run afterwards, a run interrupted or killed after submission that resumes
without submitting anything again, jobs that expire or fail, and what the files on disk hold."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm.batch import batch_failure_records, run_batch_jobs
from llm.batch_jobs import JOBS_FOLDER, STATE_FILE, BatchPending
from llm.batch_files import BatchJobError
from llm.config import RetryPolicy
from llm_batch_server import LoopbackBatchServer
from llm_server import make_histories

ROOT = Path(__file__).resolve().parents[1]
LINES = ["valid", "bad_sum", "server_error", "error", "malformed_json", "missing", "rate_limit", "refusal",
         "valid", "valid"]
UNUSABLE = {"bad_sum", "malformed_json", "refusal"}
FAILED = {"server_error": "server_error", "error": "timeout", "rate_limit": "rate_limited", "missing": "other"}


@pytest.fixture
def server():
    with LoopbackBatchServer(lifetime_s=60.0) as s:
        yield s


def _state(cache_dir: Path) -> dict:
    return json.loads((cache_dir / STATE_FILE).read_text(encoding="utf-8"))


def test_batch_answers_go_to_the_cache_and_the_live_run_asks_only_the_failed_prompts(server, make_llm_forecaster,
                                                                                      tmp_path):
    forecaster = make_llm_forecaster(server)
    histories = make_histories(len(LINES), seed=3)
    keys = [forecaster.request_key(forecaster.messages_for(h)) for h in histories]
    server.script_lines(LINES)
    seen = []
    outcome = run_batch_jobs(forecaster, histories, poll_interval_s=0, progress=seen.append)

    assert (server.uploads, server.batches_created, outcome.files_uploaded, outcome.batches_created) == (1, 1, 1, 1)
    assert [p.statuses for p in seen] == [("in_progress",), ("finalizing",), ("completed",)]
    assert (seen[-1].done, seen[-1].total, seen[-1].finished_jobs) == (len(LINES), len(LINES), 1)
    assert outcome.answered == LINES.count("valid")
    # each unusable answer was re-asked live once, with the error, and then answered
    assert outcome.reasked == len(UNUSABLE) == server.request_count == outcome.live_requests
    first_asks = {json.dumps(body["messages"][:2], ensure_ascii=False) for body in server.chat_bodies}
    assert len(first_asks) == len(UNUSABLE) and all(len(body["messages"]) == 4 for body in server.chat_bodies)
    assert all(body["messages"][3]["content"].endswith("스키마에 맞는 JSON 객체 하나로 다시 답하세요.")
               for body in server.chat_bodies)
    assert {key: f.reason for key, f in outcome.failures.items()} == {
        keys[i]: FAILED[line] for i, line in enumerate(LINES) if line in FAILED}
    failed_records = batch_failure_records(forecaster, histories, outcome)
    assert sorted((r.customer_id, r.status, r.reason) for r in failed_records) == sorted(
        (histories[i].customer_id, "failed", FAILED[line]) for i, line in enumerate(LINES) if line in FAILED)
    # the run closed: no job left recorded, its files removed
    assert _state(tmp_path / "llm-cache")["runs"] == {}
    assert not any((tmp_path / "llm-cache" / JOBS_FOLDER).iterdir())

    # the live run finds every answered prompt in the cache and asks only the failed ones
    before = server.request_count
    records = forecaster.forecast_many(histories)
    live = server.chat_bodies[before:]
    assert len(live) == len(FAILED)
    assert {json.dumps(b["messages"], ensure_ascii=False) for b in live} == {
        json.dumps(forecaster.messages_for(histories[i]), ensure_ascii=False)
        for i, line in enumerate(LINES) if line in FAILED}
    hits = [r for r in records if r.cache_hit]
    assert len(hits) == len(LINES) - len(FAILED) and all(r.status == "ok" for r in records)
    # the cached answers carry the tokens of the batch lines (and of the live re-asks)
    assert sum(r.tokens_in for r in hits) == outcome.batch_tokens_in + outcome.live_tokens_in > 0


def test_an_interrupted_run_resumes_by_polling_and_submits_nothing_again(server, make_llm_forecaster, tmp_path):
    forecaster = make_llm_forecaster(server)
    histories = make_histories(9, seed=4)
    server.hold_jobs(True)
    with pytest.raises(BatchPending, match="다시 제출하지 않고"):
        run_batch_jobs(forecaster, histories, poll_interval_s=0, max_wait_s=0, max_lines=4)
    recorded = next(iter(_state(tmp_path / "llm-cache")["runs"].values()))["jobs"]
    assert [(j["lines"], j["status"]) for j in recorded] == [(4, "in_progress"), (4, "in_progress"), (1, "in_progress")]
    assert all(j["file_id"] and j["batch_id"] for j in recorded)
    assert (server.uploads, server.batches_created) == (3, 3)

    server.hold_jobs(False)
    polls = server.polls
    outcome = run_batch_jobs(forecaster, histories, poll_interval_s=0, max_lines=4)
    assert (server.uploads, server.batches_created) == (3, 3)  # nothing uploaded or created again
    assert (outcome.files_uploaded, outcome.batches_created) == (0, 0)
    assert server.polls > polls and outcome.answered == 9
    before = server.request_count
    assert all(r.cache_hit for r in forecaster.forecast_many(histories))
    assert server.request_count == before


def test_a_run_stopped_between_upload_and_job_creation_creates_the_job_without_uploading_again(
        server, make_llm_forecaster):
    forecaster = make_llm_forecaster(server, retry=RetryPolicy(max_attempts=1))  # no SDK retry of the 500
    histories = make_histories(3, seed=5)
    server.failing_creations = 1
    with pytest.raises(BatchJobError, match="creating a batch job failed"):
        run_batch_jobs(forecaster, histories, poll_interval_s=0)
    assert (server.uploads, server.batches_created) == (1, 0)
    outcome = run_batch_jobs(forecaster, histories, poll_interval_s=0)
    assert (server.uploads, server.batches_created) == (1, 1)
    assert outcome.answered == 3


CHILD = """
import sys
sys.path.insert(0, sys.argv[4])
from llm.batch import run_batch_jobs
from llm.forecaster import LLMForecaster
from llm_server import STAND_IN_NARRATIVE_VERSION, make_histories, stand_in_narrate
from structurer.schema import BucketScheme
forecaster = LLMForecaster(BucketScheme(edges=(15.0, 29.3), currency="USD"), model="loopback-test-model",
                           base_url=sys.argv[1], cache_dir=sys.argv[2], narrate=stand_in_narrate,
                           narrative_version=STAND_IN_NARRATIVE_VERSION)
run_batch_jobs(forecaster, make_histories(int(sys.argv[3]), seed=6), poll_interval_s=0.01)
"""


def test_a_killed_run_resumes_by_polling_the_recorded_job(server, make_llm_forecaster, tmp_path):
    """SIGKILL, a real subprocess: the job id written before the first poll is all the
    second run needs."""
    cache_dir = tmp_path / "llm-cache"
    server.hold_jobs(True)
    child = subprocess.Popen([sys.executable, "-c", CHILD, server.base_url, str(cache_dir), "6", str(ROOT / "tests")],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while server.polls == 0 and child.poll() is None:
            assert time.monotonic() < deadline, "timed out waiting for the child to poll"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL, err
    assert (server.uploads, server.batches_created) == (1, 1)

    server.hold_jobs(False)
    forecaster = make_llm_forecaster(server)
    outcome = run_batch_jobs(forecaster, make_histories(6, seed=6), poll_interval_s=0)
    assert (server.uploads, server.batches_created, outcome.answered) == (1, 1, 6)
    assert _state(cache_dir)["runs"] == {}


@pytest.mark.parametrize("end, reason, detail", [
    ("expired", "timeout", "24 h window ended"),
    ("failed", "bad_request", "The input file is malformed"),
])
def test_jobs_that_expire_or_fail_leave_typed_failures(server, make_llm_forecaster, end, reason, detail):
    forecaster = make_llm_forecaster(server)
    histories = make_histories(6, seed=7)
    server.end_jobs_with([end])
    outcome = run_batch_jobs(forecaster, histories, poll_interval_s=0)
    answered = 3 if end == "expired" else 0
    assert outcome.answered == answered and len(outcome.failures) == 6 - answered
    if end == "expired":  # the requests it never ran come back as batch_expired error lines
        assert all(f.reason == reason and "completion window" in f.detail for f in outcome.failures.values())
    else:  # a job that failed validation has no file at all
        assert all(f.reason == reason and detail in f.detail for f in outcome.failures.values())


def test_no_customer_id_or_api_key_in_request_files_state_or_uploads(server, make_llm_forecaster, tmp_path):
    secret = "-".join(["loopback", "credential", "4242"])  # a marker to look for, shaped like no real key
    forecaster = make_llm_forecaster(server, api_key=secret)
    histories = make_histories(5, seed=8)
    server.hold_jobs(True)
    with pytest.raises(BatchPending):
        run_batch_jobs(forecaster, histories, poll_interval_s=0, max_wait_s=0)
    on_disk = [p for p in (tmp_path / "llm-cache").rglob("*") if p.is_file() and "sqlite" not in p.name]
    assert {p.name for p in on_disk} == {STATE_FILE, "requests-0001.jsonl"}
    texts = [p.read_text(encoding="utf-8") for p in on_disk] + [c.decode() for c in server.uploaded_contents()]
    assert any("월별 기록" in t for t in texts)  # the prompts are there ...
    for text in texts:  # ... and nothing that names a customer or the key
        assert secret not in text
        assert not any(h.customer_id in text for h in histories)
