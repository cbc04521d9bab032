"""A graceful stop delivers what is due and reports every callback still pending."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import ManualTime, optty_token

Receiver = Any  # the receiver fixture of this folder's conftest


def _world(url: str, after: str) -> str:
    return f"""
name: stop
optty:
  merchants:
    - {{merchantId: sandbox-merchant, clientId: sandbox-client, clientSecret: sandbox-secret,
       webhookUrl: "{url}"}}
  providers:
    VOLT: {{asyncRefunds: true, callbackAfter: "{after}"}}
  orders:
    - {{orderReference: ORD-S1, merchantId: sandbox-merchant, bnplProvider: VOLT,
       amount: "60.00", currency: AUD, status: SUCCESSFUL}}
"""


def _refund(client: TestClient, reference: str) -> None:
    answer = client.post("/orders/ORD-S1/refund",
                         headers={"Authorization": f"Bearer {optty_token(client)}"},
                         json={"refundReference": reference, "refundDescription": "t",
                               "refundAmount": {"amount": 10, "currency": "AUD"}})
    assert answer.json()["refundStatus"] == "PENDING"


def test_callbacks_not_yet_due_are_reported_at_shutdown(receiver: Receiver,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(seed=1), time_source=ManualTime())
    with caplog.at_level(logging.INFO, logger="mock_server"), TestClient(app) as client:
        assert client.post("/__admin/scenarios", content=_world(receiver.url, "1h")
                           ).status_code == 201
        _refund(client, "r-later")
    lines = [r.getMessage() for r in caplog.records if "shutdown" in r.getMessage()]
    assert any("not delivered" in line and "r-later" in line for line in lines), lines
    assert receiver.received == []


def test_a_callback_due_at_shutdown_is_delivered(receiver: Receiver,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(seed=1), time_source=ManualTime())
    with caplog.at_level(logging.INFO, logger="mock_server"), TestClient(app) as client:
        client.post("/__admin/scenarios", content=_world(receiver.url, "0s"))
        _refund(client, "r-now")
    received = receiver.wait_for(1)
    assert received[0].json()["data"]["refundReference"] == "r-now"
    assert not any("not delivered" in r.getMessage() for r in caplog.records)
