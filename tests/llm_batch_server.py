"""An in-process OpenAI-compatible Batch API test server on loopback: the live server of
``llm_server.py`` (``POST /v1/chat/completions``, for the live re-asks and the live run)
plus the files and batches endpoints the ``openai`` package calls:

* ``POST /v1/files`` (multipart upload, purpose ``batch``), ``GET /v1/files/{id}`` and
  ``GET /v1/files/{id}/content``;
* ``POST /v1/batches`` and ``GET /v1/batches/{id}``, whose status moves one step per poll:
  ``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed`` (or the end status
  set with :meth:`LoopbackBatchServer.end_jobs_with`: ``expired`` answers half the lines
  and writes ``batch_expired`` error lines for the rest, ``failed`` answers nothing).

It is NOT a language model: each line is answered with the live server's synthetic answer
for that body (``LoopbackLLMServer.respond``). Line behaviours come from
:meth:`LoopbackBatchServer.script_lines` in line order over all jobs (then ``valid``):
the live behaviours (``valid``, ``bad_sum``, ``malformed_json``, ``refusal``,
``truncated`` go to the output file as status 200; ``server_error`` as status 500 in the
output file; ``rate_limit`` as status 429 in the error file), plus ``error`` (an error-file
line with no response and code ``request_timeout``) and ``missing`` (no line at all).

Uploads, job creations, polls and downloads are counted, so a test can assert that a
resumed run submits nothing again; every chat body received is kept (``chat_bodies``).
Bounded like the live server: 127.0.0.1 only, a random free port, stops after ``lifetime_s``.
"""

from __future__ import annotations

import email.policy
import io
import itertools
import json
import threading
from collections import deque
from email.parser import BytesParser
from typing import Any, Iterable

from llm_server import LoopbackLLMServer, _error, _make_handler, _Server

PROGRESSION = ("validating", "in_progress", "finalizing")
OUTPUT_STATUSES = {"valid", "bad_sum", "malformed_json", "refusal", "truncated", "server_error"}


class LoopbackBatchServer(LoopbackLLMServer):
    """``with LoopbackBatchServer() as server:``; ``server.base_url`` is the ``/v1`` URL."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.chat_bodies: list[dict[str, Any]] = []
        self.uploads = self.batches_created = self.polls = self.downloads = 0
        self.failing_creations = 0  # the next job creations answered with a 500
        self._line_script: deque[str] = deque()
        self._end_statuses: deque[str] = deque()
        self._held = False
        self._ids = itertools.count(1)
        self._batch_lock = threading.Lock()

    # -- control ---------------------------------------------------------------------------------

    def script_lines(self, behaviours: Iterable[str]) -> None:
        with self._batch_lock:
            self._line_script.extend(behaviours)

    def end_jobs_with(self, statuses: Iterable[str]) -> None:
        """End statuses of the next jobs to finish (then ``completed``)."""
        with self._batch_lock:
            self._end_statuses.extend(statuses)

    def hold_jobs(self, held: bool) -> None:
        """While held, a job goes no further than ``in_progress``."""
        with self._batch_lock:
            self._held = held

    def uploaded_contents(self) -> list[bytes]:
        with self._batch_lock:
            return [f["content"] for f in self.files.values() if f["purpose"] == "batch"]

    def start(self) -> "LoopbackBatchServer":
        self._httpd = _Server(("127.0.0.1", 0), _make_batch_handler(self))
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        timer = threading.Timer(self.lifetime_s, self.stop)
        timer.daemon = True
        timer.start()
        return self

    # -- the endpoints ---------------------------------------------------------------------------

    def upload(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        with self._batch_lock:
            self.uploads += 1
            return self._store_file(filename, purpose, content)

    def _store_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = f"file-loopback{next(self._ids)}"
        self.files[file_id] = {"filename": filename, "purpose": purpose, "content": content}
        return _file_object(file_id, self.files[file_id])

    def create_batch(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._batch_lock:
            if self.failing_creations:
                self.failing_creations -= 1
                return 500, _error("The server had an error (loopback)", "server_error", None)
            if request.get("input_file_id") not in self.files:
                return 404, _error("No such file (loopback)", "invalid_request_error", None)
            self.batches_created += 1
            batch_id = f"batch_loopback{next(self._ids)}"
            lines = self.files[request["input_file_id"]]["content"].decode("utf-8").splitlines()
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
                "input_file_id": request["input_file_id"], "completion_window": request["completion_window"],
                "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": 0,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": None,
            }
            return 200, dict(self.batches[batch_id])

    def poll(self, batch_id: str) -> dict[str, Any] | None:
        with self._batch_lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            self.polls += 1
            self._advance(batch)
            return dict(batch)

    def _advance(self, batch: dict[str, Any]) -> None:
        status = batch["status"]
        if status not in PROGRESSION or (self._held and status == "in_progress"):
            return
        following = PROGRESSION.index(status) + 1
        if following < len(PROGRESSION):
            batch["status"] = PROGRESSION[following]
            return
        batch["status"] = self._end_statuses.popleft() if self._end_statuses else "completed"
        self._finish(batch)

    def _finish(self, batch: dict[str, Any]) -> None:
        """Answer the job's lines into an output and an error file (under the lock)."""
        if batch["status"] == "failed":
            batch["errors"] = {"object": "list", "data": [
                {"code": "invalid_request", "message": "The input file is malformed (loopback)", "param": None}]}
            return
        requests = [json.loads(line) for line in self.files[batch["input_file_id"]]["content"].splitlines()]
        answered = len(requests) // 2 if batch["status"] == "expired" else len(requests)
        output, errors = [], []
        for index, request in enumerate(requests):
            if index >= answered:
                errors.append(_line(request, None, {"code": "batch_expired", "message": "This request could not "
                                                    "be executed before the completion window expired."}))
                continue
            behaviour = self._line_script.popleft() if self._line_script else "valid"
            self._answer_line(request, behaviour, output, errors)
        batch["request_counts"]["completed"] = sum(line["response"]["status_code"] == 200 for line in output)
        batch["request_counts"]["failed"] = len(requests) - batch["request_counts"]["completed"]
        for key, lines in (("output_file_id", output), ("error_file_id", errors)):
            if lines:
                content = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
                batch[key] = self._store_file(f"{batch['id']}_{key}.jsonl", "batch_output", content)["id"]

    def _answer_line(self, request: dict[str, Any], behaviour: str, output: list, errors: list) -> None:
        if behaviour == "missing":
            return
        if behaviour == "error":
            errors.append(_line(request, None, {"code": "request_timeout", "message": "The model call timed out."}))
            return
        status, _, payload = self.respond(behaviour, request["body"])
        response = {"status_code": status, "request_id": f"req_loopback{next(self._ids)}", "body": payload}
        (output if behaviour in OUTPUT_STATUSES else errors).append(_line(request, response, None))

    def content(self, file_id: str) -> bytes | None:
        with self._batch_lock:
            found = self.files.get(file_id)
            if found is not None:
                self.downloads += 1
            return None if found is None else found["content"]


def _line(request: dict[str, Any], response: dict[str, Any] | None, error: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": f"batch_req_{request['custom_id'][:12]}", "custom_id": request["custom_id"],
            "response": response, "error": error}


def _file_object(file_id: str, stored: dict[str, Any]) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "bytes": len(stored["content"]), "created_at": 0,
            "filename": stored["filename"], "purpose": stored["purpose"], "status": "processed"}


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``name -> (filename, bytes)`` of a multipart/form-data body."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    return {part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_payload(decode=True))
            for part in message.iter_parts()}


def _make_batch_handler(server: LoopbackBatchServer) -> type:
    LiveHandler = _make_handler(server)

    class Handler(LiveHandler):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:
            path = self.path.rstrip("/")
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if path.endswith("/v1/files"):
                parts = _multipart(self.headers.get("content-type", ""), body)
                filename, content = parts["file"]
                self._send(200, {}, server.upload(filename or "upload", parts["purpose"][1].decode(), content))
            elif path.endswith("/v1/batches"):
                status, payload = server.create_batch(json.loads(body))
                self._send(status, {}, payload)
            else:  # a chat completion: kept, then answered as the live server answers it
                server.chat_bodies.append(json.loads(body))
                original, self.rfile = self.rfile, io.BytesIO(body)
                try:
                    super().do_POST()
                finally:
                    self.rfile = original

        def do_GET(self) -> None:
            parts = self.path.rstrip("/").split("/")
            if len(parts) >= 3 and parts[-3] == "files" and parts[-1] == "content":
                content = server.content(parts[-2])
                if content is not None:
                    self._send_bytes(content)
                    return
            elif parts[-2] == "files" and parts[-1] in server.files:
                self._send(200, {}, _file_object(parts[-1], server.files[parts[-1]]))
                return
            elif parts[-2] == "batches":
                batch = server.poll(parts[-1])
                if batch is not None:
                    self._send(200, {}, batch)
                    return
            self._send(404, {}, _error("not found (loopback)", "invalid_request_error", None))

        def _send_bytes(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler
