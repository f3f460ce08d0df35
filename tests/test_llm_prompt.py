"""The prompt: a byte-identical system prefix, the narrative last, no customer id anywhere
(the first ask, re-asks, with the project's real narrative renderer)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llm.prompt import SYSTEM_VERSION, system_prompt
from llm_server import LoopbackLLMServer
from narrator.panel import build_panel
from prompts import NARRATIVE_VERSION
from structurer.schema import BucketScheme

SCHEME = BucketScheme(edges=(15.0, 29.3), currency="USD")


def _histories_with_random_ids(n: int = 12, seed: int = 5):
    """Real panel -> histories for customers with random ids like ``C-938271``."""
    rng = np.random.default_rng(seed)
    ids = [f"C-{x}" for x in rng.choice(np.arange(100_000, 1_000_000), n, replace=False)]
    rows = []
    for cid in ids:
        days = pd.Timestamp("1997-01-01") + pd.to_timedelta(np.sort(rng.choice(365, rng.integers(1, 9), replace=False)), unit="D")
        rows += [(cid, day, float(rng.gamma(2.0, 15.0))) for day in days]
    transactions = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    return ids, list(build_panel(transactions, "USD").histories(pd.Period("1998-01", "M")))


def test_system_prefix_is_byte_identical_and_the_narrative_comes_last(make_llm_forecaster, llm_server):
    forecaster = make_llm_forecaster(llm_server, narrate=None, narrative_version=None)  # the real renderer
    _, histories = _histories_with_random_ids()
    first, second = forecaster.messages_for(histories[0]), forecaster.messages_for(histories[1])
    assert [m["role"] for m in first] == ["system", "user"]
    assert first[0]["content"].encode("utf-8") == second[0]["content"].encode("utf-8")
    assert first[0]["content"] == system_prompt(SCHEME)
    assert first[1]["content"] != second[1]["content"]
    assert forecaster.prompt_version == f"{SYSTEM_VERSION}+{NARRATIVE_VERSION}"


def test_no_prompt_contains_the_customer_id(make_llm_forecaster):
    ids, histories = _histories_with_random_ids()
    with LoopbackLLMServer() as server:
        # unusable answers for the first two customers, so re-ask turns are checked too
        server.script(["bad_sum", "malformed_json", "valid", "refusal"])
        forecaster = make_llm_forecaster(server, narrate=None, narrative_version=None)
        records = forecaster.forecast_many(histories)
        sent = [m["content"] for request in server.requests for m in request.messages]
    assert [r.status for r in records] == ["ok"] * len(ids)
    assert sum(r.reasks for r in records) == 3
    for text in sent:
        for cid in ids:
            assert cid not in text and cid.removeprefix("C-") not in text


def test_system_prompt_lists_the_scheme_buckets_in_korean():
    text = system_prompt(BucketScheme(edges=(15000.0, 30000.0), currency="KRW"))
    for line in ("- b0: 구매 없음", "- b1: 1.5만 원 미만", "- b2: 1.5만 원~3만 원", "- b3: 3만 원 이상"):
        assert line in text
    assert "원 단위" in text and "b0, b1, b2, b3" in text
    assert text != system_prompt(SCHEME) and "29.3달러" in system_prompt(SCHEME)


def test_a_history_batch_renders_the_same_messages_as_one_by_one(make_llm_forecaster, llm_server):
    rng = np.random.default_rng(0)
    transactions = pd.DataFrame({
        "customer_id": [f"C-{x}" for x in rng.integers(100_000, 999_999, 300)],
        "ts": pd.Timestamp("1997-01-01") + pd.to_timedelta(rng.integers(0, 365, 300), unit="D"),
        "amount": rng.gamma(2.0, 15.0, 300),
    })
    batch = build_panel(transactions, "USD").histories(pd.Period("1998-01", "M"))
    first = make_llm_forecaster(llm_server, narrate=None, narrative_version=None).forecast_many(batch)
    sent = llm_server.request_count
    assert sent == sum(not r.shared_prompt for r in first) > 0.9 * len(batch)  # one per distinct prompt
    again = make_llm_forecaster(llm_server, narrate=None, narrative_version=None).forecast_many(list(batch))
    assert all(r.cache_hit or r.shared_prompt for r in again) and llm_server.request_count == sent
    assert [r.shared_prompt for r in again] == [r.shared_prompt for r in first]
