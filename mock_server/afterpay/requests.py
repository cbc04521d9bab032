"""Parse and validate an Afterpay refund request body in Afterpay's order of precedence."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mock_server.afterpay.errors import (
    AMOUNT_FORMAT_MESSAGE,
    InvalidAmount,
    InvalidJson,
    InvalidObject,
    UnsupportedCurrency,
)

# docs: the currencies Afterpay supports at all (the Money table's last row).
SUPPORTED_CURRENCIES: frozenset[str] = frozenset({"AUD", "NZD", "USD", "CAD", "GBP", "EUR"})

# The Money table writes "{Money object}" for the Money field's path; the refund's is "amount".
MONEY_PATH = "amount"
AMOUNT_REQUIRED = f"{MONEY_PATH}.amount Amount field required"  # docs
# docs (not a decimal); Decision for "more than 2 decimals", whose documented text is garbled
# ("amountmust be a valid ISO 4217 format value") and is read as the same message.
AMOUNT_NOT_VALID = f"{MONEY_PATH}.amount Amount field must be a valid ISO 4217 format value"
AMOUNT_THOUSANDS_SEPARATOR = AMOUNT_FORMAT_MESSAGE  # docs, errorCode invalid_amount
CURRENCY_REQUIRED = f"{MONEY_PATH}.currency Currency field required"  # docs
CURRENCY_NOT_SUPPORTED = f"{MONEY_PATH}.currency Currency not supported for this merchant"  # docs
# Checked later by the payment model (it needs the payment); Decision wording.
CURRENCY_MISMATCH = f"{MONEY_PATH}.currency must match the payment currency"
# Decision: the record is silent on zero and negative refunds.
AMOUNT_NOT_POSITIVE = "Refund amount must be greater than zero."

# docs: the field limits ("Max length N (varchar)"); Decision: the Bean Validation @Size wording.
REFERENCE_SIZE = "{field} size must be between 0 and {max}"
REQUEST_ID_MAX = 64
MERCHANT_REFERENCE_MAX = 85
REFUND_MERCHANT_REFERENCE_MAX = 128
REQUEST_ID_TOO_LONG = REFERENCE_SIZE.format(field="requestId", max=REQUEST_ID_MAX)
MERCHANT_REFERENCE_TOO_LONG = REFERENCE_SIZE.format(
    field="merchantReference", max=MERCHANT_REFERENCE_MAX
)
REFUND_MERCHANT_REFERENCE_TOO_LONG = REFERENCE_SIZE.format(
    field="refundMerchantReference", max=REFUND_MERCHANT_REFERENCE_MAX
)

# Decision: a decimal is ASCII digits with an optional "-" and an optional fraction. Leading
# zeros pass ("010.00" is 10.00, as BigDecimal reads it); "+", exponents ("1e2"), whitespace,
# ".5" and "10." do not. The sign is allowed here so that a negative amount reaches the
# documented invalid_amount Decision instead of reading as "not a number".
_DECIMAL = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")
_MAX_DECIMALS = 2


@dataclass(frozen=True, slots=True)
class JsonNumber:
    """A JSON number exactly as it was written. Jackson hands a String property a number's own
    text ("10.50" stays "10.50", "10.0e0" stays "10.0e0"), and a number of any size or exponent
    is still valid JSON, so nothing is converted here."""

    text: str


@dataclass(frozen=True)
class RefundRequest:
    amount: Decimal  # always exactly two decimals
    currency: str
    request_id: str | None
    merchant_reference: str | None
    refund_merchant_reference: str | None

    def echo(self) -> dict[str, Any]:
        """The non-null request fields as Afterpay echoes them, in the Refund object's order."""
        # recorded (afterpay-ruby _list_payments, _get_payment_by_order_id): a Refund is written
        # requestId, amount, merchantReference, refundId, refundedAt, refundMerchantReference;
        # null ones are omitted (recorded). The amount comes back with two decimals (recorded:
        # "10.0" -> "10.00").
        body: dict[str, Any] = {}
        if self.request_id is not None:
            body["requestId"] = self.request_id
        body["amount"] = {"amount": format(self.amount, "f"), "currency": self.currency}
        if self.merchant_reference is not None:
            body["merchantReference"] = self.merchant_reference
        if self.refund_merchant_reference is not None:
            body["refundMerchantReference"] = self.refund_merchant_reference
        return body

    def refund_body(self, refund_id: str, refunded_at: str) -> dict[str, Any]:
        """The 201 body: the echo plus refundId and refundedAt, in the recorded Refund order."""
        # Built in that order (requestId, amount, merchantReference, refundId, refundedAt,
        # refundMerchantReference: the Refund object as the recorded payments list it), with
        # no sorting or reordering at any refund.
        body: dict[str, Any] = {}
        if self.request_id is not None:
            body["requestId"] = self.request_id
        body["amount"] = {"amount": format(self.amount, "f"), "currency": self.currency}
        if self.merchant_reference is not None:
            body["merchantReference"] = self.merchant_reference
        body["refundId"] = refund_id
        body["refundedAt"] = refunded_at
        if self.refund_merchant_reference is not None:
            body["refundMerchantReference"] = self.refund_merchant_reference
        return body


def _scalar_text(value: object) -> str | None:
    """A string field's value as Afterpay's Jackson mapping would see it."""
    if value is None or type(value) is str or isinstance(value, str):
        return value  # recorded: JSON null for an optional field is the same as absent
    # Decision, after Jackson's default scalar coercion for String properties: a JSON number or
    # boolean becomes its text and is then validated as a string (a number reference is
    # accepted; a number currency is not a currency code).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, JsonNumber):
        return value.text
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # defensive: the decoder should hand Decimal, never float
    # Decision: an object or array where Afterpay expects a string cannot be mapped by
    # Jackson; Afterpay answers mapping failures like unparseable JSON.
    raise InvalidJson()


def _utf16_length(text: str) -> int:
    # Decision: Bean Validation's @Size counts Java chars (UTF-16 units): an emoji counts 2.
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _parse_amount(text: str | None) -> Decimal:
    """Rows 1-4 of the Money table, in the table's order."""
    if text is None:
        raise InvalidObject(AMOUNT_REQUIRED)
    match = _DECIMAL.fullmatch(text.replace(",", ""))
    if match is not None:
        fraction = match.group(1) or ""
        # Decision: the place count is textual, so "10.100" has three (as BigDecimal's scale
        # would); this row outranks the thousands separator, so "1,000.123" lands here.
        if len(fraction) > _MAX_DECIMALS:
            raise InvalidObject(AMOUNT_NOT_VALID)
        if "," in text:
            # docs: the one format problem with its own errorCode. Decision: any comma counts,
            # wherever it stands, if the text is a decimal without it.
            raise InvalidAmount(AMOUNT_THOUSANDS_SEPARATOR)
        # Padding the text to two places gives an exact two-decimal Decimal of any size
        # without a precision-limited quantize.
        return Decimal(text + ("." if not fraction else "") + "0" * (_MAX_DECIMALS - len(fraction)))
    raise InvalidObject(AMOUNT_NOT_VALID)


def _check_currency(currency: str | None, merchant_currencies: Collection[str]) -> str:
    """Rows 5-7 of the Money table."""
    if currency is None:
        raise InvalidObject(CURRENCY_REQUIRED)
    # Decision: a valid ISO 4217 code that Afterpay does not support (e.g. JPY) answers like an
    # invalid one; only Afterpay's own currencies reach unsupported_currency.
    if currency not in SUPPORTED_CURRENCIES:
        raise InvalidObject(CURRENCY_NOT_SUPPORTED)
    if currency not in merchant_currencies:
        raise UnsupportedCurrency()
    return currency


def parse_refund_request(body: Any, merchant_currencies: Collection[str]) -> RefundRequest:
    """Validate a decoded refund body (numbers as int or Decimal) or raise an AfterpayError.

    Precedence: (1) the body's shape, as Jackson mapping fails before any validation runs;
    (2) the Money table rows in the documented order; (3) the reference lengths in the
    documented field order; (4) the amount's sign. Unknown fields are ignored (recorded).
    """
    # Decision: a body that is not a JSON object (array, string, number, null) cannot be mapped
    # to the request object: 400 invalid_json, like malformed JSON.
    if type(body) is not dict and not isinstance(body, Mapping):
        raise InvalidJson()
    money = body.get("amount")
    # Decision: a non-object Money (e.g. "amount": "10.00") is a mapping failure too.
    if money is not None and type(money) is not dict and not isinstance(money, Mapping):
        raise InvalidJson()
    # Decision: a missing or null Money object is answered by the Money table's first row: the
    # docs' "amount is omitted or null" does not say which "amount" it means.
    amount_text = _scalar_text(money.get("amount")) if money is not None else None
    currency_text = _scalar_text(money.get("currency")) if money is not None else None
    request_id = _scalar_text(body.get("requestId"))
    merchant_reference = _scalar_text(body.get("merchantReference"))
    refund_merchant_reference = _scalar_text(body.get("refundMerchantReference"))

    # Amount rows before currency rows, as the Money table lists them.
    amount = _parse_amount(amount_text)
    currency = _check_currency(currency_text, merchant_currencies)

    # Decision: the reference limits come after the whole Money table (every documented row
    # answers exactly as documented), in the order the docs list the fields.
    references = (
        (request_id, REQUEST_ID_MAX, REQUEST_ID_TOO_LONG),
        (merchant_reference, MERCHANT_REFERENCE_MAX, MERCHANT_REFERENCE_TOO_LONG),
        (
            refund_merchant_reference,
            REFUND_MERCHANT_REFERENCE_MAX,
            REFUND_MERCHANT_REFERENCE_TOO_LONG,
        ),
    )
    for value, limit, message in references:
        if value is not None and _utf16_length(value) > limit:
            raise InvalidObject(message)

    # Decision: zero and negative amounts are a business rule, checked once the request is
    # well formed (reference Decision: 422 invalid_amount).
    if amount <= 0:
        raise InvalidAmount(AMOUNT_NOT_POSITIVE)

    return RefundRequest(
        amount=amount,
        currency=currency,
        request_id=request_id,
        merchant_reference=merchant_reference,
        refund_merchant_reference=refund_merchant_reference,
    )
