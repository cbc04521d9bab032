"""A JSON scenario's syntax errors are reported as JSON errors, at JSON's line and column."""

from __future__ import annotations

import pytest

from mock_server.core.scenarios import ScenarioError, parse_scenario

TRAILING_COMMA = '{\n  "name": "j",\n  "afterpay": {"payments": [\n    {"id": "1"},\n  ]}\n}\n'


def problems(text: str, source: str) -> list[str]:
    with pytest.raises(ScenarioError) as refused:
        parse_scenario(text, source)
    return refused.value.problems


def test_a_trailing_comma_is_a_json_error_on_its_line() -> None:
    assert problems(TRAILING_COMMA, "world.json") == [
        "world.json:5: invalid JSON: Expecting value (column 3)"]


def test_text_that_opens_with_a_brace_is_read_as_json_whatever_its_source() -> None:
    assert problems('{"name": "j",\n "faults": [\n  {"name": "a" "b"}]}', "<request>") == [
        "<request>:3: invalid JSON: Expecting ',' delimiter (column 16)"]


def test_valid_json_still_reports_problems_by_the_line_of_the_value() -> None:
    text = '{\n "name": "j",\n "afterpay": {\n  "payments": [\n   {"id": "1", "amount": "x"}]}}'
    found = problems(text, "world.json")
    assert any(p.startswith("world.json:5: afterpay.payments[0].amount:") for p in found), found


def test_a_yaml_document_is_not_read_as_json() -> None:
    found = problems("name: y\nafterpay:\n  payments: [1,\n", "world.yaml")
    assert found[0].startswith("world.yaml:") and "invalid YAML" in found[0]
