"""The LLM dry run of the CDNOW evaluate: histories per second (nothing is sent).

    .venv/bin/python bench/dry_run.py [--repeats 3] [--cached-anchors 4] [--per-history 2000]

Before an LLM ``forecaster evaluate --dataset cdnow`` asks anything, it prices every
history of every anchor with an outcome (17 anchors, 376,597 histories): the run's dry run,
as ``forecaster.spending.approve_cost`` calls it with one HistoryBatch per anchor. Printed:

* histories per CPU second (process CPU time, what the dry run costs whatever else runs on
  the machine) and per wall second, best and median of ``--repeats`` runs, with an empty
  response cache (the first run; target >= 100,000 per second);
* the same with the answers of the first ``--cached-anchors`` anchors in the cache (a
  resumed or repeated run: every distinct prompt's key is computed and looked up);
* ``--per-history N``: the same N histories priced one ``CustomerHistory`` at a time, the
  path every history took before (``approve_cost`` flattened the batches).

The load average is printed first: on a busy machine CPU time per history rises too
(shared caches and cores), so compare runs made under similar load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from forecaster import evaluation, pipeline
from forecaster.datasets import load_dataset
from llm.cache import ResponseCache
from llm.forecaster import LLMForecaster
from llm.prompt import build_messages, system_prompt
from narrator.narrative import render_distinct_narratives

MODEL = "gpt-4o-mini"  # a listed price, so the estimate has a cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cached-anchors", type=int, default=4)
    parser.add_argument("--per-history", type=int, default=2000)
    args = parser.parse_args()
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    panel = load_dataset("cdnow").panel
    anchors = pipeline.anchors_with_outcome(panel)
    scheme = pipeline.fit_scheme(panel, evaluation.parse_test_anchors(None, panel)[0][0])
    with tempfile.TemporaryDirectory() as cache_dir:
        def forecaster(**settings) -> LLMForecaster:
            return LLMForecaster(scheme, model=MODEL, base_url="http://127.0.0.1:9/v1", api_key="unused",
                                 cache_dir=cache_dir, **settings)

        timed(f"empty cache, {len(anchors)} anchors", forecaster, lambda: (panel.histories(a) for a in anchors),
              args.repeats)
        fill_cache(forecaster(), Path(cache_dir), [panel.histories(a) for a in anchors[: args.cached_anchors]])
        timed(f"answers of the first {args.cached_anchors} anchors cached", forecaster,
              lambda: (panel.histories(a) for a in anchors), args.repeats)
        if args.per_history:
            sample = list(panel.histories(anchors[-1]))[: args.per_history]
            timed(f"one CustomerHistory at a time, {len(sample):,} histories of {anchors[-1]}",
                  lambda: forecaster(use_cache=False), lambda: iter(sample), 1)


def timed(label: str, forecaster: Callable[[], LLMForecaster], histories, repeats: int) -> None:
    """Print histories per CPU second and per wall second of ``repeats`` dry runs, each by a
    new forecaster (one that has dry-run a batch keeps its narratives for the run)."""
    rates_cpu, rates_wall = [], []
    for _ in range(repeats):
        fresh = forecaster()
        cpu, wall = time.process_time(), time.perf_counter()
        estimate = fresh.dry_run(histories())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rates_cpu.append(estimate.customers / cpu)
        rates_wall.append(estimate.customers / wall)
    s = estimate.summary()
    print(f"{label}: {s['customers']:,} histories, {s['calls']:,} calls, {s['cache_hits']:,} cache hits, "
          f"{s['shared_prompts']:,} shared prompts, {s['prompt_tokens']:,} prompt tokens ({s['token_method']}), "
          f"${s['cost_usd']:,.2f}")
    print(f"  histories per CPU second: best {max(rates_cpu):,.0f}, median {statistics.median(rates_cpu):,.0f}; "
          f"per wall second: best {max(rates_wall):,.0f}, median {statistics.median(rates_wall):,.0f}")


def fill_cache(forecaster: LLMForecaster, cache_dir: Path, batches) -> None:
    """Answers (placeholders: the dry run only asks whether one is there) for every distinct
    prompt of ``batches``."""
    system = system_prompt(forecaster.scheme)
    with ResponseCache(cache_dir) as cache:
        for batch in batches:
            for narrative in render_distinct_narratives(batch)[0]:
                cache.put(forecaster.request_key(build_messages(system, narrative)), "{}", 0, 0, MODEL)


if __name__ == "__main__":
    main()
