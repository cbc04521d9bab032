"""Afterpay API test helpers: a client bound to a session, the default world's ids, and the
checks every Afterpay answer must pass (error shape, correlation id)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mock_server.core.openapi import Spec

MERCHANT = "100101382"
SECRET = "sandbox-secret-key"
NZ_MERCHANT = "100101400"
NZ_SECRET = "sandbox-secret-key-nz"
USER_AGENT = "TestModule/1.0.0 (Python/3.11; Merchant/100101382) https://merchant.example.com"

# the bundled default world (scenarios/default.yaml)
REFUNDABLE = "100101785223"  # 120.00 AUD captured, nothing refunded
PARTLY_REFUNDED = "100101785224"  # 100.00 captured, 40.00 refunded (refundId 10000001)
PARTLY_CAPTURED = "100101785225"  # 200.00 authorised, 80.00 captured
FULLY_REFUNDED = "100101785226"  # 50.00 captured and refunded
DECLINED = "100101785227"
NOT_CAPTURED = "100101785228"
VOIDED = "100101785229"
TOO_OLD = "100101785230"  # created 2024-01-15
NZ_PAYMENT = "100101785300"  # merchant 100101400, 65.00 NZD

ERROR_ID = re.compile(r"^[0-9a-f]{16}$")
CORRELATION_ID = re.compile(r"^[a-z0-9]{26}$")
REFUNDED_AT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")


def basic(merchant: str = MERCHANT, secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"{merchant}:{secret}".encode()).decode()


def money(amount: str = "10.00", currency: str = "AUD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


class Afterpay:
    """Calls the sandbox's Afterpay API as a well-behaved client would, unless told otherwise."""

    def __init__(self, client: TestClient, session: str | None = None,
                 authorization: str | None = None) -> None:
        self.client = client
        self.session = session
        self.authorization = authorization or basic()

    def in_session(self, name: str, authorization: str | None = None) -> Afterpay:
        return Afterpay(self.client, name, authorization or self.authorization)

    def as_merchant(self, merchant: str, secret: str) -> Afterpay:
        return Afterpay(self.client, self.session, basic(merchant, secret))

    def headers(self, extra: Mapping[str, str] | None = None, drop: Iterable[str] = (),
                json_body: bool = True) -> dict[str, str]:
        headers = {"Authorization": self.authorization, "User-Agent": USER_AGENT,
                   "Accept": "application/json"}
        if json_body:
            headers["Content-Type"] = "application/json"
        if self.session:
            headers["X-Sandbox-Session"] = self.session
        headers.update(extra or {})
        for name in drop:
            headers.pop(name, None)
        return headers

    def refund(self, order_id: str = REFUNDABLE, body: Any = None, *, raw: bytes | None = None,
               headers: Mapping[str, str] | None = None, drop: Iterable[str] = (),
               amount: str = "10.00", currency: str = "AUD", **fields: Any) -> httpx.Response:
        if raw is None:
            if body is None:
                body = {"amount": money(amount, currency), **fields}
            raw = json.dumps(body).encode()
        return self.client.post(f"/v2/payments/{order_id}/refund", content=raw,
                                headers=self.headers(headers, drop))

    def payment(self, order_id: str = REFUNDABLE, *, headers: Mapping[str, str] | None = None,
                drop: Iterable[str] = ()) -> httpx.Response:
        return self.client.get(f"/v2/payments/{order_id}",
                               headers=self.headers(headers, drop, json_body=False))

    def payment_json(self, order_id: str = REFUNDABLE) -> dict[str, Any]:
        answer = self.payment(order_id)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def open_to_refund(self, order_id: str = REFUNDABLE) -> Decimal:
        return Decimal(self.payment_json(order_id)["openToRefundAmount"]["amount"])

    def load(self, scenario: Mapping[str, Any]) -> None:
        headers = {"Content-Type": "application/json"}
        if self.session:
            headers["X-Sandbox-Session"] = self.session
        answer = self.client.post("/__admin/scenarios", content=json.dumps(scenario),
                                  headers=headers)
        assert answer.status_code == 201, answer.text

    def freeze(self, instant: str) -> None:
        headers = {"X-Sandbox-Session": self.session} if self.session else {}
        answer = self.client.put("/__admin/clock", json={"now": instant}, headers=headers)
        assert answer.status_code == 200, answer.text

    def advance(self, **delta: float) -> None:
        headers = {"X-Sandbox-Session": self.session} if self.session else {}
        answer = self.client.post("/__admin/clock/advance", json=delta, headers=headers)
        assert answer.status_code == 200, answer.text

    @staticmethod
    def assert_error(answer: httpx.Response, status: int, code: str,
                     message: str | None = None) -> dict[str, Any]:
        """Afterpay's error: exactly four keys in order, errorId 16 hex, status = httpStatusCode."""
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert CORRELATION_ID.match(answer.headers["http_correlation_id"])
        pairs = json.loads(answer.content, object_pairs_hook=list)
        assert [key for key, _ in pairs] == ["errorCode", "errorId", "message", "httpStatusCode"]
        body = dict(pairs)
        assert body["errorCode"] == code, body
        assert ERROR_ID.match(body["errorId"]), body
        assert type(body["httpStatusCode"]) is int and body["httpStatusCode"] == status
        if message is not None:
            assert body["message"] == message, body
        return body


_SPECS: dict[tuple[str, str], Spec] = {}
_load_spec = Spec.load.__func__  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _specs_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here builds a fresh app; parsing the three OpenAPI documents is most of that
    cost, and a loaded Spec is never changed, so the tests share one copy of each."""
    def load(cls: type[Spec], provider: str, path: Any) -> Spec:
        key = (provider, str(path))
        if key not in _SPECS:
            _SPECS[key] = _load_spec(cls, provider, path)
        return _SPECS[key]

    monkeypatch.setattr(Spec, "load", classmethod(load))


@pytest.fixture
def afterpay(client: TestClient) -> Afterpay:
    return Afterpay(client)
