"""Request files of a provider batch job (OpenAI Batch API; vLLM ``run-batch`` reads the
same format) and the JSON lines that come back.

One request line per distinct prompt not yet in the cache::

    {"custom_id": "<cache key>", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": ..., "response_format": ..., "temperature": ..., "max_tokens": ...,
              "messages": [system, user]}}

The body is the one the live path sends for that prompt (``llm.client.StructuredCaller``):
same model, response format, sampling and messages, the stable system prompt first. The
``custom_id`` is the request's cache key, itself a SHA-256 digest of the request
(``llm.cache.request_keyer``): no customer id and no API key can be in it, and an answer
read back goes into the cache under it without rebuilding any prompt.

A file holds at most ``max_lines`` lines and ``max_bytes`` bytes (OpenAI's limits by
default); more prompts are split over several files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from llm.cache import ResponseCache
from llm.client import response_format
from llm.config import LLMConfig
from llm.errors import LLMError
from llm.prompt import Message
from structurer.schema import SpendForecastBase

BATCH_ENDPOINT = "/v1/chat/completions"
MAX_LINES = 50_000  # OpenAI: at most 50,000 requests per batch input file
MAX_BYTES = 200_000_000  # and at most 200 MB, read as 200,000,000 bytes (the smaller of MB and MiB)
REQUEST_PREFIX = "requests"


class BatchJobError(LLMError):
    """A batch job or one of its files cannot be used (one line: what, where, what to do)."""


@dataclass(frozen=True)
class RequestSpec:
    """What every request of one run shares: the configuration, the answer's pydantic
    model and the run's cache keyer.

    Example::

        spec = RequestSpec.of(forecaster)      # an llm.forecaster.LLMForecaster
        spec.body(messages)["model"]           # 'gpt-4o-mini'
    """

    config: LLMConfig
    answer_model: type[SpendForecastBase]
    key: Callable[[list[Message]], str]

    @classmethod
    def of(cls, forecaster: Any) -> "RequestSpec":
        """The spec of an :class:`llm.forecaster.LLMForecaster` (or anything with its
        ``config``, ``answer_model`` and ``request_key``)."""
        return cls(forecaster.config, forecaster.answer_model, forecaster.request_key)

    @property
    def identity(self) -> str:
        """A digest of what every key of the run shares (endpoint, model, prompt version,
        schema, sampling): the key of no messages at all, which only that part decides."""
        return self.key([])

    def body(self, messages: list[Message]) -> dict[str, Any]:
        """The chat-completion body the live path sends for ``messages`` (same keys, same
        order: ``StructuredCaller`` serialises this dict with the messages last)."""
        return {"model": self.config.model, "response_format": response_format(self.answer_model),
                **self.config.sampling, "messages": messages}


@dataclass(frozen=True)
class Prompt:
    """One distinct request: its cache key (the line's ``custom_id``) and messages."""

    key: str
    messages: list[Message]


@dataclass(frozen=True)
class RequestFile:
    """One written request file: where, how many lines, how many bytes."""

    path: Path
    lines: int
    bytes: int


def pending_prompts(spec: RequestSpec, message_lists: Iterable[list[Message]],
                    cache: ResponseCache | None) -> list[Prompt]:
    """Each distinct request of ``message_lists`` whose answer is not in ``cache``, in order
    of first appearance (a prompt asked by several customers is one request)."""
    seen: set[str] = set()
    pending = []
    for messages in message_lists:
        key = spec.key(messages)
        if key in seen:
            continue
        seen.add(key)
        if cache is None or cache.get(key) is None:
            pending.append(Prompt(key, messages))
    return pending


def open_cache(spec: RequestSpec) -> ResponseCache:
    """The run's response cache; batch answers have nowhere else to go."""
    if not spec.config.use_cache:
        raise BatchJobError("batch mode keeps its answers in the response cache: run it without --no-cache")
    return ResponseCache(spec.config.cache_dir)


def request_line(spec: RequestSpec, prompt: Prompt) -> bytes:
    """One JSONL line (newline included), UTF-8, compact as the live body."""
    line = {"custom_id": prompt.key, "method": "POST", "url": BATCH_ENDPOINT, "body": spec.body(prompt.messages)}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def write_request_files(
    spec: RequestSpec,
    prompts: Iterable[Prompt],
    folder: Path | str,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
) -> list[RequestFile]:
    """Write ``prompts`` as ``requests-0001.jsonl``, ``requests-0002.jsonl``... in
    ``folder``, each within ``max_lines`` lines and ``max_bytes`` bytes; each file appears
    complete or not at all (written aside, then renamed).

    Returns the files in order. Raises :class:`BatchJobError` when one request alone is
    larger than ``max_bytes``.

    Example::

        files = write_request_files(spec, pending_prompts(spec, lists, cache), "out", max_lines=1000)
    """
    if max_lines < 1 or max_bytes < 1:
        raise BatchJobError(f"batch file limits must be positive (got {max_lines} lines, {max_bytes} bytes)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[RequestFile] = []
    chunk: list[bytes] = []
    size = 0
    for prompt in prompts:
        line = request_line(spec, prompt)
        if len(line) > max_bytes:
            raise BatchJobError(f"one batch request is {len(line):,} bytes, over the {max_bytes:,}-byte file "
                                "limit: raise the limit or shorten the prompt")
        if chunk and (len(chunk) == max_lines or size + len(line) > max_bytes):
            written.append(_write_chunk(folder, len(written) + 1, chunk))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        written.append(_write_chunk(folder, len(written) + 1, chunk))
    return written


def request_file_name(number: int) -> str:
    return f"{REQUEST_PREFIX}-{number:04d}.jsonl"


def _write_chunk(folder: Path, number: int, lines: list[bytes]) -> RequestFile:
    path = folder / request_file_name(number)
    data = b"".join(lines)
    write_atomically(path, data)
    return RequestFile(path, len(lines), len(data))


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path``, complete or not at all: written beside it, flushed to disk,
    then renamed over it (a rename within one folder is atomic)."""
    aside = path.with_name(path.name + ".partial")
    with open(aside, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(aside, path)


def read_jsonl(path: Path | str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, blank lines skipped. Raises
    :class:`BatchJobError` naming the file and line of anything that is not one."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise BatchJobError(f"cannot read the batch file {path}: {exc.strerror}") from exc
    with handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise BatchJobError(f"{path}:{number} is not a JSON line ({exc}): is it a batch file?") from exc
            if not isinstance(value, dict):
                raise BatchJobError(f"{path}:{number} is not a JSON object: is it a batch file?")
            yield value


def request_messages(path: Path | str, wanted: set[str] | None = None) -> dict[str, list[Message]]:
    """``custom_id -> messages`` of a request file (only the ``wanted`` ids when given)."""
    return {line["custom_id"]: line["body"]["messages"] for line in read_jsonl(path)
            if wanted is None or line.get("custom_id") in wanted}


def request_ids(path: Path | str) -> list[str]:
    """The ``custom_id`` of every line of a request file, in order."""
    return [str(line.get("custom_id")) for line in read_jsonl(path)]


def export_requests(
    spec: RequestSpec,
    message_lists: Iterable[list[Message]],
    folder: Path | str,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
) -> list[RequestFile]:
    """The request files of every distinct prompt of ``message_lists`` not yet answered in
    the cache, for a batch run elsewhere (vLLM ``run-batch``); read the answers back with
    :func:`llm.batch_import.import_outputs`.

    Example::

        files = export_requests(RequestSpec.of(forecaster), message_lists, "batch-in")
        # vllm run-batch -i batch-in/requests-0001.jsonl -o out-0001.jsonl --model ...
    """
    with open_cache(spec) as cache:
        prompts = pending_prompts(spec, message_lists, cache)
    return write_request_files(spec, prompts, folder, max_lines, max_bytes)
