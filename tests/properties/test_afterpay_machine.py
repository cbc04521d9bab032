"""Afterpay's ledger under any sequence of refunds, replays, bad requests, clock moves and resets.

The machine drives the sandbox only through HTTP (the Afterpay API and the admin API) and keeps
its own model of the money, from the README's default world and the reference rules: refundable
= captured - refunded; no refund later than 120 days after the payment was created; a refund with
both requestId and merchantReference is kept for 7 days of sandbox time and replayed byte for
byte. After every step it checks the invariants against what the sandbox says: never more refunded
than captured, the payment read-back agreeing with the model, and the request journal listing
exactly the refunds the read-back lists.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core.clock import iso_millis
from mock_server.settings import Settings
from tests.conftest import basic

START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
REFUND_WINDOW = timedelta(days=120)  # docs: no refunds later than 120 days after creation
IDEMPOTENCY_TTL = timedelta(days=7)  # Decision (openapi/afterpay.yaml, createRefund)
AUTH = basic()
HEADERS = {"Authorization": AUTH, "Content-Type": "application/json",
           "User-Agent": "LedgerMachine/1.0 (Python/3.11; Merchant/100101382) https://m.example"}


@dataclass
class Payment:
    captured: Decimal
    created: datetime
    seeded_refunds: frozenset[str] = frozenset()
    seeded_refunded: Decimal = Decimal(0)
    refunds: dict[str, Decimal] = field(default_factory=dict)

    @property
    def left(self) -> Decimal:
        return self.captured - self.seeded_refunded - sum(self.refunds.values(), Decimal(0))


def default_world() -> dict[str, Payment]:
    """The refundable payments of the bundled default world (README, "The default world")."""
    return {
        "100101785223": Payment(Decimal("120.00"), START),
        "100101785224": Payment(Decimal("100.00"), START, frozenset({"10000001"}),
                                Decimal("40.00")),
        "100101785225": Payment(Decimal("80.00"), START),
    }


@dataclass(frozen=True)
class Kept:
    """An idempotent refund the sandbox answered: what a replay must get back, byte for byte."""

    order: str
    body: dict[str, Any]
    answer: bytes
    at: datetime


# what the runs went through: a run that never replays, never expires a record or never meets the
# 120-day limit proves nothing about them, so the test fails it
SEEN: Counter[str] = Counter()
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("130.00"), places=2)
orders = st.sampled_from(sorted(default_world()))


class AfterpayLedger(RuleBasedStateMachine):
    client: TestClient  # set by the test below

    def __init__(self) -> None:
        super().__init__()
        # the same session, reset, for every run: the same name and seed give the same ids, so
        # Hypothesis can replay a failing run exactly
        self.session = "afterpay-machine"
        self.headers = {**HEADERS, "X-Sandbox-Session": self.session}
        self.keys = itertools.count(1)
        self.admin("POST", "/reset")
        self._start_world()

    def _start_world(self) -> None:
        self.payments = default_world()
        self.now = START
        self.replayable: dict[tuple[str, str], Kept] = {}

    # -- HTTP ---------------------------------------------------------------------------------

    def refund(self, order: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(f"/v2/payments/{order}/refund", content=raw,
                                headers=headers or self.headers)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.client.request(method, f"/__admin{path}",
                                     headers={"X-Sandbox-Session": self.session}, **kwargs)
        assert answer.status_code == 200, answer.text
        return answer.json()

    # -- rules ----------------------------------------------------------------------------------

    def expect_refund(self, order: str, amount: Decimal, answer: Any) -> str | None:
        """Checks a refund attempt the model knows the outcome of; returns the new refundId."""
        payment = self.payments[order]
        problems: set[str] = set()
        if self.now - payment.created > REFUND_WINDOW:
            problems.add("refund_timelimit_exceeded")
        if amount > payment.left:
            problems.add("invalid_amount")
        if problems:
            assert answer.status_code == 422, answer.text
            assert answer.json()["errorCode"] in problems, answer.text
            SEEN.update(f"refund refused: {problem}" for problem in problems)
            return None
        assert answer.status_code == 201, answer.text
        echoed = answer.json()
        assert echoed["amount"] == {"amount": f"{amount:.2f}", "currency": "AUD"}
        assert echoed["refundId"] not in payment.refunds, "a new refund gets a new refundId"
        payment.refunds[echoed["refundId"]] = amount
        SEEN["refund made"] += 1
        return str(echoed["refundId"])

    @rule(order=orders, amount=amounts, as_number=st.booleans())
    def make_refund(self, order: str, amount: Decimal, as_number: bool) -> None:
        """Without requestId and merchantReference: every request is a new refund."""
        body = {"amount": {"amount": float(amount) if as_number else str(amount),
                           "currency": "AUD"}}
        self.expect_refund(order, amount, self.refund(order, body))

    @rule(order=orders, amount=amounts, as_number=st.booleans())
    def make_idempotent_refund(self, order: str, amount: Decimal, as_number: bool) -> None:
        n = next(self.keys)
        body = {"amount": {"amount": float(amount) if as_number else str(amount),
                           "currency": "AUD"},
                "requestId": f"req-{self.session}-{n}", "merchantReference": f"ref-{n}"}
        answer = self.refund(order, body)
        if self.expect_refund(order, amount, answer) is not None:
            self.replayable[(body["requestId"], body["merchantReference"])] = Kept(
                order, body, answer.content, self.now)

    def _pick(self, data: st.DataObject) -> Kept:
        return self.replayable[data.draw(st.sampled_from(sorted(self.replayable)), label="keys")]

    @precondition(lambda self: self.replayable)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        self._replay(self._pick(data))

    @precondition(lambda self: self.replayable)
    @rule(data=st.data())
    def replay_with_another_body(self, data: st.DataObject) -> None:
        self._replay(self._pick(data), change_amount=True)

    @precondition(lambda self: self.replayable)
    @rule(data=st.data())
    def replay_on_another_payment(self, data: st.DataObject) -> None:
        """The keys belong to the merchant, not the payment: on another payment they still
        replay the original refund and move no money there."""
        kept = self._pick(data)
        self._replay(kept, order=next(o for o in sorted(self.payments) if o != kept.order))

    @precondition(lambda self: self.replayable)
    @rule(data=st.data(), hours=st.integers(0, 48))
    def replay_once_expired(self, data: st.DataObject, hours: int) -> None:
        """The clock moves past the record's 7 days, then the same request comes again."""
        kept = self._pick(data)
        self._advance(max(kept.at + IDEMPOTENCY_TTL - self.now, timedelta(0))
                      + timedelta(hours=hours))
        self._replay(kept)

    def _replay(self, kept: Kept, change_amount: bool = False, order: str | None = None) -> None:
        key = (kept.body["requestId"], kept.body["merchantReference"])
        order = order or kept.order
        body = json.loads(json.dumps(kept.body))
        if change_amount:
            body["amount"]["amount"] = "0.01"
        answer = self.refund(order, body)
        if self.now - kept.at >= IDEMPOTENCY_TTL:
            # the record has expired: the same keys make a new refund (or a refusal)
            SEEN["replay after the record expired"] += 1
            del self.replayable[key]
            if self.expect_refund(order, Decimal(str(body["amount"]["amount"])), answer):
                self.replayable[key] = Kept(order, body, answer.content, self.now)
            return
        assert answer.status_code == 201, answer.text
        assert answer.content == kept.answer, "a replay answers the original, byte for byte"
        SEEN["replay answered the original"] += 1
        if order != kept.order:
            SEEN["replay on another payment"] += 1
        if change_amount and Decimal(str(kept.body["amount"]["amount"])) != Decimal("0.01"):
            assert answer.headers.get("X-Sandbox-Warning"), "a replay with another body is flagged"

    @rule(order=orders, kind=st.sampled_from([
        "malformed_json", "three_decimals", "zero", "thousands", "other_currency",
        "bad_currency", "no_amount", "unknown_payment", "wrong_secret", "not_json",
        "reference_too_long", "not_an_object"]))
    def invalid_request(self, order: str, kind: str) -> None:
        body: Any = {"amount": {"amount": "10.00", "currency": "AUD"}}
        headers = self.headers
        expected: tuple[int, str]
        if kind == "malformed_json":
            body, expected = b'{"amount": {"amount": "10.00",', (400, "invalid_json")
        elif kind == "not_an_object":
            body, expected = b"[]", (400, "invalid_json")
        elif kind == "three_decimals":
            body["amount"]["amount"], expected = "10.001", (422, "invalid_object")
        elif kind == "zero":
            body["amount"]["amount"], expected = "0.00", (422, "invalid_amount")
        elif kind == "thousands":
            body["amount"]["amount"], expected = "1,000.00", (422, "invalid_amount")
        elif kind == "other_currency":
            body["amount"]["currency"], expected = "NZD", (422, "unsupported_currency")
        elif kind == "bad_currency":
            body["amount"]["currency"], expected = "aud", (422, "invalid_object")
        elif kind == "no_amount":
            body, expected = {"requestId": "x"}, (422, "invalid_object")
        elif kind == "reference_too_long":
            body["merchantReference"], expected = "m" * 86, (422, "invalid_object")
        elif kind == "unknown_payment":
            order, expected = "100199999999", (404, "not_found")
        elif kind == "wrong_secret":
            headers = {**self.headers, "Authorization": "Basic "
                       + base64.b64encode(b"100101382:wrong").decode()}
            expected = (401, "unauthorized")
        else:
            headers = {**self.headers, "Content-Type": "text/plain"}
            expected = (415, "error")
        answer = self.refund(order, body, headers)
        assert (answer.status_code, answer.json()["errorCode"]) == expected, answer.text
        SEEN["invalid request refused"] += 1

    @rule(days=st.integers(0, 8), hours=st.integers(0, 23))
    def advance_clock(self, days: int, hours: int) -> None:
        """Short moves: idempotency records live 7 days."""
        self._advance(timedelta(days=days, hours=hours))

    @rule(days=st.integers(100, 130))
    def advance_past_the_refund_window(self, days: int) -> None:
        self._advance(timedelta(days=days))

    def _advance(self, step: timedelta) -> None:
        SEEN["clock advanced"] += 1
        clock = self.admin("POST", "/clock/advance", json={"seconds": step.total_seconds()})
        self.now += step
        assert clock["now"] == iso_millis(self.now)

    @rule()
    def reset(self) -> None:
        assert self.admin("POST", "/reset") == {"session": self.session, "status": "reset"}
        self._start_world()
        SEEN["reset"] += 1

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def read_back_agrees(self) -> None:
        for order, payment in self.payments.items():
            answer = self.client.get(f"/v2/payments/{order}", headers=self.headers)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            listed = {r["refundId"]: Decimal(r["amount"]["amount"]) for r in body["refunds"]
                      if r["refundId"] not in payment.seeded_refunds}
            assert listed == payment.refunds, "the read-back lists exactly the refunds made"
            left = Decimal(body["openToRefundAmount"]["amount"])
            assert left == payment.left, "openToRefundAmount = captured - refunded"
            assert left >= 0, "never more refunded than captured"

    @invariant()
    def journal_agrees(self) -> None:
        journal = self.admin("GET", "/requests", params={
            "provider": "afterpay", "operation": "createRefund", "status": 201,
            "limit": 1000})
        assert journal["next"] is None, "one page holds every refund a machine makes"
        journaled = {json.loads(e["responseBody"])["refundId"] for e in journal["requests"]}
        made = {rid for payment in self.payments.values() for rid in payment.refunds}
        assert journaled == made, "the journal's refunds are the read-back's refunds"


@pytest.fixture(scope="module")
def sandbox_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(seed=5), time_source=lambda: START)) as client:
        yield client


def test_afterpay_ledger_keeps_money_right(sandbox_client: TestClient) -> None:
    AfterpayLedger.client = sandbox_client
    SEEN.clear()
    run_state_machine_as_test(AfterpayLedger, settings=settings(
        max_examples=40, stateful_step_count=20, deadline=None, derandomize=True,
        database=None, suppress_health_check=[HealthCheck.too_slow]))
    for what in ("refund made", "refund refused: invalid_amount",
                 "refund refused: refund_timelimit_exceeded", "replay answered the original",
                 "replay after the record expired", "invalid request refused", "reset"):
        assert SEEN[what] > 0, f"no run went through: {what} ({dict(SEEN)})"
