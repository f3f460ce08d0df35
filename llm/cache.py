"""SQLite response cache: a re-run makes no repeat calls and a killed batch resumes where
it stopped.

Only validated answers are stored, each committed the moment it arrives. The database is
in WAL mode with ``synchronous=NORMAL``: a committed answer survives the process being
killed (only an OS crash or power loss can lose the last commits), and readers never block
the writer.

The key is the SHA-256 of the canonical JSON of everything that determines the answer:
endpoint, model, prompt version, the exact messages, the response schema and the sampling
settings. The API key is never part of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import platformdirs

APP_NAME = "llm-spend-forecaster"
CACHE_FILE = "llm-responses.sqlite3"
_LOOKUP_CHUNK = 500  # keys per query: under SQLite's oldest limit of 999 parameters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_keyer(
    endpoint: str,
    model: str,
    prompt_version: str,
    schema: dict[str, Any],
    sampling: dict[str, Any],
) -> Callable[[list[dict[str, str]]], str]:
    """``messages -> key`` for one run: SHA-256 over the canonical JSON of the run's fixed
    identity (endpoint, model, prompt version, schema, sampling), a newline, then the
    canonical JSON of the messages. The fixed part is hashed once, not once per customer."""
    fixed = _identity_hash(endpoint, model, prompt_version, schema, sampling)

    def key(messages: list[dict[str, str]]) -> str:
        digest = fixed.copy()
        digest.update(canonical_json(messages).encode("utf-8"))
        return digest.hexdigest()

    return key


def content_keyer(template: list[dict[str, str]], *identity: Any) -> Callable[[str], str]:
    """``content -> key`` of ``template`` with its last message's content replaced: the key
    ``request_keyer(*identity)`` gives those messages, with everything before and after the
    content (the identity, the system prompt) hashed once, not once per customer. Only the
    content is serialised per call (a JSON string reads the same alone as in the messages)."""
    marker = "\x00content\x00"
    *before, last = template
    text = canonical_json([*before, {**last, "content": marker}])
    prefix, suffix = text.split(json.dumps(marker, ensure_ascii=False))  # exactly once: no text holds NUL
    head = _identity_hash(*identity)
    head.update(prefix.encode("utf-8"))
    tail = suffix.encode("utf-8")

    def key(content: str) -> str:
        digest = head.copy()
        digest.update(json.dumps(content, ensure_ascii=False).encode("utf-8") + tail)
        return digest.hexdigest()

    return key


def _identity_hash(endpoint: str, model: str, prompt_version: str, schema: dict[str, Any],
                   sampling: dict[str, Any]) -> Any:
    """SHA-256 fed with a run's fixed identity and the newline before its messages."""
    identity = {
        "endpoint": endpoint.rstrip("/"),
        "model": model,
        "prompt_version": prompt_version,
        "schema": schema,
        "sampling": sampling,
    }
    return hashlib.sha256(canonical_json(identity).encode("utf-8") + b"\n")


def cache_key(
    endpoint: str,
    model: str,
    prompt_version: str,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
    sampling: dict[str, Any],
) -> str:
    """The key of one request (no API key in it): see :func:`request_keyer`."""
    return request_keyer(endpoint, model, prompt_version, schema, sampling)(messages)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


@dataclass(frozen=True)
class CachedAnswer:
    answer_json: str  # the validated answer, re-validated by the caller on read
    tokens_in: int
    tokens_out: int


class ResponseCache:
    """One SQLite file; used from one event loop thread (calls are short and local)."""

    def __init__(self, cache_dir: Path | str | None = None) -> None:
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / CACHE_FILE
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_SCHEMA)

    def get(self, key: str) -> CachedAnswer | None:
        row = self._db.execute(
            "SELECT answer, tokens_in, tokens_out FROM responses WHERE key = ?", (key,)
        ).fetchone()
        return CachedAnswer(*row) if row else None

    def answered(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that have an answer, looked up a few hundred at a time."""
        found: set[str] = set()
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start:start + _LOOKUP_CHUNK]
            query = f"SELECT key FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
            found.update(key for (key,) in self._db.execute(query, chunk))
        return found

    def put(self, key: str, answer_json: str, tokens_in: int, tokens_out: int, model: str) -> None:
        """Store one validated answer, committed at once (autocommit mode)."""
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
            (key, answer_json, tokens_in, tokens_out, model, time.time()),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
