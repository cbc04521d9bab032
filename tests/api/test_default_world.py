"""The bundled default world shows every documented outcome, as the README's tables say."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import AFTERPAY_HEADERS, basic, optty_token

TEN_AUD = {"amount": {"amount": "10.00", "currency": "AUD"}}

# orderId -> (status, errorCode) for a refund of 10.00 AUD, the README's Afterpay table
AFTERPAY_TABLE = {
    "100101785223": (201, None),
    "100101785224": (201, None),
    "100101785225": (201, None),
    "100101785226": (422, "invalid_amount"),
    "100101785227": (412, "precondition_failed"),
    "100101785228": (412, "precondition_failed"),
    "100101785229": (412, "precondition_failed"),
    "100101785230": (422, "refund_timelimit_exceeded"),
    "100101785300": (404, "not_found"),
    "999999999999": (404, "not_found"),
}


@pytest.mark.parametrize("order_id,expected", AFTERPAY_TABLE.items())
def test_afterpay_table(client: TestClient, order_id: str,
                        expected: tuple[int, str | None]) -> None:
    answer = client.post(f"/v2/payments/{order_id}/refund", json=TEN_AUD,
                         headers=AFTERPAY_HEADERS)
    assert (answer.status_code, answer.json().get("errorCode")) == expected


@pytest.mark.parametrize("order_id,left", [("100101785224", "60.00"),
                                           ("100101785225", "80.00")])
def test_afterpay_amounts_left(client: TestClient, order_id: str, left: str) -> None:
    body = client.get(f"/v2/payments/{order_id}", headers=AFTERPAY_HEADERS).json()
    assert body["openToRefundAmount"]["amount"] == left


def test_the_nzd_merchant_sees_its_own_payment(client: TestClient) -> None:
    headers = {**AFTERPAY_HEADERS, "Authorization": basic("100101400", "sandbox-secret-key-nz")}
    body = client.get("/v2/payments/100101785300", headers=headers).json()
    assert body["originalAmount"] == {"amount": "65.00", "currency": "NZD"}


# orderReference -> (amount, status, message) for the README's Optty table
OPTTY_TABLE = {
    "ORD-1001": ("10.00", 201, None),
    "ORD-1002": ("30.00", 400, "You can only refund amount up to AUD 24.98"),
    "ORD-1003": ("10.00", 400, "Partial refund is not supported for KLARNA_AU"),
    "ORD-1004": ("60.00", 201, None),
    "ORD-1005": ("10.00", 400, "Order is not eligible for refund"),
    "ORD-1006": ("10.00", 400, "Order is not eligible for refund"),
    "ORD-2001": ("10.00", 404, "Not Found"),
}


@pytest.mark.parametrize("reference,expected", OPTTY_TABLE.items())
def test_optty_table(client: TestClient, reference: str,
                     expected: tuple[str, int, str | None]) -> None:
    amount, status, message = expected
    token = optty_token(client)
    answer = client.post(f"/orders/{reference}/refund",
                         headers={"Authorization": f"Bearer {token}"},
                         json={"refundReference": f"t-{reference}", "refundDescription": "t",
                               "refundAmount": {"amount": float(amount), "currency": "AUD"}})
    assert answer.status_code == status
    if message:
        assert answer.json()["message"] == message


def test_optty_async_provider_answers_pending(client: TestClient) -> None:
    token = optty_token(client)
    answer = client.post("/orders/ORD-1004/refund", headers={"Authorization": f"Bearer {token}"},
                         json={"refundReference": "p-1", "refundDescription": "t",
                               "refundAmount": {"amount": 60, "currency": "AUD"}})
    assert answer.json()["refundStatus"] == "PENDING"
