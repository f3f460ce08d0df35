"""Reading a batch job's answers into the response cache, through the live path's checks.

Every output line goes through the validation a live answer gets
(``llm.client.reply_from_completion`` then ``judge``):

* a valid answer goes into the same :class:`llm.cache.ResponseCache`, with the tokens of the
  line's usage, so the ordinary live run afterwards finds it and sends nothing;
* an unusable answer (not JSON, fails the schema, a refusal, cut off) is re-asked live with
  the error, exactly as the live path re-asks (``StructuredCaller``, instructor-style), the
  batch answer counting as the first ask; what still fails is a typed failure;
* a request that failed (an error line, a status other than 200) is a typed failure
  (``structurer.schema.FailureReason``).

Works the same for OpenAI's output and error files and for vLLM ``run-batch`` output
(:func:`import_outputs`), whose lines have the same shape
(``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``) but
may leave ``status_code`` out of a successful line (vLLM's default is 200).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Container, Iterable, Mapping, NamedTuple

from llm.cache import ResponseCache
from llm.client import CallOutcome, Reply, StructuredCaller, Unusable, judge, make_async_client, reply_from_completion
from llm.errors import RunAborted
from llm.overflow import context_exceeded_detail, exceeds_context
from llm.prompt import Message, reask_message
from llm.batch_files import BatchJobError, RequestSpec, open_cache, pending_prompts, read_jsonl
from structurer.schema import FailureReason

_DETAIL_CHARS = 300  # a failure's detail: the first words of the server's message suffice
# Error codes OpenAI writes on a line the job never ran (the batch's 24 h ran out, it was
# cancelled) or whose model call timed out.
_ERROR_CODE_REASONS: dict[str, FailureReason] = {
    "batch_expired": "timeout", "request_timeout": "timeout", "batch_cancelled": "other",
}
_FAILURE_FIELDS = ("reason", "detail", "requests", "reasks", "tokens_in", "tokens_out")


@dataclass
class BatchOutcome:
    """What a batch run or an import did. ``failures`` maps a request's cache key to its
    typed failure (a :class:`llm.client.CallOutcome` with ``reason`` and ``detail``).
    Tokens are split by price: ``batch_*`` on the batch lines (batch price), ``live_*`` on
    the live re-asks (live price)."""

    prompts: int = 0  # requests accounted for: lines read plus lines a job never ran
    answered: int = 0  # valid batch answers, now in the cache
    reasked: int = 0  # answers that were valid only after a live re-ask, now in the cache
    already_cached: int = 0  # lines whose answer the cache already had (left as they were)
    unmatched: int = 0  # lines for no request of this run (another model, prompt or data)
    batch_tokens_in: int = 0
    batch_tokens_out: int = 0
    live_requests: int = 0
    live_tokens_in: int = 0
    live_tokens_out: int = 0
    files_uploaded: int = 0
    batches_created: int = 0
    failures: dict[str, CallOutcome] = field(default_factory=dict)

    def add(self, other: "BatchOutcome") -> None:
        """Add ``other``'s counts and failures to this one."""
        for name in self._counts():
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the job state keeps each imported job's outcome)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in self._counts()}
        data["failures"] = {key: [getattr(f, name) for name in _FAILURE_FIELDS] for key, f in self.failures.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BatchOutcome":
        outcome = cls(**{name: int(data.get(name, 0)) for name in cls._counts()})
        outcome.failures = {key: CallOutcome(**dict(zip(_FAILURE_FIELDS, values)))
                            for key, values in data.get("failures", {}).items()}
        return outcome

    @classmethod
    def _counts(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "failures"]


class LineVerdict(NamedTuple):
    """One output line read: the chat completion's reply, or why the request failed."""

    custom_id: str
    reply: Reply | None
    reason: FailureReason | None
    detail: str


class _Unusable(NamedTuple):
    key: str
    reply: Reply
    verdict: Unusable


def read_output_line(line: Mapping[str, Any]) -> LineVerdict:
    """Read one line of an output or error file (OpenAI or vLLM)."""
    custom_id = str(line.get("custom_id") or "")
    response = line.get("response") or {}
    body = response.get("body")
    error = line.get("error")
    status = response.get("status_code")
    if status is None and isinstance(body, dict) and "choices" in body:
        status = 200  # vLLM leaves its default status out of some successful lines
    if status == 200 and isinstance(body, dict) and not error:
        try:
            return LineVerdict(custom_id, reply_from_completion(body), None, "")
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            return LineVerdict(custom_id, None, "other", f"the batch line's body is not a chat completion: {exc}")
    reason, detail = failure_reason(status, error, body), failure_detail(status, error, body)
    if reason == "context_exceeded":
        detail = context_exceeded_detail(detail, reask=False)
    return LineVerdict(custom_id, None, reason, detail)


def failure_reason(status: Any, error: Any, body: Any = None) -> FailureReason:
    """The typed reason of a failed batch line, read as ``llm.transport.transport_reason``
    reads the same HTTP statuses live (the error is the line's, else its body's)."""
    if not isinstance(error, dict) and isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
    code = error.get("code") if isinstance(error, dict) else None
    if code in _ERROR_CODE_REASONS:
        return _ERROR_CODE_REASONS[code]
    if status == 400 and isinstance(error, dict) and exceeds_context(code, error.get("type"), error):
        return "context_exceeded"
    if not isinstance(status, int):
        return "other"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limited"
    if status >= 500 or status == 409:
        return "server_error"
    if status >= 400:
        return "bad_request"
    return "other"


def failure_detail(status: Any, error: Any, body: Any) -> str:
    """One line: the status and the server's message (from ``error`` or the body)."""
    message = error
    if isinstance(error, dict):
        message = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
    if not message and isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
    where = "batch line" if status is None else f"batch line, status {status}"
    return " ".join(f"{where}: {message or 'no message'}".split())[:_DETAIL_CHARS]


def import_lines(
    spec: RequestSpec,
    lines: Iterable[Mapping[str, Any]],
    known: Container[str],
    cache: ResponseCache,
    outcome: BatchOutcome,
) -> list[_Unusable]:
    """Validate each line whose ``custom_id`` is a ``known`` request: valid answers into
    ``cache``, failures into ``outcome.failures``; returns the unusable answers, to be
    re-asked (:func:`reask_unusable`). A request's first line wins over a repeat."""
    handled: set[str] = set()
    unusable = []
    for line in lines:
        verdict = read_output_line(line)
        key = verdict.custom_id
        if key not in known:
            outcome.unmatched += 1
            continue
        if key in handled:
            continue
        handled.add(key)
        outcome.prompts += 1
        if cache.get(key) is not None:
            outcome.already_cached += 1
        elif verdict.reply is None:
            outcome.failures[key] = CallOutcome(reason=verdict.reason, detail=verdict.detail, requests=1)
        else:
            found = _judge_reply(spec, cache, key, verdict.reply, outcome)
            if found is not None:
                unusable.append(found)
    return unusable


def _judge_reply(spec: RequestSpec, cache: ResponseCache, key: str, reply: Reply,
                 outcome: BatchOutcome) -> _Unusable | None:
    outcome.batch_tokens_in += reply.tokens_in
    outcome.batch_tokens_out += reply.tokens_out
    answer = judge(reply, spec.answer_model)
    if isinstance(answer, Unusable):
        return _Unusable(key, reply, answer)
    cache.put(key, answer.model_dump_json(), reply.tokens_in, reply.tokens_out, spec.config.model)
    outcome.answered += 1
    return None


def reask_unusable(
    spec: RequestSpec,
    cache: ResponseCache,
    unusable: list[_Unusable],
    messages_of: Callable[[set[str]], Mapping[str, list[Message]]],
    outcome: BatchOutcome,
    reask: bool = True,
) -> None:
    """Re-ask each unusable batch answer live (the error sent back, as the live path does)
    within the run's ``max_reasks`` (the batch answer was the first ask); answers into
    ``cache``, what still fails (or everything, when ``reask`` is False or no re-ask is
    left) into ``outcome.failures`` with the unusable kind as reason. ``messages_of`` gives
    the first-ask messages of the keys asked for. Raises :class:`RunAborted` as the live
    path does (quota, key). Runs its own event loop: not to be called from inside one."""
    if not unusable:
        return
    if not reask or spec.config.max_reasks == 0:
        for item in unusable:
            outcome.failures[item.key] = _unusable_failure(item)
        return
    messages = messages_of({item.key for item in unusable})
    missing = [item.key for item in unusable if item.key not in messages]
    if missing:
        raise BatchJobError(f"no request found for the batch answer {missing[0]}: the request file is "
                            "incomplete; run the batch again")
    asyncio.run(_reask_all(spec, cache, unusable, messages, outcome))


def _unusable_failure(item: _Unusable) -> CallOutcome:
    return CallOutcome(reason=item.verdict.kind, detail=item.verdict.error[:_DETAIL_CHARS], requests=1,
                       tokens_in=item.reply.tokens_in, tokens_out=item.reply.tokens_out)


async def _reask_all(spec: RequestSpec, cache: ResponseCache, unusable: list[_Unusable],
                     messages: Mapping[str, list[Message]], outcome: BatchOutcome) -> None:
    config = replace(spec.config, max_reasks=spec.config.max_reasks - 1)  # the batch answer was ask one
    semaphore = asyncio.Semaphore(config.concurrency)
    async with make_async_client(config) as client:
        caller = StructuredCaller(client, config, spec.answer_model)
        try:
            async with asyncio.TaskGroup() as group:
                for item in unusable:
                    group.create_task(_reask_one(spec, caller, semaphore, cache, item, messages[item.key], outcome))
        except* RunAborted as aborted:
            raise aborted.exceptions[0] from None


async def _reask_one(spec: RequestSpec, caller: StructuredCaller, semaphore: asyncio.Semaphore,
                     cache: ResponseCache, item: _Unusable, first_ask: list[Message], outcome: BatchOutcome) -> None:
    said, kind, error = item.verdict.said, item.verdict.kind, item.verdict.error
    conversation = [*first_ask, {"role": "assistant", "content": said}, reask_message(kind, error)]
    async with semaphore:
        result = await caller.ask(conversation)
        outcome.live_requests += result.requests
        outcome.live_tokens_in += result.tokens_in
        outcome.live_tokens_out += result.tokens_out
        result.reasks += 1  # the re-ask of the batch answer itself
        result.requests += 1  # the batch request
        result.tokens_in += item.reply.tokens_in
        result.tokens_out += item.reply.tokens_out
        if result.ok:  # cached before the slot is released, as the live path does
            cache.put(item.key, result.answer_json or "", result.tokens_in, result.tokens_out, spec.config.model)
            outcome.reasked += 1
        else:
            outcome.failures[item.key] = result


def import_outputs(
    spec: RequestSpec,
    message_lists: Iterable[list[Message]],
    paths: Iterable[Path | str],
    reask: bool = True,
) -> BatchOutcome:
    """Read output files of a batch run elsewhere (vLLM ``run-batch`` on one's own GPUs,
    or OpenAI's output and error files) into the cache, as a job's own import does. Lines
    are matched to ``message_lists`` (the requests :func:`llm.batch_files.export_requests`
    wrote) by ``custom_id``; other lines are counted in ``unmatched`` and left out.

    Raises :class:`BatchJobError` for a file that is not JSONL.

    Example::

        outcome = import_outputs(RequestSpec.of(forecaster), message_lists, ["out-1.jsonl"])
        outcome.answered, outcome.failures
    """
    prompts = {p.key: p.messages for p in pending_prompts(spec, message_lists, None)}
    outcome = BatchOutcome()
    with open_cache(spec) as cache:
        lines = (line for path in paths for line in read_jsonl(path))
        unusable = import_lines(spec, lines, prompts, cache, outcome)
        reask_unusable(spec, cache, unusable, lambda keys: prompts, outcome, reask)
    return outcome
