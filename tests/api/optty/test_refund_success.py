"""A refund that goes through: 201 RefundResponse, and the order showing it and what is left."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from mock_server.core.openapi import Spec, to_json_schema
from mock_server.resources import spec_path

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    document = Spec.load("optty", spec_path("optty")).document
    components = document["components"]["schemas"]

    def resolved(name: str) -> Any:
        schema = to_json_schema(components[name])
        # the Order schema refers to RefundResponse for its refunds
        if name == "Order":
            schema["properties"]["refunds"]["items"] = to_json_schema(
                components["RefundResponse"])
        return schema

    return {name: resolved(name) for name in ("RefundResponse", "Order")}


def test_the_201_body(optty: Any, schemas: dict[str, Any]) -> None:
    answer = optty.refund("ORD-1001", 10.5, "TgEHcPtpN2HSrTMK-0",
                          description="Please refund this order")
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    body = answer.json()
    assert list(body) == ["refundReference", "bnplProvider", "refundedAmount", "refundStatus",
                          "description", "refundDate", "bnplRefundId"]
    assert body["refundReference"] == "TgEHcPtpN2HSrTMK-0"  # echoed, no "-00" suffix
    assert body["bnplProvider"] == "ZIP_AU"
    assert body["refundedAmount"] == "10.50"
    assert body["refundStatus"] == "SUCCESSFUL"
    assert body["description"] == "Please refund this order"
    assert body["refundDate"] == "2026-11-01T09:00:00.123Z"  # the session clock
    assert UUID4.match(body["bnplRefundId"])
    jsonschema.validate(body, schemas["RefundResponse"])


@pytest.mark.parametrize(("amount", "written"), [
    (10, "10.00"), (10.1, "10.10"), (0.01, "0.01"), (99.99, "99.99"), (1e1, "10.00")])
def test_amounts_are_written_with_two_decimals(amount: float, written: str, optty: Any) -> None:
    assert optty.refund("ORD-1001", amount, "r-amount").json()["refundedAmount"] == written


def test_the_refund_date_follows_the_session_clock(optty: Any) -> None:
    optty.freeze("2027-02-03T04:05:06.789Z")
    answer = optty.refund("ORD-1001", 1, "r-date", token=None)
    assert answer.json()["refundDate"] == "2027-02-03T04:05:06.789Z"


def test_the_order_shows_its_refunds_and_what_is_left(optty: Any, schemas: dict[str, Any]
                                                      ) -> None:
    first = optty.refund("ORD-1001", 40, "r-one").json()
    optty.advance(60)
    second = optty.refund("ORD-1001", 2.5, "r-two", description="").json()
    order = optty.order("ORD-1001")
    jsonschema.validate(order, schemas["Order"])
    assert order["merchantReference"] == "ORD-1001"
    assert order["status"] == "SUCCESSFUL"
    assert (order["amount"], order["surcharge"], order["currency"]) == ("100.00", "2.50", "AUD")
    assert order["provider"] == "ZIP_AU"
    assert order["captureStatus"] == "CAPTURED"
    assert order["capturedAmount"] == "102.50"
    assert order["refundedAmount"] == "42.50"
    assert order["refundableAmount"] == "60.00"
    assert order["refunds"] == [first, second]


def test_seeded_refunds_are_shown(optty: Any) -> None:
    order = optty.order("ORD-1002")
    assert order["refundedAmount"] == "25.02"
    assert order["refundableAmount"] == "24.98"
    assert [(r["refundReference"], r["refundedAmount"], r["refundStatus"])
            for r in order["refunds"]] == [("seed-refund-1002", "25.02", "SUCCESSFUL")]


def test_an_unpaid_order_shows_nothing_captured(optty: Any, schemas: dict[str, Any]) -> None:
    order = optty.order("ORD-1005")
    jsonschema.validate(order, schemas["Order"])
    assert order["status"] == "PENDING"
    assert order["captureStatus"] == "NOT_CAPTURED"
    assert order["refundableAmount"] == "0.00"


def test_each_session_has_its_own_money(optty: Any) -> None:
    assert optty.refund("ORD-1001", 100, "r-session").status_code == 201
    other = optty.in_session("success-other")
    assert other.order("ORD-1001")["refundedAmount"] == "0.00"
    assert other.refund("ORD-1001", 100, "r-session").status_code == 201


def test_ids_are_reproducible_for_a_seed(optty: Any) -> None:
    first = optty.in_session("seeded-a").refund("ORD-1001", 1, "r-seed").json()["bnplRefundId"]
    optty.http.post("/__admin/reset", headers={"X-Sandbox-Session": "seeded-a"})
    again = optty.in_session("seeded-a").refund("ORD-1001", 1, "r-seed").json()["bnplRefundId"]
    assert first == again
