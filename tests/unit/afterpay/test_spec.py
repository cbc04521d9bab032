"""openapi/afterpay.yaml agrees with what the sandbox does: its error examples are the
catalogue's errors, and its amount pattern accepts exactly the amounts the sandbox accepts."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from mock_server.afterpay import errors, requests
from mock_server.afterpay.errors import AfterpayError
from mock_server.afterpay.requests import JsonNumber, parse_refund_request
from mock_server.core.openapi import Spec, _resolve
from mock_server.resources import spec_path


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    spec = Spec.load("afterpay", spec_path("afterpay"))
    resolved: dict[str, Any] = _resolve(spec.document, spec.document)
    return resolved


def _error_examples(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for response in document["components"]["responses"].values():
        media = response["content"]["application/json"]
        if "example" in media:
            found.append(media["example"])
        for example in (media.get("examples") or {}).values():
            found.append(example["value"])
    return found


KNOWN_MESSAGES = {
    value for name, value in vars(errors).items() if name.endswith("_MESSAGE")
} | {value for name, value in vars(requests).items() if isinstance(value, str)
     and name.isupper()} | {"token may not be empty"}


def test_every_error_example_is_one_the_sandbox_gives(document) -> None:
    examples = _error_examples(document)
    assert len(examples) > 15
    by_code = {(cls.code, cls.status) for cls in (*errors.ERROR_CLASSES,
                                                   *errors.LIFECYCLE_ERROR_CLASSES)}
    for example in examples:
        assert list(example) == ["errorCode", "errorId", "message", "httpStatusCode"]
        assert (example["errorCode"], example["httpStatusCode"]) in by_code, example
        assert re.fullmatch(r"[0-9a-f]{16}", example["errorId"]), example
        message = example["message"]
        assert message in KNOWN_MESSAGES or re.fullmatch(
            r"(requestId|merchantReference|refundMerchantReference) size must be between 0 "
            r"and [0-9]+", message), example


def _accepted(amount: Any) -> bool:
    body = {"amount": {"amount": amount, "currency": "AUD"}}
    try:
        parse_refund_request(body, ["AUD"])
    except AfterpayError:
        return False
    return True


AMOUNTS = ["10.00", "10.0", "10", "0.01", "0.10", "0.1", "00.05", "010.00", "1", "999999.99",
           "0", "0.00", "0.0", "00", "-1.00", "10.123", "1,000", ".5", "10.", "+1", "1e2", "",
           " 1", "FREE", "0.001", "100.50"]


@pytest.mark.parametrize("amount", AMOUNTS)
def test_amount_string_pattern_matches_the_sandbox(document, amount: str) -> None:
    money = document["components"]["schemas"]["Money"]["properties"]["amount"]
    pattern = money["anyOf"][0]["pattern"]
    assert (re.search(pattern, amount) is not None) == _accepted(amount)


@pytest.mark.parametrize("number", ["10", "10.5", "0.01", "0", "-1", "10.123", "1e2"])
def test_amount_number_rule_matches_the_sandbox(document, number: str) -> None:
    rule = document["components"]["schemas"]["Money"]["properties"]["amount"]["anyOf"][1]
    assert rule["minimum"] == 0 and rule["exclusiveMinimum"] is True
    plain = re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", number) is not None
    in_schema = plain and Decimal(number) > 0 and Decimal(number) % Decimal("0.01") == 0
    assert in_schema == _accepted(JsonNumber(number))


# -- the headers every operation declares ------------------------------------------------------

def _parameter(document: dict[str, Any], operation: str, name: str) -> dict[str, Any]:
    for path in document["paths"].values():
        for op in path.values():
            if isinstance(op, dict) and op.get("operationId") == operation:
                found = [p for p in op.get("parameters", []) if p["name"] == name]
                assert found, f"{operation} does not declare {name}"
                return dict(found[0])
    raise AssertionError(operation)


@pytest.mark.parametrize("operation", ["createRefund", "getPayment", "ping"])
def test_user_agent_is_declared_required(document: dict[str, Any], operation: str) -> None:
    # docs (the seed): "User-Agent string Required" on every call
    assert _parameter(document, operation, "User-Agent")["required"] is True


@pytest.mark.parametrize("operation", ["createRefund", "getPayment"])
def test_accept_is_optional_with_the_json_pattern_and_406(document: dict[str, Any],
                                                          operation: str) -> None:
    from mock_server.afterpay.handlers import ACCEPT_JSON_PATTERN

    accept = _parameter(document, operation, "Accept")
    assert accept["required"] is False
    assert accept["schema"]["default"] == "application/json"  # docs: "Defaults to"
    assert accept["schema"]["pattern"] == ACCEPT_JSON_PATTERN  # the very test the handler runs
    op = next(op for path in document["paths"].values() for op in path.values()
              if isinstance(op, dict) and op.get("operationId") == operation)
    assert "406" in op["responses"]


@pytest.mark.parametrize(("accept", "json"), [
    ("", True), ("  ", True), ("application/json", True), ("APPLICATION/Json", True),
    ("application/*", True), ("*/*", True), ("application/problem+json", True),
    ("text/html, application/json;q=0.9", True), ("application/json;charset=utf-8", True),
    (" application/json ", True), ("application/json;q=0.001", True),
    ("application/json;q=0, */*;q=0.1", True),
    ("text/html", False), ("text/*", False), ("application/jsonx", False),
    ("application/json;q=0", False), ("application/json; Q = 0.000", False),
    ("text/plain, application/json;q=0", False), ("xapplication/json", False),
])
def test_the_accept_pattern_admits_exactly_json_ranges(accept: str, json: bool) -> None:
    from mock_server.afterpay.handlers import ACCEPT_JSON_PATTERN, accepts_json

    # JSON Schema's pattern is a search (unanchored), as jsonschema and ECMA-262 apply it
    assert (re.search(ACCEPT_JSON_PATTERN, accept) is not None) is json
    assert accepts_json(accept) is json
