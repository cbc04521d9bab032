"""Optty's money rules under random refund sequences, sequential and concurrent.

Refunds never exceed what was captured, each success is recorded exactly once, and a repeated
refundReference (or any refused refund) never moves money.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unittest import mock

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.core.scenarios import parse_scenario
from mock_server.optty import handlers
from mock_server.resources import default_scenario_path
from mock_server.settings import Settings

START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
# the default world's refundable orders (partial refunds allowed, partly refunded, full only,
# asynchronous), plus an asynchronous provider whose refunds finally fail
CAPTURED = {"ORD-1001": Decimal("102.50"), "ORD-1002": Decimal("50.00"),
            "ORD-1003": Decimal("80.00"), "ORD-1004": Decimal("60.00"),
            "ORD-FAILS": Decimal("40.00")}
SEEDED = {order: Decimal(0) for order in CAPTURED} | {"ORD-1002": Decimal("25.02")}
FULL_ONLY = {"ORD-1003"}
ASYNC = {"ORD-1004": (2, "SUCCESSFUL"), "ORD-FAILS": (10, "FAILED")}  # callbackAfter, final
EXTRA_WORLD = """
name: failing-provider
optty:
  providers:
    OPENPAY_AU: {asyncRefunds: true, callbackAfter: 10s, finalStatus: FAILED}
  orders:
    - {orderReference: ORD-FAILS, merchantId: sandbox-merchant, bnplProvider: OPENPAY_AU,
       amount: "40.00", currency: AUD, status: SUCCESSFUL}
"""
_sessions = itertools.count()


@dataclass
class Sandbox:
    app: SandboxApp
    client: TestClient
    token: str


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    startup = [parse_scenario(default_scenario_path().read_bytes(), "default.yaml"),
               parse_scenario(EXTRA_WORLD, "extra.yaml")]
    app = create_app(Settings(seed=11), time_source=lambda: START, scenarios=startup)
    with TestClient(app) as client:
        token = client.post("/token", data={
            "client_id": "sandbox-client", "client_secret": "sandbox-secret",
            "grant_type": "client_credentials", "scope": "api-user"}).json()["access_token"]
        yield Sandbox(app, client, token)


def refund_json(reference: str, amount: Decimal, currency: str) -> bytes:
    # the amount as a JSON number written exactly as its decimal text
    return (f'{{"refundReference":"{reference}","refundAmount":{{"amount":{amount},'
            f'"currency":"{currency}"}},"refundDescription":"property"}}').encode()


amounts = st.integers(min_value=1, max_value=12_000).map(lambda cents: Decimal(cents) / 100)
refund_ops = st.tuples(
    st.sampled_from(sorted(CAPTURED)),
    amounts | st.sampled_from([Decimal("24.98"), Decimal("80"), Decimal("102.5")]),
    st.sampled_from([f"ref-{n}" for n in range(5)] + ["seed-refund-1002"]),
    st.sampled_from(["AUD", "AUD", "AUD", "NZD"]),
)


@dataclass
class Oracle:
    """What the rule book says should happen, order of checks included."""

    refunded: dict[str, Decimal] = field(default_factory=lambda: dict(SEEDED))
    used: set[str] = field(default_factory=lambda: {"seed-refund-1002"})
    successes: dict[str, list[tuple[str, Decimal]]] = field(
        default_factory=lambda: {order: [] for order in CAPTURED})
    now: Decimal = Decimal(0)  # seconds of session time since the start
    # reference -> (order, amount, due, final status, status now)
    status: dict[str, list[Any]] = field(default_factory=dict)

    def advance(self, seconds: Decimal) -> None:
        self.now += seconds
        for entry in self.status.values():
            order, amount, due, final, current = entry
            if current == "PENDING" and due <= self.now:
                entry[4] = final
                if final == "FAILED":  # the money comes back
                    self.refunded[order] -= amount

    def expect(self, order: str, amount: Decimal, reference: str, currency: str
               ) -> tuple[int, str | None]:
        left = CAPTURED[order] - self.refunded[order]
        if reference in self.used:
            return 400, "Refund reference already exists"
        if currency != "AUD":
            return 400, "Refund currency must match order currency AUD"
        if order in FULL_ONLY and amount < CAPTURED[order]:
            return 400, "Partial refund is not supported for KLARNA_AU"
        if amount > left:
            return 400, f"You can only refund amount up to AUD {left:.2f}"
        self.used.add(reference)
        self.refunded[order] += amount
        self.successes[order].append((reference, amount))
        after, final = ASYNC.get(order, (0, "SUCCESSFUL"))
        pending = order in ASYNC
        self.status[reference] = [order, amount, self.now + after, final,
                                  "PENDING" if pending else "SUCCESSFUL"]
        return 201, None


def assert_books(client: TestClient, headers: dict[str, str], oracle: Oracle) -> None:
    for order, captured in CAPTURED.items():
        body = client.get(f"/orders/{order}", headers=headers).json()
        refunded = Decimal(body["refundedAmount"])
        assert refunded == oracle.refunded[order]
        assert refunded <= captured
        assert Decimal(body["refundableAmount"]) == captured - refunded
        made = [(r["refundReference"], Decimal(r["refundedAmount"]))
                for r in body["refunds"] if r["refundReference"] != "seed-refund-1002"]
        assert made == oracle.successes[order]  # each success once, in order
        for refund in body["refunds"]:
            if refund["refundReference"] in oracle.status:
                assert refund["refundStatus"] == oracle.status[refund["refundReference"]][4]
        counted = [Decimal(r["refundedAmount"]) for r in body["refunds"]
                   if r["refundStatus"] != "FAILED"]
        assert sum(counted, Decimal(0)) == refunded


clock_moves = st.integers(min_value=1, max_value=12).map(lambda s: ("advance", Decimal(s)))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(refund_ops | clock_moves, min_size=1, max_size=16))
def test_random_refund_sequences_keep_the_books(sandbox: Sandbox, ops: list[Any]) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token}",
               "X-Sandbox-Session": f"prop-seq-{next(_sessions)}"}
    oracle = Oracle()
    for op in ops:
        if op[0] == "advance":
            oracle.advance(op[1])
            moved = sandbox.client.post("/__admin/clock/advance", json={"seconds": int(op[1])},
                                        headers=headers)
            assert moved.status_code == 200
            continue
        order, amount, reference, currency = op
        expected_status, expected_message = oracle.expect(order, amount, reference, currency)
        answer = sandbox.client.post(f"/orders/{order}/refund",
                                     content=refund_json(reference, amount, currency),
                                     headers={**headers, "Content-Type": "application/json"})
        assert answer.status_code == expected_status, answer.text
        if expected_message is not None:
            assert answer.json()["message"] == expected_message
        else:
            assert Decimal(answer.json()["refundedAmount"]) == amount
    assert_books(sandbox.client, headers, oracle)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(st.sampled_from(["ORD-1001", "ORD-1002"]), amounts,
                                st.sampled_from([f"c-{n}" for n in range(6)])),
                      min_size=2, max_size=12),
       seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_concurrent_refunds_keep_the_books(sandbox: Sandbox,
                                           batch: list[tuple[str, Decimal, str]],
                                           seed: int) -> None:
    session = f"prop-conc-{next(_sessions)}"
    headers = {"Authorization": f"Bearer {sandbox.token}", "X-Sandbox-Session": session,
               "Content-Type": "application/json"}
    jitter = random.Random(seed)

    async def interleaved(ctx: Any, **_options: Any) -> None:
        # every request yields to the others a seeded number of times while holding its
        # reference: one event loop runs ready tasks in order, so a seed is one interleaving
        # (Hypothesis can replay a failure)
        for _ in range(jitter.randrange(8)):
            await asyncio.sleep(0)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=sandbox.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            return list(await asyncio.gather(*(
                http.post(f"/orders/{order}/refund", headers=headers,
                          content=refund_json(reference, amount, "AUD"))
                for order, amount, reference in batch)))

    with mock.patch.object(handlers, "processing_time", interleaved):
        answers = asyncio.run(run())

    won: dict[str, list[tuple[str, Decimal]]] = {order: [] for order in CAPTURED}
    refused_as_duplicate: set[str] = set()
    for (order, amount, reference), answer in zip(batch, answers, strict=True):
        assert answer.status_code in (201, 400), answer.text
        if answer.status_code == 201:
            won[order].append((reference, amount))
        elif answer.json()["message"] == "Refund reference already exists":
            refused_as_duplicate.add(reference)
        else:
            assert answer.json()["message"].startswith("You can only refund amount up to AUD ")
    references = [ref for wins in won.values() for ref, _ in wins]
    assert len(references) == len(set(references))  # a reference wins at most once
    # a reference refused as a duplicate was taken by a refund that went through
    assert refused_as_duplicate <= set(references)
    for order, captured in CAPTURED.items():
        body = sandbox.client.get(f"/orders/{order}", headers=headers).json()
        refunded = Decimal(body["refundedAmount"])
        assert refunded == SEEDED[order] + sum((a for _, a in won[order]), Decimal(0))
        assert refunded <= captured
        made = sorted((r["refundReference"], Decimal(r["refundedAmount"]))
                      for r in body["refunds"] if r["refundReference"] != "seed-refund-1002")
        assert made == sorted(won[order])
