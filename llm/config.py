"""Where the LLM stage gets its endpoint, model and key: the environment first, then
flags (a flag given on the command line always wins).

* ``OPENAI_API_KEY``   — the key; a local server (``OPENAI_BASE_URL`` set) needs none.
* ``OPENAI_BASE_URL``  — any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp server);
  unset means OpenAI itself.
* ``FORECASTER_MODEL`` — the model name as the endpoint knows it.

The key lives only in :class:`LLMConfig` (hidden from ``repr``) and in the SDK client: it
is never logged, never part of a cache key and filtered out of cassettes.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from llm.errors import LLMConfigError

ENV_API_KEY = "OPENAI_API_KEY"
ENV_BASE_URL = "OPENAI_BASE_URL"
ENV_MODEL = "FORECASTER_MODEL"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# The SDK refuses an empty key; local servers ignore whatever is sent.
LOCAL_PLACEHOLDER_KEY = "not-needed"
DEFAULT_TIMEOUT_S = 60.0  # seconds one request may take (``--llm-timeout``)
DEFAULT_MAX_TOKENS = 800  # the longest answer asked for, in tokens (``--llm-max-tokens``)


@dataclass(frozen=True)
class RetryPolicy:
    """Transport retries (429, timeouts, connection errors, 5xx): the one retry layer.

    The wait before retry *n* is the server's ``retry-after-ms`` / ``Retry-After`` when it
    sends one (capped at ``max_retry_after_s``), otherwise "full jitter" exponential
    backoff, uniform in ``[0, min(max_backoff_s, initial_backoff_s * 2**n)]``
    (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015).
    """

    max_attempts: int = 6  # requests per answer, first one included
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 60.0
    # Requests in a row that fail to get any answer (connection error, timeout, 5xx) before
    # the endpoint has answered once: then the run stops instead of retrying every customer.
    # Above the per-customer attempts, so one unlucky customer alone never stops a run.
    unreachable_after: int = 8

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise LLMConfigError("transport attempts must be at least 1")
        if self.unreachable_after < 1:
            raise LLMConfigError("unreachable_after must be at least 1")


@dataclass(frozen=True)
class LLMConfig:
    """Everything one LLM run needs. Sampling settings are part of every cache key."""

    model: str
    base_url: str | None = None
    api_key: str = field(default="", repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    concurrency: int = 8
    max_reasks: int = 2
    temperature: float = 0.0
    max_tokens: int = DEFAULT_MAX_TOKENS
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache_dir: Path | None = None
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise LLMConfigError(f"concurrency must be at least 1 (got {self.concurrency})")
        if self.max_reasks < 0:
            raise LLMConfigError(f"re-asks must be 0 or more (got {self.max_reasks})")
        check_timeout(self.timeout_s)
        check_max_tokens(self.max_tokens)

    @property
    def endpoint(self) -> str:
        """The base URL calls go to (OpenAI's when none is set)."""
        return (self.base_url or OPENAI_BASE_URL).rstrip("/")

    @property
    def sampling(self) -> dict[str, Any]:
        """Request parameters that change the answer (so they belong in the cache key).

        ``max_tokens`` rather than ``max_completion_tokens``: every local server named in
        docs/llm.md understands it, and OpenAI's chat models still accept it.
        """
        return {"temperature": self.temperature, "max_tokens": self.max_tokens}


def check_timeout(seconds: float) -> float:
    """``seconds`` when it is a usable request timeout (positive, finite); LLMConfigError otherwise."""
    if not 0 < seconds < math.inf:
        raise LLMConfigError(f"the LLM request timeout must be a positive number of seconds (got {seconds:g})")
    return seconds


def check_max_tokens(tokens: int) -> int:
    """``tokens`` when it is a usable answer length (a whole number, at least 1); LLMConfigError otherwise."""
    if isinstance(tokens, bool) or not isinstance(tokens, numbers.Integral) or tokens < 1:
        raise LLMConfigError(f"the LLM answer length must be a whole number of tokens, at least 1 (got {tokens!r})")
    return int(tokens)


def resolve_config(
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> LLMConfig:
    """Flags over environment: ``model`` / ``base_url`` / ``api_key`` given here win over
    ``FORECASTER_MODEL`` / ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``. ``options`` are the
    other :class:`LLMConfig` fields (``concurrency``, ``timeout_s``, ``cache_dir``...).

    Raises :class:`LLMConfigError` (one line) when no model is named, or when neither a
    key nor a local base URL is available.
    """
    env = os.environ if env is None else env
    model = model or env.get(ENV_MODEL) or None
    base_url = base_url or env.get(ENV_BASE_URL) or None
    api_key = api_key or env.get(ENV_API_KEY) or None
    if not model:
        raise LLMConfigError(
            f"no LLM model named: pass --model or set {ENV_MODEL} (e.g. gpt-4o-mini, or the "
            "name your local server serves)"
        )
    if not api_key:
        if not base_url:
            raise LLMConfigError(
                f"no LLM credentials: set {ENV_API_KEY} for OpenAI, or {ENV_BASE_URL} for a "
                "local OpenAI-compatible server (vLLM, Ollama, llama.cpp)"
            )
        api_key = LOCAL_PLACEHOLDER_KEY
    return LLMConfig(model=model, base_url=base_url, api_key=api_key, **options)
