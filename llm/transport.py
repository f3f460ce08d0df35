"""Transport errors of the chat endpoint: what each one means and whether to retry it.

The typed :data:`~structurer.schema.FailureReason` of an SDK error, the errors that stop the
whole run (quota, key, permission), whether a failed attempt reached the server, the wait
before the next transport retry (the server's ``Retry-After``, else full jitter) and the
watch that stops a run whose endpoint never answers. :class:`llm.client.StructuredCaller`
drives the retries with these; batch output lines are classified the same way
(``llm.batch_import``). ``llm.client`` imports the names that were public there before
this module split off, so ``from llm.client import fatal_message`` still works.
"""

from __future__ import annotations

import email.utils
import time

import httpx2
import openai
from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

from llm.config import RetryPolicy
from llm.errors import RunAborted
from llm.overflow import exceeds_context
from structurer.schema import FailureReason


def describe(exc: BaseException) -> str:
    """One line: the error and, when wrapped, its root cause (e.g. a cassette miss)."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None:
        text += f" (caused by {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})"
    return text.replace("\n", " ")


def fatal_message(exc: BaseException) -> str | None:
    """The one-line reason to stop the whole run, or None if the error is not fatal."""
    if isinstance(exc, openai.RateLimitError) and "insufficient_quota" in (exc.code, exc.type):
        return ("LLM 호출을 멈췄습니다: API 사용 한도가 소진되었습니다 (429 insufficient_quota). "
                "결제 정보나 사용 한도를 확인한 뒤 다시 실행하세요.")
    if isinstance(exc, openai.AuthenticationError):
        return ("LLM 호출을 멈췄습니다: API 키가 거부되었습니다 (401). "
                "OPENAI_API_KEY와 OPENAI_BASE_URL을 확인하세요.")
    if isinstance(exc, openai.PermissionDeniedError):
        return ("LLM 호출을 멈췄습니다: 이 키로는 모델에 접근할 수 없습니다 (403). "
                "키의 권한과 --model 값을 확인하세요.")
    return None


def transport_reason(exc: BaseException) -> FailureReason:
    """The typed failure reason of a transport error."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.APIStatusError) and exc.status_code == 408:
        return "timeout"  # the server's own request timeout
    if isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code == 409):
        return "server_error"  # 409: a lock timeout on the server, retried like the SDK does
    if isinstance(exc, openai.BadRequestError):
        return "context_exceeded" if exceeds_context(exc.code, exc.type, exc.body) else "bad_request"
    return "other"


def reached_server(exc: BaseException) -> bool:
    """Whether a failed attempt got as far as the server. Only a connection that could not
    be opened (refused, unknown host, connect timeout) or a free pooled connection that never
    came (pool timeout) is known to have sent nothing; a read timeout or a dropped
    connection means the request was written and the server has it."""
    cause = exc.__cause__
    return not isinstance(cause, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout))


# A run's endpoint is taken for unreachable when its requests keep failing for these reasons
# (no answer could come from it); a rate limit means it is there and asks us to wait.
_NO_ANSWER_REASONS = ("connection_error", "timeout", "server_error")


class EndpointWatch:
    """Stops a run at once when its endpoint never answers: after ``limit`` requests in a
    row failed with no answer (connection refused, timeout, 5xx) before the first answer of
    the run, :class:`RunAborted`. Once anything has answered, failures go through the usual
    retries and end as ``failed`` records (the verbs' ``--max-failed`` check covers them)."""

    def __init__(self, endpoint: str, limit: int) -> None:
        self._endpoint = endpoint
        self._limit = limit
        self._failures = 0
        self._answered = False

    def answered(self) -> None:
        self._answered = True

    def failed(self, exc: openai.APIError) -> None:
        reason = transport_reason(exc)
        if reason not in _NO_ANSWER_REASONS:  # a 429 or a 4xx: the endpoint is there
            self._answered = True
        if self._answered:
            return
        self._failures += 1
        if self._failures >= self._limit:
            raise RunAborted(
                f"LLM 호출을 멈췄습니다: {self._endpoint}에서 답을 한 번도 받지 못한 채 요청 {self._failures}개가 "
                f"연달아 실패했습니다 ({reason}: {describe(exc)}). 서버가 켜져 있는지, --base-url 또는 "
                "OPENAI_BASE_URL이 맞는지 확인하세요."
            ) from exc


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: rate limits (not quota), timeouts, connection errors, 5xx."""
    if fatal_message(exc) is not None:
        return False
    return transport_reason(exc) in ("timeout", "connection_error", "rate_limited", "server_error")


def retry_after_s(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, else ``Retry-After`` as
    seconds or as an HTTP date; None when absent or unreadable."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    date = headers.get("retry-after")
    if date:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(date).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


class WaitRetryAfterOrJitter:
    """tenacity wait: the server's Retry-After when given (capped), else full jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._jitter = wait_random_exponential(multiplier=policy.initial_backoff_s, max=policy.max_backoff_s)

    def __call__(self, state: RetryCallState) -> float:
        asked = retry_after_s(state.outcome.exception() if state.outcome else None)
        if asked is not None:
            return min(asked, self._policy.max_retry_after_s)
        return self._jitter(state)
