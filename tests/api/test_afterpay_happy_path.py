"""The thinnest end-to-end path: Basic auth, refund recorded, 201 in the recorded shape."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from tests.conftest import AFTERPAY_HEADERS

PAYMENT = "/v2/payments/100101785223"


@pytest.mark.sandbox_verified
def test_refund_answers_201_in_the_recorded_shape(client: TestClient) -> None:
    answer = client.post(f"{PAYMENT}/refund", headers=AFTERPAY_HEADERS,
                         json={"amount": {"amount": "10.0", "currency": "AUD"}})
    assert answer.status_code == 201
    assert re.fullmatch(r"[a-z0-9]{26}", answer.headers["http_correlation_id"])
    body = answer.json()
    assert list(body) == ["amount", "refundId", "refundedAt"]
    assert body["amount"] == {"amount": "10.00", "currency": "AUD"}
    assert re.fullmatch(r"[0-9]+", body["refundId"])
    assert body["refundedAt"] == "2026-11-01T09:00:00.123Z"  # the session clock
    # Jackson pretty printing, as the real API sends it
    assert answer.text.startswith('{\n  "amount" : {\n    "amount" : "10.00",')


def test_refund_is_read_back(client: TestClient) -> None:
    made = client.post(f"{PAYMENT}/refund", headers=AFTERPAY_HEADERS,
                       json={"amount": {"amount": "25.50", "currency": "AUD"},
                             "requestId": "rq-1", "merchantReference": "mr-1",
                             "refundMerchantReference": "rmr-1"}).json()
    payment = client.get(PAYMENT, headers=AFTERPAY_HEADERS).json()
    assert payment["refunds"] == [{
        "amount": {"amount": "25.50", "currency": "AUD"}, "merchantReference": "mr-1",
        "refundId": made["refundId"], "refundMerchantReference": "rmr-1",
        "refundedAt": made["refundedAt"], "requestId": "rq-1"}]
    assert payment["openToRefundAmount"] == {"amount": "94.50", "currency": "AUD"}
