"""Optty API fixtures: a client that speaks Optty, and a real webhook receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.settings import Settings

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
MERCHANT = "sandbox-merchant"
JSON = "application/json"


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Polls (bounded) until the predicate holds; returns its value or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(0.01)


START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)


class ManualTime:
    """The base time source: it only moves when a test moves it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@dataclass
class Shared:
    app: SandboxApp
    client: TestClient
    time: ManualTime


@pytest.fixture(scope="module")
def _shared_sandbox() -> Iterator[Shared]:
    # Building the app loads three specs and the default world (~0.2 s); one per module, with
    # the default session reset before each test, keeps these tests fast.
    time_source = ManualTime()
    app = create_app(Settings(seed=7), time_source=time_source)
    with TestClient(app) as client:
        yield Shared(app, client, time_source)


@pytest.fixture
def time_source(_shared_sandbox: Shared) -> ManualTime:
    return _shared_sandbox.time


@pytest.fixture
def app(_shared_sandbox: Shared) -> SandboxApp:
    _shared_sandbox.time.now = START
    _shared_sandbox.app.world.reset("default")
    return _shared_sandbox.app


@pytest.fixture
def client(app: SandboxApp, _shared_sandbox: Shared) -> TestClient:
    return _shared_sandbox.client


class Optty:
    """Optty calls through any httpx-style client (Starlette's TestClient or httpx.Client)."""

    def __init__(self, http: TestClient | httpx.Client, session: str | None = None) -> None:
        self.http = http
        self.session = session
        self._token: str | None = None

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"X-Sandbox-Session": self.session} if self.session else {}
        headers.update(extra or {})
        return headers

    def in_session(self, name: str) -> Optty:
        return Optty(self.http, name)

    def request_token(self, **form: str) -> httpx.Response:
        fields = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "grant_type": "client_credentials", "scope": "api-user"}
        fields.update(form)
        return self.http.post("/token", data=fields, headers=self._headers())

    @property
    def token(self) -> str:
        if self._token is None:
            answer = self.request_token()
            assert answer.status_code == 201, answer.text
            self._token = str(answer.json()["access_token"])
        return self._token

    def auth(self, token: str | None = None) -> dict[str, str]:
        return self._headers({"Authorization": f"Bearer {token or self.token}"})

    def refund(self, order: str, amount: Any, reference: str, *, currency: str = "AUD",
               description: str = "Damaged item", token: str | None = None,
               **extra: Any) -> httpx.Response:
        body = {"refundReference": reference,
                "refundAmount": {"amount": amount, "currency": currency},
                "refundDescription": description, **extra}
        return self.http.post(f"/orders/{order}/refund", json=body, headers=self.auth(token))

    def post_raw(self, path: str, content: bytes, content_type: str | None = JSON,
                 headers: dict[str, str] | None = None, auth: bool = True) -> httpx.Response:
        all_headers = self.auth() if auth else self._headers()
        if content_type is not None:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        return self.http.post(path, content=content, headers=all_headers)

    def order(self, reference: str) -> dict[str, Any]:
        answer = self.http.get(f"/orders/{reference}", headers=self.auth())
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def load(self, scenario: dict[str, Any]) -> None:
        answer = self.http.post("/__admin/scenarios", content=json.dumps(scenario).encode(),
                                headers=self._headers({"Content-Type": JSON}))
        assert answer.status_code == 201, answer.text

    def advance(self, seconds: float) -> None:
        answer = self.http.post("/__admin/clock/advance", json={"seconds": seconds},
                                headers=self._headers())
        assert answer.status_code == 200, answer.text

    def freeze(self, now: str) -> None:
        answer = self.http.put("/__admin/clock", json={"now": now}, headers=self._headers())
        assert answer.status_code == 200, answer.text

    def journal(self, **query: str) -> list[dict[str, Any]]:
        answer = self.http.get("/__admin/requests", params={"limit": "1000", **query},
                               headers=self._headers())
        assert answer.status_code == 200, answer.text
        return list(answer.json()["requests"])

    def callbacks(self) -> list[dict[str, Any]]:
        """Callback journal entries, oldest first."""
        return [e for e in reversed(self.journal(provider="optty")) if e["kind"] == "callback"]


@pytest.fixture
def optty(client: TestClient) -> Optty:
    return Optty(client)


@pytest.fixture
def optty_client() -> type[Optty]:
    """The Optty helper class, for clients the test builds itself."""
    return Optty


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until


def error_body(status: int, message: Any, error: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if error is not None:
        body["error"] = error
    return body


@pytest.fixture
def nest() -> Callable[..., dict[str, Any]]:
    """NestJS's error body: nest(400, "msg", "Bad Request")."""
    return error_body


# ---- a real HTTP receiver for REFUND_CALLBACK -------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1:<free port>; answers each POST with the next scripted
    status (200 once the script is used up) and records what it got."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout)
        with self.lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.received.append(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = state.script.pop(0) if state.script else 200
            payload = b'{"received":true}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/optty/webhook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
