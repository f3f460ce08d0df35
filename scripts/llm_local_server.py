"""Run llama.cpp's llama-server on 127.0.0.1 for as long as a `with` block lasts.

The server gets a free loopback port, serves the model under a fixed alias (the name the
forecaster sends as `model`), keeps one KV slot per request in flight, and is stopped
(SIGTERM, then SIGKILL) when the block ends, whatever happened inside it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

MODEL_ALIAS = "smollm2-135m-instruct"
# Tokens per slot (prompt + answer; llama-server rounds it up to a multiple of 256). The
# Korean prompt is ~2,100-2,200 of SmolLM2's English-oriented tokens (system 1,679 + the
# narrative); an answer that closes its JSON takes ~150-250. The client asks for up to 800
# answer tokens within a 60 s timeout, which this model on 2 busy cores (~7 tokens/s) cannot
# meet when it rambles: a full slot ends the answer first (finish_reason "length", under a
# minute here), so a rambling answer fails as "truncated" instead of timing out six times.
SLOT_CONTEXT = 2560
HEALTH_TIMEOUT_S = 120.0
# ggml's OpenMP threads spin while they wait; on 2 cores shared with other jobs a spinning
# thread starves its partner (0.6 instead of 8 tokens/s measured here), so they sleep instead.
SERVER_ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LlamaServer:
    """llama-server as a context manager.

    Attributes:
        binary: the llama-server executable.
        model: the GGUF file to serve.
        log: file that receives the server's output.
        slots: parallel sequences (``--parallel``); match the client's concurrency.
        threads: CPU threads for decoding.

    Example:
        >>> with LlamaServer(binary, model, Path("server.log"), slots=4) as server:  # doctest: +SKIP
        ...     print(server.base_url)
        http://127.0.0.1:40123/v1
    """

    binary: Path
    model: Path
    log: Path
    slots: int = 1
    threads: int = 2
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (what ``--base-url`` takes)."""
        return f"{self.root}/v1"

    def command(self) -> list[str]:
        return [
            str(self.binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
            "--alias", MODEL_ALIAS, "--jinja", "--parallel", str(self.slots),
            "--ctx-size", str(SLOT_CONTEXT * self.slots), "--threads", str(self.threads),
            "--metrics", "--no-webui",
            # no AMX / repacked weight buffers: on this machine's AMX-capable Xeon the AMX
            # matmul segfaults at the first decode (llama.cpp issue #20824, open, no fix)
            "--no-repack",
        ]

    def __enter__(self) -> "LlamaServer":
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as sink:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen(self.command(), stdout=sink, stderr=subprocess.STDOUT, env=SERVER_ENV)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _wait_healthy(self) -> None:
        """Poll /health until it answers 200 (the model is loaded); fail if the server exits."""
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self._process.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.root}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or 503 while the model loads
            time.sleep(0.5)
        raise RuntimeError(f"llama-server did not become healthy in {HEALTH_TIMEOUT_S:.0f} s; see {self.log}")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit in time)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        """POST JSON to the server; returns (status, decoded body), error statuses included."""
        request = urllib.request.Request(f"{self.root}{path}", data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus counters (``llamacpp:*``) as a name -> value dict."""
        with urllib.request.urlopen(f"{self.root}/metrics", timeout=10) as reply:
            lines = reply.read().decode("utf-8").splitlines()
        pairs = (line.split() for line in lines if line.startswith("llamacpp:"))
        return {name: float(value) for name, value, *_ in pairs}
