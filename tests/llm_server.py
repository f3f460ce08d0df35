"""An in-process OpenAI-compatible test server (``POST /v1/chat/completions``) on loopback.

It is NOT a language model: a "valid" answer is synthesised from the request (the bucket
ids come from the request's JSON schema, the probabilities from a hash of the last
message), and its rationale says it is a test server's synthetic answer. Each request
gets a scripted behaviour:

* a queue set with :meth:`LoopbackLLMServer.script` (consumed in arrival order), else
* a random fault with probability ``fault_rate``, drawn deterministically from
  (``seed``, the request body, how often that body was seen) so concurrency cannot
  change which requests fail, else
* ``valid``.

Behaviours: ``valid``, ``rate_limit`` (429 + Retry-After), ``rate_limit_ms`` (429 +
retry-after-ms), ``server_error`` (500), ``hang`` (no answer until ``hang_s`` passes or
the server stops), ``malformed_json``, ``bad_sum`` (probabilities summing to 0.7),
``refusal``, ``truncated`` (finish_reason length), ``insufficient_quota``, ``unauthorized``.

Bounded: it serves at most ``max_requests`` requests and stops itself after
``lifetime_s``; it binds 127.0.0.1 only, on a random free port.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

FAULTS = ("rate_limit", "server_error", "hang", "malformed_json", "bad_sum", "refusal", "truncated")
SYNTHETIC_RATIONALE = "테스트 서버가 요청에서 만든 합성 응답입니다. 실제 언어 모델의 답이 아닙니다."
SEGMENTS = ("VIP", "충성", "일반", "이탈위험", "휴면")
TRENDS = ("증가", "유지", "감소")


@dataclass(frozen=True)
class SeenRequest:
    """One request as the server saw it."""

    body_hash: str
    behaviour: str
    received: float  # time.monotonic() on arrival
    answered: float | None  # when a complete response was written, None if never
    messages: list[dict[str, Any]]
    tokens_in: int = 0  # usage the server reported in a delivered completion
    tokens_out: int = 0
    settings: dict[str, Any] = field(default_factory=dict)  # the request body but its messages
    read_timeout: str | None = None  # the SDK's x-stainless-read-timeout header: the client's timeout


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def synthetic_answer(request: dict[str, Any], prob_sum: float = 1.0) -> dict[str, Any]:
    """A schema-valid answer computed from the request (deterministic per request)."""
    schema = request["response_format"]["json_schema"]["schema"]
    bucket_ids = schema["properties"]["probabilities"]["required"]
    digest = hashlib.sha256(request["messages"][-1]["content"].encode("utf-8")).digest()
    weights = [1 + digest[i] for i in range(len(bucket_ids))]
    total = sum(weights)
    probs = {b: round(prob_sum * w / total, 6) for b, w in zip(bucket_ids, weights)}
    probs[bucket_ids[-1]] = round(prob_sum - sum(list(probs.values())[:-1]), 6)
    return {
        "rationale": SYNTHETIC_RATIONALE,
        "probabilities": probs,
        "expected_spend": round(digest[10] / 4, 2),
        "expected_orders": round(digest[11] / 255, 2),
        "segment": SEGMENTS[digest[12] % len(SEGMENTS)],
        "trend": TRENDS[digest[13] % len(TRENDS)],
        "confidence": round(digest[14] / 255, 2),
    }


def _completion(request: dict[str, Any], content: str | None, finish: str = "stop", refusal: str | None = None) -> dict[str, Any]:
    prompt_chars = sum(len(m.get("content") or "") for m in request["messages"])
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "loopback"),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "finish_reason": finish,
        }],
        # not a tokenizer: a stable stand-in so token sums can be checked
        "usage": {"prompt_tokens": prompt_chars // 2, "completion_tokens": len(content or refusal or "") // 2,
                  "total_tokens": prompt_chars // 2 + len(content or refusal or "") // 2},
    }


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class LoopbackLLMServer:
    """Start with ``with LoopbackLLMServer(...) as server:``; ``server.base_url`` is the
    ``/v1`` URL to give the client."""

    def __init__(
        self,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        faults: Iterable[str] = FAULTS,
        seed: int = 0,
        retry_after_s: float = 0.05,
        hang_s: float = 5.0,
        max_requests: int = 5000,
        lifetime_s: float = 120.0,
    ) -> None:
        self.latency_s = latency_s
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.seed = seed
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._script: deque[str] = deque()
        self._seen: list[SeenRequest] = []
        self._body_counts: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._hold_after: int | None = None
        self._held = 0
        self._in_flight = 0
        self.max_in_flight = 0  # most requests being handled at once
        self._released = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    # -- control -------------------------------------------------------------------------------

    def script(self, behaviours: Iterable[str]) -> None:
        """Behaviours for the next requests, in arrival order (then random/valid)."""
        with self._lock:
            self._script.extend(behaviours)

    def hold_after(self, answered: int | None) -> None:
        """Hold every request that arrives once ``answered`` responses have been written,
        until :meth:`release` or stop (lets a test kill a client at an exact point)."""
        with self._lock:
            self._hold_after = answered
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._seen)

    @property
    def held(self) -> int:
        """Requests currently held by :meth:`hold_after`."""
        with self._lock:
            return self._held

    def answered_count(self) -> int:
        with self._lock:
            return sum(1 for r in self._seen if r.answered is not None)

    def body_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._body_counts)

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "LoopbackLLMServer":
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        timer = threading.Timer(self.lifetime_s, self.stop)
        timer.daemon = True
        timer.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._released.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "LoopbackLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- per request -----------------------------------------------------------------------------

    def _admit(self, digest: str, request: dict[str, Any], read_timeout: str | None = None) -> tuple[int, str]:
        """Register a request; its index and behaviour."""
        messages = request["messages"]
        settings = {name: value for name, value in request.items() if name != "messages"}
        with self._lock:
            index = len(self._seen)
            self._body_counts[digest] += 1
            seen_before = self._body_counts[digest] - 1
            if self._script:
                behaviour = self._script.popleft()
            else:
                rng = random.Random(f"{self.seed}:{digest}:{seen_before}")
                behaviour = rng.choice(self.faults) if rng.random() < self.fault_rate else "valid"
            self._seen.append(SeenRequest(digest, behaviour, time.monotonic(), None, messages,
                                          settings=settings, read_timeout=read_timeout))
            return index, behaviour

    def _wait_if_held(self) -> None:
        with self._lock:
            hold = self._hold_after is not None and sum(r.answered is not None for r in self._seen) >= self._hold_after
            if hold:
                self._held += 1
        if hold:
            self._released.wait(self.lifetime_s)
            with self._lock:
                self._held -= 1

    def _track_in_flight(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _mark_answered(self, index: int, payload: dict[str, Any]) -> None:
        usage = payload.get("usage") or {}
        with self._lock:
            self._seen[index] = replace(self._seen[index], answered=time.monotonic(),
                                        tokens_in=usage.get("prompt_tokens", 0),
                                        tokens_out=usage.get("completion_tokens", 0))

    def respond(self, behaviour: str, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        """(status, headers, JSON body) for a behaviour; None body = hang."""
        valid = synthetic_answer(request)
        text = json.dumps(valid, ensure_ascii=False)
        if behaviour == "valid":
            return 200, {}, _completion(request, text)
        if behaviour == "rate_limit":
            return 429, {"retry-after": f"{self.retry_after_s:g}"}, _error("Rate limit reached (loopback)", "requests", "rate_limit_exceeded")
        if behaviour == "rate_limit_ms":
            return 429, {"retry-after-ms": f"{self.retry_after_s * 1000:g}"}, _error("Rate limit reached (loopback)", "tokens", "rate_limit_exceeded")
        if behaviour == "server_error":
            return 500, {}, _error("The server had an error (loopback)", "server_error", None)
        if behaviour == "malformed_json":
            return 200, {}, _completion(request, text[: len(text) // 2] + ', "probabilities": }')
        if behaviour == "bad_sum":
            return 200, {}, _completion(request, json.dumps(synthetic_answer(request, prob_sum=0.7), ensure_ascii=False))
        if behaviour == "refusal":
            return 200, {}, _completion(request, None, refusal="I'm sorry, I can't help with that request.")
        if behaviour == "truncated":
            return 200, {}, _completion(request, text[: len(text) // 3], finish="length")
        if behaviour == "insufficient_quota":
            return 429, {}, _error("You exceeded your current quota (loopback)", "insufficient_quota", "insufficient_quota")
        if behaviour == "unauthorized":
            return 401, {}, _error("Incorrect API key provided (loopback)", "invalid_request_error", "invalid_api_key")
        if behaviour == "hang":
            return 0, {}, None
        raise ValueError(f"unknown behaviour {behaviour!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 refuses connections when a client opens 64 at once


def _make_handler(server: LoopbackLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real API server

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every keep-alive response
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # quiet tests
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if not self.path.rstrip("/").endswith("/chat/completions") or server.request_count >= server.max_requests:
                self._send(404, {}, _error("not found (loopback)", "invalid_request_error", None))
                return
            request = json.loads(body)
            index, behaviour = server._admit(body_hash(body), request, self.headers.get("x-stainless-read-timeout"))
            try:
                server._track_in_flight(+1)
                self._answer(server, index, behaviour, request)
            finally:
                server._track_in_flight(-1)

        def _answer(self, server: LoopbackLLMServer, index: int, behaviour: str, request: dict[str, Any]) -> None:
            server._wait_if_held()
            if server.latency_s:
                time.sleep(server.latency_s)
            status, headers, payload = server.respond(behaviour, request)
            if payload is None:  # hang: answer nothing until the client gives up or we stop
                server._stopping.wait(server.hang_s)
                self.close_connection = True
                return
            if self._send(status, headers, payload):
                server._mark_answered(index, payload)

        def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> bool:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                return True
            except OSError:  # the client went away (timeout, killed)
                self.close_connection = True
                return False

    return Handler


# -- fixture data: histories and a stand-in narrator (no customer id in its text) ---------------

STAND_IN_NARRATIVE_VERSION = "stand-in-v1"


def make_histories(n: int, seed: int = 0, currency: str = "USD") -> list[Any]:
    """``n`` plausible 12-month histories with random ids like ``C-938271`` (anchor 1998-01)."""
    import numpy as np
    import pandas as pd

    from narrator.panel import CustomerHistory

    rng = np.random.default_rng(seed)
    anchor = pd.Period("1998-01", "M")
    ids = rng.choice(np.arange(100_000, 1_000_000), size=n, replace=False)
    histories = []
    for customer in ids:
        bought = rng.random(12) < rng.uniform(0.05, 0.6)
        bought[0] = True  # the first month of the record is the first purchase
        spend = np.where(bought, np.round(rng.gamma(2.0, 15.0, 12), 2), 0.0)
        orders = np.where(bought, rng.integers(1, 4, 12), 0)
        last = int(np.flatnonzero(bought)[-1])
        histories.append(CustomerHistory(
            customer_id=f"C-{customer}", anchor=anchor, first_month=anchor - 12, window_start=anchor - 12,
            spend=tuple(float(s) for s in spend), orders=tuple(int(o) for o in orders),
            last_purchase_month=anchor - 12 + last, lifetime_spend=float(spend.sum()),
            lifetime_orders=int(orders.sum()), lifetime_active_months=int(bought.sum()), currency=currency,
        ))
    return histories


def stand_in_narrate(history: Any) -> str:
    """A short Korean narrative for tests: the months and amounts, never the id."""
    lines = [f"{month.year}년 {month.month}월: {spend:g}달러, {orders}회 주문"
             for month, spend, orders in zip(history.months, history.spend, history.orders)]
    return "월별 기록:\n" + "\n".join(lines) + f"\n예측 대상: {history.anchor.year}년 {history.anchor.month}월"
