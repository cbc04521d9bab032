"""`POST /merchants/customer/sessions` (docs:/api-references/create-customer-session): the token
Optty's own plugin asks for before each order and sends as the order's `customerToken`.

Decision (reference/optty-lifecycle.md): 201 `{"token": <JWT>, "ttl": 604800}`, the JWT HS256
with the claims of the docs' example (`customerIdentifier` = 128 hex, `merchantId`, `iat`,
`exp` = iat + 604800), the identifier HMAC-SHA512 hex under the sandbox's key. It carries no
`scope`, so it is never accepted as a bearer token."""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime
from typing import Any

import jwt

from mock_server.optty.errors import BadRequest
from mock_server.optty.validation import IS_NOT_EMPTY, IS_STRING, _prop, _Schema, _validate

CUSTOMER_TOKEN_TTL = 604800  # seconds: the docs' example (7 days)
MSG_BAD_CUSTOMER_TOKEN = "Invalid customer token"  # Decision: the wording is undocumented

_CUSTOMER_SESSION = _Schema((_prop("customerIdentifier", IS_STRING, IS_NOT_EMPTY),))


def _seconds(now: datetime) -> int:
    return math.floor((now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp())


def customer_session(body: Any, merchant_id: str, *, secret: str, now: datetime
                     ) -> dict[str, Any]:
    _validate(body, _CUSTOMER_SESSION)
    identifier = hmac.new(secret.encode(), str(body["customerIdentifier"]).encode(
        "utf-8", "surrogatepass"), hashlib.sha512).hexdigest()
    iat = _seconds(now)
    claims = {"customerIdentifier": identifier, "merchantId": merchant_id, "iat": iat,
              "exp": iat + CUSTOMER_TOKEN_TTL}
    return {"token": jwt.encode(claims, secret, algorithm="HS256"), "ttl": CUSTOMER_TOKEN_TTL}


def check_customer_token(token: str | None, merchant_id: str, *, secret: str,
                         now: datetime) -> None:
    """An order's `customerToken`: absent or empty (the plugin sends "" when it got none), or
    an unexpired customer token of the same merchant; anything else is a 400."""
    if not token:
        return
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False})
    except jwt.InvalidTokenError:
        raise BadRequest(MSG_BAD_CUSTOMER_TOKEN) from None
    expires = claims.get("exp")
    if (claims.get("merchantId") != merchant_id or not isinstance(
            claims.get("customerIdentifier"), str) or isinstance(expires, bool)
            or not isinstance(expires, int) or expires <= _seconds(now)):
        raise BadRequest(MSG_BAD_CUSTOMER_TOKEN)
