"""Afterpay errors: one exception class per case, rendered in Afterpay's exact error body."""

from __future__ import annotations

from typing import Any

from mock_server.afterpay import jackson

# Messages. "recorded": captured from the real Afterpay sandbox; "docs": Afterpay's API docs;
# "Decision": the sandbox's choice where the public record is silent (see the fidelity notes).
NOT_FOUND_MESSAGE = "Afterpay payment ID not found."  # recorded
UNAUTHORIZED_MESSAGE = "Credentials are required to access this resource."  # client fixture
INVALID_JSON_MESSAGE = "The request contains improperly formatted JSON"  # docs
USER_AGENT_REQUIRED_MESSAGE = "User-Agent header is required"  # Decision (strict mode only)
METHOD_NOT_ALLOWED_MESSAGE = "Method Not Allowed"  # docs
NOT_ACCEPTABLE_MESSAGE = "Not Acceptable"  # docs
UNSUPPORTED_MEDIA_TYPE_MESSAGE = "Unsupported Media Type"  # docs
PAYLOAD_TOO_LARGE_MESSAGE = "Request body is too large"  # Decision
HEADERS_TOO_LARGE_MESSAGE = "Request header fields are too large"  # Decision
CONFLICT_MESSAGE = "Request is still being processed. Retry with the same requestId."  # Decision
PRECONDITION_FAILED_MESSAGE = "Payment is not eligible for a refund."  # Decision (code: docs)
# quoted by a merchant
REFUND_EXCEEDS_OPEN_AMOUNT_MESSAGE = "Refund amount exceeded open to refund amount."
AMOUNT_FORMAT_MESSAGE = "Amount must be a valid ISO 4217 format value"  # docs (Money table)
REFUND_TIME_LIMIT_MESSAGE = "The refund exceeds the time limit of 120 days."  # docs + quote
# Decision: invalid_object always names a field in reality; when a fault rule asks for a bare
# invalid_object the sandbox uses the first row of the documented Money table.
INVALID_OBJECT_MESSAGE = "amount.amount Amount field required"  # docs (Money table)
UNSUPPORTED_CURRENCY_MESSAGE = "An error occurred"  # docs (Money table)
TOO_MANY_REQUESTS_MESSAGE = "Too Many Requests"  # Decision
INTERNAL_ERROR_MESSAGE = "An error occurred processing your request"  # recorded
BAD_GATEWAY_MESSAGE = "Bad Gateway"  # Decision
SERVICE_UNAVAILABLE_MESSAGE = "Service Unavailable"  # Decision
GATEWAY_TIMEOUT_MESSAGE = "Gateway Timeout"  # Decision
ROUTE_NOT_FOUND_MESSAGE = "The requested resource could not be found."  # Decision: unknown path

UNKNOWN_ERROR_CODE = "unknown Afterpay error code {code!r}; known codes: {known}"
INVALID_ERROR_STATUS = "an Afterpay error status must be between 400 and 599, got {status}"


class AfterpayError(Exception):
    """An Afterpay error response; the class fixes status and errorCode, never the call site."""

    status: int = 500
    code: str = "error"
    message: str = INTERNAL_ERROR_MESSAGE

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class InvalidJson(AfterpayError):
    status = 400
    code = "invalid_json"
    message = INVALID_JSON_MESSAGE


class InvalidRequest(AfterpayError):
    # Decision: the real reaction to a missing User-Agent is unknown; only strict mode uses this.
    status = 400
    code = "invalid_request"
    message = USER_AGENT_REQUIRED_MESSAGE


class Unauthorized(AfterpayError):
    status = 401
    code = "unauthorized"
    message = UNAUTHORIZED_MESSAGE


class NotFound(AfterpayError):
    status = 404
    code = "not_found"
    message = NOT_FOUND_MESSAGE


class MethodNotAllowed(AfterpayError):
    status = 405
    code = "method_not_allowed"
    message = METHOD_NOT_ALLOWED_MESSAGE


class NotAcceptable(AfterpayError):
    # docs: the generic 406 and 415 errors carry the catch-all errorCode "error".
    status = 406
    code = "error"
    message = NOT_ACCEPTABLE_MESSAGE


class Conflict(AfterpayError):
    # docs: 409 while an idempotent request is still processing; code and message: Decision.
    status = 409
    code = "conflict"
    message = CONFLICT_MESSAGE


class PreconditionFailed(AfterpayError):
    status = 412
    code = "precondition_failed"
    message = PRECONDITION_FAILED_MESSAGE


class PayloadTooLarge(AfterpayError):
    # Decision: Afterpay documents no body-size limit; the sandbox needs one and names it so.
    status = 413
    code = "request_too_large"
    message = PAYLOAD_TOO_LARGE_MESSAGE


class HeadersTooLarge(AfterpayError):
    # Decision: Afterpay documents no header limit; the sandbox needs one (core.limits).
    status = 431
    code = "request_header_fields_too_large"
    message = HEADERS_TOO_LARGE_MESSAGE


class UnsupportedMediaType(AfterpayError):
    status = 415
    code = "error"
    message = UNSUPPORTED_MEDIA_TYPE_MESSAGE


class InvalidAmount(AfterpayError):
    # Messages: REFUND_EXCEEDS_OPEN_AMOUNT_MESSAGE (default) or AMOUNT_FORMAT_MESSAGE.
    status = 422
    code = "invalid_amount"
    message = REFUND_EXCEEDS_OPEN_AMOUNT_MESSAGE


class RefundTimeLimitExceeded(AfterpayError):
    status = 422
    code = "refund_timelimit_exceeded"
    message = REFUND_TIME_LIMIT_MESSAGE


class InvalidObject(AfterpayError):
    # Always raised with the failing field's message; the default serves fault rules only.
    status = 422
    code = "invalid_object"
    message = INVALID_OBJECT_MESSAGE


class UnsupportedCurrency(AfterpayError):
    status = 422
    code = "unsupported_currency"
    message = UNSUPPORTED_CURRENCY_MESSAGE


class TooManyRequests(AfterpayError):
    # Decision: generic gateway-style errors for scenario fault rules; Afterpay documents none.
    status = 429
    code = "too_many_requests"
    message = TOO_MANY_REQUESTS_MESSAGE


class InternalError(AfterpayError):
    status = 500
    code = "error"
    message = INTERNAL_ERROR_MESSAGE


class BadGateway(AfterpayError):
    status = 502
    code = "bad_gateway"
    message = BAD_GATEWAY_MESSAGE


class ServiceUnavailable(AfterpayError):
    status = 503
    code = "service_unavailable"
    message = SERVICE_UNAVAILABLE_MESSAGE


class GatewayTimeout(AfterpayError):
    status = 504
    code = "gateway_timeout"
    message = GATEWAY_TIMEOUT_MESSAGE


ERROR_CLASSES: tuple[type[AfterpayError], ...] = (
    InvalidJson,
    InvalidRequest,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidAmount,
    RefundTimeLimitExceeded,
    InvalidObject,
    UnsupportedCurrency,
    TooManyRequests,
    InternalError,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
)

# "error" is shared by 406, 415 and 500; on its own it means the recorded 500.
_BY_CODE: dict[str, type[AfterpayError]] = {
    cls.code: cls for cls in ERROR_CLASSES if cls.code != "error"
} | {"error": InternalError}
_BY_CODE_AND_STATUS: dict[tuple[str, int], type[AfterpayError]] = {
    (cls.code, cls.status): cls for cls in ERROR_CLASSES
}

ERROR_CODE_NAMES: frozenset[str] = frozenset(_BY_CODE)


def error_for_code(code: str, status: int | None = None) -> AfterpayError:
    """The catalogue error for a scenario fault rule's `error: <code>` (and optional status)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        raise ValueError(UNKNOWN_ERROR_CODE.format(code=code, known=", ".join(sorted(_BY_CODE))))
    if status is None:
        return cls()
    if not 400 <= status <= 599:
        raise ValueError(INVALID_ERROR_STATUS.format(status=status))
    # A (code, status) pair that names a case keeps that case's message: error + 406 is the
    # documented "Not Acceptable", not the 500 message.
    err = _BY_CODE_AND_STATUS.get((code, status), cls)()
    # The one place a status is chosen outside the class: a scenario author asked for it.
    err.status = status
    return err


def error_body(err: AfterpayError, error_id: str) -> dict[str, Any]:
    """Afterpay's error body: exactly these four keys in this order (recorded)."""
    return {
        "errorCode": err.code,
        "errorId": error_id,
        "message": err.message,
        "httpStatusCode": err.status,
    }


def render(err: AfterpayError, error_id: str) -> bytes:
    """The error body as the bytes real Afterpay sends (Jackson pretty-printed)."""
    return jackson.dumps(error_body(err, error_id))


# -- the payment lifecycle (checkouts, auth, capture, void: reference afterpay-lifecycle.md) ----

INVALID_TOKEN_MESSAGE = "Cannot complete payment, expired or invalid token."  # recorded
CHECKOUT_TOKEN_MESSAGE = "Invalid token"  # recorded (GET checkout)
NOT_APPROVED_MESSAGE = "Order has not been approved."  # recorded (auth)
NO_VALID_AUTH_MESSAGE = "A valid auth was not performed for this payment id."  # recorded
PAYMENT_CAPTURED_MESSAGE = "The payment has already been fully captured."  # recorded
INVALID_STATE_MESSAGE = "Order is not approved."  # recorded
PAYMENT_VOIDED_MESSAGE = "The auth was previously voided."  # recorded
PAYMENT_EXPIRED_MESSAGE = "The auth for this order has expired."  # Decision (code: docs)
UNSUPPORTED_PAYMENT_TYPE_MESSAGE = "Unsupported payment type"  # Decision (docs example)
LIMIT_MESSAGE = "limit must be between 1 and 250"  # Decision (code: docs)


class InvalidToken(AfterpayError):
    status = 402
    code = "invalid_token"
    message = INVALID_TOKEN_MESSAGE


class CheckoutTokenInvalid(AfterpayError):
    status = 412
    code = "invalid_token"
    message = CHECKOUT_TOKEN_MESSAGE


class OrderNotApproved(AfterpayError):
    status = 412
    code = "invalid_order_transaction_status"
    message = NOT_APPROVED_MESSAGE


class NoValidAuth(AfterpayError):
    status = 412
    code = "error"
    message = NO_VALID_AUTH_MESSAGE


class PaymentCaptured(AfterpayError):
    status = 410
    code = "payment_captured"
    message = PAYMENT_CAPTURED_MESSAGE


class InvalidState(AfterpayError):
    status = 412
    code = "invalid_state"
    message = INVALID_STATE_MESSAGE


class PaymentVoided(AfterpayError):
    status = 412
    code = "payment_voided"
    message = PAYMENT_VOIDED_MESSAGE


class PaymentExpired(AfterpayError):
    status = 412
    code = "payment_expired"
    message = PAYMENT_EXPIRED_MESSAGE


class UnsupportedPaymentType(AfterpayError):
    status = 422
    code = "unsupported_payment_type"
    message = UNSUPPORTED_PAYMENT_TYPE_MESSAGE


class BadListQuery(AfterpayError):
    status = 422
    code = "error"
    message = LIMIT_MESSAGE


LIFECYCLE_ERROR_CLASSES: tuple[type[AfterpayError], ...] = (
    InvalidToken, OrderNotApproved, PaymentCaptured, InvalidState, PaymentVoided,
    PaymentExpired, UnsupportedPaymentType)
for _cls in LIFECYCLE_ERROR_CLASSES:
    _BY_CODE.setdefault(_cls.code, _cls)
    _BY_CODE_AND_STATUS.setdefault((_cls.code, _cls.status), _cls)
for _cls in (CheckoutTokenInvalid, NoValidAuth, BadListQuery):
    _BY_CODE_AND_STATUS.setdefault((_cls.code, _cls.status), _cls)
ERROR_CODE_NAMES = frozenset(_BY_CODE)
