"""LLM client throughput against the loopback OpenAI-compatible test server (no network).

    .venv/bin/python bench/llm_throughput.py [--latency-ms 100] [--levels 1,8,32,64]
    .venv/bin/python bench/llm_throughput.py --latency-ms 1000 --levels 64

Prints, for the client in this process (the server runs in a child process so its CPU
is not counted):

* forecasts per second at each concurrency level with the server's fixed latency, and the
  ratio to the ideal ``concurrency / latency`` (target >= 0.95 at 64 in flight and 1 s);
* client CPU milliseconds per request the server received, with zero latency, cache off
  and the narratives made beforehand: the LLM stage alone (building and sending the
  request, reading and validating the answer, the record and the ledger), as process CPU
  time, user and system (target <= 1 ms), at each of ``--cpu-levels`` requests in flight;
* the same with the project's narrative renderer on a CDNOW HistoryBatch (narrating
  included), per request and per forecast (customers with the same prompt share one);
* mean prompt tokens of the customer-specific part (the user message: the narrative) for
  12-month CDNOW histories (target <= 300), with o200k_base when its file is in
  tiktoken's cache, else the calibrated approximation (the method is printed).

The loopback server is not a language model: these figures measure the client's
overhead, not any model's speed. CPU time per request also rises when the machine is busy
(shared cores and caches), and so does the wall time: the load average is printed first.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from llm.config import RetryPolicy  # noqa: E402
from llm.forecaster import LLMForecaster  # noqa: E402
from llm_server import STAND_IN_NARRATIVE_VERSION, LoopbackLLMServer, make_histories, stand_in_narrate  # noqa: E402
from structurer.schema import BucketScheme  # noqa: E402

SCHEME = BucketScheme(edges=(15.0, 29.3), currency="USD")


def _serve(latency_s: float, conn) -> None:
    with LoopbackLLMServer(latency_s=latency_s, max_requests=100_000, lifetime_s=600) as server:
        conn.send(server.base_url)
        while conn.recv() == "stats":  # anything else: stop
            conn.send((time.process_time(), server.request_count))


class ServerProcess:
    """The loopback server in a child process (its CPU is not the client's)."""

    def __init__(self, latency_s: float) -> None:
        self._conn, child = mp.Pipe()
        self._process = mp.Process(target=_serve, args=(latency_s, child), daemon=True)

    def __enter__(self) -> "ServerProcess":
        self._process.start()
        self.base_url = self._conn.recv()
        return self

    def stats(self) -> tuple[float, int]:
        """The server process's CPU time so far, and the requests it has received."""
        self._conn.send("stats")
        return self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(10)


def _forecaster(base_url: str, concurrency: int, narrate=stand_in_narrate) -> LLMForecaster:
    return LLMForecaster(
        SCHEME, model="loopback-test-model", base_url=base_url, concurrency=concurrency,
        use_cache=False, timeout=30.0, narrate=narrate,
        narrative_version=STAND_IN_NARRATIVE_VERSION if narrate else None,
        retry=RetryPolicy(max_attempts=1),
    )


def throughput(latency_s: float, levels: list[int], repeats: int) -> None:
    print(f"throughput, server latency {latency_s * 1000:.0f} ms, median of {repeats} runs per level")
    with ServerProcess(latency_s) as server:
        for concurrency in levels:
            n = max(40, concurrency * 15)
            runs = sorted((_timed_run(server, concurrency, n) for _ in range(repeats)), key=lambda r: r[0])
            elapsed, client_cpu, server_cpu = runs[len(runs) // 2]
            rate, ideal = n / elapsed, concurrency / latency_s
            print(f"  concurrency {concurrency:3d}: {n:4d} forecasts in {elapsed:6.2f} s = "
                  f"{rate:7.1f}/s, ideal {ideal:6.1f}/s, ratio {rate / ideal:.2f} "
                  f"(CPU per forecast: client {client_cpu / n * 1000:.2f} ms, server {server_cpu / n * 1000:.2f} ms)")


def _timed_run(server: ServerProcess, concurrency: int, n: int) -> tuple[float, float, float]:
    """(wall s, client CPU s, server CPU s) of one batch of ``n`` forecasts."""
    histories = make_histories(n, seed=concurrency)
    forecaster = _forecaster(server.base_url, concurrency)
    server_cpu, client_cpu, started = server.stats()[0], time.process_time(), time.perf_counter()
    records = forecaster.forecast_many(histories)
    elapsed = time.perf_counter() - started
    client_cpu, server_cpu = time.process_time() - client_cpu, server.stats()[0] - server_cpu
    failed = [r.detail for r in records if r.status != "ok"]
    assert not failed, failed[:3]
    return elapsed, client_cpu, server_cpu


def cpu_per_request(n: int, levels: list[int]) -> None:
    """Client CPU per request at zero latency, cache off: the LLM stage alone (narratives
    made beforehand) at each level, then the project's renderer on a CDNOW HistoryBatch."""
    with ServerProcess(0.0) as server:
        stand_in = make_histories(n, seed=1)
        made = {h.customer_id: stand_in_narrate(h) for h in stand_in}

        def made_beforehand(history) -> str:
            return made[history.customer_id]

        runs = [(f"{c} in flight, narratives made beforehand", stand_in, made_beforehand, c) for c in levels]
        runs.append((f"{levels[0]} in flight, CDNOW HistoryBatch narrated", _first_customers(_cdnow_histories(), n),
                     None, levels[0]))
        for label, histories, narrate, concurrency in runs:
            _forecaster(server.base_url, concurrency, narrate).forecast_many(stand_in[:50])  # warm up
            forecaster = _forecaster(server.base_url, concurrency, narrate)
            sent, before, wall = server.stats()[1], os.times(), time.perf_counter()
            records = forecaster.forecast_many(histories)
            after, wall, sent = os.times(), time.perf_counter() - wall, server.stats()[1] - sent
            assert all(r.status == "ok" for r in records) and len(records) == n
            user, system = after.user - before.user, after.system - before.system
            print(f"client CPU, zero latency, cache off, {label}: {(user + system) / sent * 1000:.2f} ms per request "
                  f"(user {user / sent * 1000:.2f}, system {system / sent * 1000:.2f}; {sent:,} requests for "
                  f"{n:,} forecasts: {(user + system) / n * 1000:.2f} ms per forecast; {wall:.2f} s wall)")


def _cdnow_histories():
    import pandas as pd

    from forecaster.datasets import load_dataset

    # 1998-01: the whole cohort has 12 full months of history
    return load_dataset("cdnow").panel.histories(pd.Period("1998-01", "M"), 12)


def _first_customers(batch, n: int):
    """The HistoryBatch of the first ``n`` customers (its arrays are all per customer)."""
    import dataclasses

    import numpy as np

    cut = {f.name: getattr(batch, f.name)[:n] for f in dataclasses.fields(batch)
           if isinstance(getattr(batch, f.name), np.ndarray)}
    return dataclasses.replace(batch, **cut)


def prompt_tokens() -> None:
    import numpy as np

    from llm.tokens import TokenCounter
    from llm.prompt import system_prompt
    from narrator.narrative import render_narratives

    batch = _cdnow_histories()
    counter = TokenCounter()
    counts = counter.count_many(render_narratives(batch))
    system = counter.count(system_prompt(SCHEME))
    print(f"prompt tokens ({counter.method}), CDNOW anchor {batch.anchor}, {len(counts):,} customers: "
          f"user message mean {counts.mean():.1f}, p95 {np.percentile(counts, 95):.0f}, max {counts.max()}; "
          f"shared system prompt {system}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-forecasts", type=int, default=2000)
    parser.add_argument("--cpu-levels", default="8,64")
    args = parser.parse_args()
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    throughput(args.latency_ms / 1000, [int(x) for x in args.levels.split(",")], args.repeats)
    cpu_per_request(args.cpu_forecasts, [int(x) for x in args.cpu_levels.split(",")])
    prompt_tokens()


if __name__ == "__main__":
    main()
