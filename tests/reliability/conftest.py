"""The reliability suite: attacks on a sandbox, each bounded in size and time, on loopback only.

Helpers: `call` drives the ASGI app directly (no client library in the way of a memory
measurement); `Served` runs `mock-server serve` as a real process."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

READY = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

AFTERPAY_AUTH = "Basic " + base64.b64encode(b"100101382:sandbox-secret-key").decode()
BAD_AUTH = "Basic " + base64.b64encode(b"100101382:not-the-key").decode()
USER_AGENT = "Reliability/1.0 (Python; Merchant/100101382) https://merchant.example.com"
AFTERPAY = {"authorization": AFTERPAY_AUTH, "user-agent": USER_AGENT,
            "accept": "application/json", "content-type": "application/json"}
PAYMENT = "100101785223"  # refundable, in the default world


class Answer:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = {k.decode().lower(): v.decode("latin-1") for k, v in headers}
        self.body = body

    def json(self) -> Any:
        import json
        return json.loads(self.body)


async def call(app: Any, method: str, path: str, headers: dict[str, str] | None = None,
               body: bytes = b"", query: bytes = b"") -> Answer:
    """One request straight through the ASGI app."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # a client that stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "scheme": "http", "http_version": "1.1",
             "headers": [(k.lower().encode(), v.encode("latin-1"))
                         for k, v in (headers or {}).items()]}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(int(start["status"]), list(start.get("headers", [])), payload)


def run(app: Any, method: str, path: str, headers: dict[str, str] | None = None,
        body: bytes = b"", query: bytes = b"") -> Answer:
    return asyncio.run(call(app, method, path, headers, body, query))


class Served:
    """`python -m mock_server serve --port 0 ...` with its log in a file; stopped by the
    fixture that started it."""

    def __init__(self, argv: Sequence[str], log_path: Path, cwd: Path,
                 preexec: Any = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        self.log_path = log_path
        self._log: IO[str] = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "serve", "--port", "0", *argv],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd, preexec_fn=preexec)
        port = self.wait_for(READY).group(1)
        self.port = int(port)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while self.health()[0] != 200:
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.02)

    def health(self, timeout: float = 5) -> tuple[int, bytes]:
        try:
            with NO_PROXY.open(f"{self.url}/__admin/health", timeout=timeout) as answer:
                return int(answer.status), answer.read()
        except OSError:
            return 0, b""

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.search(self.log())
            if found:
                return found
            assert self.process.poll() is None, f"the server ended early:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {pattern.pattern!r} in:\n{self.log()}"
            time.sleep(0.02)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def start(*argv: str, preexec: Any = None) -> Served:
        server = Served(list(argv), tmp_path / f"server-{len(started)}.log", tmp_path, preexec)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


# the in-process real server (tests/reliability/threaded.py), as a fixture here too
from tests.reliability.threaded import threaded_server  # noqa: E402, F401
