"""class-validator's verdicts on refund and token bodies, in NestJS's wording and order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mock_server.optty.errors import BadRequest
from mock_server.optty.jsonparse import parse_json
from mock_server.optty.validation import (
    MAX_NESTED_ARRAY_DEPTH,
    WARN_DEEP_ARRAYS,
    WARN_NUMBER_CRASH,
    OrderRefund,
    TokenRequest,
    validate_refund,
    validate_token_request,
)

VALID = {
    "refundReference": "TgEHcPtpN2HSrTMK-0",
    "refundAmount": {"amount": 100, "currency": "AUD"},
    "refundDescription": "Please refund this order",
}

MISSING_ALL = [
    "refundReference should not be empty",
    "refundReference must be a string",
    "refundAmount must be an object",
    "refundDescription must be a string",
]


def body(**changes: Any) -> dict[str, Any]:
    merged = {**VALID, **changes}
    return {key: value for key, value in merged.items() if value is not DROP}


def amount(**changes: Any) -> dict[str, Any]:
    merged = {**VALID["refundAmount"], **changes}  # type: ignore[dict-item]
    return {key: value for key, value in merged.items() if value is not DROP}


DROP = object()


def messages_for(payload: Any) -> list[str] | str:
    with pytest.raises(BadRequest) as caught:
        validate_refund(payload)
    assert caught.value.status == 400
    return caught.value.message


# ---- accepted bodies -----------------------------------------------------------------------


def test_docs_sample_request_is_valid() -> None:
    assert validate_refund(VALID) == OrderRefund(
        refund_reference="TgEHcPtpN2HSrTMK-0",
        amount=Decimal("100"),
        currency="AUD",
        description="Please refund this order",
        activated_via_oauth=False,
    )


def test_amount_with_two_decimals_is_exact() -> None:
    refund = validate_refund(parse_json(
        b'{"refundReference":"r","refundAmount":{"amount":24.98,"currency":"AUD"},'
        b'"refundDescription":"d"}'
    ))
    assert refund.amount == Decimal("24.98")


def test_amount_is_what_node_holds_trailing_zero_dropped() -> None:
    refund = validate_refund(body(refundAmount=amount(amount=Decimal("10.10"))))
    assert str(refund.amount) == "10.1"


def test_amount_digits_beyond_a_double_collapse_as_in_node() -> None:
    refund = validate_refund(body(refundAmount=amount(amount=Decimal("10.1000000000000000001"))))
    assert refund.amount == Decimal("10.1")


def test_is_activated_via_oauth_true_is_kept() -> None:
    assert validate_refund(body(isActivatedViaOAuth=True)).activated_via_oauth is True


def test_is_activated_via_oauth_null_counts_as_absent() -> None:
    assert validate_refund(body(isActivatedViaOAuth=None)).activated_via_oauth is False


def test_unknown_fields_are_tolerated() -> None:
    assert validate_refund(body(extra={"x": 1})).refund_reference == "TgEHcPtpN2HSrTMK-0"


def test_empty_description_is_allowed() -> None:
    assert validate_refund(body(refundDescription="")).description == ""


# ---- refused bodies: every message, in NestJS's order --------------------------------------


@pytest.mark.parametrize("payload", [{}, [], [VALID], None, "x", 5])
def test_anything_but_an_object_is_validated_as_an_empty_one(payload: Any) -> None:
    assert messages_for(payload) == MISSING_ALL


REFUSED = [
    (body(refundReference=DROP),
     ["refundReference should not be empty", "refundReference must be a string"]),
    (body(refundReference=""), ["refundReference should not be empty"]),
    (body(refundReference=None),
     ["refundReference should not be empty", "refundReference must be a string"]),
    (body(refundReference=123), ["refundReference must be a string"]),
    (body(refundAmount=DROP), ["refundAmount must be an object"]),
    (body(refundAmount=None),
     ["refundAmount must be an object",
      "nested property refundAmount must be either object or array"]),
    (body(refundAmount="100 AUD"),
     ["refundAmount must be an object",
      "nested property refundAmount must be either object or array"]),
    (body(refundAmount=[]), ["refundAmount must be an object"]),
    (body(refundAmount=[amount()]), ["refundAmount must be an object"]),
    # once the array has failing elements, NestJS drops the parent's own constraint
    (body(refundAmount=[5]),
     ["refundAmount.nested property refundAmount must be either object or array"]),
    (body(refundAmount=[{"currency": "AUD"}]),
     ["refundAmount.0.amount must be a positive number",
      "refundAmount.0.amount must be a number conforming to the specified constraints"]),
    (body(refundAmount={}),
     ["refundAmount.amount must be a positive number",
      "refundAmount.amount must be a number conforming to the specified constraints",
      "refundAmount.currency should not be empty",
      "refundAmount.currency must be a string"]),
    (body(refundAmount=amount(amount=0)), ["refundAmount.amount must be a positive number"]),
    (body(refundAmount=amount(amount=-5)), ["refundAmount.amount must be a positive number"]),
    (body(refundAmount=amount(amount="100")),
     ["refundAmount.amount must be a positive number",
      "refundAmount.amount must be a number conforming to the specified constraints"]),
    (body(refundAmount=amount(amount=True)),
     ["refundAmount.amount must be a positive number",
      "refundAmount.amount must be a number conforming to the specified constraints"]),
    (body(refundAmount=amount(amount=Decimal("10.005"))),
     ["refundAmount.amount must be a number conforming to the specified constraints"]),
    (body(refundAmount=amount(amount=Decimal("-0.001"))),
     ["refundAmount.amount must be a positive number",
      "refundAmount.amount must be a number conforming to the specified constraints"]),
    # 1.5e-7 prints as "1.5e-7": class-validator counts "5e-7" as four decimal places
    (body(refundAmount=amount(amount=Decimal("1.5E-7"))),
     ["refundAmount.amount must be a number conforming to the specified constraints"]),
    # JSON.parse makes 1e400 Infinity: positive, but not an allowed number
    (body(refundAmount=amount(amount=Decimal("1E+400"))),
     ["refundAmount.amount must be a number conforming to the specified constraints"]),
    (body(refundAmount=amount(amount=10**400)),
     ["refundAmount.amount must be a number conforming to the specified constraints"]),
    # ... and 1e-400 is 0
    (body(refundAmount=amount(amount=Decimal("1E-400"))),
     ["refundAmount.amount must be a positive number"]),
    (body(refundAmount=amount(currency=DROP)),
     ["refundAmount.currency should not be empty", "refundAmount.currency must be a string"]),
    (body(refundAmount=amount(currency="")), ["refundAmount.currency should not be empty"]),
    (body(refundAmount=amount(currency=36)), ["refundAmount.currency must be a string"]),
    (body(refundDescription=DROP), ["refundDescription must be a string"]),
    (body(refundDescription=["x"]), ["refundDescription must be a string"]),
    (body(isActivatedViaOAuth="true"), ["isActivatedViaOAuth must be a boolean value"]),
    (body(isActivatedViaOAuth=1), ["isActivatedViaOAuth must be a boolean value"]),
]


@pytest.mark.parametrize(("payload", "expected"), REFUSED)
def test_refused_body_messages(payload: dict[str, Any], expected: list[str]) -> None:
    assert messages_for(payload) == expected


def test_messages_follow_property_declaration_order() -> None:
    payload = {"isActivatedViaOAuth": "no", "refundDescription": 1, "refundReference": 2,
               "refundAmount": {"currency": 3, "amount": 0}}
    assert messages_for(payload) == [
        "refundReference must be a string",
        "refundAmount.amount must be a positive number",
        "refundAmount.currency must be a string",
        "refundDescription must be a string",
        "isActivatedViaOAuth must be a boolean value",
    ]


def test_refusal_renders_as_a_nestjs_bad_request() -> None:
    with pytest.raises(BadRequest) as caught:
        validate_refund(body(refundAmount=amount(amount=0)))
    assert caught.value.body() == {
        "statusCode": 400,
        "message": ["refundAmount.amount must be a positive number"],
        "error": "Bad Request",
    }


def test_fraction_node_prints_without_a_dot_is_a_400_with_a_warning() -> None:
    # (1e-7).toString() is "1e-7": isNumber's split('.')[1].length would throw a TypeError (a
    # 500 in the real API); the sandbox refuses the number and says why in a warning.
    with pytest.raises(BadRequest) as caught:
        validate_refund(body(refundAmount=amount(amount=Decimal("1E-7"))))
    assert caught.value.message == [
        "refundAmount.amount must be a number conforming to the specified constraints"]
    assert caught.value.warnings == [WARN_NUMBER_CRASH.format(property="refundAmount.amount")]


def test_arrays_nested_too_deep_stop_the_walk_with_a_warning() -> None:
    deep: object = [1]
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(BadRequest) as caught:
        validate_refund(body(refundAmount=deep))
    assert caught.value.message == ["refundAmount must be an object"]
    assert caught.value.warnings == [
        WARN_DEEP_ARRAYS.format(property="refundAmount", depth=MAX_NESTED_ARRAY_DEPTH)]


def test_arrays_within_the_depth_are_walked_element_by_element() -> None:
    with pytest.raises(BadRequest) as caught:
        validate_refund(body(refundAmount=[[5]]))
    assert caught.value.message == [
        "refundAmount.0.nested property refundAmount must be either object or array"]
    assert caught.value.warnings == []


# ---- POST /token form ----------------------------------------------------------------------

FORM = {
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "grant_type": "client_credentials",
    "scope": "api-user",
}


def token_messages(form: dict[str, str]) -> list[str] | str:
    with pytest.raises(BadRequest) as caught:
        validate_token_request(form)
    return caught.value.message


def test_token_form_is_valid() -> None:
    assert validate_token_request(FORM) == TokenRequest(
        "sandbox-client", "sandbox-secret", "client_credentials", "api-user"
    )


def test_plugins_response_type_field_is_tolerated() -> None:
    assert validate_token_request({**FORM, "response_type": "token"}).scope == "api-user"


def test_empty_token_form_lists_every_field() -> None:
    assert token_messages({}) == [
        "client_id should not be empty",
        "client_id must be a string",
        "client_secret should not be empty",
        "client_secret must be a string",
        "grant_type must be one of the following values: client_credentials",
        "scope must be one of the following values: api-user",
    ]


def test_blank_client_secret() -> None:
    assert token_messages({**FORM, "client_secret": ""}) == [
        "client_secret should not be empty"
    ]


def test_other_grant_type() -> None:
    assert token_messages({**FORM, "grant_type": "password"}) == [
        "grant_type must be one of the following values: client_credentials"
    ]


def test_other_scope() -> None:
    assert token_messages({**FORM, "scope": "admin"}) == [
        "scope must be one of the following values: api-user"
    ]
