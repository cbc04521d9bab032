"""Scenario files seed a payment in any lifecycle state, voids and events included, so recorded
answers can be reproduced; what is seeded then goes on through the lifecycle."""

from __future__ import annotations

import json

from tests.api.afterpay.conftest import Afterpay, money


def _seed(afterpay: Afterpay, *payments: dict) -> None:
    afterpay.load({"name": "lifecycle", "afterpay": {"payments": list(payments)}})


def test_a_recorded_void_read_back_is_reproduced(afterpay: Afterpay) -> None:
    # [S] find_payment/valid: an auth of 100.00 with a 10.00 void made without requestId; the
    # read shows the void by the VOIDED event's id and time
    _seed(afterpay, {
        "id": "100101790001", "merchantId": "100101382", "amount": "100.00",
        "state": "AUTH_APPROVED", "created": "2021-09-01T16:27:34.957Z",
        "authExpires": "2021-09-08T16:29:00.155Z",
        "token": "002.1b6s6nhs8kprcmr6dh3gfgc1htf6l22fk1mlbaiq2ecadmh7",
        "voids": [{"amount": "10.00", "refundId": "1948421",
                   "eventId": "1xUMgHuj1jjX1bYsQRYhUjVK9Gz",
                   "voidedAt": "2021-09-01T16:31:02.112Z"}]})
    afterpay.freeze("2021-09-01T16:40:00.000Z")
    body = afterpay.payment_json("100101790001")
    assert body["paymentState"] == "AUTH_APPROVED"
    assert body["openToCaptureAmount"] == money("90.00")
    assert body["refunds"] == [{"amount": money("10.00"),
                                "refundId": "1xUMgHuj1jjX1bYsQRYhUjVK9Gz",
                                "refundedAt": "2021-09-01T16:31:02.112Z"}]
    assert [(e["type"], e["expires"]) for e in body["events"]] == [
        ("AUTH_APPROVED", "2021-09-08T16:29:00.155Z"), ("VOIDED", None)]
    assert body["events"][1]["id"] == "1xUMgHuj1jjX1bYsQRYhUjVK9Gz"
    assert body["openToRefundAmount"] == money("0.00")  # a void is never refunded money


def test_seeded_events_and_order_details_are_shown_as_given(afterpay: Afterpay) -> None:
    details = {"consumer": {"phoneNumber": "", "givenNames": "Joe", "surname": "Consumer",
                            "email": "joe@example.com"},
               "courier": {}, "items": [{"name": "Hat", "quantity": 1,
                                         "price": money("50.00")}], "discounts": []}
    _seed(afterpay, {
        "id": "100101790002", "merchantId": "100101382", "amount": "50.00",
        "captured": "20.00", "state": "PARTIALLY_CAPTURED", "orderDetails": details,
        "events": [
            {"id": "1tAAAAAAAAAAAAAAAAAAAAAAAAA", "created": "2021-06-01T10:00:00.000Z",
             "expires": "2021-06-08T09:59:59.999Z", "type": "AUTH_APPROVED", "amount": "50.00"},
            {"id": "1tBBBBBBBBBBBBBBBBBBBBBBBBB", "created": "2021-06-02T10:00:00.000Z",
             "type": "CAPTURED", "amount": "20.00", "paymentEventMerchantReference": "ship-1"}]})
    answer = afterpay.payment("100101790002")
    keys = [k for k, _ in json.loads(answer.content, object_pairs_hook=list)]
    assert keys.index("orderDetails") == keys.index("refunds") + 1
    body = answer.json()
    assert body["orderDetails"]["items"][0]["categories"] == []  # reads add categories
    assert body["events"][1] == {"id": "1tBBBBBBBBBBBBBBBBBBBBBBBBB",
                                 "created": "2021-06-02T10:00:00.000Z", "expires": None,
                                 "type": "CAPTURED", "amount": money("20.00"),
                                 "paymentEventMerchantReference": "ship-1"}
    assert body["openToCaptureAmount"] == money("30.00")


def test_a_seeded_auth_goes_on_through_the_lifecycle(afterpay: Afterpay) -> None:
    _seed(afterpay, {"id": "100101790003", "merchantId": "100101382", "amount": "80.00",
                     "state": "AUTH_APPROVED"})
    headers = afterpay.headers()
    answer = afterpay.client.post("/v2/payments/100101790003/capture", headers=headers,
                                  json={"amount": money("80.00")})
    assert answer.status_code == 201 and answer.json()["paymentState"] == "CAPTURED"
    assert afterpay.refund("100101790003", amount="80.00").status_code == 201


def test_a_seeded_auth_past_its_expiry_expires_on_first_use(afterpay: Afterpay) -> None:
    afterpay.freeze("2026-11-10T00:00:00.000Z")
    _seed(afterpay, {"id": "100101790004", "merchantId": "100101382", "amount": "80.00",
                     "captured": "30.00", "state": "PARTIALLY_CAPTURED",
                     "authExpires": "2026-11-09T00:00:00.000Z"})
    body = afterpay.payment_json("100101790004")
    assert body["paymentState"] == "CAPTURED"
    assert body["events"][-1]["type"] == "EXPIRED"
    assert body["events"][-1]["amount"] == money("50.00")
    assert body["openToRefundAmount"] == money("30.00")


def test_an_expired_auth_can_be_seeded(afterpay: Afterpay) -> None:
    _seed(afterpay, {"id": "100101790005", "merchantId": "100101382", "amount": "80.00",
                     "expired": True})
    body = afterpay.payment_json("100101790005")
    assert body["paymentState"] == "VOIDED"
    answer = afterpay.client.post("/v2/payments/100101790005/void", headers=afterpay.headers(),
                                  json={})
    afterpay.assert_error(answer, 412, "payment_expired")


def test_seeded_voids_above_the_amount_are_refused_whole(afterpay: Afterpay) -> None:
    scenario = {"name": "bad", "afterpay": {"payments": [
        {"id": "100101790006", "merchantId": "100101382", "amount": "50.00",
         "captured": "30.00", "voids": [{"amount": "30.00"}]}]}}
    answer = afterpay.client.post("/__admin/scenarios", content=json.dumps(scenario),
                                  headers={"Content-Type": "application/json"})
    assert answer.status_code == 422  # allowed by the schema, refused by the sums
    problems = answer.json()["problems"]
    assert len(problems) == 1 and "voids total 30.00 and 30.00 is captured" in problems[0]
    assert afterpay.payment("100101790006").status_code == 404  # nothing applied


def test_a_seeded_void_derives_the_state(afterpay: Afterpay) -> None:
    _seed(afterpay,
          {"id": "100101790007", "merchantId": "100101382", "amount": "50.00",
           "captured": "0.00", "voids": [{"amount": "50.00", "requestId": "v-seed"}]},
          {"id": "100101790008", "merchantId": "100101382", "amount": "50.00",
           "captured": "20.00", "voids": [{"amount": "30.00"}]})
    voided = afterpay.payment_json("100101790007")
    assert voided["paymentState"] == "VOIDED"
    assert voided["refunds"][0]["requestId"] == "v-seed"
    assert voided["refunds"][0]["refundId"].isdigit()  # a void with requestId keeps its number
    assert afterpay.payment_json("100101790008")["paymentState"] == "CAPTURED"


def test_an_auth_expiring_in_a_session_sharing_the_startup_world_expires_there_only() -> None:
    # a fresh session reads the startup world without a copy (core.world); the read that
    # expires an auth gives it its own copy first, so no other session sees the expiry
    from starlette.testclient import TestClient

    from mock_server.app import create_app
    from mock_server.settings import Settings
    from tests.conftest import AFTERPAY_HEADERS, ManualTime

    app = create_app(Settings(seed=11), time_source=ManualTime())
    with TestClient(app) as client:
        def read(session: str) -> dict:
            answer = client.get("/v2/payments/100101785228",  # seeded AUTH_APPROVED
                                headers={**AFTERPAY_HEADERS, "X-Sandbox-Session": session})
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        assert read("late")["paymentState"] == "AUTH_APPROVED"
        assert app.world.acquire("late")[0].shared
        client.post("/__admin/clock/advance", json={"days": 14},
                    headers={"X-Sandbox-Session": "late"})
        late = read("late")
        assert late["paymentState"] == "VOIDED"
        assert [e["type"] for e in late["events"]] == ["AUTH_APPROVED", "EXPIRED"]
        assert not app.world.acquire("late")[0].shared
        listed = client.get("/v2/payments?ids=100101785228", headers={
            **AFTERPAY_HEADERS, "X-Sandbox-Session": "other"}).json()["results"]
        assert listed[0]["paymentState"] == "AUTH_APPROVED"
        assert read("other")["paymentState"] == "AUTH_APPROVED"
        assert read("default")["paymentState"] == "AUTH_APPROVED"
