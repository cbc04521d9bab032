"""Optty access tokens: HS256 JWTs issued and checked against the sandbox's own (movable) clock."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

# The CLI's --jwt-secret overrides it; documented so integrators can mint tokens in tests.
DEFAULT_JWT_SECRET = "refund-mock-server-sandbox-secret"
TOKEN_ALGORITHM = "HS256"  # Decision: Optty's algorithm and claims are undocumented.
TOKEN_SCOPE = "api-user"
TOKEN_TTL = timedelta(hours=24)  # the token answer's "expires_in": 86400
TOKEN_TYPE = "Bearer"

REASON_MALFORMED = "malformed token"
REASON_BAD_SIGNATURE = "invalid signature"
REASON_ALGORITHM = "algorithm not allowed"
REASON_EXPIRED = "token expired"
REASON_NOT_YET_VALID = "token not yet valid"
REASON_MISSING_CLAIM = "missing or invalid claim {claim}"
REASON_SCOPE = "scope is not api-user"

# Node's jsonwebtoken accepts any HMAC secret, so the sandbox does too: a short --jwt-secret is
# the integrator's choice, not something to warn about on every request.
try:
    from jwt.warnings import InsecureKeyLengthWarning
except ImportError:  # older PyJWT releases do not warn about key length
    pass
else:
    warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)


class InvalidToken(Exception):
    """The token is refused (the API answers 401 Unauthorized); `reason` is for the journal."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    merchant_id: str
    scope: str
    iat: int
    exp: int


def _epoch_seconds(now: datetime) -> int:
    # A naive datetime is taken as UTC (the sandbox clock's zone), never as local time.
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return math.floor(now.timestamp())


def issue_token(
    merchant_id: str, *, secret: str, now: datetime, ttl: timedelta = TOKEN_TTL
) -> str:
    # Like jsonwebtoken's sign(): iat = floor(now), exp = iat + expiresIn, claims in this order.
    iat = _epoch_seconds(now)
    claims = {
        "merchantId": merchant_id,
        "scope": TOKEN_SCOPE,
        "iat": iat,
        "exp": iat + math.floor(ttl.total_seconds()),
    }
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken(REASON_MISSING_CLAIM.format(claim=name))
    return value


def verify_token(token: str, *, secret: str, now: datetime) -> TokenClaims:
    try:
        # PyJWT must never consult the wall clock (the sandbox's clock can be frozen or moved),
        # nor check claims Optty's passport-jwt setup does not check: exp / nbf are checked
        # against `now` below.
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidToken(REASON_BAD_SIGNATURE) from None
    except jwt.InvalidAlgorithmError:
        # alg "none", RS256 headers and HS512 signed with the right secret all land here.
        raise InvalidToken(REASON_ALGORITHM) from None
    except jwt.PyJWTError:
        raise InvalidToken(REASON_MALFORMED) from None
    merchant_id = claims.get("merchantId")
    if not isinstance(merchant_id, str) or not merchant_id:
        raise InvalidToken(REASON_MISSING_CLAIM.format(claim="merchantId"))
    scope = claims.get("scope")
    if not isinstance(scope, str):
        raise InvalidToken(REASON_MISSING_CLAIM.format(claim="scope"))
    iat = _int_claim(claims, "iat")
    exp = _int_claim(claims, "exp")
    clock = _epoch_seconds(now)
    # jsonwebtoken: expired when floor(now) >= exp; not yet valid when nbf > floor(now).
    if clock >= exp:
        raise InvalidToken(REASON_EXPIRED)
    nbf = claims.get("nbf")
    if nbf is not None:
        if isinstance(nbf, bool) or not isinstance(nbf, int | float):
            raise InvalidToken(REASON_MISSING_CLAIM.format(claim="nbf"))
        if nbf > clock:
            raise InvalidToken(REASON_NOT_YET_VALID)
    if scope != TOKEN_SCOPE:
        raise InvalidToken(REASON_SCOPE)
    return TokenClaims(merchant_id=merchant_id, scope=scope, iat=iat, exp=exp)


def token_response(token: str) -> dict[str, Any]:
    """The body of a successful POST /token, in the order Optty's documentation shows it."""
    return {
        "access_token": token,
        "expires_in": math.floor(TOKEN_TTL.total_seconds()),
        "token_type": TOKEN_TYPE,
        "scope": TOKEN_SCOPE,
    }


TOKEN_RESPONSE = token_response
