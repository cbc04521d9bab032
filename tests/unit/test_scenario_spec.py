"""openapi/admin.yaml publishes the shipped scenario schema, read at the JSON level."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mock_server.core.scenario_spec import (
    follows_published_schema,
    openapi_components,
    published_schema,
)
from mock_server.core.scenarios import _SCHEMA
from mock_server.resources import spec_path


def _admin() -> dict[str, Any]:
    return dict(yaml.safe_load(spec_path("admin").read_text("utf-8")))


def test_admin_yaml_holds_the_generated_scenario_schema() -> None:
    schemas = _admin()["components"]["schemas"]
    for name, component in openapi_components().items():
        assert schemas[name] == component, f"{name}: regenerate it: python -m mock_server.core.scenario_spec openapi/admin.yaml"


def test_every_scenario_body_of_load_scenario_is_that_schema() -> None:
    content = _admin()["paths"]["/__admin/scenarios"]["post"]["requestBody"]["content"]
    assert {media: c["schema"] for media, c in content.items()} == {
        media: {"$ref": "#/components/schemas/Scenario"} for media in content}


def test_the_published_schema_is_the_shipped_one_but_for_written_numbers() -> None:
    published = published_schema()
    assert published["$defs"]["money"] == _SCHEMA["$defs"]["money"]
    amount = published["$defs"]["afterpayPayment"]["properties"]["amount"]
    assert amount["anyOf"][0] == _SCHEMA["$defs"]["afterpayPayment"]["properties"]["amount"]
    assert amount["anyOf"][1]["type"] == "number"
    assert published["$defs"]["faultRule"]["properties"]["times"] == \
        _SCHEMA["$defs"]["faultRule"]["properties"]["times"]


@pytest.mark.parametrize(("document", "valid"), [
    ({"name": "x"}, True), ({"name": 2024}, True), ({"nmae": "x"}, False),
    ({"afterpay": {"payments": [{"id": 1, "merchantId": 100101382, "amount": 12.5}]}}, True),
    ({"afterpay": {"payments": [{"id": "1", "merchantId": "1", "amount": True}]}}, False),
    ({"faults": [{"name": "f", "times": 2.0, "delay": "1s"}]}, False),
    ({"faults": [{"name": "f", "delay": "1s", "probability": 0}]}, False),
    ({"afterpay": {"payments": [{"id": "1", "merchantId": "1", "amount": "1.00",
                                 "created": "yesterday"}]}}, False),
])
def test_follows_published_schema(document: Any, valid: bool) -> None:
    assert follows_published_schema(document) is valid
