"""Tests for refund request parsing: the Money table, references, precedence and the echo."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.afterpay import requests as refund_requests
from mock_server.afterpay.errors import AfterpayError
from mock_server.afterpay.requests import (
    SUPPORTED_CURRENCIES,
    RefundRequest,
    parse_refund_request,
)

MERCHANT = frozenset({"AUD"})
_OMIT = object()

AMOUNT_REQUIRED = (422, "invalid_object", "amount.amount Amount field required")
AMOUNT_NOT_VALID = (
    422,
    "invalid_object",
    "amount.amount Amount field must be a valid ISO 4217 format value",
)
THOUSANDS = (422, "invalid_amount", "Amount must be a valid ISO 4217 format value")
CURRENCY_REQUIRED = (422, "invalid_object", "amount.currency Currency field required")
CURRENCY_NOT_SUPPORTED = (
    422,
    "invalid_object",
    "amount.currency Currency not supported for this merchant",
)
CURRENCY_NOT_MERCHANTS = (422, "unsupported_currency", "An error occurred")
NOT_POSITIVE = (422, "invalid_amount", "Refund amount must be greater than zero.")
INVALID_JSON = (400, "invalid_json", "The request contains improperly formatted JSON")


def _body(amount: Any = "10.00", currency: Any = "AUD", **fields: Any) -> dict[str, Any]:
    money: dict[str, Any] = {}
    if amount is not _OMIT:
        money["amount"] = amount
    if currency is not _OMIT:
        money["currency"] = currency
    return {"amount": money, **fields}


def _error(body: Any, merchant: frozenset[str] = MERCHANT) -> tuple[int, str, str]:
    with pytest.raises(AfterpayError) as caught:
        parse_refund_request(body, merchant)
    return caught.value.status, caught.value.code, caught.value.message


def test_message_constants() -> None:
    assert refund_requests.AMOUNT_REQUIRED == AMOUNT_REQUIRED[2]
    assert refund_requests.AMOUNT_NOT_VALID == AMOUNT_NOT_VALID[2]
    assert refund_requests.AMOUNT_THOUSANDS_SEPARATOR == THOUSANDS[2]
    assert refund_requests.CURRENCY_REQUIRED == CURRENCY_REQUIRED[2]
    assert refund_requests.CURRENCY_NOT_SUPPORTED == CURRENCY_NOT_SUPPORTED[2]
    assert refund_requests.AMOUNT_NOT_POSITIVE == NOT_POSITIVE[2]
    assert refund_requests.CURRENCY_MISMATCH == "amount.currency must match the payment currency"
    assert refund_requests.REQUEST_ID_TOO_LONG == "requestId size must be between 0 and 64"
    assert refund_requests.MERCHANT_REFERENCE_TOO_LONG == (
        "merchantReference size must be between 0 and 85"
    )
    assert refund_requests.REFUND_MERCHANT_REFERENCE_TOO_LONG == (
        "refundMerchantReference size must be between 0 and 128"
    )


def test_supported_currencies() -> None:
    assert SUPPORTED_CURRENCIES == {"AUD", "NZD", "USD", "CAD", "GBP", "EUR"}


# --- the Money table, row by row (docs), with every example value it gives ---


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        # amount omitted or null
        (_OMIT, AMOUNT_REQUIRED),
        (None, AMOUNT_REQUIRED),
        # amount with more than 2 decimals (Decision message)
        ("10.123", AMOUNT_NOT_VALID),
        ("10.100", AMOUNT_NOT_VALID),
        (Decimal("10.123"), AMOUNT_NOT_VALID),
        # amount with a thousands separator
        ("1,000", THOUSANDS),
        ("1,000.00", THOUSANDS),
        ("1,000,000.5", THOUSANDS),
        # amount not a decimal number
        ("FREE", AMOUNT_NOT_VALID),
        ("$2", AMOUNT_NOT_VALID),
        ("", AMOUNT_NOT_VALID),
    ],
)
def test_money_amount_rows(amount: Any, expected: tuple[int, str, str]) -> None:
    assert _error(_body(amount=amount)) == expected


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        # currency omitted or null
        (_OMIT, CURRENCY_REQUIRED),
        (None, CURRENCY_REQUIRED),
        # not a valid code, not upper case, or empty
        ("aud", CURRENCY_NOT_SUPPORTED),
        ("Aud", CURRENCY_NOT_SUPPORTED),
        ("", CURRENCY_NOT_SUPPORTED),
        ("XYZ", CURRENCY_NOT_SUPPORTED),
        ("US", CURRENCY_NOT_SUPPORTED),
        (" AUD", CURRENCY_NOT_SUPPORTED),
        # Decision: a real ISO 4217 code that Afterpay does not support
        ("JPY", CURRENCY_NOT_SUPPORTED),
        # Decision: a JSON number or boolean is coerced to its text
        (36, CURRENCY_NOT_SUPPORTED),
        (True, CURRENCY_NOT_SUPPORTED),
        # supported by Afterpay but not this merchant's
        ("USD", CURRENCY_NOT_MERCHANTS),
        ("NZD", CURRENCY_NOT_MERCHANTS),
        ("EUR", CURRENCY_NOT_MERCHANTS),
    ],
)
def test_money_currency_rows(currency: Any, expected: tuple[int, str, str]) -> None:
    assert _error(_body(currency=currency)) == expected


@pytest.mark.parametrize("currency", sorted(SUPPORTED_CURRENCIES))
def test_each_supported_currency_is_accepted_for_its_merchant(currency: str) -> None:
    request = parse_refund_request(_body(currency=currency), frozenset({currency}))
    assert request.currency == currency


# --- precedence: the Money table's order, then references, then the sign ---


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # each amount row outranks every currency row
        (_body(amount=_OMIT, currency=_OMIT), AMOUNT_REQUIRED),
        (_body(amount="10.123", currency="xyz"), AMOUNT_NOT_VALID),
        (_body(amount="1,000", currency=_OMIT), THOUSANDS),
        (_body(amount="1,000", currency="USD"), THOUSANDS),
        (_body(amount="FREE", currency=None), AMOUNT_NOT_VALID),
        # more than 2 decimals outranks the thousands separator
        (_body(amount="1,000.123"), AMOUNT_NOT_VALID),
        # a comma in something that is not a number is "not a decimal"
        (_body(amount="$1,000"), AMOUNT_NOT_VALID),
        # currency rows in order
        (_body(currency=None), CURRENCY_REQUIRED),
        (_body(currency="usd"), CURRENCY_NOT_SUPPORTED),
        # the whole Money table outranks the reference limits
        (_body(currency="USD", requestId="r" * 65), CURRENCY_NOT_MERCHANTS),
        (_body(amount="FREE", merchantReference="m" * 86), AMOUNT_NOT_VALID),
        # reference limits in the documented field order
        (
            _body(requestId="r" * 65, merchantReference="m" * 86),
            (422, "invalid_object", "requestId size must be between 0 and 64"),
        ),
        (
            _body(merchantReference="m" * 86, refundMerchantReference="x" * 129),
            (422, "invalid_object", "merchantReference size must be between 0 and 85"),
        ),
        # reference limits outrank the sign
        (
            _body(amount="0.00", refundMerchantReference="x" * 129),
            (422, "invalid_object", "refundMerchantReference size must be between 0 and 128"),
        ),
        # the sign is checked last: after the currency rows
        (_body(amount="-5.00", currency="USD"), CURRENCY_NOT_MERCHANTS),
        (_body(amount="-5.00", currency=None), CURRENCY_REQUIRED),
    ],
)
def test_precedence(body: dict[str, Any], expected: tuple[int, str, str]) -> None:
    assert _error(body) == expected


# --- amount forms (Decisions) ---


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("10.00", Decimal("10.00")),
        ("10.0", Decimal("10.00")),
        ("10", Decimal("10.00")),
        ("0.01", Decimal("0.01")),
        ("010.00", Decimal("10.00")),
        ("00.5", Decimal("0.50")),
        (10, Decimal("10.00")),
        (Decimal("10.5"), Decimal("10.50")),
        (Decimal("10.00"), Decimal("10.00")),
        ("1" * 40 + ".99", Decimal("1" * 40 + ".99")),
    ],
)
def test_accepted_amounts(amount: Any, expected: Decimal) -> None:
    request = parse_refund_request(_body(amount=amount), MERCHANT)
    assert request.amount == expected
    assert request.amount.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "amount",
    [
        "1e2",
        "1E2",
        "+10.00",
        " 10.00",
        "10.00 ",
        "10 .00",
        ".5",
        "10.",
        "-",
        "--5",
        "1.2.3",
        "١٠",  # Arabic-Indic digits are not ASCII digits
        "NaN",
        "Infinity",
        "0x10",
        "10.00AUD",
        Decimal("1E+2"),  # a JSON number written with an exponent, treated like its text
        True,
        False,
    ],
)
def test_amounts_that_are_not_decimals(amount: Any) -> None:
    assert _error(_body(amount=amount)) == AMOUNT_NOT_VALID


@pytest.mark.parametrize(
    "amount", ["0", "0.00", "-0.00", "-5.00", "-0.01", 0, -10, Decimal("-1.5")]
)
def test_zero_or_negative_amount(amount: Any) -> None:
    assert _error(_body(amount=amount)) == NOT_POSITIVE


# --- the Money object itself (Decisions) ---


@pytest.mark.parametrize(
    "body",
    [{}, {"amount": None}, {"amount": {}}, {"requestId": "r-1"}],
)
def test_missing_money_object_reads_as_amount_required(body: dict[str, Any]) -> None:
    assert _error(body) == AMOUNT_REQUIRED


@pytest.mark.parametrize("money", ["10.00", 10, Decimal("10.00"), ["10.00", "AUD"], True])
def test_money_that_is_not_an_object(money: Any) -> None:
    assert _error({"amount": money}) == INVALID_JSON


@pytest.mark.parametrize("field", ["amount", "currency"])
@pytest.mark.parametrize("value", [{}, {"value": "10.00"}, [], ["AUD"]])
def test_money_field_that_is_an_object_or_array(field: str, value: Any) -> None:
    assert _error(_body(**{field: value})) == INVALID_JSON


# --- the body itself (Decision) ---


@pytest.mark.parametrize("body", [[], [_body()], "refund", 10, Decimal("10.00"), True, None])
def test_body_that_is_not_an_object(body: Any) -> None:
    assert _error(body) == INVALID_JSON


def test_shape_errors_outrank_validation() -> None:
    # Jackson maps the whole body before any validation runs.
    assert _error(_body(amount=None, requestId={"id": 1})) == INVALID_JSON


def test_unknown_fields_are_tolerated() -> None:
    body = _body(extra=1, nested={"x": [1]})
    body["amount"]["extra"] = "ignored"
    assert parse_refund_request(body, MERCHANT).amount == Decimal("10.00")


# --- references ---


@pytest.mark.parametrize(
    ("field", "limit", "message"),
    [
        ("requestId", 64, "requestId size must be between 0 and 64"),
        ("merchantReference", 85, "merchantReference size must be between 0 and 85"),
        ("refundMerchantReference", 128, "refundMerchantReference size must be between 0 and 128"),
    ],
)
def test_reference_limits(field: str, limit: int, message: str) -> None:
    parse_refund_request(_body(**{field: "a" * limit}), MERCHANT)
    assert _error(_body(**{field: "a" * (limit + 1)})) == (422, "invalid_object", message)


def test_reference_length_counts_utf16_units() -> None:
    # 32 emoji are 64 Java chars: at the limit; one more character is over it.
    parse_refund_request(_body(requestId="😀" * 32), MERCHANT)
    over = _error(_body(requestId="😀" * 32 + "a"))
    assert over == (422, "invalid_object", "requestId size must be between 0 and 64")
    parse_refund_request(_body(requestId="é" * 64), MERCHANT)


@pytest.mark.parametrize("field", ["requestId", "merchantReference", "refundMerchantReference"])
def test_null_reference_is_absent(field: str) -> None:
    request = parse_refund_request(_body(**{field: None}), MERCHANT)
    assert field not in request.echo()


def test_empty_reference_is_kept() -> None:
    request = parse_refund_request(_body(requestId=""), MERCHANT)
    assert request.request_id == ""
    assert request.echo()["requestId"] == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [(123, "123"), (Decimal("1.50"), "1.50"), (True, "true"), (False, "false")],
)
def test_scalar_reference_is_coerced_to_text(value: Any, text: str) -> None:
    request = parse_refund_request(_body(merchantReference=value), MERCHANT)
    assert request.merchant_reference == text


@pytest.mark.parametrize("field", ["requestId", "merchantReference", "refundMerchantReference"])
@pytest.mark.parametrize("value", [{"id": 1}, [], ["a"]])
def test_object_or_array_reference(field: str, value: Any) -> None:
    assert _error(_body(**{field: value})) == INVALID_JSON


# --- the parsed request and its echo ---


def test_full_request() -> None:
    body = {
        "requestId": "49efce77-4bf2-4e41-86e8-c2b92f493c2a",
        "amount": {"amount": "10.00", "currency": "AUD"},
        "merchantReference": "merchantRefundId-1234",
        "refundMerchantReference": "merchantRefundId-1234",
    }
    assert parse_refund_request(body, MERCHANT) == RefundRequest(
        amount=Decimal("10.00"),
        currency="AUD",
        request_id="49efce77-4bf2-4e41-86e8-c2b92f493c2a",
        merchant_reference="merchantRefundId-1234",
        refund_merchant_reference="merchantRefundId-1234",
    )


# recorded (afterpay-ruby spec/vcr _list_payments, June 2021): the Refund object's key order
RECORDED_REFUND_ORDER = ["requestId", "amount", "merchantReference", "refundId", "refundedAt",
                         "refundMerchantReference"]


def test_echo_is_in_the_recorded_refund_order() -> None:
    body = {
        "requestId": "req-1",
        "refundMerchantReference": "rmr-1",
        "merchantReference": "mr-1",
        "amount": {"currency": "AUD", "amount": "10.00"},
    }
    echo = parse_refund_request(body, MERCHANT).echo()
    assert list(echo) == ["requestId", "amount", "merchantReference", "refundMerchantReference"]
    assert list(echo["amount"]) == ["amount", "currency"]


@pytest.mark.sandbox_verified
def test_echo_of_the_recorded_request() -> None:
    # recorded: {"amount": {"amount": "10.0", "currency": "USD"}} with null references
    body = {
        "amount": {"amount": "10.0", "currency": "USD"},
        "requestId": None,
        "merchantReference": None,
        "refundMerchantReference": None,
    }
    echo = parse_refund_request(body, frozenset({"USD"})).echo()
    assert echo == {"amount": {"amount": "10.00", "currency": "USD"}}


@pytest.mark.sandbox_verified
def test_refund_body_is_in_the_recorded_refund_order() -> None:
    body = {
        "requestId": "49efce77-4bf2-4e41-86e8-c2b92f493c2a",
        "amount": {"amount": "10.00", "currency": "AUD"},
        "merchantReference": "merchantRefundId-1234",
        "refundMerchantReference": "merchantRefundId-1234",
    }
    refund = parse_refund_request(body, MERCHANT).refund_body(
        "67890123", "2023-01-01T00:00:00.000Z"
    )
    # the docs' example lists these keys alphabetically; the recordings do not (fidelity notes)
    assert list(refund) == RECORDED_REFUND_ORDER
    assert refund["refundId"] == "67890123"
    assert refund["refundedAt"] == "2023-01-01T00:00:00.000Z"


@pytest.mark.sandbox_verified
def test_refund_body_of_the_recorded_response() -> None:
    request = parse_refund_request(
        {"amount": {"amount": "10.0", "currency": "USD"}}, frozenset({"USD"})
    )
    refund = request.refund_body("1934419", "2021-08-25T14:56:33.753Z")
    assert json.dumps(refund, separators=(",", ":")) == (
        '{"amount":{"amount":"10.00","currency":"USD"},"refundId":"1934419",'
        '"refundedAt":"2021-08-25T14:56:33.753Z"}'
    )


def test_request_is_frozen() -> None:
    request = parse_refund_request(_body(), MERCHANT)
    with pytest.raises(AttributeError):
        request.currency = "USD"  # type: ignore[misc]


def test_merchant_currencies_may_be_any_collection() -> None:
    assert parse_refund_request(_body(currency="NZD"), ["AUD", "NZD"]).currency == "NZD"


# --- property: string and JSON-number forms agree ---


@given(
    st.decimals(
        min_value=Decimal("0.01"),
        max_value=Decimal(10**9),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_string_and_number_forms_parse_alike(value: Decimal) -> None:
    text = format(value, "f")
    # The number as the JSON decoder hands it over (int, or Decimal from the literal).
    number = json.loads(text, parse_float=Decimal)
    from_text = parse_refund_request(_body(amount=text), MERCHANT)
    from_number = parse_refund_request(_body(amount=number), MERCHANT)
    assert from_text == from_number
    assert from_text.amount == value
    echoed = from_text.echo()["amount"]["amount"]
    assert echoed == format(value.quantize(Decimal("0.01")), "f")
    assert len(echoed.split(".")[1]) == 2


@pytest.mark.parametrize("request_id", [None, "r-1"])
@pytest.mark.parametrize("merchant_reference", [None, "m-1"])
@pytest.mark.parametrize("refund_merchant_reference", [None, "rm-1"])
def test_the_refund_body_is_the_echo_plus_ids_in_the_recorded_order(
        request_id: str | None, merchant_reference: str | None,
        refund_merchant_reference: str | None) -> None:
    request = refund_requests.RefundRequest(Decimal("10.00"), "AUD", request_id, merchant_reference,
                            refund_merchant_reference)
    body = request.refund_body("1934419", "2026-11-01T09:00:00.123Z")
    assert body == request.echo() | {"refundId": "1934419",
                                     "refundedAt": "2026-11-01T09:00:00.123Z"}
    assert list(body) == [key for key in RECORDED_REFUND_ORDER if key in body]
