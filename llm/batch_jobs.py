"""Provider batch jobs through the ``openai`` package: upload the request files
(``files.create(purpose="batch")``), create one job per file (``batches.create``, 24 h
window, half the live price at OpenAI), poll them (``batches.retrieve``), download the
output and error files (``files.content``) and import them (``llm.batch_import``).

What was submitted is kept on disk beside the response cache, in ``llm-batch-jobs.json``
(written atomically after every upload, job creation and import) with the request files
under ``llm-batch-jobs/``: a killed run's next call polls and imports the recorded jobs
and never uploads or submits them again. Only a kill in the instant between the server's
answer to an upload or a job creation and the state write can leave one orphan file or
job behind. When every job of a run is imported, its entry and files are removed. One
batch run per cache folder at a time: two at once would overwrite each other's state.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterable

import openai

from llm.batch_files import (
    BATCH_ENDPOINT, MAX_BYTES, MAX_LINES, REQUEST_PREFIX, BatchJobError, RequestFile, RequestSpec, open_cache,
    pending_prompts, read_jsonl, request_ids, request_messages, write_atomically, write_request_files,
)
from llm.batch_import import BatchOutcome, import_lines, reask_unusable
from llm.cache import ResponseCache
from llm.client import CallOutcome, fatal_message
from llm.config import LLMConfig
from llm.errors import RunAborted
from llm.prompt import Message

STATE_FILE = "llm-batch-jobs.json"
JOBS_FOLDER = "llm-batch-jobs"
STATE_VERSION = 1
COMPLETION_WINDOW = "24h"
FINISHED = frozenset({"completed", "expired", "cancelled", "failed"})
# Why a request of a finished job has no line at all, by the job's final status.
_NO_LINE = {
    "completed": ("other", "the batch job finished without a line for this request"),
    "expired": ("timeout", "the batch job's 24 h window ended before this request ran"),
    "cancelled": ("other", "the batch job was cancelled before this request ran"),
    "failed": ("bad_request", "the batch job failed: {errors}"),
}


class BatchPending(BatchJobError):
    """The jobs were still running when the caller's wait ran out; they are kept on disk."""


@dataclass(frozen=True)
class BatchProgress:
    """Where the jobs of one run stand after a poll: ``done`` of ``total`` requests
    finished (answered or failed) by the provider, ``finished_jobs`` of ``jobs`` imported,
    and each job's status (``validating``, ``in_progress``, ``finalizing``, ``completed``...)."""

    jobs: int
    finished_jobs: int
    done: int
    total: int
    statuses: tuple[str, ...]


Progress = Callable[[BatchProgress], None]


class JobState:
    """The job state file of one cache folder: per open run (one per run identity), its
    request files with their file id, job id, status and, once imported, the outcome."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE
        self.runs: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BatchJobError(f"the batch job state {self.path} is unreadable ({exc}): move it away to start "
                                "over (jobs it recorded would be submitted again)") from exc
        if data.get("version") != STATE_VERSION:
            raise BatchJobError(f"the batch job state {self.path} has version {data.get('version')!r}, not "
                                f"{STATE_VERSION}: finish it with the version that wrote it, or move it away")
        return dict(data["runs"])

    def save(self) -> None:
        text = json.dumps({"version": STATE_VERSION, "runs": self.runs}, indent=1, ensure_ascii=False)
        write_atomically(self.path, text.encode("utf-8"))

    def run_folder(self, identity: str) -> Path:
        return self.folder / JOBS_FOLDER / identity[:16]

    def start_run(self, spec: RequestSpec, files: Iterable[RequestFile]) -> dict[str, Any]:
        """Record a new run of ``spec`` with its written request files (nothing submitted)."""
        run = {"model": spec.config.model, "endpoint": spec.config.endpoint, "created": time.time(),
               "jobs": [{"file": f.path.name, "lines": f.lines, "bytes": f.bytes, "file_id": None,
                         "batch_id": None, "status": None, "done": 0, "outcome": None} for f in files]}
        self.runs[spec.identity] = run
        self.save()
        return run

    def close_run(self, identity: str) -> None:
        """Forget a run whose jobs are all imported, and remove its files."""
        self.runs.pop(identity, None)
        self.save()
        shutil.rmtree(self.run_folder(identity), ignore_errors=True)


def make_sync_client(config: LLMConfig) -> openai.OpenAI:
    """The client of the job calls: few calls, so the SDK's own retries (up to the run's
    transport attempts) are enough; the per-request accounting of the live path is not needed."""
    return openai.OpenAI(api_key=config.api_key, base_url=config.endpoint, timeout=config.timeout_s,
                         max_retries=config.retry.max_attempts - 1)


def run_batch(
    spec: RequestSpec,
    message_lists: Iterable[list[Message]],
    poll_interval_s: float = 30.0,
    progress: Progress | None = None,
    max_wait_s: float | None = None,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
    reask: bool = True,
) -> BatchOutcome:
    """Answer every distinct uncached prompt of ``message_lists`` through provider batch
    jobs, into the response cache; afterwards the live run finds those answers there.

    A run of the same configuration left unfinished (killed, or out of ``max_wait_s``) is
    finished first: its jobs are polled and imported, never submitted again, and its
    prompts are not submitted again either. Unusable answers are re-asked live
    (``reask``); failures are ``outcome.failures`` (cache key -> typed ``CallOutcome``).

    Parameters: ``poll_interval_s`` between polls; ``progress`` called after each poll;
    ``max_wait_s`` the longest wait (None: until the jobs finish); ``max_lines`` and
    ``max_bytes`` per request file.

    Raises :class:`BatchPending` when ``max_wait_s`` ran out (the jobs stay recorded),
    :class:`RunAborted` for a rejected key or an exhausted quota, :class:`BatchJobError`
    when a job call fails.

    Example::

        outcome = run_batch(RequestSpec.of(forecaster), message_lists, poll_interval_s=60)
        forecaster.forecast_many(histories)   # the answered prompts come from the cache
    """
    deadline = None if max_wait_s is None else time.monotonic() + max_wait_s
    with open_cache(spec) as cache, make_sync_client(spec.config) as client:
        jobs = _Jobs(spec, client, JobState(cache.path.parent), cache, reask)
        outcome, covered = BatchOutcome(), set()
        run = jobs.state.runs.get(spec.identity)
        if run is not None:  # an unfinished run: finish it, never submit it again
            covered = jobs.covered(run)
            outcome.add(jobs.finish(run, poll_interval_s, progress, deadline))
        prompts = [p for p in pending_prompts(spec, message_lists, cache) if p.key not in covered]
        if prompts:
            files = write_request_files(spec, prompts, jobs.state.run_folder(spec.identity), max_lines, max_bytes)
            outcome.add(jobs.finish(jobs.state.start_run(spec, files), poll_interval_s, progress, deadline))
    return outcome


class _Jobs:
    """The job calls of one :func:`run_batch` call, each recorded in the state at once."""

    def __init__(self, spec: RequestSpec, client: openai.OpenAI, state: JobState, cache: ResponseCache,
                 reask: bool) -> None:
        self.spec, self.client, self.state, self.cache, self.reask = spec, client, state, cache, reask
        self.folder = state.run_folder(spec.identity)

    def covered(self, run: dict[str, Any]) -> set[str]:
        """The cache keys of every request of ``run``."""
        return {key for job in run["jobs"] for key in request_ids(self.folder / job["file"])}

    def finish(self, run: dict[str, Any], poll_interval_s: float, progress: Progress | None,
               deadline: float | None) -> BatchOutcome:
        """Submit what is not yet submitted, poll until every job is imported, close the run."""
        outcome = BatchOutcome()
        for job in run["jobs"]:
            self._submit(job, outcome)
        self._wait(run, poll_interval_s, progress, deadline)
        for job in run["jobs"]:
            outcome.add(BatchOutcome.from_json(job["outcome"]))
        self.state.close_run(self.spec.identity)
        return outcome

    def _wait(self, run: dict[str, Any], poll_interval_s: float, progress: Progress | None,
              deadline: float | None) -> None:
        """Poll every job not yet imported, importing each as it finishes, until none is left."""
        while True:
            for job in [j for j in run["jobs"] if j["outcome"] is None]:
                self._poll(job)
            self.state.save()
            if progress is not None:
                progress(_progress(run))
            pending = sum(j["outcome"] is None for j in run["jobs"])
            if not pending:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise BatchPending(
                    f"LLM 배치 작업 {len(run['jobs'])}개 중 {pending}개가 아직 끝나지 않았습니다. "
                    f"작업 ID는 {self.state.path}에 저장되어 있으니 같은 명령을 다시 실행하면 "
                    "다시 제출하지 않고 결과를 가져옵니다.")
            time.sleep(poll_interval_s)

    def _submit(self, job: dict[str, Any], outcome: BatchOutcome) -> None:
        if job["file_id"] is None:
            uploaded = self._call("uploading a request file",
                                  lambda: self.client.files.create(file=self.folder / job["file"], purpose="batch"))
            job["file_id"] = uploaded.id
            self.state.save()
            outcome.files_uploaded += 1
        if job["batch_id"] is None:
            created = self._call("creating a batch job", lambda: self.client.batches.create(
                input_file_id=job["file_id"], endpoint=BATCH_ENDPOINT, completion_window=COMPLETION_WINDOW))
            job["batch_id"], job["status"] = created.id, created.status
            self.state.save()
            outcome.batches_created += 1

    def _poll(self, job: dict[str, Any]) -> None:
        batch = self._call("polling a batch job", lambda: self.client.batches.retrieve(job["batch_id"]))
        counts = batch.request_counts
        job["status"] = batch.status
        job["done"] = (counts.completed + counts.failed) if counts is not None else 0
        if batch.status in FINISHED:
            job["outcome"] = self._import(job, batch).to_json()
            job["done"] = job["lines"]
            self.state.save()

    def _import(self, job: dict[str, Any], batch: Any) -> BatchOutcome:
        """Download the job's output and error files and import them; requests with no line
        are failures typed by the job's final status."""
        paths = [self._download(file_id, self.folder / job["file"].replace(REQUEST_PREFIX, kind, 1))
                 for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)) if file_id]
        request_path = self.folder / job["file"]
        keys = request_ids(request_path)
        outcome = BatchOutcome()
        unusable = import_lines(self.spec, chain.from_iterable(map(read_jsonl, paths)), set(keys), self.cache, outcome)
        reask_unusable(self.spec, self.cache, unusable, lambda wanted: request_messages(request_path, wanted),
                       outcome, self.reask)
        reason, detail = _NO_LINE.get(batch.status, _NO_LINE["completed"])
        detail = detail.format(errors=_job_errors(batch))
        for key in keys:
            if key not in outcome.failures and self.cache.get(key) is None:
                outcome.failures[key] = CallOutcome(reason=reason, detail=detail)
                outcome.prompts += 1
        return outcome

    def _download(self, file_id: str, path: Path) -> Path:
        """``file_id``'s content into ``path`` (kept: a resumed import does not fetch it again)."""
        if not path.exists():
            aside = path.with_name(path.name + ".partial")

            def fetch() -> None:  # the request is sent when the stream opens
                with self.client.files.with_streaming_response.content(file_id) as response:
                    response.stream_to_file(aside)

            self._call("downloading a batch result", fetch)
            os.replace(aside, path)
        return path

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """One job call; a failure is one typed line that says how to resume."""
        try:
            return call()
        except openai.APIError as exc:
            fatal = fatal_message(exc)
            if fatal is not None:
                raise RunAborted(fatal) from exc
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            raise BatchJobError(f"LLM batch: {what} failed ({type(exc).__name__}: {first_line}); what was "
                                f"already submitted is kept in {self.state.path}: run again to resume") from exc


def _job_errors(batch: Any) -> str:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) or []
    return "; ".join(f"{e.code}: {e.message}" for e in data[:3]) or "no reason given"


def _progress(run: dict[str, Any]) -> BatchProgress:
    jobs = run["jobs"]
    return BatchProgress(jobs=len(jobs), finished_jobs=sum(j["outcome"] is not None for j in jobs),
                         done=sum(j["done"] for j in jobs), total=sum(j["lines"] for j in jobs),
                         statuses=tuple(str(j["status"]) for j in jobs))
