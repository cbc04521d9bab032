"""The payment lifecycle (reference afterpay-lifecycle.md): checkouts, the shopper's step, immediate
capture, auth, deferred capture, void, expiry, reads, update, configuration."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator

from mock_server.core.openapi import Spec, _resolve, to_json_schema
from mock_server.resources import spec_path
from tests.api.afterpay.conftest import Afterpay, money

CONFIRM_URL = "https://shop.example.com/confirm"
CANCEL_URL = "https://shop.example.com/cancel?cart=7"
PAYMENT_KEYS = ["id", "token", "status", "created", "originalAmount", "openToCaptureAmount",
                "paymentState", "merchantReference", "refunds", "orderDetails", "events",
                "openToRefundAmount"]
READ_CACHE = "private, no-cache, no-store, no-transform, must-revalidate, max-age=0"


def checkout_body(amount: str = "100.00", **extra: Any) -> dict[str, Any]:
    return {"amount": money(amount), "consumer": {"email": "shopper@example.com",
                                                   "givenNames": "Joe", "surname": "Consumer"},
            "merchant": {"redirectConfirmUrl": CONFIRM_URL, "redirectCancelUrl": CANCEL_URL},
            "merchantReference": "order-2001",
            "items": [{"name": "Socks", "sku": "S-1", "quantity": 2,
                       "price": money(f"{Decimal(amount) / 2:.2f}")}], **extra}


class Flow:
    """An Afterpay client with the lifecycle's calls."""

    def __init__(self, afterpay: Afterpay) -> None:
        self.ap = afterpay
        self.client = afterpay.client

    def post(self, path: str, body: Any = None, *, raw: bytes | None = None) -> httpx.Response:
        content = raw if raw is not None else json.dumps(body).encode()
        return self.client.post(path, content=content, headers=self.ap.headers())

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.ap.headers(json_body=False))

    def checkout(self, amount: str = "100.00", **extra: Any) -> str:
        answer = self.post("/v2/checkouts", checkout_body(amount, **extra))
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    def admin(self, token: str, action: str, card: str | None = None) -> httpx.Response:
        body = json.dumps({"card": card}).encode() if card else b""
        headers = {"Content-Type": "application/json"}
        if self.ap.session:
            headers["X-Sandbox-Session"] = self.ap.session
        return self.client.post(f"/__admin/afterpay/checkouts/{token}/{action}", content=body,
                                headers=headers)

    def confirmed(self, amount: str = "100.00", card: str = "approved") -> str:
        token = self.checkout(amount)
        assert self.admin(token, "confirm", card).status_code == 200
        return token

    def authorised(self, amount: str = "100.00") -> dict[str, Any]:
        answer = self.post("/v2/payments/auth", {"token": self.confirmed(amount)})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def capture(self, order_id: str, amount: str, **fields: Any) -> httpx.Response:
        return self.post(f"/v2/payments/{order_id}/capture", {"amount": money(amount), **fields})

    def void(self, order_id: str, amount: str | None = None, **fields: Any) -> httpx.Response:
        body = {**({"amount": money(amount)} if amount else {}), **fields}
        return self.post(f"/v2/payments/{order_id}/void", body)


@pytest.fixture
def flow(afterpay: Afterpay) -> Flow:
    return Flow(afterpay)


@pytest.fixture(scope="module")
def payment_schema() -> Draft4Validator:
    spec = Spec.load("afterpay", spec_path("afterpay"))
    schema = _resolve(spec.document["components"]["schemas"]["Payment"], spec.document)
    return Draft4Validator(to_json_schema(schema))


def _amount(body: dict[str, Any], key: str) -> str:
    return str(body[key]["amount"])


# -- checkouts ------------------------------------------------------------------------------

def test_create_checkout_answers_the_recorded_shape(flow: Flow) -> None:
    answer = flow.post("/v2/checkouts", checkout_body())
    assert answer.status_code == 201
    pairs = json.loads(answer.content, object_pairs_hook=list)
    assert [k for k, _ in pairs] == ["token", "expires", "redirectCheckoutUrl"]
    body = answer.json()
    assert body["token"].startswith("002.") and len(body["token"]) == 52
    assert body["token"][4:].isalnum() and body["token"][4:].islower()
    assert body["redirectCheckoutUrl"] == (
        f"http://testserver/__portal/afterpay/au/checkout/?token={body['token']}")


def test_checkout_expires_after_three_hours_of_session_time(flow: Flow) -> None:
    flow.ap.freeze("2026-11-01T09:00:00.000Z")
    answer = flow.post("/v2/checkouts", checkout_body())
    assert answer.json()["expires"] == "2026-11-01T12:00:00.000Z"
    token = answer.json()["token"]
    assert flow.get(f"/v2/checkouts/{token}").status_code == 200
    flow.ap.advance(hours=3)
    flow.ap.assert_error(flow.get(f"/v2/checkouts/{token}"), 412, "invalid_token",
                         "Invalid token")
    assert flow.admin(token, "confirm", "approved").status_code == 409


def test_get_checkout_echoes_it_in_the_recorded_order(flow: Flow) -> None:
    token = flow.checkout(taxAmount=money("9.09"), discounts=[
        {"displayName": "Ten off", "amount": money("10")}])
    answer = flow.get(f"/v2/checkouts/{token}")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == READ_CACHE
    keys = [k for k, _ in json.loads(answer.content, object_pairs_hook=list)]
    assert keys == ["token", "expires", "redirectCheckoutUrl", "amount", "consumer", "items",
                    "merchant", "discounts", "taxAmount", "merchantReference"]
    body = answer.json()
    assert body["merchant"] == {"redirectConfirmUrl": CONFIRM_URL,
                                "redirectCancelUrl": CANCEL_URL}
    assert body["discounts"] == [{"displayName": "Ten off", "amount": money("10.00")}]
    assert body["consumer"] == {"phoneNumber": "", "givenNames": "Joe", "surname": "Consumer",
                                "email": "shopper@example.com"}


def test_unknown_checkout_is_412_invalid_token(flow: Flow) -> None:
    flow.ap.assert_error(flow.get("/v2/checkouts/002.nope"), 412, "invalid_token",
                         "Invalid token")


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: b.pop("amount"), "amount may not be null"),
    (lambda b: b.pop("consumer"), "consumer may not be null"),
    (lambda b: b["consumer"].pop("email"), "consumer.email may not be empty"),
    (lambda b: b["merchant"].pop("redirectCancelUrl"),
     "merchant.redirectCancelUrl may not be empty"),
    (lambda b: b["merchant"].update(redirectConfirmUrl="not a url"),
     "merchant.redirectConfirmUrl must be a valid URL"),
    (lambda b: b.update(merchantReference="x" * 129),
     "merchantReference size must be between 0 and 128"),
    (lambda b: b["consumer"].update(phoneNumber="1" * 33),
     "consumer.phoneNumber size must be between 0 and 32"),
    (lambda b: b["items"][0]["price"].pop("amount"), "items[0].price.amount Amount field required"),
    (lambda b: b.update(items=[b["items"][0]] * 101), "items size must be between 0 and 100"),
    (lambda b: (b.pop("amount"), b.pop("merchant")),
     "amount may not be null, merchant may not be null"),
])
def test_checkout_validation(flow: Flow, change: Any, message: str) -> None:
    body = checkout_body()
    change(body)
    flow.ap.assert_error(flow.post("/v2/checkouts", body), 422, "invalid_object", message)


def test_checkout_accepts_nulls_unknown_fields_and_a_number_amount(flow: Flow) -> None:
    # recorded (create_checkout/valid): countryCode null, paymentType null, amount "110.0"
    body = checkout_body(shipping={"name": "Joe", "countryCode": None}, paymentType=None)
    body["amount"] = {"amount": "100.0", "currency": "AUD"}
    assert flow.post("/v2/checkouts", body).status_code == 201


def test_checkout_outside_the_configuration_limits(flow: Flow) -> None:
    flow.ap.assert_error(flow.post("/v2/checkouts", checkout_body("1000.01")), 422,
                         "unsupported_payment_type", "Unsupported payment type")
    flow.ap.assert_error(flow.post("/v2/checkouts", checkout_body("0.50")), 422,
                         "unsupported_payment_type")


def test_checkout_in_another_currency_is_unsupported_currency(flow: Flow) -> None:
    body = checkout_body()
    body["amount"] = money("10.00", "NZD")
    flow.ap.assert_error(flow.post("/v2/checkouts", body), 422, "unsupported_currency")


def test_configuration(flow: Flow) -> None:
    answer = flow.get("/v2/configuration")
    assert answer.status_code == 200
    assert answer.json() == {"minimumAmount": money("1.00"), "maximumAmount": money("1000.00")}
    assert answer.headers["cache-control"] == "private, no-transform, max-age=1800"


# -- immediate capture ----------------------------------------------------------------------

def test_immediate_capture_of_an_approved_checkout(flow: Flow, payment_schema) -> None:
    flow.ap.freeze("2026-11-01T09:00:00.000Z")
    token = flow.confirmed()
    flow.ap.advance(minutes=1)
    answer = flow.post("/v2/payments/capture", {"token": token})
    assert answer.status_code == 201
    keys = [k for k, _ in json.loads(answer.content, object_pairs_hook=list)]
    assert keys == PAYMENT_KEYS
    body = answer.json()
    payment_schema.validate(body)
    assert len(body["id"]) == 12 and body["id"].isdigit()
    assert (body["status"], body["paymentState"]) == ("APPROVED", "CAPTURED")
    assert body["created"] == "2026-11-01T09:00:00.000Z"  # the confirm moment (Decision)
    assert _amount(body, "openToCaptureAmount") == "0.00"
    assert [(e["type"], e["created"], e["expires"]) for e in body["events"]] == [
        ("CAPTURED", "2026-11-01T09:01:00.000Z", None)]
    assert len(body["events"][0]["id"]) == 27
    assert body["merchantReference"] == "order-2001"
    assert body["orderDetails"]["consumer"]["email"] == "shopper@example.com"
    assert _amount(body, "openToRefundAmount") == "100.00"


def test_immediate_capture_is_idempotent_on_the_token(flow: Flow) -> None:
    token = flow.confirmed()
    first = flow.post("/v2/payments/capture", {"token": token}).json()
    assert flow.ap.refund(first["id"], amount="10.00").status_code == 201
    again = flow.post("/v2/payments/capture", {"token": token})
    assert again.status_code == 201
    body = again.json()
    assert body["id"] == first["id"] and len(body["events"]) == 1
    assert [r["amount"]["amount"] for r in body["refunds"]] == ["10.00"]  # as it is now


def test_immediate_capture_with_a_declined_card(flow: Flow, payment_schema) -> None:
    answer = flow.post("/v2/payments/capture", {"token": flow.confirmed(card="declined")})
    assert answer.status_code == 201  # recorded: declined_payment is a 201
    body = answer.json()
    payment_schema.validate(body)
    assert (body["status"], body["paymentState"]) == ("DECLINED", "CAPTURE_DECLINED")
    assert _amount(body, "openToCaptureAmount") == "100.00"
    assert [e["type"] for e in body["events"]] == ["CAPTURE_DECLINED"]
    flow.ap.assert_error(flow.ap.refund(body["id"]), 412, "precondition_failed")


def test_capture_before_the_shopper_confirmed(flow: Flow) -> None:
    token = flow.checkout()
    flow.ap.assert_error(flow.post("/v2/payments/capture", {"token": token}), 412,
                         "invalid_order_transaction_status", "Order has not been approved.")
    flow.admin(token, "cancel")
    flow.ap.assert_error(flow.post("/v2/payments/auth", {"token": token}), 412,
                         "invalid_order_transaction_status")


@pytest.mark.parametrize("body", [{"token": ""}, {}, {"token": None}])
def test_capture_without_a_token(flow: Flow, body: dict[str, Any]) -> None:
    flow.ap.assert_error(flow.post("/v2/payments/capture", body), 422, "invalid_object",
                         "token may not be empty")


def test_capture_with_an_unknown_or_expired_token(flow: Flow) -> None:
    flow.ap.assert_error(flow.post("/v2/payments/capture", {"token": "002.unknown"}), 402,
                         "invalid_token", "Cannot complete payment, expired or invalid token.")
    token = flow.confirmed()
    flow.ap.advance(hours=4)
    flow.ap.assert_error(flow.post("/v2/payments/capture", {"token": token}), 402,
                         "invalid_token")


def test_another_merchants_token_is_invalid(flow: Flow) -> None:
    token = flow.confirmed()
    nz = Flow(flow.ap.as_merchant("100101400", "sandbox-secret-key-nz"))
    flow.ap.assert_error(nz.post("/v2/payments/capture", {"token": token}), 402,
                         "invalid_token")


def test_a_token_used_by_auth_cannot_be_captured_at_once(flow: Flow) -> None:
    token = flow.confirmed()
    assert flow.post("/v2/payments/auth", {"token": token}).status_code == 201
    flow.ap.assert_error(flow.post("/v2/payments/capture", {"token": token}), 402,
                         "invalid_token")


# -- auth, deferred capture -----------------------------------------------------------------

def test_auth_sets_expires_13_days_less_a_millisecond(flow: Flow, payment_schema) -> None:
    flow.ap.freeze("2026-11-01T09:00:00.000Z")
    body = flow.authorised()
    payment_schema.validate(body)
    assert (body["status"], body["paymentState"]) == ("APPROVED", "AUTH_APPROVED")
    assert _amount(body, "openToCaptureAmount") == "100.00"
    assert [(e["type"], e["expires"]) for e in body["events"]] == [
        ("AUTH_APPROVED", "2026-11-14T08:59:59.999Z")]
    flow.ap.assert_error(flow.ap.refund(body["id"]), 412, "precondition_failed")


def test_refundable_is_what_was_captured_less_what_was_refunded_never_a_void(
        flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    # before any capture nothing is refundable (docs: "only captured funds can be refunded")
    flow.ap.assert_error(flow.ap.refund(order_id, amount="1.00"), 412, "precondition_failed")
    assert flow.capture(order_id, "60.00").status_code == 201
    assert flow.void(order_id).status_code == 201  # the other 40.00
    body = flow.get(f"/v2/payments/{order_id}").json()
    assert _amount(body, "openToRefundAmount") == "60.00"  # the void is not refunded money
    assert flow.ap.refund(order_id, amount="25.00").status_code == 201
    flow.ap.assert_error(flow.ap.refund(order_id, amount="35.01"), 422, "invalid_amount")
    assert flow.ap.refund(order_id, amount="35.00").status_code == 201
    body = flow.get(f"/v2/payments/{order_id}").json()
    assert _amount(body, "openToRefundAmount") == "0.00"
    assert [r["amount"]["amount"] for r in body["refunds"]] == ["40.00", "25.00", "35.00"]


def test_declined_auth_is_402_with_the_payment(flow: Flow, payment_schema) -> None:
    token = flow.confirmed(card="declined")
    answer = flow.post("/v2/payments/auth", {"token": token})
    assert answer.status_code == 402
    body = answer.json()
    payment_schema.validate(body)
    assert (body["status"], body["paymentState"]) == ("DECLINED", "AUTH_DECLINED")
    assert [(e["type"], e["expires"]) for e in body["events"]] == [("AUTH_DECLINED", None)]
    # the same call again: the same answer (Decision: idempotent on the token, as capture)
    again = flow.post("/v2/payments/auth", {"token": token})
    assert again.status_code == 402 and again.json()["id"] == body["id"]
    flow.ap.assert_error(flow.capture(body["id"], "10.00"), 412, "invalid_state",
                         "Order is not approved.")


def test_partial_captures_then_the_rest(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    first = flow.capture(order_id, "30.00", paymentEventMerchantReference="ship-1",
                         merchantReference="order-2001-b")
    assert first.status_code == 201
    body = first.json()
    assert body["paymentState"] == "PARTIALLY_CAPTURED"
    assert _amount(body, "openToCaptureAmount") == "70.00"
    assert body["merchantReference"] == "order-2001-b"
    assert body["events"][-1]["type"] == "CAPTURED"
    assert body["events"][-1]["paymentEventMerchantReference"] == "ship-1"
    assert _amount(body, "openToRefundAmount") == "30.00"
    rest = flow.capture(order_id, "70.00").json()
    assert rest["paymentState"] == "CAPTURED" and _amount(rest, "openToCaptureAmount") == "0.00"
    flow.ap.assert_error(flow.capture(order_id, "1.00"), 410, "payment_captured",
                         "The payment has already been fully captured.")


def test_capture_above_what_is_open_or_below_the_minimum(flow: Flow) -> None:
    order_id = flow.authorised("40.00")["id"]
    flow.ap.assert_error(flow.capture(order_id, "999.00"), 422, "invalid_amount",
                         "Capture amount AUD 999.00 exceeded open to capture amount AUD 40.00.")
    flow.ap.assert_error(flow.capture(order_id, "0.50"), 422, "invalid_amount",
                         "Capture amount AUD 0.50 is less than the minimum capture amount "
                         "AUD 1.00.")
    flow.ap.assert_error(flow.capture(order_id, "10.123"), 422, "invalid_object")
    answer = flow.post(f"/v2/payments/{order_id}/capture", {"amount": money("5.00", "NZD")})
    flow.ap.assert_error(answer, 422, "unsupported_currency")
    assert _amount(flow.ap.payment_json(order_id), "openToCaptureAmount") == "40.00"


def test_capture_of_an_unknown_or_non_numeric_order(flow: Flow) -> None:
    flow.ap.assert_error(flow.capture("999999999999", "1.00"), 412, "error",
                         "A valid auth was not performed for this payment id.")
    flow.ap.assert_error(flow.capture("abc", "1.00"), 404, "not_found",
                         "Afterpay payment ID not found.")
    # another merchant's payment is an unknown one
    order_id = flow.authorised()["id"]
    nz = Flow(flow.ap.as_merchant("100101400", "sandbox-secret-key-nz"))
    answer = nz.post(f"/v2/payments/{order_id}/capture", {"amount": money("1.00", "NZD")})
    flow.ap.assert_error(answer, 412, "error")


def test_deferred_capture_is_idempotent_by_request_id(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    first = flow.capture(order_id, "10.00", requestId="cap-1")
    again = flow.capture(order_id, "10.00", requestId="cap-1")
    assert again.status_code == 201 and "x-sandbox-warning" not in again.headers
    assert again.json()["events"] == first.json()["events"]
    assert _amount(again.json(), "openToCaptureAmount") == "90.00"
    different = flow.capture(order_id, "20.00", requestId="cap-1")
    assert different.status_code == 201 and "differs" in different.headers["x-sandbox-warning"]
    assert _amount(different.json(), "openToCaptureAmount") == "90.00"
    # without a requestId every call is a new capture
    assert _amount(flow.capture(order_id, "10.00").json(), "openToCaptureAmount") == "80.00"
    assert _amount(flow.capture(order_id, "10.00").json(), "openToCaptureAmount") == "70.00"


def test_a_refused_capture_keeps_no_idempotency_record(flow: Flow) -> None:
    order_id = flow.authorised("40.00")["id"]
    assert flow.capture(order_id, "50.00", requestId="cap-2").status_code == 422
    assert flow.capture(order_id, "40.00", requestId="cap-2").json()["paymentState"] == \
        "CAPTURED"


# -- void -----------------------------------------------------------------------------------

def test_partial_void_then_capture_of_the_rest(flow: Flow, payment_schema) -> None:
    order_id = flow.authorised()["id"]
    answer = flow.void(order_id, "25.00")
    assert answer.status_code == 201
    body = answer.json()
    payment_schema.validate(body)
    assert body["paymentState"] == "AUTH_APPROVED"
    assert _amount(body, "openToCaptureAmount") == "75.00"
    assert body["events"][-1]["type"] == "VOIDED"
    assert [list(r) for r in body["refunds"]] == [["amount", "refundId", "refundedAt"]]
    assert body["refunds"][0]["refundId"].isdigit()  # the void's answer: its number
    # a void never counts as refunded money, and the rest can still be captured
    assert _amount(body, "openToRefundAmount") == "0.00"
    captured = flow.capture(order_id, "75.00").json()
    assert captured["paymentState"] == "CAPTURED"
    assert _amount(captured, "openToRefundAmount") == "75.00"
    assert flow.ap.refund(order_id, amount="75.00").status_code == 201
    assert flow.ap.refund(order_id, amount="0.01").status_code == 422


def test_void_with_no_body_voids_everything_open(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    # recorded (payment_void): an empty body, Content-Length 0, no Content-Type needed
    answer = flow.client.post(f"/v2/payments/{order_id}/void",
                              headers=flow.ap.headers(json_body=False))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["paymentState"] == "VOIDED"
    assert _amount(body, "openToCaptureAmount") == "0.00"
    assert body["refunds"][0]["amount"] == money("100.00")
    flow.ap.assert_error(flow.void(order_id), 412, "payment_voided",
                         "The auth was previously voided.")
    flow.ap.assert_error(flow.capture(order_id, "1.00"), 412, "payment_voided")


def test_void_of_the_rest_after_a_partial_capture_is_captured(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    flow.capture(order_id, "60.00")
    body = flow.void(order_id, "40.00").json()
    assert body["paymentState"] == "CAPTURED"
    assert _amount(body, "openToRefundAmount") == "60.00"
    flow.ap.assert_error(flow.void(order_id), 410, "payment_captured")


def test_reads_show_a_void_without_request_id_by_its_event(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    flow.ap.refund  # noqa: B018 - (nothing refundable yet)
    answer = flow.void(order_id, "10.00").json()
    flow.void(order_id, "5.00", requestId="void-2")
    read = flow.ap.payment_json(order_id)
    voided = [e for e in read["events"] if e["type"] == "VOIDED"]
    assert read["refunds"][0]["refundId"] == voided[0]["id"]
    assert read["refunds"][0]["refundedAt"] == voided[0]["created"]
    assert read["refunds"][0]["refundId"] != answer["refunds"][0]["refundId"]
    # a void with a requestId keeps its number and requestId in every read
    assert read["refunds"][1]["refundId"].isdigit()
    assert read["refunds"][1]["requestId"] == "void-2"


def test_refunds_and_voids_are_listed_oldest_first(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    flow.capture(order_id, "50.00")
    flow.ap.advance(minutes=1)
    flow.ap.refund(order_id, amount="5.00")
    flow.ap.advance(minutes=1)
    flow.void(order_id, "10.00")
    flow.ap.advance(minutes=1)
    flow.ap.refund(order_id, amount="6.00")
    amounts = [r["amount"]["amount"] for r in flow.ap.payment_json(order_id)["refunds"]]
    assert amounts == ["5.00", "10.00", "6.00"]


def test_void_errors(flow: Flow) -> None:
    order_id = flow.authorised("40.00")["id"]
    flow.ap.assert_error(flow.void(order_id, "999.00"), 422, "invalid_amount",
                         "Void amount AUD 999.00 exceeded open to capture amount AUD 40.00.")
    flow.ap.assert_error(flow.void(order_id, "0.00"), 422, "invalid_amount")
    flow.ap.assert_error(flow.void(order_id, reason="because"), 422, "invalid_object")
    flow.ap.assert_error(flow.void("999999999999"), 404, "not_found",
                         "Afterpay payment ID not found.")
    flow.ap.assert_error(flow.void("x1"), 404, "not_found")
    assert flow.void(order_id, "1.00", reason="cancelledItems").status_code == 201


def test_void_is_idempotent_by_request_id(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    assert flow.void(order_id, "10.00", requestId="v-1").status_code == 201
    again = flow.void(order_id, "10.00", requestId="v-1")
    assert again.status_code == 201
    assert _amount(again.json(), "openToCaptureAmount") == "90.00"
    assert len(again.json()["refunds"]) == 1


# -- auth expiry ----------------------------------------------------------------------------

def test_auth_expires_on_the_session_clock(flow: Flow) -> None:
    flow.ap.freeze("2026-11-01T09:00:00.000Z")
    order_id = flow.authorised()["id"]
    flow.capture(order_id, "30.00")
    flow.ap.freeze("2026-11-14T08:59:59.999Z")  # `expires` itself: still capturable
    assert flow.capture(order_id, "10.00").status_code == 201
    flow.ap.freeze("2026-11-14T09:00:00.000Z")
    read = flow.ap.payment_json(order_id)
    assert read["paymentState"] == "CAPTURED"
    assert _amount(read, "openToCaptureAmount") == "0.00"
    expired = read["events"][-1]
    assert (expired["type"], expired["amount"], expired["created"]) == (
        "EXPIRED", money("60.00"), "2026-11-14T08:59:59.999Z")
    assert len(read["refunds"]) == 0  # an expiry is no refunds[] entry
    flow.ap.assert_error(flow.capture(order_id, "1.00"), 412, "payment_expired",
                         "The auth for this order has expired.")
    flow.ap.assert_error(flow.void(order_id), 412, "payment_expired")
    # what was captured stays refundable
    assert flow.ap.refund(order_id, amount="40.00").status_code == 201


def test_an_uncaptured_auth_expires_to_voided(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    flow.ap.advance(days=14)
    answer = flow.capture(order_id, "1.00")
    flow.ap.assert_error(answer, 412, "payment_expired")
    assert flow.ap.payment_json(order_id)["paymentState"] == "VOIDED"


# -- reads, list, update --------------------------------------------------------------------

def test_payment_by_token(flow: Flow) -> None:
    token = flow.confirmed()
    captured = flow.post("/v2/payments/capture", {"token": token}).json()
    answer = flow.get(f"/v2/payments/token:{token}")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == READ_CACHE
    body = answer.json()
    assert body["id"] == captured["id"]
    # reads add categories to items sent without them (recorded)
    assert body["orderDetails"]["items"][0]["categories"] == []
    assert "categories" not in captured["orderDetails"]["items"][0]
    flow.ap.assert_error(flow.get(f"/v2/payments/token:{flow.confirmed()}"), 404, "not_found",
                         "Afterpay payment ID not found.")


def test_list_payments_filters_sorts_and_pages(flow: Flow) -> None:
    flow.ap.freeze("2026-11-01T09:00:00.000Z")
    ids = []
    for _ in range(3):
        flow.ap.advance(minutes=1)
        ids.append(flow.authorised()["id"])
    declined = flow.post("/v2/payments/auth", {"token": flow.confirmed(card="declined")})
    answer = flow.get("/v2/payments?statuses=approved&ids=" + "&ids=".join(ids[:2]))
    assert answer.status_code == 200
    body = answer.json()
    assert body["totalResults"] == 2 and body["limit"] == 20 and body["offset"] == 0
    assert [p["id"] for p in body["results"]] == [ids[1], ids[0]]  # newest first
    page = flow.get("/v2/payments?limit=1&offset=1&ascending=true&fromCreatedDate="
                    "2026-11-01T09:01:30Z").json()
    assert [p["id"] for p in page["results"]] == [ids[2]]
    assert page["totalResults"] == 3  # ids[1], ids[2] and the declined one
    statuses = flow.get("/v2/payments?statuses=DECLINED").json()
    # the new declined auth, and the default world's declined payment
    assert {p["id"] for p in statuses["results"]} == {declined.json()["id"], "100101785227"}
    flow.ap.assert_error(flow.get("/v2/payments?limit=251"), 422, "error",
                         "limit must be between 1 and 250")
    bad_date = flow.get("/v2/payments?fromCreatedDate=yesterday")
    flow.ap.assert_error(bad_date, 422, "error", "fromCreatedDate must be an ISO 8601 date-time")
    assert "fromCreatedDate" in bad_date.headers["x-sandbox-warning"]


def test_update_merchant_reference(flow: Flow) -> None:
    order_id = flow.authorised()["id"]
    answer = flow.client.put(f"/v2/payments/{order_id}", headers=flow.ap.headers(),
                             json={"merchantReference": "renamed"})
    assert answer.status_code == 200  # recorded (the docs say 201)
    assert answer.json()["merchantReference"] == "renamed"
    assert flow.ap.payment_json(order_id)["merchantReference"] == "renamed"
    flow.ap.assert_error(flow.client.put(f"/v2/payments/{order_id}", headers=flow.ap.headers(),
                                         json={}), 422, "invalid_object",
                         "merchantReference may not be empty")
    flow.ap.assert_error(flow.client.put("/v2/payments/404404", headers=flow.ap.headers(),
                                         json={"merchantReference": "x"}), 404, "not_found")
    flow.ap.assert_error(flow.client.put("/v2/payments/100101785227",
                                         headers=flow.ap.headers(),
                                         json={"merchantReference": "x"}), 412, "invalid_state")


def test_lifecycle_calls_need_credentials_and_json(flow: Flow) -> None:
    answer = flow.client.post("/v2/checkouts", content=json.dumps(checkout_body()),
                              headers=flow.ap.headers(drop=["Authorization"]))
    flow.ap.assert_error(answer, 401, "unauthorized")
    answer = flow.client.post("/v2/payments/auth", content=b"token=x",
                              headers=flow.ap.headers({"Content-Type": "text/plain"}))
    flow.ap.assert_error(answer, 415, "error")
    flow.ap.assert_error(flow.post("/v2/payments/capture", raw=b"{"), 400, "invalid_json")
    flow.ap.assert_error(flow.post("/v2/payments/capture", ["token"]), 400, "invalid_json")


# -- the shopper's step, headless -----------------------------------------------------------

def test_admin_confirm_and_cancel_answer_the_redirect(flow: Flow) -> None:
    token = flow.checkout()
    answer = flow.admin(token, "confirm", "approved")
    assert answer.status_code == 200
    assert answer.json() == {
        "redirectUrl": f"{CONFIRM_URL}?&status=SUCCESS&orderToken={token}",
        "token": token, "status": "confirmed"}
    cancelled = flow.admin(token, "cancel").json()
    assert cancelled["redirectUrl"] == f"{CANCEL_URL}&status=CANCELLED&orderToken={token}"
    # reopened after cancel (Decision)
    assert flow.admin(token, "confirm", "declined").status_code == 200
    assert flow.post("/v2/payments/capture", {"token": token}).json()["status"] == "DECLINED"
    used = flow.admin(token, "confirm", "approved")
    assert used.status_code == 409 and used.json()["error"] == "checkout_used"
    missing = flow.admin("002.nope", "cancel")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bad = flow.admin(token, "confirm", "maybe")
    assert bad.status_code == 400


def test_consumer_actions_are_journaled(flow: Flow) -> None:
    token = flow.checkout()
    flow.admin(token, "confirm", "approved")
    entries = flow.client.get("/__admin/requests?provider=portal").json()["requests"]
    assert entries[0]["kind"] == "consumer" and entries[0]["operation"] == "consumerConfirm"
    assert entries[0]["status"] == 200


def test_auto_confirm_merchant_needs_no_shopper(flow: Flow) -> None:
    auto = Flow(flow.ap.as_merchant("100101383", "sandbox-secret-key-auto"))
    token = auto.checkout()
    answer = auto.post("/v2/payments/capture", {"token": token})
    assert answer.status_code == 201 and answer.json()["paymentState"] == "CAPTURED"


def test_a_session_is_in_the_redirect_url(flow: Flow) -> None:
    other = Flow(flow.ap.in_session("shop-7"))
    answer = other.post("/v2/checkouts", checkout_body())
    assert answer.json()["redirectCheckoutUrl"].startswith(
        "http://testserver/sessions/shop-7/__portal/afterpay/au/checkout/?token=")


def test_the_public_url_setting_is_the_redirect_base() -> None:
    from starlette.testclient import TestClient

    from mock_server.app import create_app
    from mock_server.settings import Settings
    client = TestClient(create_app(Settings(public_url="https://sandbox.example.test:8443")))
    answer = Flow(Afterpay(client)).post("/v2/checkouts", checkout_body())
    assert answer.json()["redirectCheckoutUrl"].startswith(
        "https://sandbox.example.test:8443/__portal/afterpay/au/checkout/?token=002.")


# -- the portal page, over plain HTTP -------------------------------------------------------

def test_portal_page_and_its_buttons(flow: Flow) -> None:
    token = flow.checkout()
    page = flow.client.get(f"/__portal/afterpay/au/checkout/?token={token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for button in ("confirm-approved", "confirm-declined", "cancel"):
        assert f'id="{button}"' in page.text
    assert "100.00 AUD" in page.text and "Socks" in page.text
    answer = flow.client.post("/__portal/afterpay/au/checkout/confirm",
                              data={"token": token, "card": "approved"},
                              follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{CONFIRM_URL}?&status=SUCCESS&orderToken={token}"
    assert flow.post("/v2/payments/capture", {"token": token}).status_code == 201
    closed = flow.client.get(f"/__portal/afterpay/au/checkout/?token={token}")
    assert closed.status_code == 409
    journal = flow.client.get("/__admin/requests?operation=afterpayPortalConfirm").json()
    assert journal["total"] == 1


def test_portal_page_escapes_what_the_merchant_sent(flow: Flow) -> None:
    body = checkout_body()
    body["items"][0]["name"] = "<script>alert(1)</script>"
    token = flow.post("/v2/checkouts", body).json()["token"]
    page = flow.client.get(f"/__portal/afterpay/au/checkout/?token={token}")
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_portal_unknown_token_and_bad_card(flow: Flow) -> None:
    assert flow.client.get("/__portal/afterpay/au/checkout/?token=x").status_code == 404
    token = flow.checkout()
    answer = flow.client.post("/__portal/afterpay/au/checkout/confirm",
                              data={"token": token, "card": "gold"}, follow_redirects=False)
    assert answer.status_code == 400
    assert flow.client.get("/__portal/afterpay/au/nowhere").status_code == 404
