"""Point 10: random sequences of refunds, invalid requests, replays and clock moves against one
payment, checked against a model of what Afterpay must answer: the successes never sum above
what was captured, each is recorded exactly once, and every replay is byte-identical."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import basic

ORDER = "100101785223"  # the default world's refundable payment: 120.00 AUD captured
CAPTURED = Decimal("120.00")
TTL = timedelta(days=7)
HEADERS = {"Authorization": basic(),
           "User-Agent": "PropertyTest/1.0 (Python/3.11; Merchant/100101382) https://example.com",
           "Content-Type": "application/json", "Accept": "application/json"}
_sessions = itertools.count()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with TestClient(create_app(Settings(seed=5), time_source=lambda: start)) as test_client:
        yield test_client


# -- the operations -----------------------------------------------------------------------

cents = st.one_of(st.integers(min_value=1, max_value=6000), st.integers(min_value=1, max_value=150))
keys = st.one_of(st.none(), st.tuples(st.sampled_from(["r0", "r1", "r2"]),
                                      st.sampled_from(["m0", "m1"])))
refund_ops = st.tuples(st.just("refund"), cents, keys,
                       st.sampled_from([None, "note-a", "note-b"]),
                       st.sampled_from(["text", "short", "number"]))
INVALID = {
    # name: (status, errorCode, raw body or None for the standard one, header changes)
    "json": (400, "invalid_json", b'{"amount":', {}),
    "money": (422, "invalid_object", b'{"amount":{"amount":"FREE","currency":"AUD"},'
                                     b'"requestId":"r0","merchantReference":"m0"}', {}),
    "thousands": (422, "invalid_amount", b'{"amount":{"amount":"1,000","currency":"AUD"},'
                                         b'"requestId":"r1","merchantReference":"m0"}', {}),
    "currency": (422, "unsupported_currency", b'{"amount":{"amount":"1.00","currency":"USD"},'
                                              b'"requestId":"r0","merchantReference":"m0"}', {}),
    "zero": (422, "invalid_amount", b'{"amount":{"amount":"0.00","currency":"AUD"}}', {}),
    "auth": (401, "unauthorized", None, {"Authorization": "Basic eDp5"}),
    "media": (415, "error", None, {"Content-Type": "text/plain"}),
    "accept": (406, "error", None, {"Accept": "text/html"}),
    "unknown-payment": (404, "not_found", None, {"path": "/v2/payments/1/refund"}),
}
invalid_ops = st.tuples(st.just("invalid"), st.sampled_from(sorted(INVALID)))
replay_ops = st.tuples(st.just("replay"), st.integers(min_value=0, max_value=50), st.booleans())
advance_ops = st.tuples(st.just("advance"), st.integers(min_value=1, max_value=72))
# what is left, give or take a cent: the boundary of "open to refund"
rest_ops = st.tuples(st.just("rest"), st.sampled_from([-1, 0, 0, 1]), keys,
                     st.sampled_from([None, "note-a"]), st.sampled_from(["text", "number"]))
operations = st.lists(st.one_of(refund_ops, refund_ops, invalid_ops, replay_ops, advance_ops,
                                rest_ops), min_size=1, max_size=25)


def _amount(cents_: int, form: str) -> Any:
    text = f"{Decimal(cents_) / 100:.2f}"
    if form == "short":
        text = text.rstrip("0").rstrip(".") if "." in text else text
    if form == "number":
        return json.loads(text, parse_float=lambda t: _Raw(t), parse_int=lambda t: _Raw(t))
    return text


class _Raw(str):
    """A number to be written as-is into the JSON text."""


def _body(cents_: int, key: tuple[str, str] | None, note: str | None, form: str) -> bytes:
    amount = _amount(cents_, form)
    amount_json = str(amount) if isinstance(amount, _Raw) else json.dumps(amount)
    parts = [f'"amount":{{"amount":{amount_json},"currency":"AUD"}}']
    if key is not None:
        parts += [f'"requestId":"{key[0]}"', f'"merchantReference":"{key[1]}"']
    if note is not None:
        parts.append(f'"refundMerchantReference":"{note}"')
    return ("{" + ",".join(parts) + "}").encode()


# -- the model ----------------------------------------------------------------------------

@dataclass
class Stored:
    content: bytes
    cents: int
    note: str | None
    expires: timedelta


@dataclass
class Model:
    now: timedelta = timedelta(0)
    refunded: int = 0  # cents
    successes: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[tuple[str, str], Stored] = field(default_factory=dict)
    sent: list[tuple[int, tuple[str, str], str | None, str]] = field(default_factory=list)


def _post(client: TestClient, session: str, raw: bytes, changes: dict[str, str] | None = None):
    changes = dict(changes or {})
    path = changes.pop("path", f"/v2/payments/{ORDER}/refund")
    return client.post(path, content=raw,
                       headers={**HEADERS, "X-Sandbox-Session": session, **changes})


def _refund(client, session: str, model: Model, cents_: int, key, note, form) -> None:
    answer = _post(client, session, _body(cents_, key, note, form))
    held = model.stored.get(key) if key is not None else None
    if held is not None and model.now < held.expires:
        # a replay: the very bytes of the original, moving no money
        assert answer.status_code == 201
        assert answer.content == held.content
        differs = (cents_, note) != (held.cents, held.note)
        assert ("x-sandbox-warning" in answer.headers) == differs
        return
    if model.refunded + cents_ > CAPTURED * 100:
        assert answer.status_code == 422, answer.text
        assert answer.json()["errorCode"] == "invalid_amount"
        return
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["amount"] == {"amount": f"{Decimal(cents_) / 100:.2f}", "currency": "AUD"}
    model.refunded += cents_
    model.successes.append(body)
    if key is not None:
        model.stored[key] = Stored(answer.content, cents_, note, model.now + TTL)
        model.sent.append((cents_, key, note, form))


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations)
def test_refund_sequences_keep_the_money_right(client: TestClient, ops: list[tuple]) -> None:
    session = f"prop-{next(_sessions)}"
    model = Model()
    for op in ops:
        kind = op[0]
        if kind == "refund":
            _refund(client, session, model, *op[1:])
        elif kind == "rest":
            left = int(CAPTURED * 100) - model.refunded + op[1]
            if left > 0:
                _refund(client, session, model, left, *op[2:])
        elif kind == "invalid":
            status, code, raw, changes = INVALID[op[1]]
            answer = _post(client, session, raw or _body(100, ("r0", "m0"), None, "text"),
                           changes)
            assert answer.status_code == status, answer.text
            assert answer.json()["errorCode"] == code
        elif kind == "replay":
            if not model.sent:
                continue
            cents_, key, note, form = model.sent[op[1] % len(model.sent)]
            if op[2]:  # the same keys with a different body
                cents_, note = cents_ + 1, (note or "") + "-changed"
            _refund(client, session, model, cents_, key, note, form)
        else:
            hours = op[1]
            answer = client.post("/__admin/clock/advance", json={"hours": hours},
                                 headers={"X-Sandbox-Session": session})
            assert answer.status_code == 200
            model.now += timedelta(hours=hours)

    payment = client.get(f"/v2/payments/{ORDER}",
                         headers={**HEADERS, "X-Sandbox-Session": session}).json()
    # each success recorded exactly once, as it was answered, in order
    assert payment["refunds"] == model.successes
    ids = [r["refundId"] for r in payment["refunds"]]
    assert len(ids) == len(set(ids))
    total = sum((Decimal(r["amount"]["amount"]) for r in payment["refunds"]), Decimal(0))
    assert total == Decimal(model.refunded) / 100 <= CAPTURED
    assert Decimal(payment["openToRefundAmount"]["amount"]) == CAPTURED - total
