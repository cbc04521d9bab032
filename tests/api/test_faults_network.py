"""Network faults on a real connection: uvicorn on a loopback port, real HTTP clients and raw
sockets, so a reset, an empty reply and a cut body are seen exactly as a client sees them."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mock_server.app import SandboxApp, create_app
from mock_server.core import netfaults
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, LiveServer, ManualTime, RecordedWaits

PAYMENT = "/v2/payments/100101785223"
REFUND = f"{PAYMENT}/refund"
REFUND_BODY = {"requestId": "net-1", "merchantReference": "net-ref-1",
               "amount": {"amount": "10.00", "currency": "AUD"}}

Start = Callable[[SandboxApp], LiveServer]


class Net:
    """A live server whose default session has one rule, and one HTTP client for it."""

    def __init__(self, server: LiveServer, http: httpx.Client) -> None:
        self.server = server
        self.url = server.url
        self.http = http

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(self.url + path, **kwargs)

    def refunds(self) -> list[str]:
        payment = self.get(PAYMENT, headers=AFTERPAY_HEADERS).json()
        return [r["amount"]["amount"] for r in payment["refunds"]]

    def last_refund_entry(self) -> dict[str, Any]:
        entries = self.get("/__admin/requests?operation=createRefund").json()
        return dict(entries["requests"][0])


@pytest.fixture
def net(live_server: Start) -> Iterator[Callable[..., Net]]:
    """net(fault, times=None, **match): `fault` for requests like `match` (default: every
    Afterpay POST)."""
    with httpx.Client(timeout=10) as http:
        def start(fault: str, times: int | None = None, **match: Any) -> Net:
            server = Net(live_server(create_app(Settings(seed=7), time_source=ManualTime())),
                         http)
            rule: dict[str, Any] = {"name": fault, "fault": fault,
                                    "match": match or {"provider": "afterpay", "method": "POST"}}
            if times is not None:
                rule["times"] = times
            loaded = server.post("/__admin/scenarios",
                                 content=json.dumps({"name": "net", "faults": [rule]}))
            assert loaded.status_code == 201, loaded.text
            return server

        yield start


def raw_exchange(server: Net, method: str, path: str, body: bytes = b"",
                 headers: dict[str, str] | None = None) -> socket.socket:
    """Sends one request on a fresh socket and returns the socket to read the reply from."""
    port = int(server.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A fault is the sandbox's doing, not a crash: uvicorn and asyncio log nothing about it."""
    with caplog.at_level(logging.WARNING):
        yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    noise = [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.WARNING]
    assert noise == []


def test_connection_reset_resets_the_tcp_connection(net: Callable[..., Net]) -> None:
    server = net("connection_reset")
    sock = raw_exchange(server, "POST", REFUND, json.dumps(REFUND_BODY).encode(),
                        AFTERPAY_HEADERS)
    with sock, pytest.raises(ConnectionResetError):
        sock.recv(65536)


def test_after_a_reset_the_refund_is_made_and_journaled(net: Callable[..., Net]) -> None:
    server = net("connection_reset", times=1)
    with pytest.raises(httpx.ReadError):
        server.post(REFUND, json=REFUND_BODY, headers=AFTERPAY_HEADERS)
    assert server.refunds() == ["10.00"]
    entry = server.last_refund_entry()
    assert (entry["status"], entry["responseHeaders"], entry["responseBody"]) == (0, {}, "")
    assert entry["fault"] == {"rule": "connection_reset",
                              "action": "fault connection_reset after the provider answered 201"}
    # an idempotent retry gets the refund the client never saw
    retry = server.post(REFUND, json=REFUND_BODY, headers=AFTERPAY_HEADERS)
    assert retry.status_code == 201
    assert server.refunds() == ["10.00"]


def test_empty_response_closes_without_a_byte(net: Callable[..., Net]) -> None:
    server = net("empty_response", path="/ping")
    with raw_exchange(server, "GET", "/ping") as sock:
        assert read_all(sock) == b""
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        server.get("/ping")


def test_truncated_body_sends_less_than_its_content_length(net: Callable[..., Net]) -> None:
    server = net("truncated_body")
    with raw_exchange(server, "POST", REFUND, json.dumps(REFUND_BODY).encode(),
                      AFTERPAY_HEADERS) as sock:
        reply = read_all(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 ")
    declared = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")))
    assert 0 < len(body) < declared
    # the journal keeps what went out: the declared length, and the part of the body sent
    entry = server.last_refund_entry()
    assert entry["responseHeaders"]["content-length"] == str(declared)
    assert entry["responseBody"].encode() == body
    assert entry["fault"]["action"] == "fault truncated_body after the provider answered 201"


def test_a_real_client_sees_the_cut_body_as_an_error(net: Callable[..., Net]) -> None:
    server = net("truncated_body", path="/v2/payments/*")
    with pytest.raises(httpx.RemoteProtocolError):
        server.get(PAYMENT, headers=AFTERPAY_HEADERS)


def test_malformed_body_is_not_json(net: Callable[..., Net]) -> None:
    server = net("malformed_body")
    answer = server.post(REFUND, json=REFUND_BODY, headers=AFTERPAY_HEADERS)
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json"
    assert int(answer.headers["content-length"]) == len(answer.content)
    with pytest.raises(ValueError):
        json.loads(answer.content)
    assert server.refunds() == ["10.00"]


def test_slow_body_dribbles_the_whole_body_out(net: Callable[..., Net],
                                               waits: RecordedWaits) -> None:
    server = net("slow_body", path="/v2/payments/*")
    answer = server.get(PAYMENT, headers=AFTERPAY_HEADERS, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["id"] == "100101785223"
    pause = netfaults.SLOW_BODY_SECONDS / netfaults.SLOW_BODY_PIECES
    assert waits.seconds == [pause] * netfaults.SLOW_BODY_PIECES


def test_slow_body_trips_a_read_timeout_shorter_than_its_pauses(net: Callable[..., Net],
                                                                waits: RecordedWaits) -> None:
    server = net("slow_body", path="/v2/payments/*")
    pause = netfaults.SLOW_BODY_SECONDS / netfaults.SLOW_BODY_PIECES
    waits.hold()  # the sandbox's first pause lasts until the client has given up
    with pytest.raises(httpx.ReadTimeout):
        server.get(PAYMENT, headers=AFTERPAY_HEADERS,
                   timeout=httpx.Timeout(5, read=pause / 3))
    assert waits.waiting.is_set()
    waits.release()
    # the sandbox stops dribbling to a client that has gone, at its next piece
    entry = _finished_entry(server, "getPayment")
    assert entry["status"] == 200
    assert waits.seconds == [pause]


def _finished_entry(server: Net, operation: str) -> dict[str, Any]:
    """The newest journal entry of `operation` once its answer is recorded (polled: the answer
    is recorded by the server's own loop, after the client has gone)."""
    for _ in range(600):
        entry: dict[str, Any] = server.get(
            f"/__admin/requests?operation={operation}").json()["requests"][0]
        if entry["status"] != 0:
            return entry
        time.sleep(0.05)
    raise AssertionError(f"the {operation} entry was never finished")


def test_the_server_keeps_serving_after_every_fault(net: Callable[..., Net]) -> None:
    server = net("connection_reset", path="/ping")
    for _ in range(3):
        with pytest.raises(httpx.TransportError):
            server.get("/ping")
    assert server.get(PAYMENT, headers=AFTERPAY_HEADERS).status_code == 200
    assert server.get("/__admin/health").json()["status"] == "ok"
