"""A real vLLM server on 127.0.0.1 for the remote tests, and a proxy that injects faults.

The server is the one ``make serve`` starts (``proxyspex_captum.server``),
from the interpreter in ``$PSX_SERVE_PYTHON`` (``make test`` sets it to
``.venv-serve/bin/python``). The proxy forwards requests to it and, on
demand, answers some of them itself the way real servers misbehave: HTTP 429
with ``Retry-After``, a body that is not JSON, an answer without
log-probabilities, a dropped connection, or a refusal without an API key.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from proxyspex_captum import server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_python() -> Path:
    """vLLM's interpreter; a test run without it skips (``make test`` requires it)."""
    python = os.environ.get("PSX_SERVE_PYTHON")
    if python is None:
        default = Path(__file__).resolve().parents[1] / ".venv-serve" / "bin" / "python"
        if not default.is_file():
            pytest.skip("vLLM is not installed (make install-serve); make test runs these tests")
        return default
    return Path(python)


class ServerProcess:
    """vLLM serving SmolLM2 on a port of its own; can be killed and started again."""

    def __init__(self, python: Path, log: Path) -> None:
        self.python = python
        self.port = free_port()
        self.url = server.base_url(self.port)
        self.log_path = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = server.start(self.python, port=self.port, log=log)
        try:
            server.wait_ready(self.url, self.process)
        except Exception:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            self.stop()
            raise RuntimeError(f"vLLM did not start; the end of its log:\n{tail}") from None

    def stop(self) -> None:
        """Kill the server and its workers (SIGKILL: as a crash would)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=60)
        self.process = None
        # The port is free once nothing answers there.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=1)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return
            time.sleep(0.2)


class FaultProxy:
    """An HTTP proxy in front of ``upstream`` that can answer requests badly on purpose.

    ``faults`` is a list consumed one per POST request: ``"429"``,
    ``"malformed"``, ``"no-logprobs"``, ``"drop"`` (close without an answer)
    or ``None`` (forward). ``require_key`` refuses requests without an
    ``Authorization`` header (HTTP 401). Every request it receives is
    counted in ``posts`` (forwarded or not) and ``gets``.
    """

    def __init__(self, upstream: str, *, require_key: str | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.require_key = require_key
        self.faults: list[str | None] = []
        self.posts = 0
        self.gets = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _authorised(self) -> bool:
                if proxy.require_key is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {proxy.require_key}":
                    return True
                self._reply(401, b'{"error": {"message": "invalid api key"}}')
                return False

            def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method: str, body: bytes | None) -> tuple[int, bytes]:
                request = urllib.request.Request(
                    proxy.upstream + self.path.removeprefix("/v1"),
                    data=body,
                    method=method,
                    headers={"Content-Type": "application/json"},
                )
                try:
                    with urllib.request.urlopen(request, timeout=120) as answer:
                        return answer.status, answer.read()
                except urllib.error.HTTPError as err:
                    return err.code, err.read()

            def do_GET(self) -> None:
                with proxy.lock:
                    proxy.gets += 1
                if self._authorised():
                    self._reply(*self._forward("GET", None))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    proxy.posts += 1
                    fault = proxy.faults.pop(0) if proxy.faults else None
                if not self._authorised():
                    return
                if fault == "429":
                    self._reply(429, b'{"error": "slow down"}', {"Retry-After": "0.2"})
                elif fault == "malformed":
                    self._reply(200, b'{"choices": [{"logprobs": ')
                elif fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif fault == "no-logprobs":
                    status, answer = self._forward("POST", body)
                    data = json.loads(answer)
                    for choice in data.get("choices", []):
                        choice["logprobs"] = None
                    self._reply(status, json.dumps(data).encode())
                else:
                    self._reply(*self._forward("POST", body))

        self.http = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
