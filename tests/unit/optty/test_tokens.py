"""Optty tokens: HS256, exact claims, and a clock that is the sandbox's, not the wall's."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import jwt.warnings
import pytest

from mock_server.optty.tokens import (
    DEFAULT_JWT_SECRET,
    REASON_ALGORITHM,
    REASON_BAD_SIGNATURE,
    REASON_EXPIRED,
    REASON_MALFORMED,
    REASON_NOT_YET_VALID,
    REASON_SCOPE,
    TOKEN_RESPONSE,
    InvalidToken,
    TokenClaims,
    issue_token,
    verify_token,
)

# newer PyJWT releases warn about short HMAC keys; older ones have no such warning to ignore
IGNORE_SHORT_KEYS = (
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
    if hasattr(jwt.warnings, "InsecureKeyLengthWarning") else pytest.mark.usefixtures())

SECRET = DEFAULT_JWT_SECRET
# Far from the wall clock on purpose: nothing may compare against the real time.
NOW = datetime(2001, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)
IAT = 981173106


def segment(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def reason_of(token: str, now: datetime = NOW) -> str:
    with pytest.raises(InvalidToken) as caught:
        verify_token(token, secret=SECRET, now=now)
    return caught.value.reason


def signed(claims: dict[str, Any], algorithm: str = "HS256", secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


VALID_CLAIMS = {"merchantId": "m-1", "scope": "api-user", "iat": IAT, "exp": IAT + 86400}


def test_claims_are_exactly_merchant_scope_iat_exp_in_order() -> None:
    token = issue_token("m-1", secret=SECRET, now=NOW)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert list(payload.items()) == list(VALID_CLAIMS.items())


def test_header_is_hs256_jwt() -> None:
    assert jwt.get_unverified_header(issue_token("m-1", secret=SECRET, now=NOW)) == {
        "alg": "HS256", "typ": "JWT",
    }


def test_ttl_is_configurable() -> None:
    token = issue_token("m-1", secret=SECRET, now=NOW, ttl=timedelta(minutes=5))
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == IAT + 300


def test_naive_now_is_taken_as_utc() -> None:
    token = issue_token("m-1", secret=SECRET, now=NOW.replace(tzinfo=None))
    assert jwt.decode(token, options={"verify_signature": False})["iat"] == IAT


def test_issued_token_verifies_at_the_same_sandbox_time() -> None:
    token = issue_token("m-1", secret=SECRET, now=NOW)
    assert verify_token(token, secret=SECRET, now=NOW) == TokenClaims(
        "m-1", "api-user", IAT, IAT + 86400
    )


def test_token_is_valid_one_second_before_exp() -> None:
    token = issue_token("m-1", secret=SECRET, now=NOW)
    later = NOW + timedelta(seconds=86399)
    assert verify_token(token, secret=SECRET, now=later).merchant_id == "m-1"


def test_token_expires_at_exp() -> None:
    token = issue_token("m-1", secret=SECRET, now=NOW)
    assert reason_of(token, NOW + timedelta(hours=24)) == REASON_EXPIRED


def test_token_from_the_future_still_verifies_like_jsonwebtoken() -> None:
    # jsonwebtoken ignores iat unless maxAge is set: moving the clock back does not reject it.
    token = issue_token("m-1", secret=SECRET, now=NOW)
    assert verify_token(token, secret=SECRET, now=NOW - timedelta(days=3)).iat == IAT


def test_other_secret_is_a_bad_signature() -> None:
    token = issue_token("m-1", secret="someone-elses-secret-of-enough-length", now=NOW)
    assert reason_of(token) == REASON_BAD_SIGNATURE


def test_alg_none_is_refused() -> None:
    token = segment({"alg": "none", "typ": "JWT"}) + "." + segment(VALID_CLAIMS) + "."
    assert reason_of(token) == REASON_ALGORITHM


@IGNORE_SHORT_KEYS
def test_hs512_with_the_right_secret_is_refused() -> None:
    assert reason_of(signed(VALID_CLAIMS, "HS512")) == REASON_ALGORITHM


def test_rs256_header_is_refused() -> None:
    token = segment({"alg": "RS256", "typ": "JWT"}) + "." + segment(VALID_CLAIMS) + ".c2ln"
    assert reason_of(token) == REASON_ALGORITHM


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "a.b.c.d", "Bearer x.y.z"])
def test_malformed_token(token: str) -> None:
    assert reason_of(token) == REASON_MALFORMED


def test_payload_that_is_not_an_object_is_malformed() -> None:
    token = jwt.api_jws.encode(b"[1]", SECRET, algorithm="HS256")
    assert reason_of(token) == REASON_MALFORMED


@pytest.mark.parametrize("claim", ["merchantId", "scope", "iat", "exp"])
def test_missing_claim(claim: str) -> None:
    claims = {key: value for key, value in VALID_CLAIMS.items() if key != claim}
    assert reason_of(signed(claims)) == f"missing or invalid claim {claim}"


@pytest.mark.parametrize(
    ("claim", "value"),
    [("merchantId", ""), ("merchantId", 7), ("iat", "981173106"), ("exp", True),
     ("exp", float(IAT + 86400))],
)
def test_claim_of_the_wrong_type(claim: str, value: Any) -> None:
    assert reason_of(signed({**VALID_CLAIMS, claim: value})) == (
        f"missing or invalid claim {claim}"
    )


def test_other_scope_is_refused() -> None:
    assert reason_of(signed({**VALID_CLAIMS, "scope": "admin"})) == REASON_SCOPE


def test_future_nbf_is_refused() -> None:
    assert reason_of(signed({**VALID_CLAIMS, "nbf": IAT + 60})) == REASON_NOT_YET_VALID


def test_token_response_body() -> None:
    assert list(TOKEN_RESPONSE("t").items()) == [
        ("access_token", "t"),
        ("expires_in", 86400),
        ("token_type", "Bearer"),
        ("scope", "api-user"),
    ]
