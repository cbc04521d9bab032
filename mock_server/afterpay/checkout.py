"""Parse and validate the lifecycle's request bodies (checkout, capture, auth, void, update)
in Afterpay's order: the body's shape, missing fields, the Money table, lengths, URLs."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from mock_server.afterpay.errors import AfterpayError, InvalidAmount, InvalidJson, InvalidObject
from mock_server.afterpay.requests import (
    MONEY_PATH,
    JsonNumber,
    _check_currency,
    _parse_amount,
    _scalar_text,
    _utf16_length,
)

# recorded pattern ("token may not be empty"); the null form for objects: Decision
MAY_NOT_BE_EMPTY = "{path} may not be empty"
MAY_NOT_BE_NULL = "{path} may not be null"
SIZE = "{path} size must be between 0 and {max}"  # as the refund's reference limits
NOT_A_URL = "{path} must be a valid URL"  # recorded
REASON_VALUES = ("cancelledItems", "amountAdjustment")
REASON_INVALID = "reason must be one of cancelledItems, amountAdjustment"  # Decision
VOID_NOT_POSITIVE = "Void amount must be greater than zero."  # Decision
COUNTRY_INVALID = "{path} must be a two-letter country code"  # Decision
QUANTITY_INVALID = "{path} must be an integer"  # Decision
NEGATIVE = "{path}.amount must not be negative"  # Decision
# Decision: Bean Validation's @Email wording
NOT_AN_EMAIL = "consumer.email must be a well-formed email address"
MODE_INVALID = "mode must be one of standard, express"  # Decision

REFERENCE_MAX = 128  # merchantReference, paymentEventMerchantReference ([P] SDK limits)
REQUEST_ID_MAX = 64
URL_MAX = 2048
ITEMS_MAX = 100
CONTACT_LIMITS = (("name", 255), ("line1", 128), ("line2", 128), ("area1", 128),
                  ("area2", 128), ("region", 128), ("postcode", 128), ("countryCode", 2),
                  ("phoneNumber", 32))
CONSUMER_LIMITS = (("phoneNumber", 32), ("givenNames", 128), ("surname", 128), ("email", 128))
# models/Item.yaml's relative order; `categories` and `estimatedShipmentDate` kept as given
ITEM_TEXT_LIMITS = (("name", 255), ("sku", 128), ("pageUrl", URL_MAX), ("imageUrl", URL_MAX))
COURIER_FIELDS = (("shippedAt", 64), ("name", 128), ("tracking", 128), ("priority", 32))


def _object(value: Any) -> dict[str, Any] | None:
    """A JSON object, None for null/absent; anything else cannot be mapped (400 invalid_json)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    raise InvalidJson()


def _text(value: Any, path: str, limit: int | None = None) -> str | None:
    text = _scalar_text(value)
    if text is not None and limit is not None and _utf16_length(text) > limit:
        raise InvalidObject(SIZE.format(path=path, max=limit))
    return text


def parse_price(value: Any, path: str, currencies: Collection[str]) -> tuple[Decimal, str]:
    """A Money object that may be zero but not negative (prices, discounts, tax, shipping)."""
    amount, currency = parse_money(value, path, currencies)
    if amount < 0:
        raise InvalidObject(NEGATIVE.format(path=path))
    return amount, currency


def parse_money(value: Any, path: str, currencies: Collection[str]) -> tuple[Decimal, str]:
    """The Money table's rows for the Money object at `path` (the refund's messages with the
    field's own path: `items[0].price.amount Amount field required`)."""
    money = _object(value)
    try:
        amount = _parse_amount(_scalar_text(money.get("amount")) if money else None)
        currency = _check_currency(_scalar_text(money.get("currency")) if money else None,
                                   currencies)
    except AfterpayError as err:
        if err.message.startswith(MONEY_PATH + "."):
            err.message = path + err.message[len(MONEY_PATH):]
        raise
    return amount, currency


def money_json(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": f"{amount:.2f}", "currency": currency}


_HOST = re.compile(r"[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]+")


def _is_email(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and domain) and " " not in text and text.isprintable()


def _is_url(text: str) -> bool:
    """Decision: an absolute http(s) URI (RFC 3986: printable ASCII, no spaces) with a host."""
    if len(text) > URL_MAX or not text.isascii() or not text.isprintable() or " " in text:
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(_HOST.fullmatch(parts.netloc))


def _require_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidJson()
    return dict(body)


def _contact(value: Any, path: str) -> dict[str, Any] | None:
    contact = _object(value)
    if contact is None:
        return None
    out: dict[str, Any] = {}
    for name, limit in CONTACT_LIMITS:
        text = _text(contact.get(name), f"{path}.{name}",
                     None if name == "countryCode" else limit)
        if name == "countryCode" and text is not None and not (
                len(text) == 2 and text.isascii() and text.isalpha()):
            raise InvalidObject(COUNTRY_INVALID.format(path=f"{path}.{name}"))
        if text is not None:
            out[name] = text
    return out


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    amount: Decimal
    currency: str
    # the parts kept for GET checkout and the payment's orderDetails, already normalised
    consumer: dict[str, Any]
    billing: dict[str, Any] | None
    shipping: dict[str, Any] | None
    courier: dict[str, Any] | None
    items: list[dict[str, Any]]
    discounts: list[dict[str, Any]]
    tax_amount: dict[str, str] | None
    shipping_amount: dict[str, str] | None
    redirect_confirm_url: str
    redirect_cancel_url: str
    popup_origin_url: str | None
    merchant_name: str | None
    merchant_reference: str | None
    description: str | None


def parse_checkout(body: Any, currencies: Collection[str]) -> CheckoutRequest:
    """POST /v2/checkouts. Nulls and unknown fields pass (recorded); the Contact's documented
    required list is not enforced (Decision, after the recorded `countryCode: null` -> 201)."""
    body = _require_body(body)
    consumer = _object(body.get("consumer"))
    merchant = _object(body.get("merchant"))
    mode = _scalar_text(body.get("mode"))
    if mode is not None and mode not in ("standard", "express"):
        raise InvalidObject(MODE_INVALID)
    express = mode == "express"
    _text(body.get("purchaseCountry"), "purchaseCountry", 2)
    missing: list[str] = []
    if body.get("amount") is None:
        missing.append(MAY_NOT_BE_NULL.format(path="amount"))
    if consumer is None and not express:
        missing.append(MAY_NOT_BE_NULL.format(path="consumer"))
    elif consumer is not None and not _scalar_text(consumer.get("email")):
        missing.append(MAY_NOT_BE_EMPTY.format(path="consumer.email"))
    if merchant is None:
        missing.append(MAY_NOT_BE_NULL.format(path="merchant"))
    else:
        for name in ("redirectConfirmUrl", "redirectCancelUrl"):
            if not _scalar_text(merchant.get(name)):
                missing.append(MAY_NOT_BE_EMPTY.format(path=f"merchant.{name}"))
    if missing:
        raise InvalidObject(", ".join(missing))
    assert merchant is not None
    amount, currency = parse_money(body.get("amount"), "amount", currencies)

    consumer_out: dict[str, Any] = {}
    for name, limit in CONSUMER_LIMITS:
        text = _text((consumer or {}).get(name), f"consumer.{name}", limit)
        # recorded: phoneNumber, givenNames and surname come back "" when not given
        consumer_out[name] = text if text is not None else ("" if name != "email" else None)
    if consumer_out["email"] is None:
        del consumer_out["email"]
    elif not _is_email(consumer_out["email"]):
        raise InvalidObject(NOT_AN_EMAIL)
    urls: dict[str, str | None] = {}
    for name in ("redirectConfirmUrl", "redirectCancelUrl", "popupOriginUrl"):
        text = _text(merchant.get(name), f"merchant.{name}", URL_MAX)
        if text is not None and not _is_url(text):
            raise InvalidObject(NOT_A_URL.format(path=f"merchant.{name}"))
        urls[name] = text
    merchant_name = _text(merchant.get("name"), "merchant.name", 255)
    merchant_reference = _text(body.get("merchantReference"), "merchantReference",
                               REFERENCE_MAX)
    description = _text(body.get("description"), "description", 256)
    billing = _contact(body.get("billing"), "billing")
    shipping = _contact(body.get("shipping"), "shipping")
    courier_in = _object(body.get("courier"))
    courier = None
    if courier_in is not None:
        courier = {}
        for name, limit in COURIER_FIELDS:
            text = _text(courier_in.get(name), f"courier.{name}", limit)
            if text is not None:
                courier[name] = text

    raw_items = body.get("items")
    if raw_items is not None and not isinstance(raw_items, list):
        raise InvalidJson()
    if raw_items is not None and len(raw_items) > ITEMS_MAX:
        raise InvalidObject(SIZE.format(path="items", max=ITEMS_MAX))
    items = [_item(raw, f"items[{index}]", currencies)
             for index, raw in enumerate(raw_items or [])]
    raw_discounts = body.get("discounts")
    if raw_discounts is not None and not isinstance(raw_discounts, list):
        raise InvalidJson()
    if raw_discounts is not None and len(raw_discounts) > ITEMS_MAX:
        raise InvalidObject(SIZE.format(path="discounts", max=ITEMS_MAX))
    discounts = []
    for index, raw in enumerate(raw_discounts or []):
        discount = _object(raw) or {}
        entry: dict[str, Any] = {}
        name = _text(discount.get("displayName"), f"discounts[{index}].displayName", 128)
        if name is not None:
            entry["displayName"] = name
        entry["amount"] = money_json(*parse_price(discount.get("amount"),
                                                  f"discounts[{index}].amount", currencies))
        discounts.append(entry)
    tax = shipping_amount = None
    if body.get("taxAmount") is not None:
        tax = money_json(*parse_price(body["taxAmount"], "taxAmount", currencies))
    if body.get("shippingAmount") is not None:
        shipping_amount = money_json(*parse_price(body["shippingAmount"], "shippingAmount",
                                                  currencies))
    confirm, cancel = urls["redirectConfirmUrl"], urls["redirectCancelUrl"]
    assert confirm is not None and cancel is not None
    return CheckoutRequest(amount, currency, consumer_out, billing, shipping, courier, items,
                           discounts, tax, shipping_amount, confirm, cancel,
                           urls["popupOriginUrl"], merchant_name, merchant_reference,
                           description)


def _item(raw: Any, path: str, currencies: Collection[str]) -> dict[str, Any]:
    item = _object(raw) or {}
    out: dict[str, Any] = {}
    for name, limit in ITEM_TEXT_LIMITS[:2]:
        text = _text(item.get(name), f"{path}.{name}", limit)
        if text is not None:
            out[name] = text
    quantity = item.get("quantity")
    if quantity is not None:
        text = _scalar_text(quantity)
        if text is None or not text.lstrip("-").isdigit() or not (
                -2**31 <= int(text) < 2**31):
            raise InvalidObject(QUANTITY_INVALID.format(path=f"{path}.quantity"))
        out["quantity"] = int(text)
    out["price"] = money_json(*parse_price(item.get("price"), f"{path}.price", currencies))
    for name, limit in ITEM_TEXT_LIMITS[2:]:
        text = _text(item.get(name), f"{path}.{name}", limit)
        if text is not None:
            out[name] = text
    categories = item.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not all(
                isinstance(c, list) and all(isinstance(s, str) for s in c) for c in categories):
            raise InvalidJson()
        out["categories"] = categories
    for name in ("estimatedShipmentDate",):
        text = _text(item.get(name), f"{path}.{name}", 64)
        if text is not None:
            out[name] = text
    if isinstance(item.get("preorder"), bool):
        out["preorder"] = item["preorder"]
    return out


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """POST /v2/payments/capture and /v2/payments/auth."""

    token: str
    request_id: str | None
    merchant_reference: str | None


def parse_token_request(body: Any) -> TokenRequest:
    body = _require_body(body)
    token = _scalar_text(body.get("token"))
    if not token:
        raise InvalidObject(MAY_NOT_BE_EMPTY.format(path="token"))  # recorded
    return TokenRequest(token, _text(body.get("requestId"), "requestId", REQUEST_ID_MAX),
                        _text(body.get("merchantReference"), "merchantReference",
                              REFERENCE_MAX))


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    """POST /v2/payments/{orderId}/capture."""

    amount: Decimal
    currency: str
    request_id: str | None
    merchant_reference: str | None
    event_reference: str | None

    def fingerprint(self, order_id: str) -> tuple[str | None, ...]:
        return (order_id, format(self.amount, "f"), self.currency, self.merchant_reference,
                self.event_reference)


def parse_capture(body: Any, currencies: Collection[str]) -> CaptureRequest:
    body = _require_body(body)
    amount, currency = parse_money(body.get("amount"), "amount", currencies)
    return CaptureRequest(
        amount, currency, _text(body.get("requestId"), "requestId", REQUEST_ID_MAX),
        _text(body.get("merchantReference"), "merchantReference", REFERENCE_MAX),
        _text(body.get("paymentEventMerchantReference"), "paymentEventMerchantReference",
              REFERENCE_MAX))


@dataclass(frozen=True, slots=True)
class VoidRequest:
    """POST /v2/payments/{orderId}/void: every field optional, an empty body voids it all."""

    amount: Decimal | None
    currency: str | None
    request_id: str | None
    reason: str | None

    def fingerprint(self, order_id: str) -> tuple[str | None, ...]:
        return (order_id, None if self.amount is None else format(self.amount, "f"),
                self.currency, self.reason)


def parse_void(body: Any, currencies: Collection[str]) -> VoidRequest:
    body = _require_body(body)
    amount = currency = None
    if body.get("amount") is not None:
        amount, currency = parse_money(body["amount"], "amount", currencies)
    request_id = _text(body.get("requestId"), "requestId", REQUEST_ID_MAX)
    reason = _scalar_text(body.get("reason"))
    if reason is not None and reason not in REASON_VALUES:
        raise InvalidObject(REASON_INVALID)
    if amount is not None and amount <= 0:
        raise InvalidAmount(VOID_NOT_POSITIVE)
    return VoidRequest(amount, currency, request_id, reason)


def parse_update(body: Any) -> str:
    """PUT /v2/payments/{orderId}: the new merchantReference."""
    body = _require_body(body)
    reference = _text(body.get("merchantReference"), "merchantReference", REFERENCE_MAX)
    if not reference:
        raise InvalidObject(MAY_NOT_BE_EMPTY.format(path="merchantReference"))  # Decision
    return reference


__all__ = ["CaptureRequest", "CheckoutRequest", "JsonNumber", "TokenRequest", "VoidRequest",
           "money_json", "parse_capture", "parse_checkout", "parse_money", "parse_token_request",
           "parse_update", "parse_void"]
