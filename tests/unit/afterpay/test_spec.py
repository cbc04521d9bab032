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
