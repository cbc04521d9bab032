"""Optty's ledger under any sequence of refunds, repeats, bad requests, clock moves and resets.

The machine drives the sandbox only through HTTP (the Optty API and the admin API) and keeps its
own model from the README's default world and the reference rules: a full refund is amount +
surcharge; refunds never exceed captured - refunded; KLARNA_AU takes full refunds only; VOLT
answers PENDING; a refundReference is used once per merchant (a repeat is refused, never replayed,
and answers the same every time); a token lives 24 hours of sandbox time. After every step it
checks what the sandbox says against the model: never more refunded than captured, the order
read-back agreeing with the model, and the request journal listing exactly the refunds the
read-back lists.
"""

from __future__ import annotations

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
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core.clock import iso_millis
from mock_server.settings import Settings

START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
TOKEN_LIFETIME = timedelta(hours=24)  # docs: expires_in 86400
CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret",
          "grant_type": "client_credentials", "scope": "api-user"}


@dataclass
class Order:
    provider: str
    captured: Decimal
    full_only: bool = False
    asynchronous: bool = False
    seeded_refunded: Decimal = Decimal(0)
    refunds: dict[str, Decimal] = field(default_factory=dict)  # bnplRefundId -> amount

    @property
    def left(self) -> Decimal:
        return self.captured - self.seeded_refunded - sum(self.refunds.values(), Decimal(0))


def default_world() -> dict[str, Order]:
    """The sandbox merchant's paid orders in the bundled default world (README)."""
    return {
        "ORD-1001": Order("ZIP_AU", Decimal("102.50")),
        "ORD-1002": Order("ZIP_AU", Decimal("50.00"), seeded_refunded=Decimal("25.02")),
        "ORD-1003": Order("KLARNA_AU", Decimal("80.00"), full_only=True),
        "ORD-1004": Order("VOLT", Decimal("60.00"), asynchronous=True),
    }


# what the runs went through: a run that never repeats a reference, never outlives a token or
# never meets a full-refund-only provider proves nothing about them, so the test fails it
SEEN: Counter[str] = Counter()
amounts = st.one_of(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("110.00"),
                                places=2),
                    st.sampled_from([Decimal("80.00"), Decimal("24.98"), Decimal("60.00")]))
orders = st.sampled_from(sorted(default_world()))


class OpttyLedger(RuleBasedStateMachine):
    client: TestClient  # set by the test below
    used = Bundle("used")

    def __init__(self) -> None:
        super().__init__()
        # the same session, reset, for every run: the same name and seed give the same ids, so
        # Hypothesis can replay a failing run exactly
        self.session = "optty-machine"
        self.references = itertools.count(1)
        self.token: str | None = None
        self.token_issued = START
        self.admin("POST", "/reset")
        self._start_world()

    def _start_world(self) -> None:
        self.orders = default_world()
        self.now = START
        self.taken: set[str] = set()

    # -- HTTP -----------------------------------------------------------------------------------

    def bearer(self) -> dict[str, str]:
        """A token valid now; one that outlived its 24 hours is first shown to be refused."""
        age = self.now - self.token_issued
        if self.token is not None and age > TOKEN_LIFETIME:
            stale = self.client.get("/orders/ORD-1001", headers=self._headers(self.token))
            assert stale.status_code == 401, "a token older than 24 hours is refused"
            assert stale.json() == {"statusCode": 401, "message": "Unauthorized"}
            SEEN["expired token refused"] += 1
        if self.token is None or age >= TOKEN_LIFETIME:
            answer = self.client.post("/token", data=CLIENT,
                                      headers={"X-Sandbox-Session": self.session})
            assert answer.status_code == 201, answer.text
            self.token, self.token_issued = answer.json()["access_token"], self.now
        return self._headers(self.token)

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                "X-Sandbox-Session": self.session}

    def refund(self, order: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(f"/orders/{order}/refund", content=raw,
                                headers=headers or self.bearer())

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.client.request(method, f"/__admin{path}",
                                     headers={"X-Sandbox-Session": self.session}, **kwargs)
        assert answer.status_code == 200, answer.text
        return answer.json()

    # -- rules ----------------------------------------------------------------------------------

    @rule(target=used, order=orders, amount=amounts)
    def make_refund(self, order: str, amount: Decimal) -> Any:
        reference = f"ref-{self.session}-{next(self.references)}"
        body = {"refundReference": reference, "refundDescription": "ledger machine",
                "refundAmount": {"amount": float(amount), "currency": "AUD"}}
        answer = self.refund(order, body)
        model = self.orders[order]
        problems: dict[str, str] = {}
        if model.full_only and amount != model.captured:
            problems["partial"] = f"Partial refund is not supported for {model.provider}"
        if amount > model.left:
            problems["over"] = f"You can only refund amount up to AUD {model.left:.2f}"
        if problems:
            assert answer.status_code == 400, answer.text
            message = answer.json()["message"]
            assert message in problems.values(), f"{message!r} not in {problems}"
            SEEN.update(f"refund refused: {problem}" for problem in problems)
            return multiple()
        assert answer.status_code == 201, answer.text
        refunded = answer.json()
        assert refunded["refundReference"] == reference
        assert refunded["refundedAmount"] == f"{amount:.2f}"
        assert refunded["refundStatus"] == ("PENDING" if model.asynchronous else "SUCCESSFUL")
        assert refunded["bnplRefundId"] not in model.refunds
        model.refunds[refunded["bnplRefundId"]] = amount
        self.taken.add(reference)
        SEEN["refund made"] += 1
        return (order, body)

    @rule(used=used, elsewhere=st.booleans())
    def repeat(self, used: tuple[str, dict[str, Any]], elsewhere: bool) -> None:
        order, body = used
        if body["refundReference"] not in self.taken:
            return  # forgotten by a reset: the reference is free again
        if elsewhere:  # the reference belongs to the merchant, not to the order
            order = next(o for o in sorted(self.orders) if o != order)
        first = self.refund(order, body)
        again = self.refund(order, body)
        assert first.status_code == 400, "a used refundReference is refused, never replayed"
        assert (again.status_code, again.content) == (first.status_code, first.content), \
            "a repeat answers the same every time"
        SEEN["repeat refused"] += 1

    @rule(order=orders, kind=st.sampled_from([
        "malformed_json", "truncated_json", "no_reference", "zero", "amount_as_text",
        "three_decimals", "unknown_order", "other_merchants_order", "not_paid",
        "other_currency", "bad_token", "no_token"]))
    def invalid_request(self, order: str, kind: str) -> None:
        body: Any = {"refundReference": f"bad-{next(self.references)}",
                     "refundDescription": "x", "refundAmount": {"amount": 1, "currency": "AUD"}}
        headers = None
        message: Any = list  # class-validator: an array of messages
        status = 400
        if kind == "malformed_json":
            body, message = b'{"refundReference": x}', str
        elif kind == "truncated_json":
            body, message = b'{"refundReference": "r", ', "Unexpected end of JSON input"
        elif kind == "no_reference":
            del body["refundReference"]
        elif kind == "zero":
            body["refundAmount"]["amount"] = 0
        elif kind == "amount_as_text":
            body["refundAmount"]["amount"] = "10.00"
        elif kind == "three_decimals":
            body["refundAmount"]["amount"] = 1.005
        elif kind == "unknown_order":
            order, status, message = "ORD-9999", 404, "Not Found"
        elif kind == "other_merchants_order":
            order, status, message = "ORD-2001", 404, "Not Found"
        elif kind == "not_paid":
            order, message = "ORD-1005", "Order is not eligible for refund"
        elif kind == "other_currency":
            body["refundAmount"]["currency"] = "NZD"
            message = "Refund currency must match order currency AUD"
        else:
            headers = {"Content-Type": "application/json", "X-Sandbox-Session": self.session}
            if kind == "bad_token":
                headers["Authorization"] = "Bearer not.a.jwt"
            status, message = 401, "Unauthorized"
        answer = self.refund(order, body, headers)
        assert answer.status_code == status, answer.text
        said = answer.json()["message"]
        if isinstance(message, type):
            assert isinstance(said, message), answer.text
        else:
            assert said == message, answer.text
        SEEN["invalid request refused"] += 1

    @rule(hours=st.one_of(st.integers(0, 3), st.integers(20, 30)), seconds=st.integers(0, 5))
    def advance_clock(self, hours: int, seconds: int) -> None:
        clock = self.admin("POST", "/clock/advance", json={"hours": hours, "seconds": seconds})
        self.now += timedelta(hours=hours, seconds=seconds)
        assert clock["now"] == iso_millis(self.now)

    @rule()
    def reset(self) -> None:
        assert self.admin("POST", "/reset") == {"session": self.session, "status": "reset"}
        self._start_world()  # the token stays valid: it is signed, not stored
        SEEN["reset"] += 1

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def read_back_agrees(self) -> None:
        headers = self.bearer()
        for reference, model in self.orders.items():
            answer = self.client.get(f"/orders/{reference}", headers=headers)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            listed = {r["bnplRefundId"]: Decimal(r["refundedAmount"]) for r in body["refunds"]
                      if not r["refundReference"].startswith("seed-")}
            assert listed == model.refunds, "the read-back lists exactly the refunds made"
            assert Decimal(body["refundableAmount"]) == model.left
            assert Decimal(body["capturedAmount"]) == model.captured
            assert Decimal(body["refundedAmount"]) == model.captured - model.left
            assert model.left >= 0, "never more refunded than captured"

    @invariant()
    def journal_agrees(self) -> None:
        journal = self.admin("GET", "/requests", params={
            "provider": "optty", "operation": "RefundsController_refundOrder", "status": 201,
            "limit": 1000})
        assert journal["next"] is None, "one page holds every refund a machine makes"
        journaled = {json.loads(e["responseBody"])["bnplRefundId"] for e in journal["requests"]}
        made = {rid for model in self.orders.values() for rid in model.refunds}
        assert journaled == made, "the journal's refunds are the read-back's refunds"


@pytest.fixture(scope="module")
def sandbox_client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(seed=5), time_source=lambda: START)) as client:
        yield client


def test_optty_ledger_keeps_money_right(sandbox_client: TestClient) -> None:
    OpttyLedger.client = sandbox_client
    SEEN.clear()
    run_state_machine_as_test(OpttyLedger, settings=settings(
        max_examples=40, stateful_step_count=20, deadline=None, derandomize=True,
        database=None, suppress_health_check=[HealthCheck.too_slow]))
    for what in ("refund made", "refund refused: over", "refund refused: partial",
                 "repeat refused", "expired token refused", "invalid request refused",
                 "reset"):
        assert SEEN[what] > 0, f"no run went through: {what} ({dict(SEEN)})"
