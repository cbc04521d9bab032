"""No input makes the Afterpay handlers answer 500: random JSON around the refund's shape,
random bytes and random header values, through the HTTP layer."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import basic

HEADERS = {"Authorization": basic(),
           "User-Agent": "PropertyTest/1.0", "Content-Type": "application/json",
           "Accept": "application/json"}
ERROR_KEYS = ["errorCode", "errorId", "message", "httpStatusCode"]
EXPECTED = {200, 201, 400, 401, 404, 406, 409, 412, 415, 422}
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with TestClient(create_app(Settings(seed=9), time_source=lambda: start)) as test_client:
        yield test_client


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                    st.decimals(allow_nan=False, allow_infinity=False).map(str),
                    st.sampled_from(["10.00", "1,000", "AUD", "USD", "-1", "0.001", ""]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
money = st.fixed_dictionaries({}, optional={"amount": json_values, "currency": json_values})
bodies = st.fixed_dictionaries({}, optional={
    "amount": st.one_of(money, json_values), "requestId": json_values,
    "merchantReference": json_values, "refundMerchantReference": json_values,
    "extra": json_values})
order_ids = st.one_of(st.just("100101785223"), st.sampled_from(
    ["100101785227", "100101785230", "100101785224", "0"]),
    st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122), min_size=1,
            max_size=12).filter(lambda t: re.fullmatch(r"[0-9A-Za-z]+", t) is not None))


def _check(answer, caplog) -> None:
    assert answer.status_code in EXPECTED, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = json.loads(answer.content, object_pairs_hook=list)
    if answer.status_code >= 400:
        assert [k for k, _ in body] == ERROR_KEYS
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@SETTINGS
@given(order_id=order_ids, body=bodies)
def test_random_json_bodies(client: TestClient, caplog, order_id: str, body) -> None:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="mock_server"):
        answer = client.post(f"/v2/payments/{order_id}/refund",
                             content=json.dumps(body).encode(),
                             headers={**HEADERS, "X-Sandbox-Session": "hostile-json"})
    _check(answer, caplog)


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_random_bytes(client: TestClient, caplog, raw: bytes) -> None:
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="mock_server"):
        answer = client.post("/v2/payments/100101785223/refund", content=raw,
                             headers={**HEADERS, "X-Sandbox-Session": "hostile-bytes"})
    _check(answer, caplog)


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255),
                      max_size=60).map(str.strip)


@SETTINGS
@given(authorization=st.one_of(header_text, header_text.map(lambda t: "Basic " + t),
                               st.binary(max_size=40).map(
                                   lambda b: "Basic " + base64.b64encode(b).decode())),
       accept=header_text, content_type=header_text, user_agent=header_text)
def test_random_headers(client: TestClient, caplog, authorization: str, accept: str,
                        content_type: str, user_agent: str) -> None:
    caplog.clear()
    headers = {"Authorization": authorization, "Accept": accept, "Content-Type": content_type,
               "User-Agent": user_agent, "X-Sandbox-Session": "hostile-headers"}
    encoded = {k: v.encode("latin-1") for k, v in headers.items()}
    with caplog.at_level(logging.ERROR, logger="mock_server"):
        answer = client.post("/v2/payments/100101785223/refund", headers=encoded,
                             content=b'{"amount":{"amount":"0.01","currency":"AUD"}}')
        get = client.get("/v2/payments/100101785223", headers=encoded)
    _check(answer, caplog)
    _check(get, caplog)
