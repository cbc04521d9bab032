"""Point: every header value the sandbox builds is safe to send. A merchant id beyond Latin-1
reaches X-Sandbox-Warning escaped, the answer goes out (201, in Optty's shape) and the refund is
recorded once; ids with CR/LF or other control characters are refused in scenarios."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.core.headervalue import MAX_VALUE_CHARS, header_value, safe_raw_headers
from mock_server.settings import Settings

from .threaded import Served, split_reply

MERCHANT = "商户-1é"


def world(merchant: str, order: str = "r1") -> str:
    return json.dumps({"name": "odd-ids", "optty": {
        "merchants": [{"merchantId": merchant, "clientId": "c1", "clientSecret": "s1"}],
        "providers": {"AFTERPAY": {"asyncRefunds": True}},
        "orders": [{"orderReference": order, "merchantId": merchant, "bnplProvider": "AFTERPAY",
                    "amount": "10.00", "currency": "AUD", "status": "SUCCESSFUL"}]}})


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> bytes:
    head = f"{method} /sessions/odd{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_a_merchant_id_beyond_latin_1_reaches_the_warning_escaped_on_a_real_server(
        threaded_server: Callable[..., Served]) -> None:
    served = threaded_server()
    status, _h, _b = split_reply(served.exchange(request(
        "POST", "/__admin/scenarios", world(MERCHANT).encode(),
        {"Content-Type": "application/json"})))
    assert status == 201
    _s, _h, token = split_reply(served.exchange(request(
        "POST", "/token", b"client_id=c1&client_secret=s1&grant_type=client_credentials"
        b"&scope=api-user", {"Content-Type": "application/x-www-form-urlencoded"})))
    bearer = json.loads(token)["access_token"]
    refund = json.dumps({"refundReference": "rf1", "refundDescription": "x",
                         "refundAmount": {"amount": 1, "currency": "AUD"}}).encode()
    status, headers, body = split_reply(served.exchange(request(
        "POST", "/orders/r1/refund", refund,
        {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})))
    assert status == 201, body
    assert json.loads(body)["refundStatus"] == "PENDING"
    warning = headers["x-sandbox-warning"]
    assert warning.isascii() and "\\u5546\\u6237-1\\u00e9" in warning
    # recorded once; the journal keeps the warning's text as it was
    entry = served.app.world.session("odd").journal.query(operation=
                                                           "RefundsController_refundOrder")[1][0]
    assert MERCHANT in entry.warnings[0]
    _s, _h, order = split_reply(served.exchange(request(
        "GET", "/orders/r1", headers={"Authorization": f"Bearer {bearer}"})))
    assert json.loads(order)["refunds"][0]["refundReference"] == "rf1"
    assert len(json.loads(order)["refunds"]) == 1


@pytest.mark.parametrize("merchant", ["m\r\nX-Injected: 1", "m\n", "m\x00", "m\x7f",
                                      "m\u2028x", "x" * 257])
def test_a_merchant_id_with_control_characters_is_refused(merchant: str) -> None:
    app = create_app(Settings(seed=1))
    with TestClient(app) as client:
        answer = client.post("/__admin/scenarios", content=world(merchant),
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_scenario"


def test_an_order_reference_with_a_newline_is_refused() -> None:
    app = create_app(Settings(seed=1))
    with TestClient(app) as client:
        answer = client.post("/__admin/scenarios", content=world("m1", order="r\n1"),
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert "orderReference" in answer.json()["message"]


@pytest.mark.parametrize("text", ["a\r\nX-Forged: 1", "é", "日本", "\U0001f600", "tab\there"])
def test_header_value_is_one_line_of_printable_ascii(text: str) -> None:
    value = header_value(text)
    assert all(0x20 <= b <= 0x7E for b in value)
    assert b"\r" not in value and b"\n" not in value


def test_header_value_is_bounded_whatever_its_text() -> None:
    assert len(header_value("\u2028" * 1_000_000)) <= MAX_VALUE_CHARS
    assert len(header_value("a" * 1_000_000)) <= MAX_VALUE_CHARS


def test_the_last_line_of_defence_escapes_what_uvicorn_would_refuse() -> None:
    headers = [(b"x-ok", b"fine"), (b"x-bad", b"a\r\nb")]
    assert safe_raw_headers(headers) == [(b"x-ok", b"fine"), (b"x-bad", b"a\\u000d\\u000ab")]
    clean = [(b"x-ok", b"fine")]
    assert safe_raw_headers(clean) is clean
