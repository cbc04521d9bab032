"""Optty errors: NestJS's body shapes, key order and bytes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mock_server.optty import errors
from mock_server.optty.errors import (
    ERROR_CODE_NAMES,
    BadRequest,
    InternalError,
    NotFound,
    PayloadTooLarge,
    RouteNotFound,
    ServiceUnavailable,
    StatusError,
    TooManyRequests,
    Unauthorized,
    error_for_code,
    render,
)


def test_bad_request_with_message_has_error_field_last() -> None:
    body = BadRequest("Refund reference already exists").body()
    assert list(body.items()) == [
        ("statusCode", 400),
        ("message", "Refund reference already exists"),
        ("error", "Bad Request"),
    ]


def test_bad_request_carries_a_message_list() -> None:
    body = BadRequest(["a must be a string", "b should not be empty"]).body()
    assert body["message"] == ["a must be a string", "b should not be empty"]


def test_bad_request_without_message_is_nests_bare_exception() -> None:
    assert BadRequest().body() == {"statusCode": 400, "message": "Bad Request"}


def test_unauthorized_has_no_error_field() -> None:
    assert render(Unauthorized()) == b'{"statusCode":401,"message":"Unauthorized"}'


def test_unknown_order_is_bare_not_found() -> None:
    assert render(NotFound()) == b'{"statusCode":404,"message":"Not Found"}'


def test_route_not_found_names_method_and_url() -> None:
    assert render(RouteNotFound("POST", "/x")) == (
        b'{"statusCode":404,"message":"Cannot POST /x","error":"Not Found"}'
    )


def test_payload_too_large_is_body_parsers_http_error() -> None:
    assert render(PayloadTooLarge()) == (
        b'{"statusCode":413,"message":"request entity too large"}'
    )


def test_too_many_requests_is_throttler_exception() -> None:
    assert render(TooManyRequests()) == (
        b'{"statusCode":429,"message":"ThrottlerException: Too Many Requests"}'
    )


def test_internal_error_body() -> None:
    assert render(InternalError()) == b'{"statusCode":500,"message":"Internal server error"}'


def test_service_unavailable_body() -> None:
    assert render(ServiceUnavailable()) == b'{"statusCode":503,"message":"Service Unavailable"}'


def test_status_error_uses_the_reason_phrase() -> None:
    assert StatusError(422).body() == {"statusCode": 422, "message": "Unprocessable Entity"}


def test_render_keeps_non_ascii_as_utf8() -> None:
    assert render(BadRequest("Unexpected token é in JSON at position 1")) == (
        '{"statusCode":400,"message":"Unexpected token é in JSON at position 1",'
        '"error":"Bad Request"}'
    ).encode()


def test_render_escapes_a_lone_surrogate_like_json_stringify() -> None:
    rendered = render(BadRequest("Unexpected token \ud83d in JSON at position 0"))
    assert rendered == (
        b'{"statusCode":400,"message":"Unexpected token \\ud83d in JSON at position 0",'
        b'"error":"Bad Request"}'
    )


def test_over_refund_quotes_what_is_left_with_two_decimals() -> None:
    err = errors.over_refund("AUD", Decimal("24.98"))
    assert err.body() == {
        "statusCode": 400,
        "message": "You can only refund amount up to AUD 24.98",
        "error": "Bad Request",
    }


@pytest.mark.parametrize(
    ("remaining", "shown"),
    [(Decimal("25"), "25.00"), (Decimal("0"), "0.00"), (Decimal("-0"), "0.00"),
     (Decimal("1.5"), "1.50"), (Decimal("1E+3"), "1000.00")],
)
def test_over_refund_always_shows_two_decimals(remaining: Decimal, shown: str) -> None:
    assert errors.over_refund("AUD", remaining).message == (
        f"You can only refund amount up to AUD {shown}"
    )


def test_currency_mismatch_message() -> None:
    assert errors.currency_mismatch("AUD").message == (
        "Refund currency must match order currency AUD"
    )


def test_duplicate_reference_message() -> None:
    assert errors.duplicate_reference().message == "Refund reference already exists"


def test_partial_refund_not_supported_message() -> None:
    assert errors.partial_refund_not_supported("KLARNA_AU").message == (
        "Partial refund is not supported for KLARNA_AU"
    )


def test_not_eligible_message() -> None:
    assert errors.not_eligible().message == "Order is not eligible for refund"


def test_business_errors_are_bad_requests() -> None:
    assert errors.not_eligible().status == 400


@pytest.mark.parametrize(
    ("code", "body"),
    [
        ("bad_request", {"statusCode": 400, "message": "Bad Request"}),
        ("unauthorized", {"statusCode": 401, "message": "Unauthorized"}),
        ("not_found", {"statusCode": 404, "message": "Not Found"}),
        ("payload_too_large", {"statusCode": 413, "message": "request entity too large"}),
        ("too_many_requests",
         {"statusCode": 429, "message": "ThrottlerException: Too Many Requests"}),
        ("internal_error", {"statusCode": 500, "message": "Internal server error"}),
        ("service_unavailable", {"statusCode": 503, "message": "Service Unavailable"}),
        ("bad_gateway", {"statusCode": 502, "message": "Bad Gateway"}),
        ("gateway_timeout", {"statusCode": 504, "message": "Gateway Timeout"}),
    ],
)
def test_error_code_default_body(code: str, body: dict[str, object]) -> None:
    assert error_for_code(code).body() == body


def test_error_code_catalogue_names_every_code() -> None:
    assert ERROR_CODE_NAMES == {
        "bad_request", "unauthorized", "not_found", "payload_too_large", "too_many_requests",
        "internal_error", "service_unavailable", "bad_gateway", "gateway_timeout",
    }


def test_error_code_with_explicit_status_changes_status_code_only() -> None:
    err = error_for_code("service_unavailable", 500)
    assert (err.status, err.body()) == (
        500, {"statusCode": 500, "message": "Service Unavailable"}
    )


def test_explicit_status_does_not_leak_into_the_class() -> None:
    error_for_code("service_unavailable", 500)
    assert ServiceUnavailable().status == 503


def test_unknown_error_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Optty error code 'teapot'"):
        error_for_code("teapot")
