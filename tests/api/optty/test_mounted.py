"""The sandbox mounted in another ASGI app (README, "Mount it in your own app"): its paths under
the mount, its lifespan chained into the host's, the host's own routes untouched."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from mock_server.app import SandboxApp
from tests.api.optty.test_async_refunds import hooked_world
from tests.conftest import AFTERPAY_HEADERS

Optty = Any
Receiver = Any


def _host(sandbox: SandboxApp) -> Starlette:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the host's own route")

    return Starlette(routes=[Route("/hello", hello), Mount("/sandbox", app=sandbox)],
                     lifespan=sandbox.lifespan)


def test_every_surface_answers_under_the_mount(app: SandboxApp) -> None:
    with TestClient(_host(app)) as client:
        assert client.get("/hello").text == "the host's own route"
        assert client.get("/sandbox/__admin/health").json()["status"] == "ok"
        refund = client.post("/sandbox/v2/payments/100101785223/refund", headers=AFTERPAY_HEADERS,
                             json={"amount": {"amount": "10.00", "currency": "AUD"}})
        assert refund.status_code == 201, refund.text
        payment = client.get("/sandbox/v2/payments/100101785223", headers=AFTERPAY_HEADERS)
        assert [r["amount"]["amount"] for r in payment.json()["refunds"]] == ["10.00"]
        # the session prefix works below the mount too
        prefixed = client.get("/sandbox/sessions/mounted/v2/payments/100101785223",
                              headers=AFTERPAY_HEADERS)
        assert prefixed.json()["refunds"] == []
        # an unknown path is the fallback provider's, in its own words, under the mount
        missing = client.get("/sandbox/nowhere")
        assert missing.status_code == 404 and missing.json()["statusCode"] == 404
        journal = client.get("/sandbox/__admin/requests?operation=createRefund").json()
        assert journal["requests"][0]["path"] == "/v2/payments/100101785223/refund"


def test_callbacks_are_delivered_and_shutdown_runs_under_the_mount(
        app: SandboxApp, optty_client: Any, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mock_server"), \
            TestClient(_host(app), base_url="http://testserver/sandbox") as client:
        optty = optty_client(client)
        optty.load(hooked_world(receiver.url, after="2s"))
        assert optty.refund("ORD-V1", 10, "r-mounted").json()["refundStatus"] == "PENDING"
        optty.advance(2)  # due now: the dispatcher the host's lifespan started delivers it
        [delivered] = receiver.wait_for(1)
        assert delivered.json()["data"]["refundReference"] == "r-mounted"
        # one due in an hour of session time: the host's shutdown reports it, undelivered
        optty.load(hooked_world(receiver.url, after="1h", name="later"))
        assert optty.refund("ORD-V1", 10, "r-later").status_code == 201
    lines = [r.getMessage() for r in caplog.records if "shutdown" in r.getMessage()]
    assert any("not delivered" in line and "r-later" in line for line in lines), lines
    assert len(receiver.received) == 1
