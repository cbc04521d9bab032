"""The refund's business rules: unknown orders, what is left, currency, references, providers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from mock_server.optty import handlers

NOT_FOUND = b'{"statusCode":404,"message":"Not Found"}'


def bad_request(message: str) -> dict[str, Any]:
    return {"statusCode": 400, "message": message, "error": "Bad Request"}


def refunded(optty: Any, order: str) -> Decimal:
    return Decimal(optty.order(order)["refundedAmount"])


# ---- which order -----------------------------------------------------------------------------


def test_unknown_order_is_404(optty: Any) -> None:
    answer = optty.refund("NO-SUCH-ORDER", 5, "r-404")
    assert answer.status_code == 404
    assert answer.content == NOT_FOUND


def test_another_merchants_order_is_404(optty: Any) -> None:
    answer = optty.refund("ORD-2001", 5, "r-foreign")
    assert answer.status_code == 404
    assert answer.content == NOT_FOUND
    other = optty.http.get("/orders/ORD-2001", headers=optty.auth())
    assert other.content == NOT_FOUND


def test_validation_comes_before_the_order_lookup(optty: Any) -> None:
    answer = optty.refund("NO-SUCH-ORDER", 0, "r-invalid")
    assert answer.status_code == 400
    assert answer.json()["message"] == ["refundAmount.amount must be a positive number"]


# ---- what is left --------------------------------------------------------------------------


def test_over_refund_names_what_is_left(optty: Any) -> None:
    # ORD-1002: 50.00 captured, 25.02 refunded by the seed -> the docs' own 24.98
    answer = optty.refund("ORD-1002", 30, "r-over")
    assert answer.status_code == 400
    assert answer.json() == bad_request("You can only refund amount up to AUD 24.98")
    assert refunded(optty, "ORD-1002") == Decimal("25.02")


def test_the_rest_can_be_refunded_exactly_then_nothing_is_left(optty: Any) -> None:
    assert optty.refund("ORD-1002", 24.98, "r-rest").status_code == 201
    answer = optty.refund("ORD-1002", 0.01, "r-cent")
    assert answer.json() == bad_request("You can only refund amount up to AUD 0.00")


def test_partial_refunds_add_up_to_the_amount_plus_surcharge(optty: Any) -> None:
    # ORD-1001: 100.00 + 2.50 surcharge captured
    assert optty.refund("ORD-1001", 100, "r-part-1").status_code == 201
    answer = optty.refund("ORD-1001", 2.51, "r-part-2")
    assert answer.json() == bad_request("You can only refund amount up to AUD 2.50")
    assert optty.refund("ORD-1001", 2.5, "r-part-3").status_code == 201
    assert optty.order("ORD-1001")["refundableAmount"] == "0.00"


def test_a_refused_refund_leaves_its_reference_free(optty: Any) -> None:
    assert optty.refund("ORD-1002", 99, "r-retry").status_code == 400
    assert optty.refund("ORD-1002", 9, "r-retry").status_code == 201


# ---- currency ------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["NZD", "aud", "XYZ", "AUDD"])
def test_currency_must_be_the_orders(currency: str, optty: Any) -> None:
    answer = optty.refund("ORD-1001", 5, "r-currency", currency=currency)
    assert answer.status_code == 400
    assert answer.json() == bad_request("Refund currency must match order currency AUD")
    assert refunded(optty, "ORD-1001") == 0


# ---- refundReference, unique per merchant ----------------------------------------------------


def test_a_reference_is_refused_the_second_time(optty: Any) -> None:
    assert optty.refund("ORD-1001", 5, "r-dup").status_code == 201
    answer = optty.refund("ORD-1001", 5, "r-dup")
    assert answer.status_code == 400
    assert answer.json() == bad_request("Refund reference already exists")
    assert refunded(optty, "ORD-1001") == 5


def test_the_reference_is_unique_across_the_merchants_orders(optty: Any) -> None:
    assert optty.refund("ORD-1001", 5, "r-shared").status_code == 201
    answer = optty.refund("ORD-1002", 5, "r-shared")
    assert answer.json() == bad_request("Refund reference already exists")


def test_a_seeded_refunds_reference_is_taken(optty: Any) -> None:
    answer = optty.refund("ORD-1001", 5, "seed-refund-1002")
    assert answer.json() == bad_request("Refund reference already exists")


def test_another_merchant_may_use_the_same_reference(optty: Any, client: Any) -> None:
    assert optty.refund("ORD-1001", 5, "r-both").status_code == 201
    other = client.post("/token", data={
        "client_id": "other-client", "client_secret": "other-secret",
        "grant_type": "client_credentials", "scope": "api-user"}).json()["access_token"]
    assert optty.refund("ORD-2001", 5, "r-both", token=other).status_code == 201


def test_a_repeat_learns_the_refund_exists_even_when_nothing_is_left(optty: Any) -> None:
    # Decision: the reference is checked first, so a retried full refund is told it happened
    assert optty.refund("ORD-1002", 24.98, "r-full").status_code == 201
    answer = optty.refund("ORD-1002", 24.98, "r-full")
    assert answer.json() == bad_request("Refund reference already exists")


def test_references_are_case_sensitive(optty: Any) -> None:
    assert optty.refund("ORD-1001", 5, "r-case").status_code == 201
    assert optty.refund("ORD-1001", 5, "R-CASE").status_code == 201


# ---- providers and order status -------------------------------------------------------------


def test_partial_refund_on_a_full_refund_only_provider(optty: Any) -> None:
    answer = optty.refund("ORD-1003", 40, "r-klarna-part")
    assert answer.status_code == 400
    assert answer.json() == bad_request("Partial refund is not supported for KLARNA_AU")
    assert refunded(optty, "ORD-1003") == 0


def test_full_refund_on_a_full_refund_only_provider(optty: Any) -> None:
    assert optty.refund("ORD-1003", 80, "r-klarna-full").status_code == 201
    again = optty.refund("ORD-1003", 80, "r-klarna-again")
    assert again.json() == bad_request("You can only refund amount up to AUD 0.00")


def test_more_than_captured_on_a_full_refund_only_provider_is_over_refund(optty: Any) -> None:
    answer = optty.refund("ORD-1003", 90, "r-klarna-over")
    assert answer.json() == bad_request("You can only refund amount up to AUD 80.00")


def test_a_scenario_can_make_a_provider_full_refund_only(optty: Any) -> None:
    optty.load({"name": "zip-full-only", "optty": {"providers": {"ZIP_AU": {
        "partialRefunds": False}}}})
    answer = optty.refund("ORD-1001", 5, "r-zip")
    assert answer.json() == bad_request("Partial refund is not supported for ZIP_AU")


@pytest.mark.parametrize("order", ["ORD-1005", "ORD-1006"])
def test_an_order_that_was_not_paid_is_not_refundable(order: str, optty: Any) -> None:
    answer = optty.refund(order, 5, f"r-{order}")
    assert answer.status_code == 400
    assert answer.json() == bad_request("Order is not eligible for refund")


@pytest.mark.parametrize("status", ["INITIATED", "PENDING", "DECLINED", "CANCELLED", "ERROR"])
def test_every_status_but_successful_is_not_eligible(status: str, optty: Any) -> None:
    optty.load({"name": f"status-{status}", "optty": {"orders": [
        {"orderReference": f"ORD-{status}", "merchantId": "sandbox-merchant",
         "bnplProvider": "ZIP_AU", "amount": "10.00", "currency": "AUD", "status": status,
         "captured": "10.00"}]}})
    answer = optty.refund(f"ORD-{status}", 5, f"r-{status}")
    assert answer.json() == bad_request("Order is not eligible for refund")


def test_a_successful_order_with_nothing_captured_is_not_eligible(optty: Any) -> None:
    optty.load({"name": "uncaptured", "optty": {"orders": [
        {"orderReference": "ORD-UNCAPTURED", "merchantId": "sandbox-merchant",
         "bnplProvider": "ZIP_AU", "amount": "10.00", "currency": "AUD", "status": "SUCCESSFUL",
         "captured": "0.00"}]}})
    answer = optty.refund("ORD-UNCAPTURED", 5, "r-uncaptured")
    assert answer.json() == bad_request("Order is not eligible for refund")


# ---- concurrency ---------------------------------------------------------------------------


async def _slow_processing(ctx: Any, **_options: Any) -> None:
    # requests interleave while each holds its reference: every one yields to the others, in
    # the event loop's own (first in, first out) order, so the interleaving is the same each run
    for _ in range(20):
        await asyncio.sleep(0)


async def _concurrently(app: Any, token: str, bodies: list[tuple[str, dict[str, Any]]]
                        ) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        return list(await asyncio.gather(*(
            http.post(f"/orders/{order}/refund", json=body,
                      headers={"Authorization": f"Bearer {token}"})
            for order, body in bodies)))


def _body(reference: str, amount: float) -> dict[str, Any]:
    return {"refundReference": reference, "refundAmount": {"amount": amount, "currency": "AUD"},
            "refundDescription": "concurrent"}


def test_concurrent_uses_of_one_reference_record_one_refund(
        optty: Any, app: Any, monkeypatch: pytest.MonkeyPatch, nest: Callable[..., Any]) -> None:
    monkeypatch.setattr(handlers, "processing_time", _slow_processing)
    answers = asyncio.run(_concurrently(app, optty.token, [
        ("ORD-1001", _body("r-race", 10)), ("ORD-1001", _body("r-race", 10)),
        ("ORD-1002", _body("r-race", 10)), ("ORD-1001", _body("r-race", 10))]))
    assert sorted(a.status_code for a in answers) == [201, 400, 400, 400]
    for answer in answers:
        if answer.status_code == 400:
            assert answer.json() == bad_request("Refund reference already exists")
    assert refunded(optty, "ORD-1001") + refunded(optty, "ORD-1002") == Decimal("35.02")


def test_a_repeat_waits_for_the_original_and_goes_ahead_if_it_failed(
        optty: Any, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # like an insert meeting a unique index: the second waits for the first to commit or roll
    # back, so "already exists" is only ever said when a refund with that reference exists
    monkeypatch.setattr(handlers, "processing_time", _slow_processing)
    too_much, fits = asyncio.run(_concurrently(app, optty.token, [
        ("ORD-1002", _body("r-wait", 30)), ("ORD-1002", _body("r-wait", 10))]))
    assert fits.status_code == 201
    assert too_much.json()["message"] in ("You can only refund amount up to AUD 24.98",
                                          "Refund reference already exists")
    assert [r["refundReference"] for r in optty.order("ORD-1002")["refunds"]] == [
        "seed-refund-1002", "r-wait"]


def test_concurrent_refunds_never_take_more_than_is_left(
        optty: Any, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "processing_time", _slow_processing)
    answers = asyncio.run(_concurrently(app, optty.token, [
        ("ORD-1001", _body(f"r-many-{n}", 30)) for n in range(10)]))
    assert sorted(a.status_code for a in answers) == [201] * 3 + [400] * 7
    for answer in answers:
        if answer.status_code == 400:
            assert answer.json() == bad_request("You can only refund amount up to AUD 12.50")
    order = optty.order("ORD-1001")
    assert order["refundedAmount"] == "90.00"
    assert len(order["refunds"]) == 3


def test_a_request_cancelled_while_processing_frees_its_reference(
        optty: Any, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def cancelled(ctx: Any, **_options: Any) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(handlers, "processing_time", cancelled)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(_concurrently(app, optty.token, [("ORD-1001", _body("r-cancelled", 5))]))
    monkeypatch.undo()
    assert optty.refund("ORD-1001", 5, "r-cancelled").status_code == 201
