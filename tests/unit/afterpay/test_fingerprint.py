"""The idempotency fingerprint: equal for the same refund fields, different for any change."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from mock_server.afterpay.models import fingerprint
from mock_server.afterpay.requests import RefundRequest, parse_refund_request

PAYMENT = "100101785223"
BASE = RefundRequest(Decimal("10.00"), "AUD", "req-1", "ref-1", "rmr-1")


def test_the_same_fields_give_the_same_fingerprint() -> None:
    # built apart from BASE: equal values in other objects
    again = RefundRequest(Decimal("7.50") + Decimal("2.50"), "".join(["AU", "D"]), "req-" + "1", "ref-" + "1",
                          "rmr-" + "1")
    assert again is not BASE
    assert fingerprint("".join(["1001017852", "23"]), again) == fingerprint(PAYMENT, BASE)


def test_whitespace_and_field_order_do_not_count() -> None:
    one = parse_refund_request({"requestId": "r", "merchantReference": "m",
                                "amount": {"amount": "10.0", "currency": "AUD"}}, ("AUD",))
    two = parse_refund_request({"amount": {"currency": "AUD", "amount": Decimal("10.00")},
                                "merchantReference": "m", "requestId": "r"}, ("AUD",))
    assert fingerprint(PAYMENT, one) == fingerprint(PAYMENT, two)


@pytest.mark.parametrize("changed", [
    replace(BASE, amount=Decimal("10.01")),
    replace(BASE, currency="NZD"),
    replace(BASE, request_id="req-2"),
    replace(BASE, merchant_reference="ref-2"),
    replace(BASE, refund_merchant_reference=None),
    replace(BASE, refund_merchant_reference="None"),
    # a value moved from one field to the next is a different body
    replace(BASE, merchant_reference="rmr-1", refund_merchant_reference="ref-1"),
])
def test_any_changed_field_changes_the_fingerprint(changed: RefundRequest) -> None:
    assert fingerprint(PAYMENT, changed) != fingerprint(PAYMENT, BASE)


def test_an_absent_reference_is_not_the_text_none() -> None:
    absent = replace(BASE, refund_merchant_reference=None)
    assert fingerprint(PAYMENT, absent) != fingerprint(
        PAYMENT, replace(BASE, refund_merchant_reference="None"))


def test_another_payment_is_another_request() -> None:
    assert fingerprint(PAYMENT, BASE) != fingerprint("100101785224", BASE)
