"""Hundreds of concurrent refunds on one payment never move more than was captured.

The interleavings are forced, not hoped for: in threads, every refund waits inside the ledger's
atomic step until another request has been turned away by its lock (tests/interleave.py); on one
event loop, every request is held at its first read of the body until all of them are in flight.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import httpx
from starlette.testclient import TestClient

from mock_server.app import SandboxApp
from tests.conftest import AFTERPAY_HEADERS
from tests.interleave import ExclusionProbe, probe_ledger

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
    probe = ExclusionProbe(workers=16)
    probe_ledger(app.world.session("default").ledger, probe)
    client = TestClient(app)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with probe.worker():
            for _ in range(20):
                status = client.post(f"{PAYMENT}/refund", json=REFUND,
                                     headers=AFTERPAY_HEADERS).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert probe.overlaps == 0 and probe.visits == 240
    assert len(statuses) == 320
    assert statuses.count(201) == 240  # 120.00 / 0.50
    assert statuses.count(422) == 80
    assert _read_back(app) == (Decimal("0.00"), 240)


class _AllInFlight:
    """Holds each request at its first `receive` until `expected` requests are waiting there."""

    def __init__(self, app: Any, expected: int) -> None:
        self.app = app
        self.expected = expected
        self.arrived = 0
        self.peak = 0
        self._all_here = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held = True

        async def gated_receive() -> Any:
            nonlocal held
            if held:
                held = False
                self.arrived += 1
                self.peak = max(self.peak, self.arrived)
                if self.arrived == self.expected:
                    self._all_here.set()
                await self._all_here.wait()
            return await receive()

        await self.app(scope, gated_receive, send)


def test_tasks_through_the_asgi_interface(app: SandboxApp) -> None:
    gate = _AllInFlight(app, expected=300)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            answers = await asyncio.gather(*[
                client.post(f"{PAYMENT}/refund", json=REFUND, headers=AFTERPAY_HEADERS)
                for _ in range(300)])
        return [a.status_code for a in answers]

    statuses = asyncio.run(run())
    assert gate.peak == 300  # every request had started before any was answered
    assert statuses.count(201) == 240 and statuses.count(422) == 60
    assert _read_back(app) == (Decimal("0.00"), 240)
