"""Batch mode of the LLM stage for an :class:`llm.forecaster.LLMForecaster`: the entry
points the command line calls before the ordinary live run.

* :func:`run_batch_jobs` — provider batch jobs (OpenAI Batch API) answer every distinct
  uncached prompt into the response cache; the live run that follows
  (``forecaster.forecast_many``) finds them there and asks only what is left.
* :func:`export_batch_requests` / :func:`import_batch_outputs` — the same through files,
  for a batch run elsewhere (vLLM ``run-batch`` on one's own GPUs).
* :func:`batch_failure_records` — the typed failure records of the customers whose
  prompt failed in a batch.

The request files, the job state and the import are in ``llm.batch_files``,
``llm.batch_jobs`` and ``llm.batch_import``. Nothing here imports ``forecaster``: progress
is a callable (:class:`llm.batch_jobs.BatchProgress` after each poll).

Example::

    outcome = run_batch_jobs(llm_forecaster, histories, poll_interval_s=60,
                             progress=lambda p: print(p.done, p.total))
    records = llm_forecaster.forecast_many(histories)   # answered prompts: cache hits
    failed = batch_failure_records(llm_forecaster, histories, outcome)
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from llm.batch_files import MAX_BYTES, MAX_LINES, RequestFile, RequestSpec, export_requests
from llm.batch_import import BatchOutcome, import_outputs
from llm.batch_jobs import BatchProgress, Progress, run_batch
from llm.forecaster import LLMForecaster, LLMForecastRecord
from llm.prompt import Message
from structurer.protocol import Histories

__all__ = ["BatchOutcome", "BatchProgress", "RequestSpec", "batch_failure_records", "export_batch_requests",
           "import_batch_outputs", "run_batch_jobs"]


def run_batch_jobs(
    forecaster: LLMForecaster,
    *history_sets: Histories,
    poll_interval_s: float = 30.0,
    progress: Progress | None = None,
    max_wait_s: float | None = None,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
    reask: bool = True,
) -> BatchOutcome:
    """Answer the uncached prompts of one or more history sets (e.g. every anchor a run
    will ask, so that one set of jobs serves them all) through provider batch jobs, into
    the cache (see :func:`llm.batch_jobs.run_batch` for the parameters, resuming and errors)."""
    return run_batch(RequestSpec.of(forecaster), _prompts(forecaster, history_sets), poll_interval_s, progress,
                     max_wait_s, max_lines, max_bytes, reask)


def export_batch_requests(
    forecaster: LLMForecaster,
    *history_sets: Histories,
    folder: Path | str,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
) -> list[RequestFile]:
    """Write the request files of the history sets' uncached prompts into ``folder``
    (``requests-0001.jsonl``...), each within ``max_lines`` lines and ``max_bytes``."""
    return export_requests(RequestSpec.of(forecaster), _prompts(forecaster, history_sets), folder, max_lines,
                           max_bytes)


def import_batch_outputs(
    forecaster: LLMForecaster, *history_sets: Histories, paths: Iterable[Path | str], reask: bool = True,
) -> BatchOutcome:
    """Read batch output files (vLLM ``run-batch``, or OpenAI's) for the history sets'
    prompts into the cache, through the live path's validation (see
    :func:`llm.batch_import.import_outputs`)."""
    return import_outputs(RequestSpec.of(forecaster), _prompts(forecaster, history_sets), paths, reask)


def batch_failure_records(
    forecaster: LLMForecaster, histories: Histories, outcome: BatchOutcome,
) -> list[LLMForecastRecord]:
    """The ``failed`` records (typed reason and detail) of every customer whose prompt
    failed in ``outcome``, in input order of each prompt's first customer; a prompt shared
    by several customers carries its cost once."""
    customers, prompts, groups = forecaster.distinct_prompts(histories)
    records: list[LLMForecastRecord] = []
    for messages, group in zip(prompts, groups):
        failure = outcome.failures.get(forecaster.request_key(messages))
        if failure is not None:
            records += forecaster.records_for([customers[i] for i in group], failure)
    return records


def _prompts(forecaster: LLMForecaster, history_sets: tuple[Histories, ...]) -> list[list[Message]]:
    """The messages of each set's distinct prompts, set after set (a prompt two sets share
    is one request: the batch functions drop repeats)."""
    return [messages for histories in history_sets for messages in forecaster.distinct_prompts(histories)[1]]
