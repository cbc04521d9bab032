"""Webhook targets: never the sandbox's own admin API, never credentials in the URL, only the
networks --webhook-allow names (loopback and private ranges by default); the receiver's answer
is kept cut in the journal."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core import targets
from mock_server.optty.webhooks import MAX_RESPONSE_BYTES
from mock_server.settings import DEFAULT_WEBHOOK_ALLOW, Settings


@pytest.mark.parametrize("path", [
    "/__admin/reset", "/__ADMIN/reset", "/sessions/ci-1/__admin/reset", "/%5F%5Fadmin/reset",
    "/%255F%255Fadmin/reset", "//__admin/reset", "/x/../__admin/reset", "/./__admin",
    "/sessions/a/%5f%5fadmin/requests", "\\__admin\\reset"])
def test_admin_paths_are_recognised_however_written(path: str) -> None:
    assert targets.is_admin_path(path)
    refused = targets.url_problem(f"http://127.0.0.1:8080{path}")
    assert refused == (targets.NOT_HTTP if "\\" in path else targets.NOT_ADMIN)


@pytest.mark.parametrize("path", ["/hooks/optty", "/admin", "/__administrator", "/sessions/x/y",
                                  "/sessions/__admin"])
def test_other_paths_are_fine(path: str) -> None:
    assert not targets.is_admin_path(path)


@pytest.mark.parametrize("url,problem", [
    ("http://user:pass@127.0.0.1:9000/hook", targets.NO_CREDENTIALS),
    ("http://token@127.0.0.1:9000/hook", targets.NO_CREDENTIALS),
    ("ftp://127.0.0.1/hook", targets.NOT_HTTP),
    ("http://169.254.169.254/latest/meta-data", "outside"),
    ("http://8.8.8.8/hook", "outside"),
    ("http://[::ffff:169.254.169.254]/x", "outside"),
    ("http://10.1.2.3:9000/hook", None),
    ("http://[::ffff:10.1.2.3]:9000/hook", None),  # an IPv4 address written as IPv6
    ("http://[::1]:9000/hook", None),
    ("http://192.168.1.5/hook", None),
    ("http://receiver.ci.internal:9000/hook", None),  # names are resolved when sending
])
def test_literal_checks(url: str, problem: str | None) -> None:
    found = targets.literal_problem(url, DEFAULT_WEBHOOK_ALLOW)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_any_allows_every_address_but_not_credentials_or_admin_paths() -> None:
    allow = targets.parse_networks("any")
    assert targets.literal_problem("http://8.8.8.8/hook", allow) is None
    assert targets.literal_problem("http://u:p@8.8.8.8/hook", allow) == targets.NO_CREDENTIALS
    assert targets.literal_problem("http://8.8.8.8/__admin/reset", allow) == targets.NOT_ADMIN


def test_parse_networks() -> None:
    assert targets.parse_networks("10.0.0.0/8, 127.0.0.1") == ("10.0.0.0/8", "127.0.0.1/32")
    for bad in ("", "any,10.0.0.0/8", "10.0.0.0/33", "example.com"):
        with pytest.raises(ValueError):
            targets.parse_networks(bad)


def test_a_name_is_checked_against_every_address_it_resolves_to() -> None:
    assert asyncio.run(targets.target_problem("http://localhost:9/x", ("127.0.0.0/8", "::1/128"))
                       ) is None
    problem = asyncio.run(targets.target_problem("http://localhost:9/x", ("10.0.0.0/8",)))
    assert problem is not None and "localhost" in problem and "--webhook-allow" in problem


def load(client: TestClient, url: str) -> Any:
    return client.post("/__admin/scenarios", headers={"X-Sandbox-Session": "hooks"}, json={
        "name": "hooked", "optty": {
            "merchants": [{"merchantId": "sandbox-merchant", "clientId": "sandbox-client",
                           "clientSecret": "sandbox-secret", "webhookUrl": url}],
            "providers": {"VOLT": {"asyncRefunds": True, "callbackAfter": "2s"}},
            "orders": [{"orderReference": "ORD-V1", "merchantId": "sandbox-merchant",
                        "bnplProvider": "VOLT", "amount": "60.00", "currency": "AUD",
                        "status": "SUCCESSFUL"}]}})


@pytest.mark.parametrize("url", [
    "http://user:pass@127.0.0.1:9/hook", "http://127.0.0.1:8080/__admin/reset",
    "http://127.0.0.1:8080/sessions/victim/__admin/reset", "http://169.254.169.254/latest"])
def test_a_scenario_with_a_forbidden_webhook_is_refused(url: str) -> None:
    with TestClient(create_app(Settings(seed=1))) as client:
        answer = load(client, url)
        assert answer.status_code == 422
        [problem] = answer.json()["problems"]
        assert problem.startswith("<request>:1: ") and "webhookUrl" in problem


class Receiver:
    """A loopback HTTP server that answers every POST with a large body."""

    def __init__(self) -> None:
        self.hits = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                receiver.hits += 1
                self.rfile.read(int(self.headers.get("content-length", 0)))
                body = b"secret-internal-page " * 5000
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def callback_entry(settings: Settings, url: str) -> dict[str, Any]:
    with TestClient(create_app(settings)) as client:
        assert load(client, url).status_code == 201
        session = {"X-Sandbox-Session": "hooks"}
        token = client.post("/token", headers=session, data={
            "client_id": "sandbox-client", "client_secret": "sandbox-secret",
            "grant_type": "client_credentials", "scope": "api-user"}).json()["access_token"]
        answer = client.post("/orders/ORD-V1/refund", headers={
            **session, "Authorization": f"Bearer {token}"}, json={
            "refundReference": "R-1", "refundAmount": {"amount": 10.00, "currency": "AUD"},
            "refundDescription": "test"})
        assert answer.status_code == 201, answer.text
        assert client.post("/__admin/clock/advance", headers=session,
                           json={"seconds": 3}).status_code == 200
        deadline = time.monotonic() + 10
        while True:
            entries = client.get("/__admin/requests", headers=session,
                                 params={"provider": "optty"}).json()["requests"]
            done = [e for e in entries if e["kind"] == "callback"
                    and (e["status"] or e["warnings"])]
            if done:
                return done[-1]
            assert time.monotonic() < deadline, entries
            time.sleep(0.01)


def test_a_name_outside_the_allowed_networks_is_not_called(receiver: Receiver) -> None:
    entry = callback_entry(Settings(seed=1, webhook_allow=("10.0.0.0/8",)),
                           f"http://localhost:{receiver.port}/hook")
    assert receiver.hits == 0
    assert entry["status"] == 0
    assert "outside the networks callbacks may reach" in entry["warnings"][0]


def test_the_receivers_answer_is_kept_cut(receiver: Receiver) -> None:
    entry = callback_entry(Settings(seed=1), f"http://127.0.0.1:{receiver.port}/hook")
    assert receiver.hits == 1 and entry["status"] == 200
    assert len(entry["responseBody"]) <= MAX_RESPONSE_BYTES
    assert f"cut to its first {MAX_RESPONSE_BYTES} bytes" in " ".join(entry["warnings"])
    assert json.dumps(entry).count("secret-internal-page") < 60
