"""Point 5: unknown payment, payments that cannot be refunded, what is left, the 120 days."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mock_server.afterpay import errors

EXCEEDED = ("invalid_amount", "Refund amount exceeded open to refund amount.")
TIME_LIMIT = ("refund_timelimit_exceeded", "The refund exceeds the time limit of 120 days.")
NOT_ELIGIBLE = ("precondition_failed", "Payment is not eligible for a refund.")


@pytest.mark.sandbox_verified
def test_unknown_payment_on_refund(afterpay) -> None:
    # recorded: solidus_afterpay credit/invalid.yml and clearpay-api-client payment_refund.yml
    for order_id in ("INVALID_RESPONSE_CODE", "order-001", "100101785999"):
        afterpay.assert_error(afterpay.refund(order_id), 404, "not_found",
                              "Afterpay payment ID not found.")


@pytest.mark.sandbox_verified
def test_unknown_payment_on_get(afterpay) -> None:
    # recorded: solidus_afterpay find_payment/invalid.yml
    afterpay.assert_error(afterpay.payment("INVALID_ORDER_ID"), 404, "not_found",
                          "Afterpay payment ID not found.")


@pytest.mark.parametrize("order_id", ["100101785227", "100101785228", "100101785229"],
                         ids=["declined", "nothing-captured", "voided-before-capture"])
def test_payment_not_eligible(afterpay, order_id: str) -> None:
    afterpay.assert_error(afterpay.refund(order_id, amount="0.01"), 412, *NOT_ELIGIBLE)
    assert afterpay.payment_json(order_id)["refunds"] == []


@pytest.fixture
def world(afterpay):
    session = afterpay.in_session("rules")
    session.load({"name": "rules", "afterpay": {
        "merchants": [{"merchantId": "800", "secretKey": "s", "currency": "AUD"}],
        "payments": [
            {"id": "81", "merchantId": "800", "amount": "100.00", "captured": "30.00",
             "state": "VOIDED"},
            {"id": "82", "merchantId": "800", "amount": "100.00"},
            {"id": "83", "merchantId": "800", "amount": "100.00", "state": "CAPTURE_DECLINED"},
        ]}})
    return session.as_merchant("800", "s")


def test_voided_after_a_partial_capture_refunds_what_was_captured(world) -> None:
    world.assert_error(world.refund("81", amount="30.01"), 422, *EXCEEDED)
    assert world.refund("81", amount="30.00").status_code == 201
    world.assert_error(world.refund("81", amount="0.01"), 422, *EXCEEDED)


def test_capture_declined_with_nothing_captured_is_not_eligible(world) -> None:
    world.assert_error(world.refund("83"), 412, *NOT_ELIGIBLE)


def test_refund_of_everything_captured_then_nothing_more(afterpay) -> None:
    afterpay.assert_error(afterpay.refund(amount="120.01"), 422, *EXCEEDED)
    assert afterpay.refund(amount="120.00").status_code == 201
    afterpay.assert_error(afterpay.refund(amount="0.01"), 422, *EXCEEDED)
    assert afterpay.open_to_refund() == 0


def test_partial_refunds_sum_up(afterpay) -> None:
    for _ in range(3):
        assert afterpay.refund(amount="33.33").status_code == 201
    assert afterpay.open_to_refund() == Decimal("20.01")
    afterpay.assert_error(afterpay.refund(amount="20.02"), 422, *EXCEEDED)
    assert afterpay.refund(amount="20.01").status_code == 201
    afterpay.assert_error(afterpay.refund(amount="0.01"), 422, *EXCEEDED)
    refunds = afterpay.payment_json()["refunds"]
    assert sum(Decimal(r["amount"]["amount"]) for r in refunds) == Decimal("120.00")


def test_seeded_refunds_count(afterpay) -> None:
    # 100.00 captured, 40.00 refunded by the scenario
    afterpay.assert_error(afterpay.refund("100101785224", amount="60.01"), 422, *EXCEEDED)
    assert afterpay.refund("100101785224", amount="60.00").status_code == 201


def test_only_captured_money_is_refundable(afterpay) -> None:
    # 200.00 authorised, 80.00 captured
    afterpay.assert_error(afterpay.refund("100101785225", amount="80.01"), 422, *EXCEEDED)
    assert afterpay.refund("100101785225", amount="80.00").status_code == 201


def test_fully_refunded_payment(afterpay) -> None:
    afterpay.assert_error(afterpay.refund("100101785226", amount="0.01"), 422, *EXCEEDED)


def test_refund_after_120_days(afterpay) -> None:
    # created 2024-01-15; the session clock is at 2026-11-01
    afterpay.assert_error(afterpay.refund("100101785230"), 422, *TIME_LIMIT)
    assert afterpay.payment_json("100101785230")["refunds"] == []


def test_120_days_are_counted_on_the_session_clock(afterpay) -> None:
    # the payment was created at the session's "now" when the world was seeded
    session = afterpay.in_session("time-limit")
    session.advance(days=120)
    assert session.refund(amount="1.00").status_code == 201  # exactly 120 days: still inside
    session.advance(seconds=0.001)
    session.assert_error(session.refund(amount="1.00"), 422, *TIME_LIMIT)
    # another session's clock has not moved
    assert afterpay.refund(amount="1.00").status_code == 201


def test_frozen_clock_decides_the_time_limit(afterpay) -> None:
    session = afterpay.in_session("frozen-limit")
    session.load({"name": "dated", "afterpay": {"payments": [
        {"id": "91", "merchantId": "100101382", "amount": "10.00",
         "created": "2026-01-01T00:00:00Z"}]}})
    session.freeze("2026-05-01T00:00:00Z")  # day 120
    assert session.refund("91", amount="1.00").status_code == 201
    session.freeze("2026-05-01T00:00:00.001Z")
    session.assert_error(session.refund("91", amount="1.00"), 422, *TIME_LIMIT)


@pytest.mark.parametrize(("order_id", "currency", "amount", "expected"), [
    # 412 before the currency check
    ("100101785227", "NZD", "999.00", (412, *NOT_ELIGIBLE)),
    # currency mismatch before the 120 days: tested with a session below
    # the 120 days before what is left
    ("100101785230", "AUD", "999.00", (422, *TIME_LIMIT)),
])
def test_business_rules_in_order(afterpay, order_id, currency, amount, expected) -> None:
    session = afterpay.in_session("order-of-rules")
    session.load({"name": "nzd", "afterpay": {"merchants": [
        {"merchantId": "100101382", "secretKey": "sandbox-secret-key", "currency": "AUD",
         "currencies": ["NZD"]}]}})
    session.assert_error(session.refund(order_id, amount=amount, currency=currency), *expected)


def test_currency_mismatch_before_the_time_limit(afterpay) -> None:
    session = afterpay.in_session("mismatch-first")
    session.load({"name": "nzd", "afterpay": {"merchants": [
        {"merchantId": "100101382", "secretKey": "sandbox-secret-key", "currency": "AUD",
         "currencies": ["NZD"]}]}})
    session.assert_error(session.refund("100101785230", currency="NZD"), 422, "invalid_object",
                         "amount.currency must match the payment currency")


def test_error_messages_are_the_documented_constants() -> None:
    assert errors.PRECONDITION_FAILED_MESSAGE == NOT_ELIGIBLE[1]
    assert errors.REFUND_EXCEEDS_OPEN_AMOUNT_MESSAGE == EXCEEDED[1]
    assert errors.REFUND_TIME_LIMIT_MESSAGE == TIME_LIMIT[1]
