"""Scenario files seed an Optty order in any lifecycle state (captures, voids, who cancelled,
why it failed), and files written before the lifecycle keep meaning what they meant."""

from __future__ import annotations

import json
from typing import Any

import pytest

ORDER = {"merchantId": "sandbox-merchant", "bnplProvider": "LATITUDE_AU", "currency": "AUD"}


def load(optty: Any, *orders: dict[str, Any], providers: dict[str, Any] | None = None
         ) -> Any:
    document: dict[str, Any] = {"name": "seeded", "optty": {"orders": list(orders)}}
    if providers is not None:
        document["optty"]["providers"] = providers
    return optty.http.post("/__admin/scenarios", content=json.dumps(document).encode(),
                           headers={"Content-Type": "application/json"})


def test_a_part_captured_part_voided_order_reads_back_as_seeded(optty: Any) -> None:
    answer = load(optty, {**ORDER, "orderReference": "SEED-1", "amount": "100.00",
                          "surcharge": "2.50", "status": "SUCCESSFUL",
                          "captures": [{"captureReference": "cap-1", "amount": "40.00",
                                        "createdAt": "2026-10-01T10:00:00Z"}],
                          "voids": [{"voidReference": "void-1", "amount": "12.50"}],
                          "refunds": [{"refundReference": "ref-1", "amount": "15.00"}]})
    assert answer.status_code == 201, answer.text
    order = optty.order("SEED-1")
    assert order["captureStatus"] == "PARTIALLY_CAPTURED"
    assert [order[k] for k in ("authorisedAmount", "capturedAmount", "voidedAmount",
                               "openToCaptureAmount", "refundedAmount", "refundableAmount")] == [
        "102.50", "40.00", "12.50", "50.00", "15.00", "25.00"]
    assert order["captures"] == [{"captureId": "cap-1", "captureReference": "cap-1",
                                  "amount": "40.00", "status": "SUCCESSFUL",
                                  "createdAt": "2026-10-01T10:00:00.000Z"}]
    assert [v["voidReference"] for v in order["voids"]] == ["void-1"]
    # seeded references are taken like recorded ones
    capture = optty.http.post("/orders/SEED-1/capture", headers=optty.auth(),
                              json={"captureReference": "cap-1", "amount": 1})
    assert capture.json()["message"] == "Capture reference already exists"
    void = optty.http.post("/orders/SEED-1/void", headers=optty.auth(),
                           json={"voidReference": "void-1", "amount": 1})
    assert void.json()["message"] == "Void reference already exists"
    assert optty.http.post("/orders/SEED-1/capture", headers=optty.auth(), json={
        "captureReference": "cap-2", "amount": 50}).status_code == 201
    assert optty.order("SEED-1")["captureStatus"] == "CAPTURED"


@pytest.mark.parametrize(("seed", "expected"), [
    ({"status": "CANCELLED", "cancelledBy": "merchant",
      "voids": [{"voidReference": "v", "amount": "30.00"}]},
     {"status": "CANCELLED", "cancelledBy": "merchant", "captureStatus": "VOIDED"}),
    ({"status": "CANCELLED", "cancelledBy": "system"},
     {"cancelledBy": "system", "captureStatus": "NOT_CAPTURED"}),
    ({"status": "ERROR", "failureReason": "Provider timeout"},
     {"status": "ERROR", "failureReason": "Provider timeout"}),
    ({"status": "DECLINED", "rejectReason": "Insufficient funds"},
     {"rejectReason": "Insufficient funds", "authorisedAmount": "0.00"}),
    ({"status": "SUCCESSFUL"}, {"captureStatus": "NOT_CAPTURED", "authorisedAmount": "30.00"}),
])
def test_any_lifecycle_state_can_be_seeded(seed: dict[str, Any], expected: dict[str, Any],
                                           optty: Any) -> None:
    assert load(optty, {**ORDER, "orderReference": "SEED-2", "amount": "30.00", **seed}
                ).status_code == 201
    order = optty.order("SEED-2")
    assert {k: order[k] for k in expected} == expected


def test_a_seeded_initiated_order_expires_and_can_be_decided(optty: Any) -> None:
    load(optty, {**ORDER, "orderReference": "SEED-3", "amount": "30.00", "status": "INITIATED",
                 "orderToken": "tok-3"},
         {**ORDER, "orderReference": "SEED-4", "amount": "30.00", "status": "INITIATED"})
    assert optty.http.get("/__portal/optty/LATITUDE_AU/tok-3").status_code == 200
    assert optty.order("SEED-3")["status"] == "PENDING"
    answer = optty.http.post("/__admin/optty/orders/SEED-3/outcome",
                             json={"status": "SUCCESSFUL"})
    assert answer.status_code == 200
    assert optty.order("SEED-3")["openToCaptureAmount"] == "30.00"
    optty.advance(3600)
    assert optty.order("SEED-4")["cancelledBy"] == "system"


@pytest.mark.parametrize(("order", "problem"), [
    ({"amount": "30.00", "status": "SUCCESSFUL", "captured": "20.00",
      "voids": [{"voidReference": "v", "amount": "10.01"}]},
     "captured 20.00 and voided 10.01 together exceed the 30.00 authorised"),
    ({"amount": "30.00", "status": "SUCCESSFUL", "captured": "20.00",
      "captures": [{"captureReference": "c", "amount": "10.00"}]},
     "captures total 10.00, not the 20.00 captured"),
    ({"amount": "30.00", "status": "SUCCESSFUL",
      "refunds": [{"refundReference": "r", "amount": "1.00"}]},
     "refunds total 1.00, more than the 0.00 captured"),
])
def test_inconsistent_lifecycle_seeds_are_refused_whole(order: dict[str, Any], problem: str,
                                                        optty: Any) -> None:
    answer = load(optty, {**ORDER, "orderReference": "BAD", **order})
    assert answer.status_code == 422
    assert any(problem in line for line in answer.json()["problems"]), answer.json()
    assert optty.http.get("/orders/BAD", headers=optty.auth()).status_code == 404


def test_a_seed_written_before_the_lifecycle_means_what_it_meant(optty: Any) -> None:
    # an auto-capture provider (the default): SUCCESSFUL means captured; a partial `captured`
    # is still shown CAPTURED, with nothing open to capture
    load(optty, {"orderReference": "OLD-1", "merchantId": "sandbox-merchant",
                 "bnplProvider": "ZIP_AU", "amount": "50.00", "currency": "AUD",
                 "status": "SUCCESSFUL", "captured": "20.00"})
    order = optty.order("OLD-1")
    assert order["captureStatus"] == "CAPTURED" and order["openToCaptureAmount"] == "0.00"
    assert order["refundableAmount"] == "20.00"
    assert optty.order("ORD-1001")["captureStatus"] == "CAPTURED"
    assert optty.order("ORD-1005")["captureStatus"] == "NOT_CAPTURED"


def test_the_default_worlds_deferred_order_captures_then_refunds(optty: Any) -> None:
    assert optty.refund("ORD-1007", 10, "r-early").json()["message"] == (
        "Order is not eligible for refund")
    assert optty.http.post("/orders/ORD-1007/capture", headers=optty.auth(), json={
        "captureReference": "c-1", "amount": 50}).status_code == 201
    assert optty.refund("ORD-1007", 50.01, "r-1").json()["message"] == (
        "You can only refund amount up to AUD 50.00")
    assert optty.refund("ORD-1007", 50, "r-2").status_code == 201
