from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.core.money import Money, parse_amount


@pytest.mark.parametrize("text,value", [("120.00", Decimal("120.00")), ("5", Decimal("5")),
                                        ("0.1", Decimal("0.1")), (7, Decimal("7"))])
def test_parse_amount(text: str | int, value: Decimal) -> None:
    assert parse_amount(text) == value


@pytest.mark.parametrize("text", ["1.234", "-1", "1,000", "", "abc", "1e2", " 1"])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_money_text_has_the_currency_minor_units() -> None:
    assert Money(Decimal("10.5"), "AUD").text() == "10.50"
    assert Money(Decimal("10"), "JPY").text() == "10"


def test_money_refuses_mixed_currencies() -> None:
    with pytest.raises(ValueError):
        Money(Decimal(1), "AUD") + Money(Decimal(1), "NZD")


@given(st.integers(min_value=0, max_value=10**12))
def test_cents_round_trip(cents: int) -> None:
    amount = Decimal(cents).scaleb(-2)
    assert parse_amount(Money(amount, "AUD").text()) == amount
