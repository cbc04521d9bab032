"""The refund's guard: every refused token is NestJS's bare 401, and only a good one passes."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from mock_server.optty.tokens import DEFAULT_JWT_SECRET

# the HS512 case signs with the sandbox's 33-byte key on purpose
pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")

UNAUTHORIZED = b'{"statusCode":401,"message":"Unauthorized"}'
REFUND = {"refundReference": "auth-1", "refundAmount": {"amount": 5, "currency": "AUD"},
          "refundDescription": "auth"}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def mint(time_source: Any, **overrides: Any) -> str:
    iat = math.floor(time_source.now.timestamp())
    claims = {"merchantId": "sandbox-merchant", "scope": "api-user", "iat": iat,
              "exp": iat + 86400}
    claims.update(overrides)
    return jwt.encode(claims, DEFAULT_JWT_SECRET, algorithm="HS256")


HEADERS: dict[str, Callable[[Any, str], str | None]] = {
    "missing header": lambda t, good: None,
    "empty header": lambda t, good: "",
    "Basic scheme": lambda t, good: "Basic " + base64.b64encode(b"sandbox-client:x").decode(),
    "token without a scheme": lambda t, good: good,
    "Bearer without a token": lambda t, good: "Bearer ",
    "scheme glued to the token": lambda t, good: "Bearer" + good,
    "malformed token": lambda t, good: "Bearer not.a.jwt",
    "two-part token": lambda t, good: "Bearer " + ".".join(good.split(".")[:2]),
    "bad signature": lambda t, good: "Bearer " + jwt.encode(
        jwt.decode(good, options={"verify_signature": False}),
        "someone-elses-secret-of-enough-length", algorithm="HS256"),
    "tampered claims": lambda t, good: "Bearer " + ".".join(
        [good.split(".")[0], _b64({"merchantId": "other-merchant", "scope": "api-user",
                                   "iat": 1, "exp": 4_000_000_000}), good.split(".")[2]]),
    "alg none": lambda t, good: "Bearer " + _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(
        jwt.decode(good, options={"verify_signature": False})) + ".",
    "HS512 with the right key": lambda t, good: "Bearer " + jwt.encode(
        jwt.decode(good, options={"verify_signature": False}), DEFAULT_JWT_SECRET,
        algorithm="HS512"),
    "expired": lambda t, good: "Bearer " + mint(t, exp=math.floor(t.now.timestamp())),
    "not yet valid": lambda t, good: "Bearer " + mint(t, nbf=math.floor(t.now.timestamp()) + 60),
    "scope other than api-user": lambda t, good: "Bearer " + mint(t, scope="admin"),
    "no merchantId": lambda t, good: "Bearer " + mint(t, merchantId=None),
    "unknown merchant": lambda t, good: "Bearer " + mint(t, merchantId="ghost-merchant"),
}


@pytest.mark.parametrize("case", list(HEADERS))
def test_refund_refuses(case: str, optty: Any, time_source: Any) -> None:
    header = HEADERS[case](time_source, optty.token)
    headers = {} if header is None else {"Authorization": header}
    answer = optty.http.post("/orders/ORD-1001/refund", json=REFUND, headers=headers)
    assert answer.status_code == 401
    assert answer.content == UNAUTHORIZED
    assert optty.order("ORD-1001")["refunds"] == []


@pytest.mark.parametrize("case", ["missing header", "bad signature", "alg none", "expired"])
def test_get_order_refuses(case: str, optty: Any, time_source: Any) -> None:
    header = HEADERS[case](time_source, optty.token)
    answer = optty.http.get("/orders/ORD-1001",
                            headers={} if header is None else {"Authorization": header})
    assert answer.status_code == 401
    assert answer.content == UNAUTHORIZED


def test_expiry_follows_the_session_clock(optty: Any) -> None:
    token = optty.token
    optty.advance(86400 - 1)
    assert optty.refund("ORD-1001", 1, "still-valid", token=token).status_code == 201
    optty.advance(1)
    answer = optty.refund("ORD-1001", 1, "expired-now", token=token)
    assert answer.status_code == 401
    assert answer.content == UNAUTHORIZED


def test_a_frozen_clock_past_exp_expires_the_token(optty: Any) -> None:
    token = optty.token
    optty.freeze("2026-11-02T09:00:00.123Z")  # exactly iat + 24 h
    assert optty.refund("ORD-1001", 1, "frozen", token=token).status_code == 401


@pytest.mark.parametrize("header", ["bearer {t}", "BEARER {t}", "Bearer   {t}", "Bearer\t{t}",
                                    "Bearer {t} trailing-words"])
def test_passport_jwt_header_variants_are_accepted(header: str, optty: Any) -> None:
    # ExtractJwt.fromAuthHeaderAsBearerToken: /(\S+)\s+(\S+)/, scheme case-insensitive
    answer = optty.http.get("/orders/ORD-1001",
                            headers={"Authorization": header.format(t=optty.token)})
    assert answer.status_code == 200


def test_a_token_is_good_in_any_session_that_knows_the_merchant(optty: Any) -> None:
    token = optty.token
    other = optty.in_session("auth-elsewhere")
    assert other.refund("ORD-1001", 1, "elsewhere", token=token).status_code == 201
    # ... and refused where the merchant does not exist
    other.load({"name": "lonely", "optty": {"merchants": [
        {"merchantId": "lonely-merchant", "clientId": "lonely", "clientSecret": "s"}]}})
    lonely = other.http.post("/token", data={
        "client_id": "lonely", "client_secret": "s", "grant_type": "client_credentials",
        "scope": "api-user"}, headers={"X-Sandbox-Session": "auth-elsewhere"}).json()
    answer = optty.http.get("/orders/ORD-1001",
                            headers={"Authorization": f"Bearer {lonely['access_token']}"})
    assert answer.status_code == 401


def test_guard_runs_after_the_body_parser(optty: Any) -> None:
    # body-parser is middleware: malformed JSON is a 400 before the guard looks at the token
    answer = optty.post_raw("/orders/ORD-1001/refund", b'{"refundReference": x}', auth=False)
    assert answer.status_code == 400
    assert answer.json()["message"] == "Unexpected token x in JSON at position 20"


def test_guard_runs_before_validation(optty: Any) -> None:
    answer = optty.post_raw("/orders/ORD-1001/refund", b"{}", auth=False)
    assert answer.status_code == 401


def test_guard_runs_before_the_order_lookup(optty: Any) -> None:
    answer = optty.http.post("/orders/NO-SUCH-ORDER/refund", json=REFUND)
    assert answer.status_code == 401
