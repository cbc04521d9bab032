"""Money as Decimal in a currency's minor units."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# ISO 4217 minor units of the currencies the two providers deal in; anything else defaults to 2.
MINOR_UNITS: dict[str, int] = {
    "AUD": 2, "NZD": 2, "USD": 2, "CAD": 2, "GBP": 2, "EUR": 2, "SGD": 2, "AED": 2,
    "MYR": 2, "HKD": 2, "JPY": 0, "KRW": 0, "IDR": 2, "PHP": 2, "THB": 2, "INR": 2,
}

_MONEY_TEXT = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def parse_amount(text: str | int | Decimal) -> Decimal:
    """A non-negative amount written with at most two decimals ("120.00", "5", 5)."""
    if isinstance(text, bool):
        raise ValueError(f"not a money amount: {text!r}")
    if isinstance(text, int | Decimal):
        text = str(text)
    if not _MONEY_TEXT.match(text):
        raise ValueError(f"not a money amount: {text!r}")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already guarantees a number
        raise ValueError(f"not a money amount: {text!r}") from exc


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", self.amount.quantize(quantum(self.currency)))

    def text(self) -> str:
        """The amount with exactly the currency's minor digits, e.g. "10.00"."""
        return format(self.amount, "f")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)
