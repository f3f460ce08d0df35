"""Helper for test_llm_kill.py: one LLM batch run in its own process, so the test can
SIGKILL it half-way and run it again on the same cache folder.

    python tests/llm_kill_run.py BASE_URL CACHE_DIR N_CUSTOMERS CONCURRENCY

Prints one JSON line when it finishes: every record's id, status and cache hit, and the
ledger summary.
"""

from __future__ import annotations

import json
import sys

from llm.config import RetryPolicy
from llm.forecaster import LLMForecaster
# run as a script, this file's folder (tests/) is first on sys.path
from llm_server import STAND_IN_NARRATIVE_VERSION, make_histories, stand_in_narrate
from structurer.schema import BucketScheme


def main(base_url: str, cache_dir: str, n_customers: str, concurrency: str) -> None:
    forecaster = LLMForecaster(
        BucketScheme(edges=(15.0, 29.3), currency="USD"),
        model="loopback-test-model",
        base_url=base_url,
        concurrency=int(concurrency),
        cache_dir=cache_dir,
        timeout=5.0,
        narrate=stand_in_narrate,
        narrative_version=STAND_IN_NARRATIVE_VERSION,
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01, max_backoff_s=0.05),
    )
    records = forecaster.forecast_many(make_histories(int(n_customers), seed=11))
    print(json.dumps({
        "records": [[r.customer_id, r.status, r.cache_hit] for r in records],
        "ledger": forecaster.ledger.summary(),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main(*sys.argv[1:])
