"""Point 1: a successful refund answers exactly as the real Afterpay sandbox does."""

from __future__ import annotations

import json

import pytest

MERCHANT_US = "100101481"
US_SECRET = "us-sandbox-secret"
US_ORDER = "100101768366"

# recorded: solidus_afterpay spec/fixtures/vcr_casettes/credit/valid.yml (2021-08-25)
RECORDED_REQUEST = (b'{"requestId":null,"merchantReference":null,"refundMerchantReference":null,'
                    b'"amount":{"amount":"10.0","currency":"USD"}}')
RECORDED_RESPONSE = """{
  "amount" : {
    "amount" : "10.00",
    "currency" : "USD"
  },
  "refundId" : "%s",
  "refundedAt" : "2021-08-25T14:56:33.753Z"
}"""


@pytest.fixture
def us(afterpay):
    us = afterpay.in_session("us-recorded")
    us.load({"name": "us", "afterpay": {
        "merchants": [{"merchantId": MERCHANT_US, "secretKey": US_SECRET, "currency": "USD"}],
        "payments": [{"id": US_ORDER, "merchantId": MERCHANT_US, "amount": "26.24",
                      "created": "2021-08-25T14:50:00Z"}]}})
    us.freeze("2021-08-25T14:56:33.753Z")
    return us.as_merchant(MERCHANT_US, US_SECRET)


@pytest.mark.sandbox_verified
def test_recorded_refund_is_answered_byte_for_byte(us) -> None:
    answer = us.refund(US_ORDER, raw=RECORDED_REQUEST, headers={
        "User-Agent": "SolidusAfterpay/0.0.1 (Solidus/3.0.1; Ruby/2.6.6; Merchant/100101481) "
                      "https://", "Accept": "*/*"})
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json"
    refund_id = answer.json()["refundId"]
    assert answer.content == (RECORDED_RESPONSE % refund_id).encode()
    assert "x-sandbox-warning" not in answer.headers


def test_every_non_null_field_is_echoed_in_the_recorded_refund_order(afterpay) -> None:
    answer = afterpay.refund(body={
        "requestId": "49efce77-4bf2-4e41-86e8-c2b92f493c2a",
        "amount": {"amount": "10.00", "currency": "AUD"},
        "merchantReference": "merchantRefundId-1234",
        "refundMerchantReference": "merchantRefundId-1234"})
    assert answer.status_code == 201
    pairs = json.loads(answer.content, object_pairs_hook=list)
    # recorded (afterpay-ruby _list_payments): the Refund object's order, not the docs' sorted one
    assert [key for key, _ in pairs] == ["requestId", "amount", "merchantReference", "refundId",
                                         "refundedAt", "refundMerchantReference"]
    body = answer.json()
    assert body["requestId"] == "49efce77-4bf2-4e41-86e8-c2b92f493c2a"
    assert body["merchantReference"] == "merchantRefundId-1234"
    assert body["refundMerchantReference"] == "merchantRefundId-1234"
    assert body["amount"] == {"amount": "10.00", "currency": "AUD"}


@pytest.mark.parametrize("absent", ["requestId", "merchantReference", "refundMerchantReference"])
def test_null_and_absent_fields_are_not_echoed(afterpay, absent: str) -> None:
    fields = {"requestId": "r-1", "merchantReference": "m-1", "refundMerchantReference": "x-1"}
    fields[absent] = None
    answer = afterpay.refund(body={"amount": {"amount": "1.00", "currency": "AUD"}, **fields})
    assert answer.status_code == 201
    assert absent not in answer.json()
    del fields[absent]
    answer = afterpay.refund(body={"amount": {"amount": "1.00", "currency": "AUD"},
                                   **{k: v + "b" for k, v in fields.items()}})
    assert answer.status_code == 201
    assert absent not in answer.json()


def test_unknown_fields_are_tolerated_and_not_echoed(afterpay) -> None:
    answer = afterpay.refund(body={"amount": {"amount": "1.00", "currency": "AUD", "x": 1},
                                   "note": "hello", "extra": {"nested": [1, 2]}})
    assert answer.status_code == 201
    assert set(answer.json()) == {"amount", "refundId", "refundedAt"}
    assert answer.json()["amount"] == {"amount": "1.00", "currency": "AUD"}


@pytest.mark.parametrize(("sent", "echoed"), [
    ("10.0", "10.00"), ("10", "10.00"), ("10.5", "10.50"), ("10.55", "10.55"),
    ("010.00", "10.00"), ("0.01", "0.01")])
def test_amount_is_echoed_with_two_decimals(afterpay, sent: str, echoed: str) -> None:
    answer = afterpay.refund(amount=sent)
    assert answer.status_code == 201, answer.text
    assert answer.json()["amount"] == {"amount": echoed, "currency": "AUD"}


def test_refund_ids_are_numeric_strings_and_unique(afterpay) -> None:
    ids = [afterpay.refund(amount="1.00").json()["refundId"] for _ in range(5)]
    ids += [afterpay.refund("100101785224", amount="1.00").json()["refundId"] for _ in range(5)]
    assert all(isinstance(i, str) and i.isdigit() for i in ids)
    assert len(set(ids)) == 10
    # the seeded refund's id is never handed out again
    assert "10000001" not in ids and "10000002" not in ids


def test_refunded_at_is_the_session_clock_in_utc_millis(afterpay, time_source) -> None:
    # the conftest clock starts at 2026-11-01T09:00:00.123Z
    assert afterpay.refund().json()["refundedAt"] == "2026-11-01T09:00:00.123Z"
    time_source.advance(seconds=1.5)
    assert afterpay.refund().json()["refundedAt"] == "2026-11-01T09:00:01.623Z"
    other = afterpay.in_session("clock-moved")
    other.advance(days=2)
    assert other.refund().json()["refundedAt"] == "2026-11-03T09:00:01.623Z"
    other.freeze("2026-12-24T23:59:59.999+02:00")
    assert other.refund().json()["refundedAt"] == "2026-12-24T21:59:59.999Z"


def test_jackson_pretty_printing_of_a_full_answer(afterpay) -> None:
    answer = afterpay.refund(body={"amount": {"amount": "7.5", "currency": "AUD"},
                                   "requestId": "req-é-😀", "merchantReference": "m\"1"})
    refund_id = answer.json()["refundId"]
    assert answer.content == (
        '{\n'
        '  "requestId" : "req-é-\\uD83D\\uDE00",\n'
        '  "amount" : {\n'
        '    "amount" : "7.50",\n'
        '    "currency" : "AUD"\n'
        '  },\n'
        '  "merchantReference" : "m\\"1",\n'
        f'  "refundId" : "{refund_id}",\n'
        '  "refundedAt" : "2026-11-01T09:00:00.123Z"\n'
        '}').encode()


@pytest.mark.parametrize("call", [
    lambda ap: ap.refund(),
    lambda ap: ap.refund("999"),
    lambda ap: ap.refund(raw=b"{"),
    lambda ap: ap.payment(),
    lambda ap: ap.payment("999"),
    lambda ap: ap.client.get("/ping"),
    lambda ap: ap.client.delete("/v2/payments/1", headers=ap.headers()),
    lambda ap: ap.client.get("/v2/nothing-here", headers=ap.headers()),
    lambda ap: ap.client.post("/v2/payments/1/refund", content=b"x" * (1024 * 1024 + 1),
                              headers=ap.headers()),
    lambda ap: ap.refund(headers={"Authorization": "Basic nope"}),
], ids=["201", "404", "400", "200", "get-404", "ping", "405", "route-404", "413", "401"])
def test_every_answer_carries_a_correlation_id(afterpay, call) -> None:
    answer = call(afterpay)
    assert len(answer.headers.get_list("http_correlation_id")) == 1
    assert answer.headers["http_correlation_id"].isalnum()
    assert answer.headers["http_correlation_id"] == answer.headers["http_correlation_id"].lower()
    assert len(answer.headers["http_correlation_id"]) == 26


def test_correlation_ids_differ_between_answers(afterpay) -> None:
    ids = {afterpay.refund(amount="1.00").headers["http_correlation_id"] for _ in range(3)}
    assert len(ids) == 3


def test_a_success_moves_exactly_that_money(afterpay) -> None:
    assert afterpay.refund(amount="10.05").status_code == 201
    assert afterpay.payment_json()["openToRefundAmount"] == {"amount": "109.95",
                                                             "currency": "AUD"}
