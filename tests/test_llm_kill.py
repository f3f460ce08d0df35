"""A batch killed half-way (SIGKILL, a real subprocess) resumes from the SQLite cache
without sending any answered request again.

The server lives in this test process and counts requests by a hash of their body. After
30 answers it holds every new request; once all ``CONCURRENCY`` slots of the client are
held, every answer the client received has been written to the cache (an answer is
cached before its slot is released), and the test kills the client right then. The held
requests were never answered: they are the only ones the second run may send again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from llm_server import LoopbackLLMServer

N_CUSTOMERS = 60
CONCURRENCY = 4
KILL_AFTER_ANSWERS = 30
SCRIPT = Path(__file__).with_name("llm_kill_run.py")


def _run(server: LoopbackLLMServer, cache_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), server.base_url, str(cache_dir), str(N_CUSTOMERS), str(CONCURRENCY)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_killed_batch_resumes_without_repeating_answered_requests(tmp_path):
    cache_dir = tmp_path / "cache"
    with LoopbackLLMServer(latency_s=0.05, lifetime_s=60) as server:
        server.hold_after(KILL_AFTER_ANSWERS)
        first = _run(server, cache_dir)
        try:
            _wait_until(lambda: server.held == CONCURRENCY, 30, "the client to fill every slot")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        assert first.returncode == -signal.SIGKILL
        answered_first = {r.body_hash for r in server.requests if r.answered is not None}
        received_first = len(server.requests)
        assert len(answered_first) >= KILL_AFTER_ANSWERS

        server.hold_after(None)
        server.release()
        second = _run(server, cache_dir)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        requests = server.requests

    result = json.loads(out)
    second_run = requests[received_first:]
    # nothing the server already answered is sent again ...
    assert not answered_first & {r.body_hash for r in second_run}
    # ... every body is answered exactly once over both runs ...
    answered = [r.body_hash for r in requests if r.answered is not None]
    assert len(answered) == len(set(answered)) == N_CUSTOMERS
    # ... and the only repeats are the requests held (never answered) at the kill
    repeated = [h for h, n in server.body_counts().items() if n > 1]
    assert len(repeated) <= CONCURRENCY
    assert all(h not in answered_first for h in repeated)

    statuses = [status for _, status, _ in result["records"]]
    hits = sum(hit for _, _, hit in result["records"])
    assert statuses == ["ok"] * N_CUSTOMERS
    assert hits == len(answered_first) == result["ledger"]["cache_hits"]
    assert result["ledger"]["calls"] == len(second_run) == N_CUSTOMERS - hits
