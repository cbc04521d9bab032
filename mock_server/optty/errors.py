"""Optty's errors as data, rendered in NestJS's exact error-body shapes."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from typing import Any

from mock_server.optty.jsonparse import stringify

# NestJS's HttpException.createBody: `new XException()` -> {statusCode, message: <description>};
# `new XException(msg)` -> {statusCode, message: msg, error: <description>}, in that key order.
# Errors that are not HttpExceptions go through BaseExceptionFilter.handleUnknownError.
MSG_BAD_REQUEST = "Bad Request"
MSG_UNAUTHORIZED = "Unauthorized"
MSG_NOT_FOUND = "Not Found"
MSG_ROUTE_NOT_FOUND = "Cannot {method} {url}"
# body-parser (raw-body) refuses an over-limit body with http-errors' 413 "request entity too
# large". NestJS 8's RoutesResolver.mapExternalException only turns a SyntaxError into a
# BadRequestException; this error reaches BaseExceptionFilter.handleUnknownError, whose
# isHttpError branch answers {statusCode, message} and nothing else: no "error" field.
MSG_PAYLOAD_TOO_LARGE = "request entity too large"
# Node's HTTP parser refuses a head over --max-http-header-size (16 KiB) with a bare 431 before
# Express runs; the sandbox says the same in NestJS's {statusCode, message} (Decision)
MSG_HEADERS_TOO_LARGE = "Request Header Fields Too Large"
MSG_TOO_MANY_REQUESTS = "ThrottlerException: Too Many Requests"  # @nestjs/throttler
MSG_INTERNAL_ERROR = "Internal server error"  # NestJS MESSAGES.UNKNOWN_EXCEPTION_MESSAGE
MSG_SERVICE_UNAVAILABLE = "Service Unavailable"
MSG_BAD_GATEWAY = "Bad Gateway"
MSG_GATEWAY_TIMEOUT = "Gateway Timeout"

# Business messages. The first is quoted by the provider's refund page; the others are the
# sandbox's Decisions (reference/optty.md), worded in the same style.
MSG_OVER_REFUND = "You can only refund amount up to {currency} {amount}"
MSG_CURRENCY_MISMATCH = "Refund currency must match order currency {currency}"
MSG_DUPLICATE_REFERENCE = "Refund reference already exists"
MSG_PARTIAL_REFUND_NOT_SUPPORTED = "Partial refund is not supported for {provider}"
MSG_NOT_ELIGIBLE = "Order is not eligible for refund"
# The names mock_server/optty/models.py uses for the same constants.
ORDER_NOT_ELIGIBLE = MSG_NOT_ELIGIBLE
REFERENCE_EXISTS = MSG_DUPLICATE_REFERENCE


class OpttyError(Exception):
    """An Optty API error: the status and the fields of NestJS's body, nothing rendered yet."""

    status: int = 500
    default_message: str = MSG_INTERNAL_ERROR
    # NestJS's "error" field: the status description, present only when a message was given.
    description: str | None = None

    def __init__(self, message: str | list[str] | None = None) -> None:
        self.message: str | list[str] = self.default_message if message is None else message
        self.error: str | None = None if message is None else self.description
        # X-Sandbox-Warning texts to send along with this answer
        self.warnings: list[str] = []
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"statusCode": self.status, "message": self.message}
        if self.error is not None:
            body["error"] = self.error
        return body


class BadRequest(OpttyError):
    status = 400
    default_message = MSG_BAD_REQUEST
    description = MSG_BAD_REQUEST


class Unauthorized(OpttyError):
    status = 401
    default_message = MSG_UNAUTHORIZED
    description = MSG_UNAUTHORIZED


class NotFound(OpttyError):
    """An unknown order: the handler throws a bare NotFoundException()."""

    status = 404
    default_message = MSG_NOT_FOUND
    description = MSG_NOT_FOUND


class RouteNotFound(NotFound):
    """NestJS's not-found handler: NotFoundException(`Cannot ${method} ${url}`).

    `url` is Express's req.originalUrl: the path as the client sent it, query string included.
    """

    def __init__(self, method: str, url: str) -> None:
        super().__init__(MSG_ROUTE_NOT_FOUND.format(method=method, url=url))


class PayloadTooLarge(OpttyError):
    status = 413
    default_message = MSG_PAYLOAD_TOO_LARGE


class HeadersTooLarge(OpttyError):
    status = 431
    default_message = MSG_HEADERS_TOO_LARGE


class HttpError(OpttyError):
    """An http-errors error from Express's body parsers (raw-body, body-parser): not a NestJS
    HttpException, so BaseExceptionFilter.handleUnknownError answers {statusCode, message}."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)
        self.error = None


class UnsupportedMediaType(HttpError):
    """body-parser's 415: a charset or Content-Encoding it cannot read."""

    def __init__(self, message: str) -> None:
        super().__init__(415, message)


class TooManyRequests(OpttyError):
    status = 429
    default_message = MSG_TOO_MANY_REQUESTS


class InternalError(OpttyError):
    status = 500
    default_message = MSG_INTERNAL_ERROR


class BadGateway(OpttyError):
    status = 502
    default_message = MSG_BAD_GATEWAY
    description = MSG_BAD_GATEWAY


class ServiceUnavailable(OpttyError):
    status = 503
    default_message = MSG_SERVICE_UNAVAILABLE
    description = MSG_SERVICE_UNAVAILABLE


class GatewayTimeout(OpttyError):
    status = 504
    default_message = MSG_GATEWAY_TIMEOUT
    description = MSG_GATEWAY_TIMEOUT


class StatusError(OpttyError):
    """Any other status: NestJS's `new HttpException(<reason phrase>, status)` shape."""

    def __init__(self, status: int) -> None:
        self.status = status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = f"Http Exception {status}"
        self.default_message = phrase
        super().__init__()


def render(err: OpttyError) -> bytes:
    """The response body, byte for byte as NestJS's Express adapter sends it (JSON.stringify)."""
    return stringify(err.body())


def _two_places(amount: Decimal) -> str:
    text = f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"
    return "0.00" if text == "-0.00" else text


def over_refund(currency: str, remaining: Decimal) -> BadRequest:
    return BadRequest(MSG_OVER_REFUND.format(currency=currency, amount=_two_places(remaining)))


def currency_mismatch(order_currency: str) -> BadRequest:
    return BadRequest(MSG_CURRENCY_MISMATCH.format(currency=order_currency))


def duplicate_reference() -> BadRequest:
    return BadRequest(MSG_DUPLICATE_REFERENCE)


def partial_refund_not_supported(provider: str) -> BadRequest:
    return BadRequest(MSG_PARTIAL_REFUND_NOT_SUPPORTED.format(provider=provider))


partial_not_supported = partial_refund_not_supported


def not_eligible() -> BadRequest:
    return BadRequest(MSG_NOT_ELIGIBLE)


# Fault-rule error codes (scenario `respond: {status: 503, error: service_unavailable}`): each
# renders the body NestJS gives for that failure; an explicit status only changes statusCode.
ERROR_CODES: dict[str, type[OpttyError]] = {
    "bad_request": BadRequest,
    "unauthorized": Unauthorized,
    "not_found": NotFound,
    "payload_too_large": PayloadTooLarge,
    "too_many_requests": TooManyRequests,
    "internal_error": InternalError,
    "service_unavailable": ServiceUnavailable,
    "bad_gateway": BadGateway,
    "gateway_timeout": GatewayTimeout,
}
ERROR_CODE_NAMES: frozenset[str] = frozenset(ERROR_CODES)


def error_for_code(code: str, status: int | None = None) -> OpttyError:
    try:
        err = ERROR_CODES[code]()
    except KeyError:
        raise ValueError(
            f"unknown Optty error code {code!r}; expected one of {sorted(ERROR_CODE_NAMES)}"
        ) from None
    if status is not None:
        err.status = status
    return err
