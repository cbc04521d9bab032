"""Order notifications (reference/optty-lifecycle.md, Notifications): ORDER_STATUS_UPDATE and
ORDER_ASYNC_CALLBACK to a real receiver on loopback, through the REFUND_CALLBACK machinery."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "optty_lifecycle_helpers", pathlib.Path(__file__).with_name("test_lifecycle.py"))
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
Lifecycle = _helpers.Lifecycle
DEFERRED = _helpers.DEFERRED

DATA_KEYS = ["orderReference", "merchantReference", "status", "transactionId", "bnplOrderId",
             "provider", "amount", "currency", "captureStatus", "updatedAt"]


@pytest.fixture
def hooked(optty: Any, receiver: Any) -> Lifecycle:
    life = Lifecycle(optty)
    life.setup(webhookUrl=receiver.url)
    return life


def events(receiver: Any, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    got = receiver.wait_for(count)
    return [(r.path, r.json()["event"], r.json()["data"]) for r in got]


def test_outcome_sends_status_update_with_the_documented_fields(hooked: Lifecycle,
                                                                 receiver: Any) -> None:
    reference = hooked.approved()
    [(path, event, data)] = events(receiver, 1)
    assert (path, event) == ("/optty/webhook", "ORDER_STATUS_UPDATE")
    assert list(data) == DATA_KEYS
    order = hooked.optty.order(reference)
    assert data["status"] == "SUCCESSFUL"
    assert data["transactionId"] == order["transactionReference"]
    assert data["bnplOrderId"] == order["bnplOrderId"]
    assert data["captureStatus"] == "NOT_CAPTURED"  # ZIP_AU is deferred here
    assert data["amount"] == "110.00" and data["currency"] == "AUD"
    [entry] = hooked.optty.callbacks()
    assert entry["operation"] == "ORDER_STATUS_UPDATE"


def test_capture_and_void_answers_send_no_event(hooked: Lifecycle, receiver: Any) -> None:
    reference = hooked.approved()
    receiver.wait_for(1)
    assert hooked.capture(reference, 50, "c-1").status_code == 201
    assert hooked.void(reference, 10, "v-1").status_code == 201
    hooked.optty.advance(60)
    assert len(hooked.optty.callbacks()) == 1
    assert len(receiver.received) == 1


def test_void_of_everything_cancels_and_says_so(hooked: Lifecycle, receiver: Any) -> None:
    reference = hooked.approved()
    assert hooked.void(reference, 110, "v-all").status_code == 201
    got = events(receiver, 2)
    assert [(e, d["status"]) for _p, e, d in got] == [
        ("ORDER_STATUS_UPDATE", "SUCCESSFUL"), ("ORDER_STATUS_UPDATE", "CANCELLED")]
    assert got[1][2]["captureStatus"] == "VOIDED"


def test_order_ttl_cancellation_is_sent_without_a_read(optty: Any, receiver: Any) -> None:
    life = Lifecycle(optty)
    life.setup({"ZIP_AU": {"orderTtl": "10m"}}, webhookUrl=receiver.url)
    life.created()
    optty.advance(600)
    [(_p, event, data)] = events(receiver, 1)
    assert (event, data["status"]) == ("ORDER_STATUS_UPDATE", "CANCELLED")


def test_pending_redirect_then_final_sends_async_callback_to_both_urls(
        hooked: Lifecycle, receiver: Any) -> None:
    dynamic = receiver.url.replace("/optty/webhook", "/shop/callback")
    reference = hooked.created(dynamicCallbackUrl=dynamic)["orderReference"]
    assert hooked.outcome(reference, "PENDING", after="30s").status_code == 200
    hooked.optty.advance(30)  # no read of the order: the timer moves it
    got = events(receiver, 4)
    assert sorted(d["status"] for _p, _e, d in got) == ["PENDING"] + ["SUCCESSFUL"] * 3
    assert sorted((p, e) for p, e, _d in got) == sorted([
        ("/optty/webhook", "ORDER_STATUS_UPDATE"), ("/optty/webhook", "ORDER_STATUS_UPDATE"),
        ("/optty/webhook", "ORDER_ASYNC_CALLBACK"), ("/shop/callback", "ORDER_ASYNC_CALLBACK")])


def test_direct_final_outcome_sends_no_async_callback(hooked: Lifecycle, receiver: Any) -> None:
    hooked.approved()
    receiver.wait_for(1)
    hooked.optty.advance(60)
    assert [e["operation"] for e in hooked.optty.callbacks()] == ["ORDER_STATUS_UPDATE"]


def test_get_token_adds_the_payer_token(hooked: Lifecycle, receiver: Any) -> None:
    hooked.approved(getToken=True)
    [(_p, _e, data)] = events(receiver, 1)
    assert list(data) == [*DATA_KEYS, "token"]
    assert len(data["token"]) == 36


def test_failed_delivery_is_retried_on_session_time(hooked: Lifecycle, receiver: Any,
                                                    wait: Any) -> None:
    receiver.script = [500]
    hooked.approved()
    receiver.wait_for(1)
    wait(lambda: hooked.optty.callbacks() and hooked.optty.callbacks()[0]["status"])
    [first] = hooked.optty.callbacks()
    assert first["warnings"][0].startswith("ORDER_STATUS_UPDATE attempt 1 of 6 failed: HTTP 500")
    hooked.optty.advance(1)
    got = receiver.wait_for(2)
    assert got[1].headers["x-sandbox-attempt"] == "2"
    assert got[0].body == got[1].body
