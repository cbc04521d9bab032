"""Asynchronous providers: PENDING, then REFUND_CALLBACK to a real receiver on a loopback port."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jsonschema
import pytest
import uvicorn
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.core.openapi import Spec, to_json_schema
from mock_server.optty.webhooks import MAX_ATTEMPTS, USER_AGENT
from mock_server.resources import spec_path
from mock_server.settings import Settings

# Optty (the client helper) and Receiver come from this folder's conftest as fixtures
Optty = Any
Receiver = Any


def hooked_world(url: str | None, *, final: str = "SUCCESSFUL", after: str = "2s",
                 name: str = "hooked") -> dict[str, Any]:
    merchant: dict[str, Any] = {"merchantId": "sandbox-merchant", "clientId": "sandbox-client",
                                "clientSecret": "sandbox-secret"}
    if url is not None:
        merchant["webhookUrl"] = url
    return {"name": name, "optty": {
        "merchants": [merchant],
        "providers": {"VOLT": {"asyncRefunds": True, "callbackAfter": after,
                               "finalStatus": final}},
        "orders": [{"orderReference": "ORD-V1", "merchantId": "sandbox-merchant",
                    "bnplProvider": "VOLT", "amount": "60.00", "currency": "AUD",
                    "status": "SUCCESSFUL", "transactionReference": "TX-V1"}]}}


def optty_of(app: SandboxApp) -> Any:
    return next(p for p in app.providers if p.name == "optty")


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s")
        time.sleep(0.01)
    return value


def settled_callbacks(optty: Optty, count: int) -> list[dict[str, Any]]:
    """The journal's callback entries once `count` of them have their outcome recorded."""
    def ready() -> list[dict[str, Any]] | None:
        found = optty.callbacks()
        done = len(found) >= count and all(e["status"] or e["warnings"] for e in found)
        return found if done else None
    return list(wait_until(ready))


@pytest.fixture
def hooked(optty: Optty, receiver: Receiver) -> Optty:
    optty.load(hooked_world(receiver.url))
    return optty


# ---- the PENDING answer ----------------------------------------------------------------------


def test_the_refund_answers_pending_with_a_callback_url(hooked: Optty, receiver: Receiver,
                                                        app: SandboxApp) -> None:
    answer = hooked.refund("ORD-V1", 25, "r-async")
    assert answer.status_code == 201
    body = answer.json()
    assert body["refundStatus"] == "PENDING"
    assert body["callbackUrl"] == receiver.url
    assert body["bnplProvider"] == "VOLT"
    assert "x-sandbox-warning" not in answer.headers
    order = hooked.order("ORD-V1")
    assert order["refunds"][0]["refundStatus"] == "PENDING"
    assert order["refunds"][0]["callbackUrl"] == receiver.url
    assert order["refundableAmount"] == "35.00"  # the money is held while pending
    [pending] = optty_of(app).pending_callbacks()
    assert pending["session"] == "default"
    assert pending["state"] == "scheduled"
    assert pending["dueAt"] == "2026-11-01T09:00:02.123Z"
    assert hooked.callbacks() == []
    assert receiver.received == []


def test_before_the_due_time_nothing_happens(hooked: Optty, receiver: Receiver) -> None:
    hooked.refund("ORD-V1", 25, "r-early")
    hooked.advance(1.999)
    assert hooked.order("ORD-V1")["refunds"][0]["refundStatus"] == "PENDING"
    assert hooked.callbacks() == []


# ---- delivery -------------------------------------------------------------------------------


def test_advancing_the_clock_past_due_delivers_at_once(optty: Optty, receiver: Receiver,
                                                       app: SandboxApp) -> None:
    # an hour of session time: only the clock move can wake the dispatcher within the test
    optty.load(hooked_world(receiver.url, after="1h"))
    hooked = optty
    refund = hooked.refund("ORD-V1", 25, "r-advance").json()
    hooked.advance(3603)
    # final at once: the very next read shows it, before the receiver has heard anything
    order = hooked.order("ORD-V1")
    assert order["refunds"][0]["refundStatus"] == "SUCCESSFUL"
    assert order["refundableAmount"] == "35.00"
    [got] = receiver.wait_for(1)
    assert got.path == "/optty/webhook"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == USER_AGENT
    assert got.headers["x-sandbox-session"] == "default"
    assert got.headers["x-sandbox-attempt"] == "1"
    assert got.json() == {"event": "REFUND_CALLBACK", "data": {
        "refundReference": "r-advance", "orderReference": "ORD-V1", "status": "SUCCESSFUL",
        "refundedAmount": "25.00", "currency": "AUD", "bnplRefundId": refund["bnplRefundId"],
        "transactionId": "TX-V1", "updatedAt": "2026-11-01T10:00:00.123Z"}}
    document = Spec.load("optty", spec_path("optty")).document
    jsonschema.validate(got.json(), to_json_schema(document["components"]["schemas"][
        "RefundCallback"]))
    [entry] = settled_callbacks(hooked, 1)
    assert entry["kind"] == "callback"
    assert (entry["method"], entry["path"], entry["operation"]) == (
        "POST", receiver.url, "REFUND_CALLBACK")
    assert entry["status"] == 200
    assert entry["body"] == got.body.decode()
    assert entry["responseBody"] == '{"received":true}'
    assert entry["warnings"] == []
    assert entry["at"] == "2026-11-01T10:00:03.123Z"
    assert wait_until(lambda: optty_of(app).pending_callbacks() == [])


def test_freezing_the_clock_past_due_delivers(optty: Optty, receiver: Receiver) -> None:
    optty.load(hooked_world(receiver.url, after="1h"))
    hooked = optty
    hooked.refund("ORD-V1", 25, "r-freeze")
    hooked.freeze("2026-11-01T10:00:00.123Z")
    assert hooked.order("ORD-V1")["refunds"][0]["refundStatus"] == "SUCCESSFUL"
    assert receiver.wait_for(1)[0].json()["data"]["refundReference"] == "r-freeze"


def test_several_refunds_each_get_their_callback(hooked: Optty, receiver: Receiver) -> None:
    hooked.refund("ORD-V1", 10, "r-a")
    hooked.advance(1)
    hooked.refund("ORD-V1", 20, "r-b")
    hooked.advance(1)  # r-a due, r-b not yet
    assert [r.json()["data"]["refundReference"] for r in receiver.wait_for(1)] == ["r-a"]
    assert [r["refundStatus"] for r in hooked.order("ORD-V1")["refunds"]] == [
        "SUCCESSFUL", "PENDING"]
    hooked.advance(1)
    assert sorted(r.json()["data"]["refundReference"] for r in receiver.wait_for(2)) == [
        "r-a", "r-b"]


def test_a_failed_refund_gives_the_money_back(optty: Optty, receiver: Receiver) -> None:
    optty.load(hooked_world(receiver.url, final="FAILED"))
    optty.refund("ORD-V1", 60, "r-fails")
    assert optty.refund("ORD-V1", 1, "r-nothing-left").json()["message"] == (
        "You can only refund amount up to AUD 0.00")
    optty.advance(2)
    order = optty.order("ORD-V1")
    assert order["refunds"][0]["refundStatus"] == "FAILED"
    assert order["refundedAmount"] == "0.00"
    assert order["refundableAmount"] == "60.00"
    assert receiver.wait_for(1)[0].json()["data"]["status"] == "FAILED"
    # the money can be refunded again, but the failed refund's reference stays taken
    assert optty.refund("ORD-V1", 60, "r-fails").json()["message"] == (
        "Refund reference already exists")
    assert optty.refund("ORD-V1", 60, "r-second-try").status_code == 201


def test_callback_after_comes_from_the_providers_table(optty: Optty, receiver: Receiver) -> None:
    optty.load(hooked_world(receiver.url, after="1m"))
    optty.refund("ORD-V1", 5, "r-minute")
    optty.advance(59)
    assert optty.order("ORD-V1")["refunds"][0]["refundStatus"] == "PENDING"
    optty.advance(1)
    assert optty.order("ORD-V1")["refunds"][0]["refundStatus"] == "SUCCESSFUL"
    receiver.wait_for(1)


def test_a_seeded_pending_refund_settles_too(optty: Optty, receiver: Receiver) -> None:
    world = hooked_world(receiver.url)
    world["optty"]["orders"][0]["refunds"] = [
        {"refundReference": "seed-pending", "amount": "15.00", "status": "PENDING"}]
    optty.load(world)
    assert optty.order("ORD-V1")["refunds"][0]["refundStatus"] == "PENDING"
    optty.advance(2)
    assert optty.order("ORD-V1")["refunds"][0]["refundStatus"] == "SUCCESSFUL"
    assert receiver.wait_for(1)[0].json()["data"]["refundReference"] == "seed-pending"


# ---- retries --------------------------------------------------------------------------------


def test_failed_deliveries_are_retried_with_backoff(hooked: Optty, receiver: Receiver,
                                                    app: SandboxApp) -> None:
    receiver.script = [500, 503]
    hooked.refund("ORD-V1", 25, "r-retry")
    hooked.advance(2)  # due at 09:00:02.123: attempt 1 -> 500
    [first] = settled_callbacks(hooked, 1)
    assert first["status"] == 500
    assert first["warnings"] == [
        f"REFUND_CALLBACK attempt 1 of {MAX_ATTEMPTS} failed: HTTP 500; next attempt at "
        "2026-11-01T09:00:03.123Z"]
    [row] = optty_of(app).pending_callbacks()
    assert (row["state"], row["attempts"], row["lastStatus"]) == ("retrying", 1, 500)
    hooked.advance(0.5)
    assert len(receiver.received) == 1 and optty_of(app).pending_callbacks()[0]["attempts"] == 1
    hooked.advance(0.5)  # 1 s after the failure: attempt 2 -> 503
    second = settled_callbacks(hooked, 2)[1]
    assert second["status"] == 503
    assert second["warnings"][0].endswith("next attempt at 2026-11-01T09:00:05.123Z")
    hooked.advance(2)  # 2 s after that: attempt 3 -> 200
    third = settled_callbacks(hooked, 3)[2]
    assert third["status"] == 200
    assert third["warnings"] == [f"REFUND_CALLBACK delivered on attempt 3 of {MAX_ATTEMPTS}"]
    got = receiver.wait_for(3)
    assert [r.headers["x-sandbox-attempt"] for r in got] == ["1", "2", "3"]
    assert got[0].body == got[1].body == got[2].body
    assert wait_until(lambda: optty_of(app).pending_callbacks() == [])


def test_retries_are_bounded(hooked: Optty, receiver: Receiver, app: SandboxApp) -> None:
    receiver.script = [500] * 20
    hooked.refund("ORD-V1", 25, "r-bounded")
    hooked.advance(2)
    for attempt, backoff in enumerate([1, 2, 4, 8, 16], start=1):
        settled_callbacks(hooked, attempt)
        hooked.advance(backoff)
    entries = settled_callbacks(hooked, MAX_ATTEMPTS)
    assert [e["status"] for e in entries] == [500] * MAX_ATTEMPTS
    assert entries[-1]["warnings"] == [
        f"REFUND_CALLBACK attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS} failed: HTTP 500; giving up"]
    assert wait_until(lambda: optty_of(app).pending_callbacks() == [])
    hooked.advance(3600)
    assert len(hooked.callbacks()) == MAX_ATTEMPTS
    # the refund itself stays final whatever happened to the notification
    assert hooked.order("ORD-V1")["refunds"][0]["refundStatus"] == "SUCCESSFUL"


def test_a_redirect_is_not_followed(hooked: Optty, receiver: Receiver) -> None:
    receiver.script = [302]
    hooked.refund("ORD-V1", 25, "r-redirect")
    hooked.advance(2)
    [entry] = settled_callbacks(hooked, 1)
    assert entry["status"] == 302
    assert "failed: HTTP 302" in entry["warnings"][0]


def test_an_unreachable_receiver_is_journaled_and_retried(optty: Optty, app: SandboxApp) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/gone"
    optty.load(hooked_world(url))
    optty.refund("ORD-V1", 25, "r-unreachable")
    optty.advance(2)
    [entry] = settled_callbacks(optty, 1)
    assert entry["status"] == 0
    assert entry["path"] == url
    assert "ConnectError" in entry["warnings"][0]
    assert "next attempt at 2026-11-01T09:00:03.123Z" in entry["warnings"][0]
    [row] = optty_of(app).pending_callbacks()
    assert row["state"] == "retrying"
    assert "ConnectError" in row["lastError"]


# ---- without a webhook, across sessions, after a reset ---------------------------------------


def test_without_a_webhook_the_refund_still_becomes_final(optty: Optty) -> None:
    # the default world's merchant has no webhookUrl; ORD-1004 is on the asynchronous VOLT
    answer = optty.refund("ORD-1004", 10, "r-no-hook")
    assert answer.json()["refundStatus"] == "PENDING"
    assert "callbackUrl" not in answer.json()
    assert "has no webhookUrl" in answer.headers["x-sandbox-warning"]
    optty.advance(2)
    assert optty.order("ORD-1004")["refunds"][0]["refundStatus"] == "SUCCESSFUL"
    [entry] = optty.callbacks()
    assert entry["status"] == 0
    assert entry["path"] == ""
    assert entry["warnings"] == [
        "REFUND_CALLBACK not delivered: merchant sandbox-merchant has no webhookUrl"]
    assert '"status":"SUCCESSFUL"' in entry["body"]


def test_sessions_deliver_on_their_own_clocks(optty: Optty, receiver: Receiver) -> None:
    # a session first used long after start-up is watched like the others
    late = optty.in_session("async-late")
    late.load(hooked_world(receiver.url))
    late.refund("ORD-V1", 25, "r-late")
    optty.advance(60)  # the default session's clock: nothing due there
    assert late.order("ORD-V1")["refunds"][0]["refundStatus"] == "PENDING"
    late.advance(2)
    [got] = receiver.wait_for(1)
    assert got.headers["x-sandbox-session"] == "async-late"


def test_a_reset_drops_pending_callbacks(hooked: Optty, receiver: Receiver,
                                         app: SandboxApp) -> None:
    hooked.refund("ORD-V1", 25, "r-reset")
    assert optty_of(app).pending_callbacks() != []
    hooked.http.post("/__admin/reset")
    assert optty_of(app).pending_callbacks() == []
    hooked.load(hooked_world(receiver.url))
    hooked.advance(10)
    assert hooked.callbacks() == []


def test_reseeding_the_order_forgets_its_callbacks(hooked: Optty, receiver: Receiver,
                                                   app: SandboxApp) -> None:
    hooked.refund("ORD-V1", 25, "r-reseed")
    hooked.load(hooked_world(receiver.url, name="again"))
    assert optty_of(app).pending_callbacks() == []
    hooked.advance(10)
    assert hooked.order("ORD-V1")["refunds"] == []


# ---- drain, and what is left at shutdown ------------------------------------------------------


def test_drain_delivers_what_is_due(hooked: Optty, receiver: Receiver, app: SandboxApp,
                                    client: TestClient) -> None:
    receiver.script = [500]
    hooked.refund("ORD-V1", 25, "r-drain")
    hooked.advance(2)
    assert client.portal is not None
    left = client.portal.call(optty_of(app).drain, 5.0)
    assert [(row["refundReference"], row["state"], row["attempts"]) for row in left] == [
        ("r-drain", "retrying", 1)]


def test_shutdown_reports_undelivered_callbacks(receiver: Receiver, time_source: Any,
                                                optty_client: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(seed=7), time_source=time_source)
    with TestClient(app) as client:
        optty = optty_client(client)
        optty.load(hooked_world(receiver.url))
        optty.refund("ORD-V1", 25, "r-left-behind")
        caplog.set_level(logging.WARNING, logger="mock_server.optty.webhooks")
    [record] = [r for r in caplog.records if "not delivered at shutdown" in r.getMessage()]
    assert record.getMessage() == "1 callback(s) not delivered at shutdown"
    assert [row["refundReference"] for row in record.pending_callbacks] == ["r-left-behind"]


# ---- a real server, real time ----------------------------------------------------------------


@pytest.fixture
def live_sandbox() -> Iterator[tuple[SandboxApp, str]]:
    app = create_app(Settings(seed=7))  # real time
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_real_time_passing_delivers_over_a_real_server(live_sandbox: tuple[SandboxApp, str],
                                                       receiver: Receiver,
                                                       optty_client: Any) -> None:
    app, base_url = live_sandbox
    with httpx.Client(base_url=base_url, trust_env=False) as http:
        optty = optty_client(http)
        optty.load(hooked_world(receiver.url, after="200ms"))
        answer = optty.refund("ORD-V1", 25, "r-live")
        assert answer.status_code == 201
        assert answer.json()["refundStatus"] == "PENDING"
        # no clock move: the dispatcher wakes when 200 ms of real time have passed
        [got] = receiver.wait_for(1, timeout=10)
        assert got.json()["data"]["refundReference"] == "r-live"
        assert optty.order("ORD-V1")["refunds"][0]["refundStatus"] == "SUCCESSFUL"
        [entry] = settled_callbacks(optty, 1)
        assert entry["status"] == 200
