"""Point 6: invalid_json, 405 with Allow, 406, 415, unknown /v2/ paths and 413, in Afterpay's
shape, in the sandbox's order of checks; and no input makes the Afterpay handlers answer 500."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from mock_server.afterpay import errors
from tests.conftest import AFTERPAY_HEADERS

INVALID_JSON = ("invalid_json", "The request contains improperly formatted JSON")


@pytest.mark.parametrize("raw", [
    b"", b"{", b"}", b"not json", b'{"amount":{"amount":"1.00","currency":"AUD"}}x',
    b'{"amount":{"amount":"1.00","currency":"AUD"},}', b"{'amount': 1}",
    b'{"amount":{"amount":NaN,"currency":"AUD"}}', b'{"amount":{"amount":Infinity}}',
    b'{"amount":{"amount":007,"currency":"AUD"}}', b"\xff\xfe{}", b'{"a":"\xc3"}',
    b"[" * 100_000, b"null", b"[]", b"10.00", b'"refund"', b"true",
    b'{"amount":"10.00"}', b'{"amount":[1]}', b'{"amount":{"amount":{},"currency":"AUD"}}',
    b'{"amount":{"amount":"1.00","currency":["AUD"]}}',
    b'{"amount":{"amount":"1.00","currency":"AUD"},"requestId":{"x":1}}',
], ids=lambda raw: repr(raw[:24]))
def test_invalid_json(afterpay, raw: bytes) -> None:
    afterpay.assert_error(afterpay.refund(raw=raw), 400, *INVALID_JSON)
    assert afterpay.open_to_refund() == 120


def test_utf8_byte_order_mark_is_skipped(afterpay) -> None:
    answer = afterpay.refund(raw=b'\xef\xbb\xbf{"amount":{"amount":"1.00","currency":"AUD"}}')
    assert answer.status_code == 201


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/v2/payments/100101785223/refund", "POST"),
    ("PUT", "/v2/payments/100101785223/refund", "POST"),
    ("DELETE", "/v2/payments/100101785223/refund", "POST"),
    ("PATCH", "/v2/payments/100101785223/refund", "POST"),
    ("OPTIONS", "/v2/payments/100101785223/refund", "POST"),
    ("POST", "/v2/payments/100101785223", "GET, HEAD, PUT"),
    ("DELETE", "/v2/payments/100101785223", "GET, HEAD, PUT"),
    ("GET", "/v2/payments/100101785223/capture", "POST"),
    ("GET", "/v2/checkouts", "POST"),
    ("POST", "/v2/configuration", "GET, HEAD"),
    ("POST", "/ping", "GET, HEAD"),
])
def test_wrong_method_is_405_with_allow(afterpay, method: str, path: str, allow: str) -> None:
    answer = afterpay.client.request(method, path, headers=afterpay.headers())
    afterpay.assert_error(answer, 405, "method_not_allowed", "Method Not Allowed")
    assert answer.headers["allow"] == allow


def test_head_is_served_where_get_is(afterpay) -> None:
    answer = afterpay.client.head("/v2/payments/100101785223", headers=afterpay.headers())
    assert answer.status_code == 200


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "text/plain, image/png",
                                    "application/json;q=0", "application/json; q=0.0, text/*"])
def test_accept_without_json_is_406(afterpay, accept: str) -> None:
    afterpay.assert_error(afterpay.refund(headers={"Accept": accept}), 406, "error",
                          "Not Acceptable")
    afterpay.assert_error(afterpay.payment(headers={"Accept": accept}), 406, "error",
                          "Not Acceptable")
    assert afterpay.open_to_refund() == 120


@pytest.mark.parametrize("accept", ["*/*", "application/*", "application/json",
                                    "text/html, application/json;q=0.1",
                                    "application/problem+json", "APPLICATION/JSON", ""])
def test_accept_admitting_json(afterpay, accept: str) -> None:
    assert afterpay.refund(amount="1.00", headers={"Accept": accept}).status_code == 201
    assert afterpay.refund(amount="1.00", drop=["Accept"]).status_code == 201


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml",
                                          "json", "text/json"])
def test_content_type_not_json_is_415(afterpay, content_type: str) -> None:
    answer = afterpay.refund(headers={"Content-Type": content_type})
    afterpay.assert_error(answer, 415, "error", "Unsupported Media Type")
    assert afterpay.open_to_refund() == 120


def test_missing_content_type_is_415(afterpay) -> None:
    afterpay.assert_error(afterpay.refund(drop=["Content-Type"]), 415, "error",
                          "Unsupported Media Type")


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "Application/JSON", "application/vnd.api+json"])
def test_json_content_types(afterpay, content_type: str) -> None:
    answer = afterpay.refund(amount="1.00", headers={"Content-Type": content_type})
    assert answer.status_code == 201


@pytest.mark.parametrize("path", ["/v2", "/v2/", "/v2/payments/",
                                  "/v2/payments/100101785223/refund/x",
                                  "/v2/payments/100101785223/capture/x", "/v2/checkouts/"])
def test_unknown_v2_path_answers_in_afterpay_shape(afterpay, path: str) -> None:
    answer = afterpay.client.get(path, headers=afterpay.headers())
    afterpay.assert_error(answer, 404, "not_found", errors.ROUTE_NOT_FOUND_MESSAGE)
    answer = afterpay.client.post(path, headers=afterpay.headers(), content=b"{}")
    afterpay.assert_error(answer, 404, "not_found", errors.ROUTE_NOT_FOUND_MESSAGE)


def test_body_too_large_is_413(afterpay) -> None:
    big = b'{"amount":{"amount":"1.00","currency":"AUD"},"x":"' + b"a" * (1024 * 1024) + b'"}'
    answer = afterpay.refund(raw=big)
    afterpay.assert_error(answer, 413, "request_too_large", "Request body is too large")
    assert afterpay.open_to_refund() == 120


# -- the order of checks (fidelity notes, "Afterpay: order of checks") -----------------------

BAD_AUTH = {"Authorization": "Basic Zm9vOmJhcg=="}


def test_413_comes_first(afterpay) -> None:
    answer = afterpay.client.post("/v2/nowhere", content=b"x" * (1024 * 1024 + 1),
                                  headers=afterpay.headers(BAD_AUTH))
    afterpay.assert_error(answer, 413, "request_too_large")


def test_401_before_route_and_method(afterpay) -> None:
    afterpay.assert_error(afterpay.client.get("/v2/nowhere", headers=afterpay.headers(BAD_AUTH)),
                          401, "unauthorized")
    answer = afterpay.client.get("/v2/payments/1/refund", headers=afterpay.headers(BAD_AUTH))
    afterpay.assert_error(answer, 401, "unauthorized")
    assert "allow" not in answer.headers


def test_405_before_415_and_406(afterpay) -> None:
    answer = afterpay.client.put("/v2/payments/1/refund", content=b"{", headers=afterpay.headers(
        {"Content-Type": "text/plain", "Accept": "text/html"}))
    afterpay.assert_error(answer, 405, "method_not_allowed")


def test_415_before_406(afterpay) -> None:
    answer = afterpay.refund(headers={"Content-Type": "text/plain", "Accept": "text/html"})
    afterpay.assert_error(answer, 415, "error", "Unsupported Media Type")


def test_406_before_invalid_json(afterpay) -> None:
    afterpay.assert_error(afterpay.refund(raw=b"{", headers={"Accept": "text/html"}), 406, "error")


def test_invalid_json_before_the_money_table_and_the_payment(afterpay) -> None:
    afterpay.assert_error(afterpay.refund("404404", raw=b'{"amount":{}'), 400, "invalid_json")


def test_money_table_before_unknown_payment(afterpay) -> None:
    afterpay.assert_error(afterpay.refund("404404", currency="USD"), 422, "unsupported_currency")


def test_unknown_payment_before_business_rules(afterpay) -> None:
    afterpay.assert_error(afterpay.refund("404404", amount="99999.00"), 404, "not_found")


# -- hostile input never makes the handler answer 500 ------------------------------------

HOSTILE_BODIES = [
    b'{"amount":{"amount":"' + b"9" * 500_000 + b'","currency":"AUD"}}',
    b'{"amount":{"amount":' + b"9" * 100_000 + b',"currency":"AUD"}}',
    b'{"amount":{"amount":1e99999999999999999999999,"currency":"AUD"}}',
    b'{"amount":{"amount":-1e-99999999999999999999999,"currency":"AUD"}}',
    b'{"amount":{"amount":"1.00","currency":"AUD"},"requestId":"\\ud800","merchantReference":"m"}',
    b'{"amount":{"amount":"1.00","currency":"\\u0000AUD"}}',
    b'{"amount":{"amount":"1.00\\u0000","currency":"AUD"}}',
    b'{"amount":{"amount":"\\ud83d\\ude00","currency":"AUD"}}',
    b'{"amount":{"amount":"1.00","currency":"AUD"},"refundMerchantReference":"' + b"\\n" * 200
    + b'"}',
    b'{"amount":{"amount":"1.00","currency":"AUD"},"x":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"amount":{"amount":"1.00","currency":"AUD"},"x":' + b'{"a":' * 5000 + b"1"
    + b"}" * 5000 + b"}",
    b'{"amount":{"amount":true,"currency":false}}',
    b'{"amount":{"amount":"1.00","currency":"AUD"},"requestId":1e999999999999999999999,'
    b'"merchantReference":-0}',
    b'{"__proto__":{},"amount":{"amount":"1.00","currency":"AUD"}}',
    b'{"amount":{"amount":"1.00","currency":"AUD"},"amount":{"amount":"2.00","currency":"AUD"}}',
    "{\"amount\":{\"amount\":\"١٠\",\"currency\":\"AUD\"}}".encode(),
]


@pytest.mark.parametrize("raw", HOSTILE_BODIES, ids=lambda raw: repr(raw[:40]))
def test_hostile_bodies(afterpay, caplog, raw: bytes) -> None:
    with caplog.at_level(logging.ERROR, logger="mock_server"):
        answer = afterpay.refund(raw=raw)
    assert answer.status_code in (201, 400, 422), answer.text
    assert answer.headers["content-type"] == "application/json"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert answer.json()  # always a JSON body


HOSTILE_HEADERS = [
    {"Authorization": "Basic " + "A" * 100_000},
    {"Authorization": "Basic w7/Dvzo="},  # decodes to non-UTF-8-ish bytes
    {"Authorization": "Basic \u00e9\u00e9"},
    {"Authorization": "Basic ====", "Accept": ";;;,,,"},
    {"Accept": "application/json;q=abc"},
    {"Accept": "*/*;q=" + "9" * 400},
    {"Content-Type": ";"},
    {"Content-Type": "application/json; charset=\x7f"},
    {"User-Agent": "\u00ff" * 1000},
    {"X-Sandbox-Session": "../../etc"},
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS, ids=range(len(HOSTILE_HEADERS)))
def test_hostile_headers(afterpay, caplog, headers) -> None:
    encoded = {k: v.encode("latin-1") for k, v in headers.items()}
    with caplog.at_level(logging.ERROR, logger="mock_server"):
        answer = afterpay.client.post("/v2/payments/100101785223/refund",
                                      content=b'{"amount":{"amount":"1.00","currency":"AUD"}}',
                                      headers={**afterpay.headers(), **encoded})
        get = afterpay.client.get("/v2/payments/100101785223",
                                  headers={**afterpay.headers(json_body=False), **encoded})
    for one in (answer, get):
        assert one.status_code < 500, one.text
        assert one.headers["content-type"] == "application/json"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("order_id", ["%00", "%2e%2e", "a%2Fb", "\u00e9", "1" * 5000, "-1",
                                      "0x10", "%20", "null"])
def test_hostile_order_ids(afterpay, order_id: str) -> None:
    answer = afterpay.refund(order_id)
    assert answer.status_code == 404
    assert answer.json()["errorCode"] == "not_found"
    assert afterpay.payment(order_id).status_code == 404


def test_the_read_request_is_checked_against_the_spec(client: TestClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A request the ordered rules let through but the document forbids is still refused, in
    Afterpay's shape: here the spec is made stricter than the rules for one run."""
    from mock_server.core.openapi import Operation, Violation

    def forbid(self: Operation, value: object) -> list[Violation]:
        return [Violation(("requestId",), "maxLength", "'r-1' is too long", 2, "r-1")]

    monkeypatch.setattr(Operation, "validate_body", forbid)
    answer = client.post("/v2/payments/100101785223/refund", headers=AFTERPAY_HEADERS,
                         json={"amount": {"amount": "1.00", "currency": "AUD"},
                               "requestId": "r-1"})
    assert answer.status_code == 422
    assert answer.json()["errorCode"] == "invalid_object"
    assert answer.json()["message"] == "requestId size must be between 0 and 2"
