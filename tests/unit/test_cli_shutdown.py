"""Graceful stop: on SIGTERM/SIGINT in-flight requests finish, shutdown hooks deliver or report
what is pending, the process exits 0."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from starlette.testclient import TestClient

import mock_server.app
from mock_server.app import create_app
from mock_server.settings import Settings

READY = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Running:
    """A `mock-server` process whose log goes to a file the test can read while it runs."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
        self.log_path = log_path
        self._log: IO[str] = log_path.open("w")
        self.process = subprocess.Popen([sys.executable, *argv], stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env)
        port = self.wait_for(READY).group(1)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not self._healthy():
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.02)

    def _healthy(self) -> bool:
        try:
            with _NO_PROXY.open(f"{self.url}/__admin/health", timeout=5) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

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

    def stop(self, sig: signal.Signals) -> int:
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
def start(tmp_path: Path) -> Iterator[Any]:
    started: list[Running] = []

    def run(*argv: str) -> Running:
        server = Running(list(argv), tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server

    yield run
    for server in started:
        server.kill()


def get(url: str) -> tuple[int, bytes]:
    with _NO_PROXY.open(url, timeout=30) as answer:
        return answer.status, answer.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_with_exit_code_0(start: Any, sig: signal.Signals) -> None:
    server = start("-m", "mock_server", "serve", "--port", "0", "--log-format", "json")
    assert get(f"{server.url}/ping")[0] == 200
    assert server.stop(sig) == 0
    log = server.log()
    lines = [json.loads(line) for line in log.splitlines()]
    messages = [line["message"] for line in lines]
    said = re.compile(rf"{sig.name} received: finishing \d request\(s\) in flight \(at most 5.0s\)")
    assert any(said.fullmatch(message) for message in messages), messages
    assert messages[-1] == f"stopped ({sig.name})"
    assert "Traceback" not in log and "KeyboardInterrupt" not in log


SCRIPT = textwrap.dedent("""
    import asyncio, logging
    from datetime import timedelta
    from mock_server import cli
    from mock_server.app import create_app
    from mock_server.settings import Settings

    settings = Settings(port=0, seed=1, shutdown_timeout=timedelta(seconds=1))
    app = create_app(settings)
    afterpay = app.providers[1]
    ping = afterpay.handlers["ping"]
    log = logging.getLogger("mock_server.drill")

    async def slow_ping(ctx):
        log.info("ping started")
        await asyncio.sleep(0.5)
        return await ping(ctx)

    async def deliver():
        await asyncio.sleep(0.2)
        log.info("delivered callback cb-1")

    async def report():
        return ["callback cb-2 to http://127.0.0.1:9/optty: connection refused"]

    async def broken():
        raise RuntimeError("hook broke")

    async def hang():
        await asyncio.sleep(60)

    afterpay.handlers["ping"] = slow_ping
    app.shutdown_hooks += [deliver, report, broken, hang]
    raise SystemExit(cli.serve(settings, app))
""")


def test_in_flight_request_finishes_and_pending_work_is_delivered_or_reported(
        start: Any, tmp_path: Path) -> None:
    script = tmp_path / "drill.py"
    script.write_text(SCRIPT)
    server = start(str(script))
    answers: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: answers.append(get(f"{server.url}/ping")))
    client.start()
    server.wait_for(re.compile("ping started"))
    assert server.stop(signal.SIGTERM) == 0
    client.join(timeout=10)
    assert answers == [(200, b"pong")]
    log = server.log()
    expected = [
        "SIGTERM received: finishing 1 request(s) in flight (at most 1.0s)",
        "access GET /ping 200 ",
        "delivered callback cb-1",
        "shutdown: not finished: callback cb-2 to http://127.0.0.1:9/optty: connection refused",
        "shutdown: broken failed",
        "RuntimeError: hook broke",
        "shutdown: hang did not finish within 1.0s; stopped it",
        "stopped (SIGTERM)",
    ]
    positions = [log.find(text) for text in expected]
    assert -1 not in positions, log
    assert positions == sorted(positions), log


# -- the shutdown hooks themselves, in-process ---------------------------------------------------

def test_every_hook_runs_and_what_is_left_is_logged(caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mock_server.app, "MIN_HOOK_SECONDS", 0.05)
    app = create_app(Settings(seed=1, shutdown_timeout=timedelta(0)))
    ran: list[str] = []

    async def fails() -> None:
        ran.append("fails")
        raise ValueError("no")

    async def one_line() -> str:
        ran.append("one_line")
        return "callback cb-9 not delivered"

    async def hangs() -> None:
        ran.append("hangs")
        import asyncio
        await asyncio.sleep(30)

    async def fine() -> list[str]:
        ran.append("fine")
        return []

    app.shutdown_hooks += [fails, one_line, hangs, fine]
    with caplog.at_level(logging.INFO, logger="mock_server"), TestClient(app):
        pass
    assert ran == ["fails", "one_line", "hangs", "fine"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "shutdown: test_every_hook_runs_and_what_is_left_is_logged.<locals>.fails failed",
        "shutdown: not finished: callback cb-9 not delivered",
        "shutdown: test_every_hook_runs_and_what_is_left_is_logged.<locals>.hangs did not "
        "finish within 0.1s; stopped it",
    ]


def test_pending_callbacks_are_delivered_by_a_hook_or_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(seed=1))
    optty = app.providers[2]
    pending = ["REFUND_CALLBACK ORD-1004 -> http://127.0.0.1:9/a",
               "REFUND_CALLBACK ORD-1005 -> http://127.0.0.1:9/b",
               "REFUND_CALLBACK ORD-1006 -> http://127.0.0.1:9/c"]
    optty.pending_callbacks = lambda: list(pending)  # type: ignore[attr-defined]

    async def drain() -> list[str]:
        pending.remove(pending[0])  # delivered
        return [pending[1]]  # given up on, and says so itself

    app.shutdown_hooks.append(drain)
    with caplog.at_level(logging.INFO, logger="mock_server"), TestClient(app):
        pass
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("shutdown:")]
    assert said == [
        "shutdown: 3 callback(s) pending",
        "shutdown: not finished: REFUND_CALLBACK ORD-1006 -> http://127.0.0.1:9/c",
        "shutdown: not delivered: REFUND_CALLBACK ORD-1005 -> http://127.0.0.1:9/b",
    ]


def test_hooks_share_what_is_left_of_the_grace_period() -> None:
    app = create_app(Settings(seed=1, shutdown_timeout=timedelta(seconds=30)))
    app.shutdown_deadline = time.monotonic() + 10
    assert 9 < app.shutdown_remaining() <= 10
    app.shutdown_deadline = time.monotonic() - 5  # requests used it all: a hook still may report
    assert app.shutdown_remaining() == mock_server.app.MIN_HOOK_SECONDS
