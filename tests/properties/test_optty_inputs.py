"""No input makes an Optty handler answer 500: whatever comes in gets a NestJS-shaped 4xx/201."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.settings import Settings

START = datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
EXPECTED = {200, 201, 400, 401, 404, 413, 415}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(seed=3), time_source=lambda: START)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def token(client: TestClient) -> str:
    return str(client.post("/token", data={
        "client_id": "sandbox-client", "client_secret": "sandbox-secret",
        "grant_type": "client_credentials", "scope": "api-user"}).json()["access_token"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
# bodies near the refund's shape, where the interesting mistakes are
refund_like = st.fixed_dictionaries({}, optional={
    "refundReference": json_values,
    "refundAmount": json_values | st.fixed_dictionaries({}, optional={
        "amount": json_values | st.floats(min_value=1e-9, max_value=1e9),
        "currency": json_values | st.sampled_from(["AUD", "NZD", ""])}),
    "refundDescription": json_values,
    "isActivatedViaOAuth": json_values,
})
bodies = (refund_like.map(lambda v: json.dumps(v).encode())
          | json_values.map(lambda v: json.dumps(v).encode())
          | st.binary(max_size=64)
          | st.text(max_size=64).map(str.encode))
content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-16", "application/json; charset=ascii",
    "application/x-www-form-urlencoded", "text/plain", None])
paths = st.sampled_from(["/orders/ORD-1001/refund", "/orders/ORD-1005/refund",
                         "/orders/NOPE/refund", "/token", "/orders/ORD-1001", "/elsewhere"])


def assert_nestjs_shape(status: int, body: Any) -> None:
    if status in (200, 201):
        return
    assert body["statusCode"] == status
    message = body["message"]
    assert isinstance(message, str) or (
        isinstance(message, list) and message and all(isinstance(m, str) for m in message))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=paths, body=bodies, content_type=content_types,
       auth=st.sampled_from(["good", "none", "junk"]),
       encoding=st.sampled_from([None, None, None, "gzip", "x-unknown"]),
       method=st.sampled_from(["POST", "POST", "GET", "PUT"]))
def test_no_input_gets_a_500(client: TestClient, token: str, path: str, body: bytes,
                             content_type: str | None, auth: str, encoding: str | None,
                             method: str) -> None:
    headers: dict[str, str | bytes] = {"X-Sandbox-Session": "no-500"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    if auth == "good":
        headers["Authorization"] = f"Bearer {token}"
    elif auth == "junk":
        # any bytes a header can carry (not CR, LF or other controls)
        headers["Authorization"] = b"Bearer " + bytes(
            b for b in body[:40] if 0x20 <= b != 0x7F)
    answer = client.request(method, path, content=body, headers=headers)
    assert answer.status_code in EXPECTED, answer.text
    assert_nestjs_shape(answer.status_code, answer.json())
