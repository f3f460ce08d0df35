"""``LLMForecaster``: each customer's Korean narrative -> one structured LLM forecast.

One async core (``aforecast_many``); ``forecast_many`` runs it with ``asyncio.run``.
Customers run concurrently under a semaphore, through one ``AsyncOpenAI`` client per run.
Every validated answer is written to the SQLite cache the moment it arrives, so a re-run
or a resumed killed run sends nothing twice. Customers whose prompts are identical (same
narrative) are asked once per run, cache or no cache: the others get a copy of that answer,
marked ``shared_prompt`` and costing nothing in the ledger. One customer's failure is a
``failed`` record with a typed reason; only a fatal error (quota, key, an endpoint that never
answers) stops the run, cancelling the requests in flight.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from llm.cache import CachedAnswer, ResponseCache, content_keyer, request_keyer
from llm.client import CallOutcome, StructuredCaller, make_async_client, response_format
from llm.config import DEFAULT_MAX_TOKENS, DEFAULT_TIMEOUT_S, LLMConfig, RetryPolicy, resolve_config
from llm.errors import RunAborted
from llm.ledger import DryRunEstimate, PriceTable, PromptTally, UsageLedger, estimate_run
from llm.narratives import Narrated, NarrativeMemo, narrated_texts
from llm.prompt import Message, build_messages, prompt_version, system_prompt
from llm.tokens import TokenCounter
from narrator.panel import CustomerHistory, HistoryBatch, MonthlyPanel
from structurer.features import records_to_features
from structurer.protocol import Histories, NoPopulation, Progress, ProviderInfo
from structurer.schema import BucketScheme, ForecastRecord, SpendForecastBase, spend_forecast_model

Narrate = Callable[[CustomerHistory], str]
_Customer = tuple[str, str]  # (customer id, anchor YYYY-MM): all a record needs of a history


class LLMForecastRecord(ForecastRecord):
    """A ``ForecastRecord`` that also counts re-asks and transport retries apart.
    ``attempts`` is the number of HTTP requests that reached the server for this customer
    (0 on a cache hit or a shared prompt); ``undelivered`` the attempts whose connection
    could not be opened; ``shared_prompt`` marks a copy of the answer to an identical prompt
    asked for another customer of the same run."""

    reasks: int = 0
    transport_retries: int = 0
    undelivered: int = 0
    shared_prompt: bool = False


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    """The exception to show for a failed task group: the fatal :class:`RunAborted` when
    there is one, else a lone exception as itself, else the whole group."""
    aborted = group.subgroup(RunAborted)
    if aborted is not None:
        return aborted.exceptions[0]
    return group.exceptions[0] if len(group.exceptions) == 1 else group


@dataclass
class _Run:
    """What every customer of one run shares."""

    caller: StructuredCaller
    cache: ResponseCache | None
    semaphore: asyncio.Semaphore


@contextmanager
def _collector_spares_existing_objects() -> Iterator[None]:
    """Objects alive when a run starts (modules, panels, frames) outlive it: freezing them
    keeps them out of the cyclic collector's frequent passes over the many short-lived
    request objects (bench/llm_throughput.py, 64 in flight at 100 ms: ratio 0.61 -> 0.80).
    They are handed back to the collector when the run ends."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class LLMForecaster:
    """Forecasts with an OpenAI-compatible LLM (a :class:`structurer.protocol.Forecaster`).
    ``provider`` is ``"llm"``.

    ``narrate`` turns one history into the user message; by default the project's
    renderer (``narrator.narrative``), which also renders a whole :class:`HistoryBatch`
    at once (about 30 times less CPU per customer than one by one), each distinct history
    once, and each batch once per run: what the dry run narrated, the live run reuses
    (:class:`llm.narratives.NarrativeMemo`).
    """

    provider = "llm"

    def __init__(
        self,
        scheme: BucketScheme,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        max_reasks: int = 2,
        cache_dir: str | Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        narrate: Narrate | None = None,
        narrative_version: str | None = None,
        use_cache: bool = True,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        retry: RetryPolicy | None = None,
        prices: PriceTable | None = None,
        config: LLMConfig | None = None,
    ) -> None:
        self.scheme = scheme
        self.config = config or resolve_config(
            model, base_url, api_key,
            concurrency=concurrency, max_reasks=max_reasks, timeout_s=timeout,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            use_cache=use_cache, max_tokens=max_tokens, retry=retry or RetryPolicy(),
        )
        self._memo: NarrativeMemo | None = None
        if narrate is None:  # imported lazily: callers with their own narrator skip it
            from narrator import narrative
            from prompts import NARRATIVE_VERSION

            narrate, self._memo = narrative.render_narrative, NarrativeMemo(narrative.render_distinct_narratives)
            narrative_version = narrative_version or NARRATIVE_VERSION
        self._narrate = narrate
        self.prompt_version = prompt_version(narrative_version or getattr(narrate, "__name__", "custom"))
        self._model = spend_forecast_model(scheme)
        self._schema = response_format(self._model)["json_schema"]["schema"]
        self.ledger = UsageLedger(self.config.model, prices or PriceTable.load())
        identity = (self.config.endpoint, self.config.model, self.prompt_version, self._schema, self.config.sampling)
        self._key = request_keyer(*identity)
        self._first_ask_key = content_keyer(self._messages(""), *identity)  # narrative -> key of its first ask

    @property
    def model(self) -> str:
        return self.config.model

    def describe(self) -> ProviderInfo:
        return {"provider": self.provider, "model": self.model, "prompt_version": self.prompt_version,
                "endpoint": self.config.endpoint}

    # -- public entry points -------------------------------------------------------------------

    def fit(self, cut: MonthlyPanel) -> "LLMForecaster":
        """Nothing to learn: each customer's narrative carries the history the LLM reads."""
        return self

    def population(self, cut: MonthlyPanel) -> NoPopulation:
        return NoPopulation()

    def fit_population(self, population: NoPopulation) -> "LLMForecaster":
        return self

    def forecast_features(self, batch: HistoryBatch) -> pd.DataFrame:
        """The feature columns of the LLM's answers (NaN for a failed customer)."""
        return records_to_features(self.forecast_many(batch), self.scheme, index=batch.customer_ids)

    def forecast_many(self, histories: Histories, progress: Progress | None = None) -> list[ForecastRecord]:
        """Synchronous entry: runs :meth:`aforecast_many` in a fresh event loop."""
        return asyncio.run(self.aforecast_many(histories, progress))

    async def aforecast_many(self, histories: Histories, progress: Progress | None = None) -> list[ForecastRecord]:
        """One record per history, in input order; ``progress`` is called with each record
        as it completes. Raises :class:`RunAborted` (and cancels every request in flight)
        when the quota is exhausted or the key is rejected."""
        with _collector_spares_existing_objects():
            return await self._run_all(histories, progress)

    async def _run_all(self, histories: Histories, progress: Progress | None) -> list[ForecastRecord]:
        customers, narrated = self._narrated(histories, keep=False)  # the run's last use of them
        results: list[ForecastRecord | None] = [None] * len(customers)
        cache = self._open_cache()
        try:
            async with make_async_client(self.config) as client:
                run = _Run(StructuredCaller(client, self.config, self._model), cache,
                           asyncio.Semaphore(self.config.concurrency))
                try:
                    async with asyncio.TaskGroup() as group:
                        for text, indices in zip(narrated.texts, narrated.groups()):  # one task per distinct prompt
                            shared = [(int(i), customers[i]) for i in indices]
                            group.create_task(self._forecast_prompt(run, text, shared, results, progress))
                except BaseExceptionGroup as group:
                    raise _unwrap(group) from None
        finally:
            if cache is not None:
                cache.close()
        return [r for r in results if r is not None]

    def dry_run(self, histories: Histories | Iterable[HistoryBatch],
                counter: TokenCounter | None = None) -> DryRunEstimate:
        """Calls, tokens and cost this run would need; nothing is sent.

        ``histories``: what a run takes, or one :class:`HistoryBatch` per anchor (as
        :func:`forecaster.spending.approve_cost` passes them). Like the run, it prices each
        distinct prompt once. Each batch is narrated once, as a whole (with the project's
        narrator, equal histories only once); cache hits are looked up per distinct prompt,
        and not at all in an empty cache; the shared system prompt is counted once and the
        narratives together (:meth:`TokenCounter.count_many`).

        Example::

            forecaster.dry_run(panel.histories(a) for a in anchors).summary()["cost_usd"]
        """
        counter = counter or TokenCounter()
        tally, seen = PromptTally(), set()
        cache = self._open_cache()
        try:
            answered = cache if cache is not None and len(cache) else None
            with _collector_spares_existing_objects():  # narrating makes many short-lived objects
                for customers, narratives in self._narrated_groups(histories):
                    new = [n for n in narratives if n not in seen]
                    seen.update(new)
                    pending = self._not_answered(answered, new)
                    tally.add(customers, len(new), len(pending), int(counter.count_many(pending).sum()))
        finally:
            if cache is not None:
                cache.close()
        return estimate_run(self.config.model, tally, system_prompt(self.scheme), self._schema, self.ledger.prices,
                            counter)

    def _narrated_groups(self, histories: Histories | Iterable[HistoryBatch]) -> Iterator[tuple[int, list[str]]]:
        """(customers, their distinct narratives) of each batch, then of the loose histories;
        each batch's narratives are kept for the run that follows."""
        if isinstance(histories, HistoryBatch):
            histories = [histories]
        loose: list[CustomerHistory] = []
        for item in histories:
            if isinstance(item, HistoryBatch):
                yield len(item), self._distinct_texts(item)
            else:
                loose.append(item)
        if loose:
            yield len(loose), self._distinct_texts(loose)

    def _distinct_texts(self, histories: Histories) -> list[str]:
        """Each distinct narrative once; a batch's are kept for the run that follows."""
        if self._memo is not None and isinstance(histories, HistoryBatch):
            return self._memo.narrated(histories, keep=True).texts
        return narrated_texts([self._narrate(h) for h in histories]).texts

    def _not_answered(self, cache: ResponseCache | None, narratives: list[str]) -> list[str]:
        if cache is None:
            return narratives
        keys = [self._first_ask_key(n) for n in narratives]
        found = cache.answered(keys)
        return [n for n, key in zip(narratives, keys) if key not in found]

    def messages_for(self, history: CustomerHistory) -> list[Message]:
        """The exact messages one customer's first ask sends."""
        return self._messages(self.narrative(history))

    def narrative(self, history: CustomerHistory) -> str:
        """The user message one customer's first ask sends (the system prompt is shared)."""
        return self._narrate(history)

    # -- for provider batch jobs (llm/batch.py) ------------------------------------------------

    @property
    def answer_model(self) -> type[SpendForecastBase]:
        """The pydantic model every answer is validated against (built from the scheme)."""
        return self._model

    def request_key(self, messages: list[Message]) -> str:
        """The cache key of one request (:func:`llm.cache.request_keyer` of this run)."""
        return self._key(messages)

    def distinct_prompts(self, histories: Histories) -> tuple[list[_Customer], list[list[Message]], list[np.ndarray]]:
        """Every history's (customer id, anchor), the messages of each distinct prompt, and
        the indices of the customers asking each one, grouped as a run groups them."""
        customers, narrated = self._narrated(histories, keep=True)  # the live run follows
        return customers, [self._messages(text) for text in narrated.texts], narrated.groups()

    def records_for(self, customers: list[_Customer], outcome: CallOutcome) -> list[LLMForecastRecord]:
        """The records of the customers sharing one prompt, for an outcome obtained elsewhere
        (a batch job): the first carries its cost, the others are shared copies."""
        first = self._from_outcome(customers[0], outcome)
        return [first, *(self._shared_copy(first, customer) for customer in customers[1:])]

    # -- one prompt ----------------------------------------------------------------------------

    async def _forecast_prompt(
        self, run: _Run, narrative: str, customers: list[tuple[int, _Customer]],
        results: list[ForecastRecord | None], progress: Progress | None,
    ) -> None:
        """Ask (or read from the cache) once for the first customer; every other customer
        with the same prompt gets a copy that costs nothing."""
        (first_index, first), *others = customers
        record = await self._answer(run, first, self._messages(narrative))
        copies = [(i, self._shared_copy(record, customer)) for i, customer in others]
        for i, one in [(first_index, record), *copies]:
            self.ledger.add(one)
            results[i] = one
            if progress is not None:
                progress(one)

    async def _answer(self, run: _Run, customer: _Customer, messages: list[Message]) -> LLMForecastRecord:
        key = self._key(messages) if run.cache is not None else ""
        cached = run.cache.get(key) if run.cache is not None else None
        if cached is not None:
            return self._from_cache(customer, cached)
        async with run.semaphore:
            outcome = await run.caller.ask(messages)
            # written before the slot is released: once a slot moves on, its answer is safe
            if outcome.ok and run.cache is not None:
                run.cache.put(key, outcome.answer_json or "", outcome.tokens_in, outcome.tokens_out, self.config.model)
        return self._from_outcome(customer, outcome)

    def _narrated(self, histories: Histories, keep: bool) -> tuple[list[_Customer], Narrated]:
        """Each history's (customer id, anchor) and the narratives grouped by prompt. A
        :class:`HistoryBatch` is narrated at once, each distinct history once and the batch
        once per run (``keep``: a later step of the run needs it again), without building one
        ``CustomerHistory`` per customer."""
        if self._memo is not None and isinstance(histories, HistoryBatch):
            anchor = str(histories.anchor)
            return [(str(c), anchor) for c in histories.customer_ids], self._memo.narrated(histories, keep)
        listed = list(histories)
        return [(h.customer_id, str(h.anchor)) for h in listed], narrated_texts([self._narrate(h) for h in listed])

    def _messages(self, narrative: str) -> list[Message]:
        return build_messages(system_prompt(self.scheme), narrative)

    def _open_cache(self) -> ResponseCache | None:
        return ResponseCache(self.config.cache_dir) if self.config.use_cache else None

    def _record(self, customer: _Customer, **fields: Any) -> LLMForecastRecord:
        return LLMForecastRecord(
            customer_id=customer[0],
            anchor=customer[1],
            provider=self.provider,
            model=self.config.model,
            prompt_version=self.prompt_version,
            **fields,
        )

    def _from_cache(self, customer: _Customer, cached: CachedAnswer) -> LLMForecastRecord:
        return self._record(
            customer, status="ok", forecast=self._model.model_validate_json(cached.answer_json),
            attempts=0, tokens_in=cached.tokens_in, tokens_out=cached.tokens_out, cache_hit=True,
        )

    def _from_outcome(self, customer: _Customer, outcome: CallOutcome) -> LLMForecastRecord:
        return self._record(
            customer,
            status="ok" if outcome.ok else "failed",
            reason=outcome.reason,
            detail=outcome.detail,
            forecast=outcome.answer,
            attempts=outcome.requests,
            reasks=outcome.reasks,
            transport_retries=outcome.transport_retries,
            undelivered=outcome.undelivered,
            tokens_in=outcome.tokens_in,
            tokens_out=outcome.tokens_out,
            latency_s=outcome.latency_s,
        )

    @staticmethod
    def _shared_copy(record: LLMForecastRecord, customer: _Customer) -> LLMForecastRecord:
        """``record``'s answer (or failure) for another customer with the same prompt; what
        it cost is counted once, on ``record``."""
        return record.model_copy(update=dict(
            customer_id=customer[0], anchor=customer[1], attempts=0, reasks=0, transport_retries=0,
            undelivered=0, tokens_in=0, tokens_out=0, latency_s=0.0, cache_hit=False, shared_prompt=True,
        ))
