"""Shared fixtures: the app from its factory, a controllable time source, sandbox credentials."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.settings import Settings

START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
AFTERPAY_MERCHANT = "100101382"
AFTERPAY_SECRET = "sandbox-secret-key"
USER_AGENT = "TestModule/1.0.0 (Python/3.11; Merchant/100101382) https://merchant.example.com"


class ManualTime:
    """The injected base time source: it only moves when a test moves it."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def basic(merchant: str = AFTERPAY_MERCHANT, secret: str = AFTERPAY_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{merchant}:{secret}".encode()).decode()


AFTERPAY_HEADERS = {"Authorization": basic(), "User-Agent": USER_AGENT,
                    "Content-Type": "application/json", "Accept": "application/json"}


@pytest.fixture
def time_source() -> ManualTime:
    return ManualTime()


@pytest.fixture
def settings() -> Settings:
    return Settings(seed=7)


@pytest.fixture
def app(settings: Settings, time_source: ManualTime) -> SandboxApp:
    return create_app(settings, time_source=time_source)


@pytest.fixture
def client(app: SandboxApp) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def optty_token(client: TestClient, client_id: str = "sandbox-client",
                secret: str = "sandbox-secret", session: str | None = None) -> str:
    headers = {"X-Sandbox-Session": session} if session else {}
    answer = client.post("/token", data={"client_id": client_id, "client_secret": secret,
                                         "grant_type": "client_credentials",
                                         "scope": "api-user"}, headers=headers)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["access_token"])


class LiveServer:
    """The app under a real uvicorn on a free loopback port, in a thread: for what only a real
    connection shows (resets, cut bodies, timeouts, concurrency)."""

    def __init__(self, app: SandboxApp) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                access_log=False, lifespan="on", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)
        self.url = ""

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_server() -> Iterator[Callable[[SandboxApp], LiveServer]]:
    """Starts a LiveServer for an app; every one started is stopped after the test."""
    started: list[LiveServer] = []

    def start(app: SandboxApp) -> LiveServer:
        server = LiveServer(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class RecordedWaits:
    """The sandbox's deliberate waits (core.clock.wait), recorded and not taken: a test reads
    what was waited instead of timing it. `hold()` makes the next waits block until `release()`
    (for a client that must give up while the sandbox is still waiting)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._open = threading.Event()
        self._open.set()
        self.waiting = threading.Event()

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.seconds.append(seconds)
        if not self._open.is_set():
            self.waiting.set()
            await asyncio.to_thread(self._open.wait, 60)
        for _ in range(3):  # let the loop see what happened meanwhile (a closed connection)
            await asyncio.sleep(0)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> RecordedWaits:
    from mock_server.core import clock

    recorded = RecordedWaits()
    monkeypatch.setattr(clock, "_sleep", recorded)
    return recorded


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that runs `serve` in-process (mock_server.logs.configure_logging) points the root
    logger at that test's captured stderr; later tests on the worker would log to the closed
    stream. Each test gets the root logger back as it found it."""
    import logging

    def ours(handler: logging.Handler) -> bool:
        return type(handler).__module__.startswith("mock_server")

    root = logging.getLogger()
    before, level = [h for h in root.handlers if ours(h)], root.level
    yield
    # pytest's own capturing handlers come and go around each phase: only ours are put back
    root.handlers[:] = [h for h in root.handlers if not ours(h)] + before
    root.setLevel(level)
