"""Point 8: GET /v2/payments/{orderId} shows every refund made with its references and what is
left; GET /ping answers pong."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft4Validator

from mock_server.core.openapi import Spec, _resolve, to_json_schema
from mock_server.resources import spec_path

RECORDED_PAYMENT_KEYS = ["id", "token", "status", "created", "originalAmount",
                         "openToCaptureAmount", "paymentState", "merchantReference", "refunds",
                         "events"]  # recorded (find_payment/valid.yml), less orderDetails


@pytest.fixture(scope="module")
def payment_schema() -> Draft4Validator:
    spec = Spec.load("afterpay", spec_path("afterpay"))
    schema = _resolve(spec.document["components"]["schemas"]["Payment"], spec.document)
    return Draft4Validator(to_json_schema(schema))


def test_fresh_payment(afterpay, payment_schema) -> None:
    answer = afterpay.payment("100101785223")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    payment_schema.validate(body)
    assert body["id"] == "100101785223"
    assert body["status"] == "APPROVED" and body["paymentState"] == "CAPTURED"
    assert body["originalAmount"] == {"amount": "120.00", "currency": "AUD"}
    assert body["openToCaptureAmount"] == {"amount": "0.00", "currency": "AUD"}
    assert body["openToRefundAmount"] == {"amount": "120.00", "currency": "AUD"}
    assert body["merchantReference"] == "order-1001"
    assert body["created"] == "2026-11-01T09:00:00.123Z"
    assert body["refunds"] == []
    assert [e["type"] for e in body["events"]] == ["CAPTURED"]  # an immediate capture


def test_keys_in_the_recorded_order_with_the_sandbox_extension_last(afterpay) -> None:
    pairs = json.loads(afterpay.payment().content, object_pairs_hook=list)
    assert [k for k, _ in pairs] == [*RECORDED_PAYMENT_KEYS, "openToRefundAmount"]


def test_every_refund_is_listed_with_its_references(afterpay, time_source,
                                                    payment_schema) -> None:
    first = afterpay.refund(amount="10.0", requestId="req-1", merchantReference="ref-1",
                            refundMerchantReference="rmr-1").json()
    time_source.advance(minutes=3)
    second = afterpay.refund(amount="2.50").json()
    third = afterpay.refund(amount="0.01", merchantReference="ref-only").json()
    afterpay.refund(amount="500.00")  # refused: not listed
    body = afterpay.payment_json()
    payment_schema.validate(body)
    assert body["refunds"] == [first, second, third]  # each exactly as its 201 answered
    assert body["refunds"][0] == {
        "amount": {"amount": "10.00", "currency": "AUD"}, "merchantReference": "ref-1",
        "refundId": first["refundId"], "refundMerchantReference": "rmr-1",
        "refundedAt": "2026-11-01T09:00:00.123Z", "requestId": "req-1"}
    assert body["refunds"][1]["refundedAt"] == "2026-11-01T09:03:00.123Z"
    assert body["openToRefundAmount"] == {"amount": "107.49", "currency": "AUD"}


def test_a_replay_is_not_listed_twice(afterpay) -> None:
    keys = {"requestId": "req-1", "merchantReference": "ref-1"}
    afterpay.refund(amount="10.00", **keys)
    afterpay.refund(amount="10.00", **keys)
    assert len(afterpay.payment_json()["refunds"]) == 1


@pytest.mark.sandbox_verified
def test_refund_entry_layout_matches_the_recorded_payment(afterpay) -> None:
    # recorded (find_payment/valid.yml): a refund made with null references is listed as
    # exactly amount, refundId, refundedAt, in that order, Jackson-indented inside the array
    refund = afterpay.refund(raw=b'{"requestId":null,"merchantReference":null,'
                                 b'"refundMerchantReference":null,'
                                 b'"amount":{"amount":"10.00","currency":"AUD"}}').json()
    text = afterpay.payment().text
    assert (
        '  "refunds" : [ {\n'
        '    "amount" : {\n'
        '      "amount" : "10.00",\n'
        '      "currency" : "AUD"\n'
        '    },\n'
        f'    "refundId" : "{refund["refundId"]}",\n'
        '    "refundedAt" : "2026-11-01T09:00:00.123Z"\n'
        '  } ],\n') in text
    # recorded: events carry paymentEventMerchantReference, written as null
    assert '"paymentEventMerchantReference" : null' in text


def test_seeded_refunds_are_listed(afterpay) -> None:
    body = afterpay.payment_json("100101785224")
    assert body["refunds"] == [{
        "amount": {"amount": "40.00", "currency": "AUD"}, "merchantReference": "seed-refund-1",
        "refundId": "10000001", "refundedAt": "2026-11-01T09:00:00.123Z",
        "requestId": "seed-req-1"}]
    assert body["openToRefundAmount"] == {"amount": "60.00", "currency": "AUD"}


@pytest.mark.parametrize(("order_id", "state", "status", "open_to_capture", "open_to_refund"), [
    ("100101785225", "PARTIALLY_CAPTURED", "APPROVED", "120.00", "80.00"),
    ("100101785226", "CAPTURED", "APPROVED", "0.00", "0.00"),
    # recorded (deferred/authorize/declined_payment): a declined payment shows its whole amount
    ("100101785227", "AUTH_DECLINED", "DECLINED", "75.00", "0.00"),
    ("100101785228", "AUTH_APPROVED", "APPROVED", "75.00", "0.00"),
    ("100101785229", "VOIDED", "APPROVED", "0.00", "0.00"),
])
def test_payment_states(afterpay, payment_schema, order_id, state, status, open_to_capture,
                        open_to_refund) -> None:
    body = afterpay.payment_json(order_id)
    payment_schema.validate(body)
    assert body["paymentState"] == state and body["status"] == status
    assert body["openToCaptureAmount"]["amount"] == open_to_capture
    assert body["openToRefundAmount"]["amount"] == open_to_refund


def test_payment_is_jackson_pretty_printed(afterpay) -> None:
    text = afterpay.payment().text
    assert text.startswith('{\n  "id" : "100101785223",\n  "token" : "002.')
    assert '  "refunds" : [ ],\n' in text
    assert '  "events" : [ {\n    "id" : ' in text
    assert not text.endswith("\n")


def test_ping(afterpay) -> None:
    answer = afterpay.client.get("/ping")
    assert answer.status_code == 200
    assert answer.text == "pong"
    assert answer.headers["content-type"].startswith("text/plain")
    assert len(answer.headers["http_correlation_id"]) == 26


def test_ping_in_a_session_prefix(afterpay) -> None:
    assert afterpay.client.get("/sessions/any/ping", headers={"User-Agent": "x"}).text == "pong"


NO_CACHE = "private, no-cache, no-store, no-transform, must-revalidate, max-age=0"


def test_every_answer_to_a_read_carries_no_cache_and_the_200_vary(afterpay) -> None:
    # recorded: the 200 and the 404 of a read; Decision: the read's other refusals too
    found = afterpay.payment()
    assert found.headers["cache-control"] == NO_CACHE
    assert found.headers["vary"] == "Accept-Encoding"
    for answer in (afterpay.payment("999"), afterpay.payment(headers={"Authorization": "x"}),
                   afterpay.payment(headers={"Accept": "text/html"})):
        assert answer.status_code in (401, 404, 406)
        assert answer.headers["cache-control"] == NO_CACHE
        assert "vary" not in answer.headers


def test_refund_answers_carry_neither(afterpay) -> None:
    # recorded: the 201 and the 404 of a refund have no Cache-Control and no Vary
    for answer in (afterpay.refund(), afterpay.refund("999")):
        assert "cache-control" not in answer.headers and "vary" not in answer.headers
