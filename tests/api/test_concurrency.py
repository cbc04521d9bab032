"""Hundreds of concurrent refunds on one payment never move more than was captured."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import httpx
from starlette.testclient import TestClient

from mock_server.app import SandboxApp
from tests.conftest import AFTERPAY_HEADERS

PAYMENT = "/v2/payments/100101785223"  # 120.00 captured in the default world
REFUND = {"amount": {"amount": "0.50", "currency": "AUD"}}


def _read_back(app: SandboxApp) -> tuple[Decimal, int]:
    with TestClient(app) as client:
        body = client.get(PAYMENT, headers=AFTERPAY_HEADERS).json()
    return Decimal(body["openToRefundAmount"]["amount"]), len(body["refunds"])


def test_threads_through_the_http_layer(app: SandboxApp) -> None:
    # Without `with`, each TestClient request runs the app on its own event loop in its own
    # thread, so handlers really run at the same time and only the ledger's atomic step protects
    # the money.
    client = TestClient(app)
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            status = client.post(f"{PAYMENT}/refund", json=REFUND,
                                 headers=AFTERPAY_HEADERS).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 400
    assert statuses.count(201) == 240  # 120.00 / 0.50
    assert statuses.count(422) == 160
    assert _read_back(app) == (Decimal("0.00"), 240)


def test_tasks_through_the_asgi_interface(app: SandboxApp) -> None:
    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            answers = await asyncio.gather(*[
                client.post(f"{PAYMENT}/refund", json=REFUND, headers=AFTERPAY_HEADERS)
                for _ in range(300)])
        return [a.status_code for a in answers]

    statuses = asyncio.run(run())
    assert statuses.count(201) == 240 and statuses.count(422) == 60
    assert _read_back(app) == (Decimal("0.00"), 240)
