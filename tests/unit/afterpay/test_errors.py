"""Tests for the Afterpay error classes, the error body and the fault-rule catalogue."""

from __future__ import annotations

import json

import pytest

from mock_server.afterpay import errors
from mock_server.afterpay.errors import (
    AfterpayError,
    BadGateway,
    Conflict,
    GatewayTimeout,
    InternalError,
    InvalidAmount,
    InvalidJson,
    InvalidObject,
    InvalidRequest,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RefundTimeLimitExceeded,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedCurrency,
    UnsupportedMediaType,
    error_body,
    error_for_code,
    render,
)

ERROR_ID = "0123456789abcdef"

# The reference's error tables: class, status, errorCode, default message.
CASES = [
    (NotFound, 404, "not_found", "Afterpay payment ID not found."),
    (Unauthorized, 401, "unauthorized", "Credentials are required to access this resource."),
    (InvalidJson, 400, "invalid_json", "The request contains improperly formatted JSON"),
    (InvalidRequest, 400, "invalid_request", "User-Agent header is required"),
    (MethodNotAllowed, 405, "method_not_allowed", "Method Not Allowed"),
    (NotAcceptable, 406, "error", "Not Acceptable"),
    (UnsupportedMediaType, 415, "error", "Unsupported Media Type"),
    (PayloadTooLarge, 413, "request_too_large", "Request body is too large"),
    (
        Conflict,
        409,
        "conflict",
        "Request is still being processed. Retry with the same requestId.",
    ),
    (PreconditionFailed, 412, "precondition_failed", "Payment is not eligible for a refund."),
    (InvalidAmount, 422, "invalid_amount", "Refund amount exceeded open to refund amount."),
    (
        RefundTimeLimitExceeded,
        422,
        "refund_timelimit_exceeded",
        "The refund exceeds the time limit of 120 days.",
    ),
    (InvalidObject, 422, "invalid_object", "amount.amount Amount field required"),
    (UnsupportedCurrency, 422, "unsupported_currency", "An error occurred"),
    (TooManyRequests, 429, "too_many_requests", "Too Many Requests"),
    (InternalError, 500, "error", "An error occurred processing your request"),
    (BadGateway, 502, "bad_gateway", "Bad Gateway"),
    (ServiceUnavailable, 503, "service_unavailable", "Service Unavailable"),
    (GatewayTimeout, 504, "gateway_timeout", "Gateway Timeout"),
    # the payment lifecycle (reference afterpay-lifecycle.md)
    (errors.InvalidToken, 402, "invalid_token",
     "Cannot complete payment, expired or invalid token."),
    (errors.OrderNotApproved, 412, "invalid_order_transaction_status",
     "Order has not been approved."),
    (errors.PaymentCaptured, 410, "payment_captured",
     "The payment has already been fully captured."),
    (errors.InvalidState, 412, "invalid_state", "Order is not approved."),
    (errors.PaymentVoided, 412, "payment_voided", "The auth was previously voided."),
    (errors.PaymentExpired, 412, "payment_expired", "The auth for this order has expired."),
    (errors.UnsupportedPaymentType, 422, "unsupported_payment_type", "Unsupported payment type"),
]


@pytest.mark.parametrize(("cls", "status", "code", "message"), CASES)
def test_error_class(cls: type[AfterpayError], status: int, code: str, message: str) -> None:
    err = cls()
    assert (err.status, err.code, err.message) == (status, code, message)
    assert str(err) == message


def test_every_error_class_is_catalogued() -> None:
    assert {case[0] for case in CASES} == set(errors.ERROR_CLASSES) | set(
        errors.LIFECYCLE_ERROR_CLASSES)


def test_instance_message_overrides_the_default() -> None:
    err = InvalidAmount(errors.AMOUNT_FORMAT_MESSAGE)
    assert err.message == "Amount must be a valid ISO 4217 format value"
    assert str(err) == err.message
    assert InvalidAmount().message == errors.REFUND_EXCEEDS_OPEN_AMOUNT_MESSAGE


def test_errors_are_exceptions() -> None:
    with pytest.raises(AfterpayError):
        raise NotFound()


def test_error_body_has_exactly_four_keys_in_order() -> None:
    body = error_body(NotFound(), ERROR_ID)
    assert list(body) == ["errorCode", "errorId", "message", "httpStatusCode"]
    assert body == {
        "errorCode": "not_found",
        "errorId": ERROR_ID,
        "message": "Afterpay payment ID not found.",
        "httpStatusCode": 404,
    }


def test_http_status_code_is_an_int() -> None:
    assert error_body(ServiceUnavailable(), ERROR_ID)["httpStatusCode"] == 503


@pytest.mark.sandbox_verified
def test_render_matches_the_recorded_shape() -> None:
    assert render(NotFound(), ERROR_ID) == (
        b'{\n  "errorCode" : "not_found",\n  "errorId" : "0123456789abcdef",\n'
        b'  "message" : "Afterpay payment ID not found.",\n  "httpStatusCode" : 404\n}'
    )


def test_render_uses_the_instance_message() -> None:
    body = json.loads(render(InvalidObject("amount.currency Currency field required"), ERROR_ID))
    assert body["message"] == "amount.currency Currency field required"


def test_error_code_names() -> None:
    assert errors.ERROR_CODE_NAMES == {case[2] for case in CASES}
    assert {"too_many_requests", "bad_gateway", "service_unavailable", "gateway_timeout"} <= (
        errors.ERROR_CODE_NAMES
    )


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [(case[2], case[1], case[3]) for case in CASES if case[2] != "error"]
    + [("error", 500, "An error occurred processing your request")],
)
def test_error_for_code_defaults(code: str, status: int, message: str) -> None:
    err = error_for_code(code)
    assert (err.status, err.code, err.message) == (status, code, message)


def test_error_for_code_with_a_status() -> None:
    err = error_for_code("service_unavailable", 500)
    assert (err.status, err.code) == (500, "service_unavailable")
    assert err.message == "Service Unavailable"
    # The class default is untouched.
    assert ServiceUnavailable.status == 503
    assert ServiceUnavailable().status == 503


@pytest.mark.parametrize(
    ("status", "cls", "message"),
    [
        (406, NotAcceptable, "Not Acceptable"),
        (415, UnsupportedMediaType, "Unsupported Media Type"),
        (500, InternalError, "An error occurred processing your request"),
        (502, InternalError, "An error occurred processing your request"),
    ],
)
def test_error_for_shared_code_picks_the_case_by_status(
    status: int, cls: type[AfterpayError], message: str
) -> None:
    err = error_for_code("error", status)
    assert isinstance(err, cls)
    assert (err.status, err.code, err.message) == (status, "error", message)


def test_error_for_unknown_code() -> None:
    with pytest.raises(ValueError, match="unknown Afterpay error code 'teapot'"):
        error_for_code("teapot")


@pytest.mark.parametrize("status", [200, 399, 600])
def test_error_for_code_rejects_a_non_error_status(status: int) -> None:
    with pytest.raises(ValueError, match="must be between 400 and 599"):
        error_for_code("service_unavailable", status)
