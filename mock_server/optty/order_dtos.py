"""class-validator emulation for the order lifecycle's bodies: create, capture and void.

Optty's source is not public: every decorator below is a Decision read from the fields the docs
mark required (docs:/direct-api-orders/order-flow/post-orders, post-capture, post-void) and from
what Optty's own WooCommerce plugin sends (reference/optty-lifecycle.md): amounts and quantities
as floats (`1.0`), `sku`, `streetAddress2` and `customerToken` possibly empty, unknown fields
tolerated (ValidationPipe without whitelist)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from mock_server.optty.errors import BadRequest
from mock_server.optty.validation import (
    IS_BOOLEAN,
    IS_MONEY_NUMBER,
    IS_NOT_EMPTY,
    IS_OBJECT,
    IS_POSITIVE,
    IS_STRING,
    _Constraint,
    _js_number,
    _js_number_to_string,
    _prop,
    _Schema,
    _validate,
)

# ISO 3166-1 alpha-2 (class-validator's isISO31661Alpha2) and ISO 4217 (isISO4217)
ISO_COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())
ISO_CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS
VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL
""".split())

MSG_IS_INT = "{property} must be an integer number"
MSG_MIN_ZERO = "{property} must not be less than 0"
MSG_IS_ARRAY = "{property} must be an array"
MSG_COUNTRY = "{property} must be a valid ISO31661 Alpha2 code"
MSG_CURRENCY = "{property} must be a valid ISO4217 currency code"
MSG_LOCALE = "{property} must be locale"
MSG_EMAIL = "{property} must be an email"
MSG_URL = "{property} must be a URL address"

# Business rules of POST /orders (Decisions, reference/optty-lifecycle.md)
MSG_LINE_TOTAL = "orderItems.{index}.totalAmount must equal quantity multiplied by unitPrice"
MSG_ORDER_SUM = ("orderAmount must equal the sum of orderItems totalAmount plus shippingAmount "
                 "and taxAmount minus discountAmount")

# enough digits for any sum of products of JS doubles written in decimal (1e308 * 1e308 ...)
_EXACT_DIGITS = 2000
_LOCALE = re.compile(r"[a-zA-Z]{2,3}(?:[_-][a-zA-Z0-9]{2,8})*")
_EMAIL = re.compile(r"[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+")
_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)


def _number(value: Any) -> bool:
    return _js_number(value) is not None


def _is_int(value: Any) -> bool:
    number = _js_number(value)
    return number is not None and number == number and abs(number) != float("inf") \
        and number == int(number)


def _min_zero(value: Any) -> bool:
    number = _js_number(value)
    return number is not None and number >= 0


def _text_matching(pattern: re.Pattern[str]) -> Any:
    return lambda value: isinstance(value, str) and pattern.fullmatch(value) is not None


MAX_REFERENCE = 255
MAX_ITEMS = 100
IS_SHORT = _Constraint(
    "maxLength", f"{{property}} must be shorter than or equal to {MAX_REFERENCE} characters",
    lambda value: not isinstance(value, str) or len(value) <= MAX_REFERENCE)
FEW_ITEMS = _Constraint(
    "arrayMaxSize", f"{{property}} must contain no more than {MAX_ITEMS} elements",
    lambda value: not isinstance(value, list) or len(value) <= MAX_ITEMS)
IS_INT = _Constraint("isInt", MSG_IS_INT, _is_int)
MIN_ZERO = _Constraint("min", MSG_MIN_ZERO, _min_zero)
IS_ARRAY = _Constraint("isArray", MSG_IS_ARRAY, lambda value: isinstance(value, list))
ARRAY_NOT_EMPTY = _Constraint("arrayNotEmpty", "{property} should not be empty",
                              lambda value: isinstance(value, list) and len(value) > 0)
IS_COUNTRY = _Constraint("isISO31661Alpha2", MSG_COUNTRY,
                         lambda value: isinstance(value, str) and value.upper() in ISO_COUNTRIES)
IS_CURRENCY = _Constraint("isISO4217CurrencyCode", MSG_CURRENCY,
                          lambda value: isinstance(value, str) and value in ISO_CURRENCIES)
IS_LOCALE = _Constraint("isLocale", MSG_LOCALE, _text_matching(_LOCALE))
IS_EMAIL = _Constraint("isEmail", MSG_EMAIL, _text_matching(_EMAIL))
IS_URL = _Constraint("isUrl", MSG_URL, _text_matching(_URL))
IS_NUMBER = _Constraint("isNumber", "{property} must be a number conforming to the specified "
                        "constraints", _number)

# OrderItemDto: @IsString() @IsNotEmpty() name; @IsInt() @IsPositive() quantity; @IsString() sku
# (empty allowed: the plugin sends ""); @IsNumber() unitPrice, totalAmount
_ORDER_ITEM = _Schema((
    _prop("name", IS_STRING, IS_NOT_EMPTY),
    _prop("quantity", IS_INT, IS_POSITIVE),
    _prop("sku", IS_STRING),
    _prop("unitPrice", IS_MONEY_NUMBER, MIN_ZERO),
    _prop("totalAmount", IS_MONEY_NUMBER, MIN_ZERO),
))
_CUSTOMER = _Schema((
    _prop("firstName", IS_STRING, IS_NOT_EMPTY),
    _prop("lastName", IS_STRING, IS_NOT_EMPTY),
    _prop("email", IS_EMAIL),
    _prop("phoneNumber", IS_STRING, optional=True),
))
_ADDRESS = _Schema((
    _prop("firstName", IS_STRING, optional=True),
    _prop("lastName", IS_STRING, optional=True),
    _prop("email", IS_STRING, optional=True),
    _prop("phoneNumber", IS_STRING, optional=True),
    _prop("streetAddress", IS_STRING, IS_NOT_EMPTY),
    _prop("streetAddress2", IS_STRING, optional=True),
    _prop("city", IS_STRING, IS_NOT_EMPTY),
    _prop("state", IS_STRING, optional=True),
    _prop("country", IS_COUNTRY),
    _prop("region", IS_STRING, optional=True),
    _prop("postalCode", IS_STRING, IS_NOT_EMPTY),
))
_CREATE_ORDER = _Schema((
    _prop("orderReference", IS_STRING, IS_NOT_EMPTY, IS_SHORT),
    _prop("bnplProvider", IS_STRING, IS_NOT_EMPTY),
    _prop("purchaseCountry", IS_COUNTRY),
    _prop("purchaseCurrency", IS_CURRENCY),
    _prop("locale", IS_LOCALE),
    _prop("orderAmount", IS_MONEY_NUMBER, MIN_ZERO),
    _prop("orderItems", IS_ARRAY, ARRAY_NOT_EMPTY, FEW_ITEMS, nested=_ORDER_ITEM),
    _prop("customer", IS_OBJECT, nested=_CUSTOMER),
    _prop("billingAddress", IS_OBJECT, nested=_ADDRESS),
    _prop("shippingAddress", IS_OBJECT, nested=_ADDRESS),
    _prop("shippingAmount", IS_MONEY_NUMBER, MIN_ZERO, optional=True),
    _prop("discountAmount", IS_MONEY_NUMBER, MIN_ZERO, optional=True),
    _prop("taxAmount", IS_MONEY_NUMBER, MIN_ZERO, optional=True),
    _prop("customerToken", IS_STRING, optional=True),
    _prop("dynamicRedirectUrl", IS_URL, optional=True),
    _prop("dynamicCallbackUrl", IS_URL, optional=True),
    _prop("getToken", IS_BOOLEAN, optional=True),
    _prop("token", IS_STRING, optional=True),
    _prop("channel", IS_STRING, optional=True),
))
# CaptureOrderDto: @IsString() @IsNotEmpty() captureReference; @IsNumber({maxDecimalPlaces: 2})
# @Min(0) amount; @IsOptional() @IsString() description; @IsOptional() @IsObject() shippingInfo
_CAPTURE = _Schema((
    _prop("captureReference", IS_STRING, IS_NOT_EMPTY),
    _prop("amount", IS_MONEY_NUMBER, MIN_ZERO),
    _prop("description", IS_STRING, optional=True),
    _prop("shippingInfo", IS_OBJECT, optional=True),
))
# VoidOrderDto: the same with @IsPositive() amount (the docs: "positive")
_VOID = _Schema((
    _prop("voidReference", IS_STRING, IS_NOT_EMPTY),
    _prop("amount", IS_MONEY_NUMBER, IS_POSITIVE),
    _prop("description", IS_STRING, optional=True),
))


def js_decimal(value: Any) -> Decimal:
    """The Decimal of the JS double a validated number is (10.10 -> 10.1)."""
    number = _js_number(value)
    assert number is not None
    return Decimal(_js_number_to_string(number))


@dataclass(frozen=True)
class OrderLine:
    name: str
    quantity: Decimal
    unit_price: Decimal
    total: Decimal


@dataclass(frozen=True)
class CreateOrder:
    order_reference: str
    provider: str
    country: str
    currency: str
    amount: Decimal
    lines: tuple[OrderLine, ...]
    shipping: Decimal
    discount: Decimal
    tax: Decimal
    redirect_url: str | None
    callback_url: str | None
    token: str | None
    body: dict[str, Any]
    get_token: bool = False


@dataclass(frozen=True)
class Movement:
    """A capture or a void as asked for."""

    reference: str
    amount: Decimal
    description: str


def _optional_amount(body: dict[str, Any], name: str) -> Decimal:
    value = body.get(name)
    return Decimal(0) if value is None else js_decimal(value)


def validate_create_order(body: Any) -> CreateOrder:
    """The ValidationPipe's list (then the caller checks the schema and check_amounts)."""
    _validate(body, _CREATE_ORDER)
    lines = tuple(OrderLine(item["name"], js_decimal(item["quantity"]),
                            js_decimal(item["unitPrice"]), js_decimal(item["totalAmount"]))
                  for item in body["orderItems"])
    order = CreateOrder(
        order_reference=body["orderReference"], provider=body["bnplProvider"],
        country=body["purchaseCountry"], currency=body["purchaseCurrency"],
        amount=js_decimal(body["orderAmount"]), lines=lines,
        shipping=_optional_amount(body, "shippingAmount"),
        discount=_optional_amount(body, "discountAmount"),
        tax=_optional_amount(body, "taxAmount"),
        redirect_url=body.get("dynamicRedirectUrl") or None,
        callback_url=body.get("dynamicCallbackUrl") or None,
        token=body.get("token") or None, body=body, get_token=body.get("getToken") is True)
    return order


def check_amounts(order: CreateOrder) -> None:
    """The amounts' sums (Decision): one 400 list, the lines first."""
    # exact arithmetic whatever the size of a JS double (about 10^308): no rounding, no overflow
    with localcontext(prec=_EXACT_DIGITS):
        problems = [MSG_LINE_TOTAL.format(index=index) for index, line in enumerate(order.lines)
                    if line.quantity * line.unit_price != line.total]
        expected = sum((line.total for line in order.lines), Decimal(0)) + order.shipping \
            + order.tax - order.discount
        if expected != order.amount:
            problems.append(MSG_ORDER_SUM)
    if problems:
        raise BadRequest(problems)


def validate_capture(body: Any) -> Movement:
    _validate(body, _CAPTURE)
    return Movement(body["captureReference"], js_decimal(body["amount"]),
                    body.get("description") or "")


def validate_void(body: Any) -> Movement:
    _validate(body, _VOID)
    return Movement(body["voidReference"], js_decimal(body["amount"]),
                    body.get("description") or "")


def missing_fields(body: dict[str, Any], required: tuple[str, ...]) -> list[str]:
    """A provider's own requiredFields (dotted paths) that are absent or empty."""
    missing = []
    for dotted in required:
        value: Any = body
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or value == "" or value == [] or value == {}:
            missing.append(f"{dotted} should not be empty")
    return missing
