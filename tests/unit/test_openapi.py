"""Specs are loaded once: every operation routed to a handler, static paths preferred."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mock_server.core.openapi import Spec, _not_multiple, json_text, to_json_schema
from mock_server.resources import spec_path


def _spec(name: str) -> Spec:
    return Spec.load(name, spec_path(name))


def test_every_documented_operation_has_a_handler() -> None:
    from mock_server.app import create_app
    app = create_app()
    for provider in app.providers:
        assert set(provider.spec.operations) == set(provider.handlers)


def test_routes_match_templates_with_parameters() -> None:
    found = _spec("afterpay").match("/v2/payments/123/refund")
    assert found is not None
    operation = found.operation("POST")
    assert operation is not None and operation.operation_id == "createRefund"
    assert found.params == {"orderId": "123"}
    assert found.operation("GET") is None and found.allowed == ["POST"]


def test_static_segments_win_over_parameters() -> None:
    spec = Spec("x", {"paths": {
        "/a/{id}": {"get": {"operationId": "byId", "responses": {}}},
        "/a/static": {"get": {"operationId": "static", "responses": {}}}}})
    found = spec.match("/a/static")
    assert found is not None and found.operation("GET").operation_id == "static"  # type: ignore[union-attr]


def test_the_first_segment_index_finds_what_a_scan_finds() -> None:
    templates = ["/", "/a", "/a/{id}", "/a/static", "/{tenant}/a", "/{tenant}/{id}", "/b/{x}/c"]
    spec = Spec("x", {"paths": {
        t: {"get": {"operationId": f"op{i}", "responses": {}}} for i, t in enumerate(templates)}})

    def scan(path: str) -> str | None:
        for entry in spec._paths:  # every template in precedence order, as before the index
            if entry.regex.match(path):
                return entry.template
        return None

    for path in ["/", "/a", "/a/1", "/a/static", "/t/a", "/t/9", "/b/1/c", "/b/1", "/zzz",
                 "/a/1/2", "//", "/t/a/", ""]:
        found = spec.match(path)
        assert (found.entry.template if found else None) == scan(path), path


def test_nullable_becomes_a_null_type() -> None:
    assert to_json_schema({"type": "string", "nullable": True}) == {"type": ["string", "null"]}


def test_request_validator_uses_exact_decimal_multiples() -> None:
    operation = _spec("optty").operations["RefundsController_refundOrder"]
    body = {"refundReference": "r", "refundDescription": "d",
            "refundAmount": {"amount": Decimal("17.17"), "currency": "AUD"}}
    assert operation.validate_body(body) == []
    body["refundAmount"] = {"amount": Decimal("17.171"), "currency": "AUD"}
    violations = operation.validate_body(body)
    assert [v.dotted for v in violations] == ["refundAmount.amount"]


@pytest.mark.parametrize(("number", "step", "multiple"), [
    (Decimal("1E+26"), 0.01, True), (Decimal("1E+308"), 0.01, True),
    (Decimal("1.2345678901234568E+29"), 0.01, True), (Decimal("17.17"), 0.01, True),
    (Decimal("17.171"), 0.01, False), (Decimal("1E-400"), 0.01, False), (Decimal("-0.02"), 0.01, True),
    (Decimal(0), 0.01, True), (6, 2, True), (5, 2, False), (10, Decimal("2.5"), True),
    (11, Decimal("2.5"), False), (Decimal("0.5"), Decimal("0.25"), True),
    (10**40, 3, False), (3 * 10**40, 3, True), (Decimal("Infinity"), 0.01, False),
])
def test_multiples_are_exact_for_numbers_of_any_size(number: object, step: object,
                                                     multiple: bool) -> None:
    # Decimal's % raises InvalidOperation beyond 28 digits of quotient: 1e26 is still a multiple
    assert _not_multiple(number, step) is not multiple


def test_a_huge_amount_that_is_a_multiple_passes_the_schema() -> None:
    operation = _spec("optty").operations["RefundsController_refundOrder"]
    body = {"refundReference": "r", "refundDescription": "d",
            "refundAmount": {"amount": Decimal("1E+26"), "currency": "AUD"}}
    assert operation.validate_body(body) == []


@pytest.mark.parametrize(("value", "text"), [
    (None, "null"), (True, "true"), (False, "false"), ("x'y", '"x\'y"'), (Decimal("1E+26"), "1e+26"),
    (float("inf"), "Infinity"), (10, "10"), ({"a": 1}, "an object"), ([1], "an array")])
def test_values_in_messages_are_written_as_json(value: object, text: str) -> None:
    assert json_text(value) == text


def test_violations_are_described_without_python_text() -> None:
    spec = Spec("x", {"paths": {"/a": {"post": {"operationId": "a", "responses": {},
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "required": ["n", "s"],
            "properties": {"n": {"type": "number", "maximum": 5, "multipleOf": 0.5},
                           "s": {"type": "string", "enum": ["a", "b"]},
                           "b": {"type": "boolean"}}}}}}}}}})
    operation = spec.operations["a"]
    cases = [({"s": "a"}, 'missing required field "n"'),
             ({"n": None, "s": "a"}, "must be a number, not null"),
             ({"n": Decimal("1E+26"), "s": "a"}, "must be at most 5, not 1e+26"),
             ({"n": Decimal("0.3"), "s": "a"}, "0.3 is not a multiple of 0.5"),
             ({"n": 1, "s": "c"}, '"c" is not one of "a", "b"'),
             ({"n": 1, "s": "a", "b": None}, "must be a boolean, not null"),
             ({"n": 1, "s": "a", "x": 1}, 'unknown field "x"')]
    for body, described in cases:
        violations = operation.validate_body(body)
        assert [v.describe() for v in violations] == [described], body
        for violation in violations:
            for python in ("None", "Decimal(", "'", "True", "False"):
                assert python not in violation.describe()
