"""Point 3: Basic auth with merchantId:secretKey, constant-time secrets, merchants kept apart."""

from __future__ import annotations

import base64

import pytest

from mock_server.afterpay import errors

UNAUTHORIZED = "Credentials are required to access this resource."


def _b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


BAD_AUTHORIZATIONS = {
    "bad-base64": "Basic not*base64!",
    "truncated-base64": "Basic " + _b64(b"100101382:sandbox-secret-key")[:-2],
    "no-colon": "Basic " + _b64(b"100101382sandbox-secret-key"),
    "unknown-merchant": "Basic " + _b64(b"999999999:sandbox-secret-key"),
    "wrong-secret": "Basic " + _b64(b"100101382:sandbox-secret-kez"),
    "secret-prefix": "Basic " + _b64(b"100101382:sandbox-secret"),
    "empty-secret": "Basic " + _b64(b"100101382:"),
    "other-merchants-secret": "Basic " + _b64(b"100101382:sandbox-secret-key-nz"),
    "bearer-scheme": "Bearer " + _b64(b"100101382:sandbox-secret-key"),
    "scheme-only": "Basic",
    "scheme-and-space": "Basic ",
    "not-utf8": "Basic " + _b64(b"100101382:\xff\xfe"),
    "empty": "",
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS.values(),
                         ids=BAD_AUTHORIZATIONS.keys())
def test_bad_credentials_are_401_on_refund(afterpay, authorization: str) -> None:
    answer = afterpay.refund(headers={"Authorization": authorization})
    afterpay.assert_error(answer, 401, "unauthorized", UNAUTHORIZED)
    assert afterpay.open_to_refund() == 120  # nothing moved


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS.values(),
                         ids=BAD_AUTHORIZATIONS.keys())
def test_bad_credentials_are_401_on_get_payment(afterpay, authorization: str) -> None:
    answer = afterpay.payment(headers={"Authorization": authorization})
    afterpay.assert_error(answer, 401, "unauthorized", UNAUTHORIZED)


def test_missing_credentials_are_401(afterpay) -> None:
    afterpay.assert_error(afterpay.refund(drop=["Authorization"]), 401, "unauthorized",
                          UNAUTHORIZED)
    afterpay.assert_error(afterpay.payment(drop=["Authorization"]), 401, "unauthorized",
                          UNAUTHORIZED)


def test_scheme_is_case_insensitive_and_secret_may_hold_colons(afterpay) -> None:
    assert afterpay.refund(headers={
        "Authorization": "basic " + _b64(b"100101382:sandbox-secret-key")}).status_code == 201
    colon = afterpay.in_session("colon-secret")
    colon.load({"name": "colon", "afterpay": {
        "merchants": [{"merchantId": "555", "secretKey": "a:b:c", "currency": "AUD"}],
        "payments": [{"id": "1", "merchantId": "555", "amount": "5.00"}]}})
    assert colon.as_merchant("555", "a:b:c").refund("1", amount="1.00").status_code == 201
    assert colon.as_merchant("555", "a:b").refund("1", amount="1.00").status_code == 401


def test_ping_needs_no_credentials(afterpay) -> None:
    answer = afterpay.client.get("/ping", headers={"Authorization": "Basic garbage"})
    assert answer.status_code == 200 and answer.text == "pong"


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-merchant"])
def test_secrets_are_compared_in_constant_time(afterpay, monkeypatch, case: str) -> None:
    """Both a wrong secret and an unknown merchant go through hmac.compare_digest, so timing
    tells neither the secret nor which merchant ids exist."""
    import hmac

    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr("mock_server.afterpay.models.hmac.compare_digest", spy)
    answer = afterpay.refund(headers={"Authorization": BAD_AUTHORIZATIONS[case]})
    assert answer.status_code == 401
    assert len(seen) == 1
    given, expected = seen[0]
    if case == "wrong-secret":
        assert (given, expected) == (b"sandbox-secret-kez", b"sandbox-secret-key")
    else:
        assert given == b"sandbox-secret-key" and expected != given


def test_a_merchant_never_sees_another_merchants_payment(afterpay) -> None:
    nz = afterpay.as_merchant("100101400", "sandbox-secret-key-nz")
    # the AU merchant: the NZ payment does not exist
    afterpay.assert_error(afterpay.payment("100101785300"), 404, "not_found",
                          errors.NOT_FOUND_MESSAGE)
    afterpay.assert_error(afterpay.refund("100101785300"), 404, "not_found",
                          errors.NOT_FOUND_MESSAGE)
    # ... and the NZ merchant cannot see the AU merchant's
    afterpay.assert_error(nz.payment("100101785223"), 404, "not_found")
    afterpay.assert_error(nz.refund("100101785223", currency="NZD"), 404, "not_found")
    # the owner can
    assert nz.payment("100101785300").status_code == 200
    assert nz.refund("100101785300", currency="NZD").status_code == 201
    assert afterpay.open_to_refund() == 120


def test_the_401_comes_before_anything_else(afterpay) -> None:
    # bad credentials outrank a bad body, a bad media type and an unknown payment
    answer = afterpay.refund("404404", raw=b"{", headers={
        "Authorization": "Basic Zm9vOmJhcg==", "Content-Type": "text/plain",
        "Accept": "text/html"})
    afterpay.assert_error(answer, 401, "unauthorized")
