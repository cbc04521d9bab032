"""The compiled quick check never accepts what the request validator refuses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.core.openapi import RequestValidator, Spec, quick_check
from mock_server.resources import spec_path

SPECS = {name: Spec.load(name, spec_path(name)) for name in ("admin", "afterpay", "optty")}
OPERATIONS = [op for spec in SPECS.values() for op in spec.operations.values()
              if op._validator is not None]

# the field names the specs use, so generated objects reach the nested schemas
NAMES = sorted({"amount", "currency", "requestId", "merchantReference",
                "refundMerchantReference", "refundReference", "reason", "grant_type",
                "client_id", "client_secret", "now", "seconds", "minutes", "hours", "days",
                "name", "afterpay", "optty", "faults", "surcharge", "x"})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**20),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.decimals("-1000", "1000", places=3),
    st.sampled_from(["10.00", "1,000.00", "AUD", "aud", "", "10.123", "-1", "JPY", "x" * 90,
                     "client_credentials", "2026-01-01T00:00:00Z"]),
    st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(NAMES), inner, max_size=5)),
    max_leaves=12)


def accepted_by_validator(validator: Any, value: Any) -> bool:
    return next(iter(validator.iter_errors(value)), None) is None


def test_the_refund_schema_is_compiled() -> None:
    refund = SPECS["afterpay"].operations["createRefund"]
    assert refund._quick is not None
    body = {"requestId": "r-1", "merchantReference": "m-1",
            "amount": {"amount": "10.00", "currency": "AUD"}}
    assert refund._quick(body) is True


@pytest.mark.parametrize("body", [
    {"amount": {"amount": "10.001", "currency": "AUD"}},
    {"amount": {"amount": Decimal("10.001"), "currency": "AUD"}},
    {"amount": {"currency": "AUD"}},
    {"amount": {"amount": "10.00", "currency": "AUD"}, "requestId": "r" * 65},
    {"amount": {"amount": Decimal("-1"), "currency": "AUD"}},
    {"requestId": "r-1"},
    ["not", "an", "object"],
])
def test_a_refund_body_the_validator_refuses_is_never_passed_quickly(body: Any) -> None:
    refund = SPECS["afterpay"].operations["createRefund"]
    assert not accepted_by_validator(refund._validator, body)
    assert refund._quick is not None and refund._quick(body) is False
    assert refund.validate_body(body)  # the violations still come from the validator


@pytest.mark.parametrize("schema", [
    {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    {"not": {"type": "string"}},
    {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
    {"type": "array", "uniqueItems": True},
])
def test_keywords_it_does_not_compile_leave_the_validator_alone(schema: dict[str, Any]) -> None:
    assert quick_check(schema) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values, index=st.integers(0, len(OPERATIONS) - 1))
def test_quick_yes_implies_the_validator_finds_nothing(value: Any, index: int) -> None:
    operation = OPERATIONS[index]
    if operation._quick is not None and operation._quick(value):
        assert accepted_by_validator(operation._validator, value)


@st.composite
def near_bounds(draw: st.DrawFn) -> tuple[Any, Decimal, int]:
    """A value that is often exactly at, just over or just under the drawn bound or length."""
    bound = draw(st.decimals(-5, 5, places=2))
    length = draw(st.integers(0, 4))
    step = Decimal("0.01")
    edge = draw(st.sampled_from([
        bound, bound + step, bound - step, int(bound), "a" * length, "a" * (length + 1),
        "a" * max(length - 1, 0), [1] * length, [1] * (length + 1), [1.5],
        dict.fromkeys(NAMES[:length], 1), dict.fromkeys(NAMES[:length + 1], 1)]))
    return draw(st.one_of(st.just(edge), values)), bound, length


@settings(max_examples=400, deadline=None)
@given(case=near_bounds(), exclusive=st.booleans())
def test_compiled_keywords_agree_with_the_validator(case: tuple[Any, Decimal, int],
                                                    exclusive: bool) -> None:
    value, bound, length = case
    # each compiled keyword says exactly what the validator says for instances it decides
    schemas: list[dict[str, Any]] = [
        {"type": ["string", "null"]}, {"type": "integer"}, {"type": "number"},
        {"minimum": float(bound), "exclusiveMinimum": exclusive},
        {"maximum": float(bound), "exclusiveMaximum": exclusive},
        {"multipleOf": 0.01}, {"minLength": length}, {"maxLength": length},
        {"pattern": "^[A-Z]{3}$"}, {"required": ["amount"]},
        {"properties": {"amount": {"type": "string"}}, "additionalProperties": False},
        {"additionalProperties": {"type": "string"}}, {"items": {"type": "integer"}},
        {"minItems": length}, {"maxItems": length}, {"minProperties": length},
        {"maxProperties": length}, {"anyOf": [{"type": "string"}, {"minimum": 0}]},
        {"allOf": [{"type": "number"}, {"minimum": 0}]}, {"enum": ["AUD", "NZD", None]},
    ]
    for schema in schemas:
        quick = quick_check(schema)
        assert quick is not None
        accepted = accepted_by_validator(RequestValidator(schema), value)
        if "enum" in schema and not isinstance(value, str):
            assert not quick(value)  # left to the validator
        else:
            assert quick(value) == accepted, schema
