"""What an LLM run cost: the usage ledger, the price table and the dry-run estimate.

Prices are per 1M tokens in US dollars, a small table of public list prices that goes
stale: override or extend it with a JSON file (``FORECASTER_PRICES=prices.json``, of the
form ``{"model": {"input": 0.15, "output": 0.6}}``). A model not in the table (any local
model) has no cost estimate, and the summary says so rather than printing 0. Token counts
come from :mod:`llm.tokens`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from llm.errors import PriceFileError
from llm.prompt import build_messages
from llm.tokens import TokenCounter
from structurer.schema import ForecastRecord

ENV_PRICES = "FORECASTER_PRICES"
# Assumed answer size for the dry run (an assumption, not a measurement of real model
# answers): a hand-written example answer, a 2-sentence Korean rationale plus the JSON
# fields of a 4-bucket scheme, is 130 o200k_base tokens; 200 leaves room for 3 sentences.
OUTPUT_TOKENS_ASSUMED = 200


@dataclass(frozen=True)
class Price:
    input_per_1m: float
    output_per_1m: float


# Public list prices (USD per 1M tokens, standard tier) as of mid-2025. Check the
# provider's pricing page before trusting a cost figure; override with FORECASTER_PRICES.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1": Price(2.00, 8.00),
}


class PriceTable:
    """Model name -> price; a dated snapshot (``gpt-4o-mini-2024-07-18``) takes the price
    of its longest listed prefix."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PriceTable":
        """The defaults, overridden by ``path`` or the file named by ``FORECASTER_PRICES``."""
        path = path or os.environ.get(ENV_PRICES)
        prices = dict(DEFAULT_PRICES)
        if path:
            prices.update(_read_price_file(Path(path)))
        return cls(prices)

    def lookup(self, model: str) -> Price | None:
        matches = [name for name in self._prices if model == name or model.startswith(name + "-")]
        return self._prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        price = self.lookup(model)
        if price is None:
            return None
        return (tokens_in * price.input_per_1m + tokens_out * price.output_per_1m) / 1e6


def _read_price_file(path: Path) -> dict[str, Price]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: Price(float(p["input"]), float(p["output"])) for name, p in raw.items()}
    except FileNotFoundError:
        raise PriceFileError(f"{path}: price file not found (set {ENV_PRICES} to an existing JSON file)") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PriceFileError(
            f'{path}: price file must map model -> {{"input": USD per 1M, "output": USD per 1M}} ({exc})'
        ) from None


def _cost_note(cost: float | None, model: str) -> str:
    if cost is None:
        return f"모델 '{model}'의 가격을 몰라 비용을 추정하지 않았습니다 (unknown price; set {ENV_PRICES})"
    return "공시 가격 기준 추정치 (estimate from list prices)"


# -- the ledger ------------------------------------------------------------------------------


EXAMPLE_CHARS = 160  # enough for an error's gist; a validation error can run to pages


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


@dataclass
class UsageLedger:
    """Totals over every record of a run (or of several runs of one forecaster).

    ``calls`` counts HTTP requests that reached the server (first asks + re-asks +
    transport retries), so it equals what the server saw; attempts whose connection could
    not be opened are ``undelivered``. Tokens count what was sent and received in this run;
    answers served from the cache are counted apart as ``cached_tokens_*``, and copies of an
    answer to an identical prompt of the same run as ``shared_prompts`` (no call, no tokens).
    """

    model: str
    prices: PriceTable = field(default_factory=PriceTable.load)
    customers: int = 0
    ok: int = 0
    failed: int = 0
    calls: int = 0
    undelivered: int = 0
    cache_hits: int = 0
    shared_prompts: int = 0
    reasks: int = 0
    transport_retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens_in: int = 0
    cached_tokens_out: int = 0
    failures: Counter = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)  # reason -> its first detail
    latencies: list[float] = field(default_factory=list)

    def add(self, record: ForecastRecord) -> None:
        self.customers += 1
        self.ok += record.status == "ok"
        self.failed += record.status == "failed"
        if record.status == "failed":
            reason = record.reason or "other"
            self.failures[reason] += 1
            self.failure_examples.setdefault(reason, record.detail or "")
        if getattr(record, "shared_prompt", False):
            self.shared_prompts += 1
            return
        if record.cache_hit:
            self.cache_hits += 1
            self.cached_tokens_in += record.tokens_in
            self.cached_tokens_out += record.tokens_out
            return
        self.calls += record.attempts
        self.undelivered += getattr(record, "undelivered", 0)
        self.reasks += getattr(record, "reasks", 0)
        self.transport_retries += getattr(record, "transport_retries", 0)
        self.tokens_in += record.tokens_in
        self.tokens_out += record.tokens_out
        self.latencies.append(record.latency_s)

    def summary(self) -> dict[str, Any]:
        cost = self.prices.cost(self.model, self.tokens_in, self.tokens_out)
        return {
            "model": self.model,
            "customers": self.customers,
            "ok": self.ok,
            "failed": self.failed,
            "calls": self.calls,
            "undelivered": self.undelivered,
            "cache_hits": self.cache_hits,
            "shared_prompts": self.shared_prompts,
            "reasks": self.reasks,
            "transport_retries": self.transport_retries,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cached_tokens_in": self.cached_tokens_in,
            "cached_tokens_out": self.cached_tokens_out,
            "cost_usd": cost,
            "cost_note": _cost_note(cost, self.model),
            "latency_p50_s": _percentile(self.latencies, 50),
            "latency_p95_s": _percentile(self.latencies, 95),
            "failures_by_reason": dict(sorted(self.failures.items())),
        }

    def render(self) -> Any:
        """A rich table with Korean/English labels (for the CLI and the report)."""
        return render_summary(self.summary(), "LLM 사용량 (usage ledger)")

    @property
    def failed_share(self) -> float:
        """Failed customers over all customers of the run (0 for an empty run)."""
        return self.failed / self.customers if self.customers else 0.0

    def render_failures(self) -> Any:
        """A rich table of the failures by reason: count, share of the run's customers and
        the first failure's detail (an error message about a request or an answer, and
        prompts carry no customer id)."""
        from rich.table import Table

        table = Table(title="LLM 실패 사유 (failures by reason)", title_justify="left")
        table.add_column("사유 (reason)", style="bold")
        table.add_column("건수 (count)", justify="right")
        table.add_column("비율 (share)", justify="right")
        table.add_column("예시 (first detail)", overflow="fold")
        for reason, count in self.failures.most_common():
            table.add_row(reason, f"{count:,}", f"{count / self.customers:.1%}",
                          _one_line(self.failure_examples.get(reason, ""), EXAMPLE_CHARS))
        return table


# OpenAI's Batch API bills half the live price for the same tokens (its pricing page); a
# provider without batch jobs has no batch price, and vLLM run-batch on one's own GPUs none
BATCH_PRICE_SHARE = 0.5


@dataclass(frozen=True)
class DryRunEstimate:
    """What a run would send, before anything is sent."""

    model: str
    customers: int
    cache_hits: int
    shared_prompts: int
    calls: int
    prompt_tokens: int
    output_tokens: int
    cost_usd: float | None
    token_method: str

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "customers": self.customers,
            "cache_hits": self.cache_hits,
            "shared_prompts": self.shared_prompts,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "output_tokens_per_call_assumed": OUTPUT_TOKENS_ASSUMED,
            "cost_usd": self.cost_usd,
            "cost_usd_batch": None if self.cost_usd is None else self.cost_usd * BATCH_PRICE_SHARE,
            "cost_note": _cost_note(self.cost_usd, self.model),
            "token_method": self.token_method,
        }

    def render(self) -> Any:
        return render_summary(self.summary(), "LLM 예상 사용량 (dry run: nothing sent)")


@dataclass
class PromptTally:
    """What a dry run has read so far: customers, their distinct prompts, and of those the
    ones not answered in the cache (the calls) with their narratives' tokens."""

    customers: int = 0
    distinct_prompts: int = 0
    calls: int = 0
    narrative_tokens: int = 0

    def add(self, customers: int, distinct_prompts: int, calls: int, narrative_tokens: int) -> None:
        self.customers += customers
        self.distinct_prompts += distinct_prompts
        self.calls += calls
        self.narrative_tokens += narrative_tokens


def estimate_run(
    model: str,
    tally: PromptTally,
    system: str,
    schema: Mapping[str, Any],
    prices: PriceTable,
    counter: TokenCounter | None = None,
) -> DryRunEstimate:
    """Calls = distinct prompts not in the cache (one ask each; a prompt repeated by other
    customers is sent once, and re-asks and retries are not predictable and not counted).
    Prompt tokens = each call's messages (``system`` and the chat format's overhead, the same
    for every call and counted once; the narrative, counted by ``counter`` into ``tally``) plus
    the response schema, which the provider also feeds the model; output tokens =
    ``OUTPUT_TOKENS_ASSUMED`` per call.

    Example::

        estimate_run("gpt-4o-mini", PromptTally(100, 80, 80, 13_000), system, schema, PriceTable())
    """
    counter = counter or TokenCounter()
    per_call = (counter.count_messages(build_messages(system, ""))
                + counter.count(json.dumps(schema, ensure_ascii=False)))
    prompt_tokens = tally.calls * per_call + tally.narrative_tokens
    output_tokens = tally.calls * OUTPUT_TOKENS_ASSUMED
    return DryRunEstimate(
        model=model,
        customers=tally.customers,
        cache_hits=tally.distinct_prompts - tally.calls,
        shared_prompts=tally.customers - tally.distinct_prompts,
        calls=tally.calls,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        cost_usd=prices.cost(model, prompt_tokens, output_tokens),
        token_method=counter.method,
    )


_LABELS = {
    "model": "모델 (model)",
    "customers": "고객 수 (customers)",
    "ok": "성공 (ok)",
    "failed": "실패 (failed)",
    "calls": "API 호출 (calls)",
    "undelivered": "연결 실패로 못 보낸 요청 (undelivered)",
    "cache_hits": "캐시 적중 (cache hits)",
    "shared_prompts": "같은 프롬프트의 답 재사용 (shared prompts)",
    "reasks": "재질문 (re-asks)",
    "transport_retries": "전송 재시도 (transport retries)",
    "tokens_in": "입력 토큰 (tokens in)",
    "tokens_out": "출력 토큰 (tokens out)",
    "cached_tokens_in": "캐시로 아낀 입력 토큰 (cached tokens in)",
    "cached_tokens_out": "캐시로 아낀 출력 토큰 (cached tokens out)",
    "prompt_tokens": "예상 입력 토큰 (prompt tokens)",
    "output_tokens": "예상 출력 토큰 (output tokens)",
    "output_tokens_per_call_assumed": "호출당 가정한 출력 토큰 (assumed per call)",
    "cost_usd": "예상 비용 (cost, USD)",
    "cost_usd_batch": "--llm-mode batch의 예상 비용 (batch cost, USD)",
    "cost_note": "비용 메모 (note)",
    "latency_p50_s": "지연 p50 (latency, s)",
    "latency_p95_s": "지연 p95 (latency, s)",
    "failures_by_reason": "실패 사유 (failures by reason)",
    "token_method": "토큰 계산 방법 (token method)",
}


def _format_value(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.startswith("cost_usd"):
        return f"${value:,.4f}"
    if key.startswith("latency"):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:,}" for k, v in value.items()) or "없음 (none)"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_summary(summary: Mapping[str, Any], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in summary.items():
        table.add_row(_LABELS.get(key, key), _format_value(key, value))
    return table
