"""Point 4: the Money table in its order of precedence, through the HTTP layer, plus reference
lengths, currency mismatch, unsupported_currency, JSON numbers and non-positive amounts."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

AMOUNT_REQUIRED = ("invalid_object", "amount.amount Amount field required")
AMOUNT_NOT_VALID = ("invalid_object",
                    "amount.amount Amount field must be a valid ISO 4217 format value")
THOUSANDS = ("invalid_amount", "Amount must be a valid ISO 4217 format value")
CURRENCY_REQUIRED = ("invalid_object", "amount.currency Currency field required")
CURRENCY_INVALID = ("invalid_object", "amount.currency Currency not supported for this merchant")
UNSUPPORTED = ("unsupported_currency", "An error occurred")
NOT_POSITIVE = ("invalid_amount", "Refund amount must be greater than zero.")
MISMATCH = ("invalid_object", "amount.currency must match the payment currency")


def _raw(money: str) -> bytes:
    return ('{"amount":' + money + ',"requestId":"r","merchantReference":"m"}').encode()


def _money_with(amount: str) -> str:
    return '{"amount":' + amount + ',"currency":"AUD"}'


def _check(afterpay, answer, expected) -> None:
    afterpay.assert_error(answer, 422, *expected)
    assert afterpay.open_to_refund() == 120  # nothing moved


# -- one test per row, with every example value the row gives (docs' table, in its order) --

@pytest.mark.parametrize("money", ['{"currency":"AUD"}', '{"amount":null,"currency":"AUD"}'],
                         ids=["omitted", "null"])
def test_row_1_amount_omitted_or_null(afterpay, money: str) -> None:
    _check(afterpay, afterpay.refund(raw=_raw(money)), AMOUNT_REQUIRED)


@pytest.mark.parametrize("amount", ['"10.123"', '"10.100"', '"0.001"', "10.123"])
def test_row_2_more_than_two_decimals(afterpay, amount: str) -> None:
    _check(afterpay, afterpay.refund(raw=_raw(_money_with(amount))),
           AMOUNT_NOT_VALID)


@pytest.mark.parametrize("amount", ["1,000", "1,000.00", "10,00", "1,0,0"])
def test_row_3_thousands_separator(afterpay, amount: str) -> None:
    _check(afterpay, afterpay.refund(amount=amount), THOUSANDS)


@pytest.mark.parametrize("amount", ["FREE", "$2", "", " 10.00", "10.00 ", "+10", "1e2", ".5",
                                    "10.", "ten", "NaN", "Infinity", "0x10", "１０"])
def test_row_4_not_a_decimal_number(afterpay, amount: str) -> None:
    _check(afterpay, afterpay.refund(amount=amount), AMOUNT_NOT_VALID)


@pytest.mark.parametrize("money", ['{"amount":"10.00"}', '{"amount":"10.00","currency":null}'],
                         ids=["omitted", "null"])
def test_row_5_currency_omitted_or_null(afterpay, money: str) -> None:
    _check(afterpay, afterpay.refund(raw=_raw(money)), CURRENCY_REQUIRED)


@pytest.mark.parametrize("currency", ["XYZ", "AU", "AUDD", "aud", "Aud", "", "JPY", "12"])
def test_row_6_currency_invalid_not_upper_case_or_empty(afterpay, currency: str) -> None:
    _check(afterpay, afterpay.refund(currency=currency), CURRENCY_INVALID)


@pytest.mark.parametrize("currency", ["NZD", "USD", "CAD", "GBP", "EUR"])
def test_row_7_afterpay_currency_the_merchant_does_not_take(afterpay, currency: str) -> None:
    _check(afterpay, afterpay.refund(currency=currency), UNSUPPORTED)


# -- precedence between rows -------------------------------------------------------------

@pytest.mark.parametrize(("money", "expected"), [
    ('{}', AMOUNT_REQUIRED),                                    # row 1 before row 5
    ('{"amount":null,"currency":"xx"}', AMOUNT_REQUIRED),       # row 1 before row 6
    ('{"amount":"1,000.123","currency":"AUD"}', AMOUNT_NOT_VALID),  # row 2 before row 3
    ('{"amount":"1,000","currency":null}', THOUSANDS),          # row 3 before row 5
    ('{"amount":"FREE","currency":"USD"}', AMOUNT_NOT_VALID),   # row 4 before row 7
    ('{"amount":"10.00","currency":"usd"}', CURRENCY_INVALID),  # row 6, not row 7
    ('{"amount":"0.00","currency":"USD"}', UNSUPPORTED),        # row 7 before the sign
])
def test_rows_in_order_of_precedence(afterpay, money: str, expected) -> None:
    _check(afterpay, afterpay.refund(raw=_raw(money)), expected)


def test_money_table_comes_before_the_payment_lookup(afterpay) -> None:
    afterpay.assert_error(afterpay.refund("404404", amount="FREE"), 422, *AMOUNT_NOT_VALID)


def test_money_object_missing_or_null(afterpay) -> None:
    _check(afterpay, afterpay.refund(raw=b'{"requestId":"r"}'), AMOUNT_REQUIRED)
    _check(afterpay, afterpay.refund(raw=b'{"amount":null}'), AMOUNT_REQUIRED)


# -- JSON numbers and the sign (Decisions) --------------------------------------------------

@pytest.mark.parametrize(("amount", "echoed"), [("10", "10.00"), ("10.5", "10.50"),
                                                ("0.01", "0.01"), ("7.25", "7.25"),
                                                ("7.50", "7.50"), ("120", "120.00")])
def test_json_number_amount_is_read_as_its_decimal_text(afterpay, amount: str,
                                                        echoed: str) -> None:
    answer = afterpay.refund(raw=_raw(_money_with(amount)))
    assert answer.status_code == 201, answer.text
    assert answer.json()["amount"] == {"amount": echoed, "currency": "AUD"}
    assert afterpay.open_to_refund() == Decimal("120.00") - Decimal(echoed)


@pytest.mark.parametrize("amount", ["1e2", "1E2", "10.0e0", "1.5E+1", "-1e2",
                                    "1e9999999999999999999999"])
def test_json_number_in_exponent_form_is_not_a_decimal(afterpay, amount: str) -> None:
    _check(afterpay, afterpay.refund(raw=_raw(_money_with(amount))),
           AMOUNT_NOT_VALID)


@pytest.mark.parametrize("amount", ['"0"', '"0.00"', '"-0.00"', '"-1.00"', '"-0.01"', "0", "-5"])
def test_zero_or_negative_amount(afterpay, amount: str) -> None:
    _check(afterpay, afterpay.refund(raw=_raw(_money_with(amount))),
           NOT_POSITIVE)


def test_non_positive_check_comes_after_the_money_table_and_references(afterpay) -> None:
    answer = afterpay.refund(amount="0.00", requestId="r" * 65)
    afterpay.assert_error(answer, 422, "invalid_object", "requestId size must be between 0 and 64")


# -- references ---------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "limit"), [("requestId", 64), ("merchantReference", 85),
                                              ("refundMerchantReference", 128)])
def test_reference_at_its_limit_is_accepted(afterpay, field: str, limit: int) -> None:
    answer = afterpay.refund(amount="1.00", **{field: "x" * limit})
    assert answer.status_code == 201
    assert answer.json()[field] == "x" * limit


@pytest.mark.parametrize(("field", "limit"), [("requestId", 64), ("merchantReference", 85),
                                              ("refundMerchantReference", 128)])
def test_reference_above_its_limit(afterpay, field: str, limit: int) -> None:
    _check(afterpay, afterpay.refund(**{field: "x" * (limit + 1)}),
           ("invalid_object", f"{field} size must be between 0 and {limit}"))


def test_reference_length_counts_java_chars(afterpay) -> None:
    # an emoji is two UTF-16 units: 32 emoji fill requestId's 64, 33 do not
    assert afterpay.refund(amount="1.00", requestId="😀" * 32).status_code == 201
    _check_after = afterpay.refund(amount="1.00", requestId="😀" * 33)
    afterpay.assert_error(_check_after, 422, "invalid_object",
                          "requestId size must be between 0 and 64")


def test_references_come_after_the_money_table(afterpay) -> None:
    _check(afterpay, afterpay.refund(currency="usd", requestId="r" * 65), CURRENCY_INVALID)


def test_references_in_documented_field_order(afterpay) -> None:
    answer = afterpay.refund(requestId="r" * 65, merchantReference="m" * 86,
                             refundMerchantReference="x" * 129)
    _check(afterpay, answer, ("invalid_object", "requestId size must be between 0 and 64"))
    answer = afterpay.refund(merchantReference="m" * 86, refundMerchantReference="x" * 129)
    _check(afterpay, answer, ("invalid_object", "merchantReference size must be between 0 and 85"))


# -- the payment's currency and the merchant's currencies ---------------------------------

@pytest.fixture
def two_currencies(afterpay):
    session = afterpay.in_session("two-currencies")
    session.load({"name": "multi", "afterpay": {
        "merchants": [{"merchantId": "700", "secretKey": "s", "currency": "AUD",
                       "currencies": ["NZD"]}],
        "payments": [{"id": "71", "merchantId": "700", "amount": "50.00"},
                     {"id": "72", "merchantId": "700", "amount": "50.00", "currency": "NZD"}]}})
    return session.as_merchant("700", "s")


def test_currency_must_match_the_payment(two_currencies) -> None:
    answer = two_currencies.refund("71", currency="NZD")
    two_currencies.assert_error(answer, 422, *MISMATCH)
    assert two_currencies.open_to_refund("71") == 50
    answer = two_currencies.refund("72", currency="AUD")
    two_currencies.assert_error(answer, 422, *MISMATCH)


def test_each_payment_refunds_in_its_own_currency(two_currencies) -> None:
    assert two_currencies.refund("71", currency="AUD").json()["amount"]["currency"] == "AUD"
    assert two_currencies.refund("72", currency="NZD").json()["amount"]["currency"] == "NZD"
    assert two_currencies.payment_json("72")["openToRefundAmount"] == {"amount": "40.00",
                                                                       "currency": "NZD"}


def test_a_currency_not_taken_is_unsupported_even_for_a_multi_currency_merchant(
        two_currencies) -> None:
    two_currencies.assert_error(two_currencies.refund("71", currency="USD"), 422, *UNSUPPORTED)


def test_amount_field_types_that_jackson_coerces(afterpay) -> None:
    # Decision: a number or boolean in a string field is read as its text
    answer = afterpay.refund(raw=b'{"amount":{"amount":"1.00","currency":"AUD"},'
                                 b'"requestId":12345,"merchantReference":true}')
    assert answer.status_code == 201, answer.text
    body = json.loads(answer.content)
    assert body["requestId"] == "12345" and body["merchantReference"] == "true"
