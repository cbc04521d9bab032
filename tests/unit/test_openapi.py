"""Specs are loaded once: every operation routed to a handler, static paths preferred."""

from __future__ import annotations

from decimal import Decimal

from mock_server.core.openapi import Spec, to_json_schema
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
