"""The one structured call: re-asks for unusable answers over transport retries.

Two retry layers, one per cause, never multiplied into each other's counts:

* **Transport** (this module's ``_send``; which errors and how long to wait:
  :mod:`llm.transport`): 429, timeouts, connection errors and 5xx are retried by tenacity,
  with the SDK's own retries switched off (``max_retries=0``). We retry here rather than in
  the SDK because the record and the ledger must count retries apart from re-asks, a 429
  whose code is ``insufficient_quota`` must stop the run instead of being retried, and the
  final failure needs a typed reason — none of which the SDK's internal loop exposes.
  ``retry-after-ms`` / ``Retry-After`` are honoured as the SDK does.
* **Re-ask** (``StructuredCaller.ask``): an answer that is not JSON, fails validation, is a
  refusal or was cut off by the length limit is sent back with the error and asked again
  (instructor-style), at most ``max_reasks`` times; then a typed ``failed`` outcome.

Whatever the server claims about structured outputs, ``message.content`` is validated by
pydantic here. Tokens are summed over every answer received, unusable ones included.

Requests are counted as the server sees them: an attempt whose connection could not even be
opened (refused, DNS, connect timeout) is counted apart as ``undelivered``, never as a
request. An endpoint that has not answered once and fails ``unreachable_after`` requests in
a row stops the run (:class:`EndpointWatch`) instead of retrying every customer.
"""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import anyio
import httpx2
import openai
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from llm.config import LLMConfig
from llm.errors import LLMError, RunAborted
from llm.overflow import context_exceeded_detail
from llm.prompt import InvalidKind, Message, reask_message
# retry_after_s is not used here: imported so that ``from llm.client import retry_after_s``
# keeps working now that the transport errors live in llm.transport
from llm.transport import (EndpointWatch, WaitRetryAfterOrJitter, describe, fatal_message, is_transient,
                           reached_server, retry_after_s, transport_reason)
from structurer.schema import FailureReason, SpendForecastBase, strict_json_schema

RESPONSE_FORMAT_NAME = "spend_forecast"


class TransportGaveUp(LLMError):
    """A request failed for a transport reason and will not be retried (any more)."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class CallOutcome:
    """What one customer's structured call produced and what it cost."""

    answer: SpendForecastBase | None = None
    answer_json: str | None = None  # the validated answer, as cached
    reason: FailureReason | None = None
    detail: str | None = None
    requests: int = 0  # HTTP requests that reached the server = 1 + re-asks + transport retries
    undelivered: int = 0  # attempts whose connection could not be opened (the server saw nothing)
    reasks: int = 0
    transport_retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.answer is not None


class Reply(NamedTuple):
    """The parts of a chat completion that decide whether the answer is usable."""

    content: str | None
    refusal: str | None
    finish_reason: str | None
    tokens_in: int
    tokens_out: int


class Unusable(NamedTuple):
    kind: InvalidKind
    error: str
    said: str  # what the assistant said, echoed back before the re-ask


def response_format(model: type[SpendForecastBase]) -> dict[str, Any]:
    """Strict json_schema response format for ``model`` (OpenAI structured outputs)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": RESPONSE_FORMAT_NAME, "strict": True, "schema": strict_json_schema(model)},
    }


def make_async_client(config: LLMConfig) -> openai.AsyncOpenAI:
    """One client per run, its connection pool sized to the concurrency, SDK retries off."""
    limits = httpx2.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    http_client = openai.DefaultAsyncHttpxClient(limits=limits, timeout=config.timeout_s, verify=_tls_context())
    return openai.AsyncOpenAI(
        api_key=config.api_key,
        base_url=config.endpoint,
        timeout=config.timeout_s,
        max_retries=0,
        http_client=http_client,
    )


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """httpx2's verifying context, made once (loading the CA bundle: 25 ms of CPU per client)."""
    return httpx2.create_ssl_context()


# -- answers ---------------------------------------------------------------------------------


def reply_from_completion(data: dict[str, Any]) -> Reply:
    """Read a chat-completion JSON body (a dict, as sent by the server)."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = data.get("usage") or {}
    return Reply(
        content=message.get("content"),
        refusal=message.get("refusal"),
        finish_reason=choice.get("finish_reason"),
        tokens_in=int(usage.get("prompt_tokens") or 0),
        tokens_out=int(usage.get("completion_tokens") or 0),
    )


def judge(reply: Reply, model: type[SpendForecastBase]) -> SpendForecastBase | Unusable:
    """The validated answer, or why it cannot be used."""
    said = reply.content or ""
    if reply.refusal:
        return Unusable("refusal", reply.refusal, reply.refusal)
    if reply.finish_reason == "content_filter":
        return Unusable("refusal", "finish_reason=content_filter", said)
    if reply.finish_reason == "length":
        return Unusable("truncated", "finish_reason=length", said)
    if not said.strip():
        return Unusable("invalid_json", "the answer was empty", said)
    try:
        return model.model_validate_json(said)
    except ValidationError as exc:
        kind: InvalidKind = "invalid_json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "validation_error"
        return Unusable(kind, str(exc), said)


class StructuredCaller:
    """Asks one model for one ``SpendForecast`` per message list, through one client."""

    def __init__(self, client: openai.AsyncOpenAI, config: LLMConfig, model: type[SpendForecastBase]) -> None:
        self._client = client
        self._config = config
        self._model = model
        # everything but the messages is the same for every request: serialised once
        fixed = {"model": config.model, "response_format": response_format(model), **config.sampling}
        self._body_head = json.dumps(fixed, ensure_ascii=False, separators=(",", ":"))[:-1] + ',"messages":'
        self._endpoint = ChatEndpoint(client, config.timeout_s)
        self._wait = WaitRetryAfterOrJitter(config.retry)
        self._watch = EndpointWatch(config.endpoint, config.retry.unreachable_after)

    async def ask(self, messages: list[Message]) -> CallOutcome:
        """Send, judge, re-ask with the error up to ``max_reasks`` times; never raises for
        one customer's failure (only :class:`RunAborted` escapes)."""
        outcome = CallOutcome()
        conversation = list(messages)
        started = time.perf_counter()
        try:
            for round_ in range(self._config.max_reasks + 1):
                reply = await self._send(conversation, outcome)
                outcome.tokens_in += reply.tokens_in
                outcome.tokens_out += reply.tokens_out
                verdict = judge(reply, self._model)
                if not isinstance(verdict, Unusable):
                    outcome.answer = verdict
                    outcome.answer_json = verdict.model_dump_json()
                    break
                if round_ == self._config.max_reasks:
                    outcome.reason, outcome.detail = verdict.kind, verdict.error[:2000]
                    break
                conversation += [{"role": "assistant", "content": verdict.said}, reask_message(verdict.kind, verdict.error)]
                outcome.reasks += 1
        except TransportGaveUp as exc:
            outcome.reason, outcome.detail = exc.reason, exc.detail
            if exc.reason == "context_exceeded":
                outcome.detail = context_exceeded_detail(exc.detail, reask=outcome.reasks > 0)
        outcome.latency_s = time.perf_counter() - started
        return outcome

    async def _send(self, conversation: list[Message], outcome: CallOutcome) -> Reply:
        """One answer from the server, retrying transport failures (counted in ``outcome``)."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._config.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        outcome.transport_retries += 1
                    return await self._attempt(conversation, outcome)
        except openai.APIError as exc:
            message = fatal_message(exc)
            if message is not None:
                raise RunAborted(message) from exc
            raise TransportGaveUp(transport_reason(exc), describe(exc)) from exc
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(self, conversation: list[Message], outcome: CallOutcome) -> Reply:
        """One HTTP request, counted as delivered or not, and reported to the endpoint watch
        (which may stop the run)."""
        try:
            reply = await self._post(conversation)
        except openai.APIError as exc:
            if reached_server(exc):
                outcome.requests += 1
            else:
                outcome.undelivered += 1
            self._watch.failed(exc)
            raise
        outcome.requests += 1
        self._watch.answered()
        return reply

    async def _post(self, conversation: list[Message]) -> Reply:
        body = self._body_head + json.dumps(conversation, ensure_ascii=False, separators=(",", ":")) + "}"
        response = await self._endpoint.post(body.encode("utf-8"))
        try:
            return reply_from_completion(json.loads(response.content))
        except (ValueError, AttributeError, TypeError) as exc:
            raise TransportGaveUp("other", f"the server's reply is not a chat completion: {exc}") from exc


# what the SDK turns into APIConnectionError (openai._httpx2.request_exceptions)
_CONNECTION_ERRORS = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream)


class ChatEndpoint:
    """``POST /chat/completions`` through the SDK client's own httpx2 client (pool, proxies,
    redirects, cookies) with the SDK's headers and exceptions, without ``client.post``'s work
    per request (copying its options twice, building the headers, merging the URL: nothing
    that changes within a run). Client CPU per request, loopback server, 8 in flight
    (bench/llm_throughput.py): about 1.4 ms through ``client.post``, 1.0 ms this way."""

    def __init__(self, client: openai.AsyncOpenAI, timeout_s: float) -> None:
        self._http = client._client  # the httpx2 client the SDK sends through (make_async_client's)
        self._status_error = client._make_status_error_from_response  # the SDK's typed 4xx/5xx errors
        base = client.base_url  # the SDK keeps it with a trailing slash
        self._url = base.copy_with(raw_path=base.raw_path + b"chat/completions")
        # merged as the SDK merges them: the http client's (Accept-Encoding, ...), the SDK's (not
        # an Omit), the per-request ones (the SDK's retries are off: the count is always 0)
        self._headers = headers = httpx2.Headers(self._http.headers)
        sdk = {**client.default_headers, **client.auth_headers}
        headers.update({name: value for name, value in sdk.items() if isinstance(value, str)})
        headers.update({"x-stainless-retry-count": "0", "x-stainless-read-timeout": str(float(timeout_s))})
        self._extensions = {"timeout": httpx2.Timeout(timeout_s).as_dict()}

    async def post(self, body: bytes) -> httpx2.Response:
        """The response (read, closed), or what the SDK would raise: APITimeoutError or
        APIConnectionError ``from`` the httpx2 error (see :func:`reached_server`), or the
        APIStatusError subclass of a 4xx/5xx."""
        cookies = self._http.cookies or None  # a server's cookies go back, as the SDK's requests carry them
        request = httpx2.Request("POST", self._url, headers=self._headers, cookies=cookies, content=body,
                                 extensions=self._extensions)
        try:
            response = await self._http.send(request)
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=request) from exc
        except _CONNECTION_ERRORS as exc:
            raise openai.APIConnectionError(request=request) from exc
        if response.status_code >= 400:
            raise self._status_error(response) from None
        return response
