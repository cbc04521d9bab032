"""GET /__admin/requests/stream: the journal as Server-Sent Events, over a real connection."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mock_server.admin import stream as stream_module
from mock_server.app import SandboxApp, create_app
from mock_server.core.journal import Journal
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, LiveServer, ManualTime

REFUND = "/v2/payments/100101785223/refund"


def refund_body(n: int) -> dict[str, Any]:
    return {"requestId": f"r-{n}", "merchantReference": f"ref-{n}",
            "amount": {"amount": "1.00", "currency": "AUD"}}


class Events:
    """Reads an open stream event by event (blocking, with the client's timeout)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()

    def next(self) -> dict[str, str]:
        """The next block: its fields, or {"comment": text} for a comment line."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                if not fields:
                    return {"comment": line[1:].strip()}
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        raise EOFError("the stream ended")


@pytest.fixture
def server(live_server: Callable[[SandboxApp], LiveServer]) -> LiveServer:
    return live_server(create_app(Settings(seed=7), time_source=ManualTime()))


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def open_stream(server: LiveServer) -> Iterator[Callable[..., Events]]:
    opened: list[Any] = []
    client = httpx.Client(base_url=server.url, timeout=10)

    def start(path: str = "/__admin/requests/stream", **kwargs: Any) -> Events:
        context = client.stream("GET", path, **kwargs)
        response = context.__enter__()
        opened.append(context)
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = Events(response)
        # kept until the test ends: a line iterator dropped early closes its connection
        opened.append(events)
        first = events.next()  # the opening comment: the stream is subscribed from here on
        assert "comment" in first, first
        return events

    yield start
    for context in opened:
        if not isinstance(context, Events):
            context.__exit__(None, None, None)
    client.close()


def test_a_finished_refund_arrives_as_a_request_event(open_stream: Callable[..., Events],
                                                      http: httpx.Client) -> None:
    events = open_stream()
    answer = http.post(REFUND, json=refund_body(1), headers=AFTERPAY_HEADERS)
    assert answer.status_code == 201
    event = events.next()
    assert event["event"] == "request"
    data = json.loads(event["data"])
    assert event["id"] == str(data["id"])
    assert (data["method"], data["path"], data["status"]) == ("POST", REFUND, 201)
    assert data["operation"] == "createRefund"
    assert data["headers"]["authorization"] == "[REDACTED]"
    assert json.loads(data["responseBody"])["refundId"] == answer.json()["refundId"]
    # the same entry GET /__admin/requests lists
    assert http.get("/__admin/requests").json()["requests"][0] == data


def test_filters_keep_other_entries_out(open_stream: Callable[..., Events],
                                        http: httpx.Client) -> None:
    events = open_stream(params={"provider": "afterpay", "status": "404"})
    http.post(REFUND, json=refund_body(1), headers=AFTERPAY_HEADERS)  # 201: filtered out
    http.get("/orders/ORD-1001")  # optty: filtered out
    http.post("/v2/payments/999/refund", json=refund_body(2), headers=AFTERPAY_HEADERS)
    data = json.loads(events.next()["data"])
    assert (data["path"], data["status"]) == ("/v2/payments/999/refund", 404)


def test_each_session_streams_only_its_own_journal(open_stream: Callable[..., Events],
                                                   http: httpx.Client) -> None:
    events = open_stream("/sessions/s-1/__admin/requests/stream")
    http.post(REFUND, json=refund_body(1), headers=AFTERPAY_HEADERS)  # session default
    http.post(f"/sessions/s-1{REFUND}", json=refund_body(2), headers=AFTERPAY_HEADERS)
    data = json.loads(events.next()["data"])
    assert json.loads(data["body"])["requestId"] == "r-2"


def test_limit_ends_the_stream(open_stream: Callable[..., Events], http: httpx.Client) -> None:
    events = open_stream(params={"limit": "1"})
    http.post(REFUND, json=refund_body(1), headers=AFTERPAY_HEADERS)
    assert events.next()["event"] == "request"
    with pytest.raises(EOFError):
        events.next()


def test_after_and_last_event_id_replay_what_was_missed(open_stream: Callable[..., Events],
                                                        http: httpx.Client) -> None:
    for n in range(3):
        http.post(REFUND, json=refund_body(n), headers=AFTERPAY_HEADERS)
    first = http.get("/__admin/requests").json()["requests"][-1]["id"]
    replayed = open_stream(params={"after": str(first)})
    assert [replayed.next()["id"] for _ in range(2)] == [str(first + 1), str(first + 2)]
    resumed = open_stream(headers={"Last-Event-ID": str(first + 1)})
    assert resumed.next()["id"] == str(first + 2)
    # then live, without repeating a replayed entry
    http.post(REFUND, json=refund_body(9), headers=AFTERPAY_HEADERS)
    assert replayed.next()["id"] == str(first + 3)
    assert resumed.next()["id"] == str(first + 3)


def test_a_reset_is_announced_and_the_stream_follows_the_new_journal(
        open_stream: Callable[..., Events], http: httpx.Client) -> None:
    events = open_stream()
    assert http.post("/__admin/reset").status_code == 200
    event = events.next()
    assert event["event"] == "reset" and json.loads(event["data"]) == {"session": "default"}
    http.post(REFUND, json=refund_body(1), headers=AFTERPAY_HEADERS)
    assert json.loads(events.next()["data"])["id"] == 1  # the fresh journal's first entry


@pytest.mark.parametrize("query, message", [
    ({"status": "600"}, "status must be an integer from 0 to 599"),
    ({"status": "x"}, "status must be an integer from 0 to 599"),
    ({"provider": "paypal"}, "provider must be one of afterpay, optty, admin, portal"),
    ({"limit": "0"}, "limit must be an integer from 1 to 10000"),
    ({"after": "-1"}, "after must be an integer from 0 to 9223372036854775807"),
])
def test_bad_filters_get_an_admin_error(http: httpx.Client, query: dict[str, str],
                                        message: str) -> None:
    answer = http.get("/__admin/requests/stream", params=query)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_request", "message": message}


def test_status_zero_is_a_valid_filter(open_stream: Callable[..., Events]) -> None:
    open_stream(params={"status": "0"})


def test_the_admin_token_guards_the_stream(live_server: Callable[[SandboxApp], LiveServer]
                                           ) -> None:
    server = live_server(create_app(Settings(seed=7, admin_token="t0ken")))
    answer = httpx.get(f"{server.url}/__admin/requests/stream", timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthorized", "message": "Admin token required"}
    with httpx.stream("GET", f"{server.url}/__admin/requests/stream?limit=1", timeout=10,
                      headers={"Authorization": "Bearer t0ken"}) as response:
        assert response.status_code == 200


def test_streams_per_session_are_limited(open_stream: Callable[..., Events], http: httpx.Client,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mock_server.admin.routes.MAX_STREAMS_PER_SESSION", 1)
    open_stream()
    answer = http.get("/__admin/requests/stream")
    assert answer.status_code == 429
    assert answer.json() == {"error": "too_many_streams",
                             "message": "session default already has 1 request streams open"}
    open_stream("/sessions/other/__admin/requests/stream")  # another session's are its own


def test_nobody_watching_means_no_watcher(server: LiveServer, http: httpx.Client,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The guarantee behind "costs nothing while nobody has it open": a journal has a watcher
    only while a stream of its session is open, and none once it closed."""
    app = server.server.config.app
    journal = app.world.session("default").journal
    closed = threading.Event()
    unsubscribe = stream_module.StreamHub.unsubscribe

    def unsubscribed(self: stream_module.StreamHub, *args: Any) -> None:
        unsubscribe(self, *args)
        closed.set()

    monkeypatch.setattr(stream_module.StreamHub, "unsubscribe", unsubscribed)
    assert journal.watchers == []
    with httpx.stream("GET", f"{server.url}/__admin/requests/stream", timeout=10) as response:
        events = Events(response)
        events.next()
        assert len(journal.watchers) == 1
        http.post(REFUND, json=refund_body(1), headers=AFTERPAY_HEADERS)
        assert events.next()["event"] == "request"
    assert closed.wait(10), "the server never noticed the closed stream"
    assert journal.watchers == []


def test_streams_end_when_the_server_begins_to_stop(server: LiveServer,
                                                   open_stream: Callable[..., Events]) -> None:
    import time

    events = open_stream()
    # what the server's signal handler does on SIGTERM (mock_server/cli.py)
    server.server.config.app.shutdown_deadline = time.monotonic() + 5
    with pytest.raises(EOFError):
        events.next()


def test_a_slow_reader_is_told_what_it_missed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_module, "MAX_PENDING", 2)
    journal = Journal()
    subscriber = stream_module.Subscriber(stream_module.Filters(), _FakeLoop(), 0)
    for n in range(5):
        entry = journal.record(at=datetime(2026, 1, 1, tzinfo=UTC), provider="afterpay",
                               operation=None, method="GET", path=f"/{n}", query="",
                               headers=(), body=b"")
        subscriber.offer(entry)
    assert [e.path for e in subscriber.pending] == ["/0", "/1"]  # type: ignore[union-attr]
    assert subscriber.dropped == 3


class _FakeLoop:
    def call_soon_threadsafe(self, callback: Callable[[], Any]) -> None:
        callback()
