"""The LLM stage: any OpenAI-compatible endpoint, one structured call per customer with
re-asks and transport retries, bounded concurrency, a SQLite response cache, a usage
ledger and a dry run; provider batch jobs fill the same cache (``llm.batch``). See docs/llm.md.

Exports are resolved on first use, so ``import llm.prompt`` (or a CLI verb that never
calls an LLM) does not pay for importing the ``openai`` SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "LLMForecaster": "llm.forecaster",
    "LLMForecastRecord": "llm.forecaster",
    "LLMError": "llm.errors",
    "RunAborted": "llm.errors",
    "LLMConfig": "llm.config",
    "LLMConfigError": "llm.errors",
    "RetryPolicy": "llm.config",
    "resolve_config": "llm.config",
    "ResponseCache": "llm.cache",
    "cache_key": "llm.cache",
    "DryRunEstimate": "llm.ledger",
    "Price": "llm.ledger",
    "PriceTable": "llm.ledger",
    "TokenCounter": "llm.tokens",
    "UsageLedger": "llm.ledger",
    "SYSTEM_VERSION": "llm.prompt",
    "run_batch_jobs": "llm.batch",
    "export_batch_requests": "llm.batch",
    "import_batch_outputs": "llm.batch",
    "batch_failure_records": "llm.batch",
    "BatchOutcome": "llm.batch_import",
    "BatchProgress": "llm.batch_jobs",
    "BatchPending": "llm.batch_jobs",
    "BatchJobError": "llm.batch_files",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
