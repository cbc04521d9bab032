"""No answer, on any error path of any surface, carries Python's own text: no repr of a value
(`Decimal('1E+26')`, `None`, `True`, `inf`), no exception class or traceback. Random JSON around
each operation's shape (numbers of any size and exponent, written as raw JSON text), random
headers and paths, through the HTTP layer of all three surfaces."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.settings import Settings

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
AFTERPAY = {"Authorization": "Basic " + base64.b64encode(b"100101382:sandbox-secret-key").decode(),
            "User-Agent": "PropertyTest/1.0", "Content-Type": "application/json"}
# Python's words, which no provider (or the admin API) ever says: a repr, a class, a traceback
PYTHON_TEXT = re.compile(
    r"Decimal\(|\bNone\b|\bTrue\b|\bFalse\b|\binf\b|\bnan\b|Traceback|File \"|object at 0x|"
    r"<class |\bb'|InvalidOperation|[A-Z][a-z]+Error\b|'(dict|list|str|float|int|NoneType)'|"
    r"is not of type '")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with TestClient(create_app(Settings(seed=11), time_source=lambda: start)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def optty_token(client: TestClient) -> str:
    answer = client.post("/token", data={"client_id": "sandbox-client",
                                         "client_secret": "sandbox-secret",
                                         "grant_type": "client_credentials",
                                         "scope": "api-user"})
    assert answer.status_code == 201
    return str(answer.json()["access_token"])


# JSON numbers as written: any size, any exponent (1e26, 1E+308, 1e400, 1e-400, 0.1e9999)
numbers = st.from_regex(r"\A-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,5})?\Z")
strings = st.one_of(st.text(max_size=20), st.sampled_from(["AUD", "aud", "", "10.00", "1,000"]))
scalars = st.one_of(st.just("null"), st.just("true"), st.just("false"), numbers,
                    strings.map(json.dumps))


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: dict[str, str]) -> str:
    return "{" + ",".join(f'"{key}":{value}' for key, value in pairs.items()) + "}"


json_texts = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(_array),
    st.dictionaries(st.sampled_from(["a", "amount", "x"]), inner, max_size=3).map(_object)),
    max_leaves=8)


def _shaped(fields: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    return st.fixed_dictionaries({}, optional=fields).map(_object)


# numbers at the edges: past Decimal's 28 digits, past a double, below its smallest value
edge_numbers = st.sampled_from(["1e26", "1E+308", "1e400", "-1e26", "1e-400", "0.1e9999",
                                "123456789012345678901234567890.01", "1e21", "10.001"])
amounts = st.one_of(edge_numbers, numbers, json_texts)
currencies = st.one_of(st.sampled_from(['"AUD"', '"NZD"']), json_texts)
money = _shaped({"amount": amounts, "currency": currencies})
# well formed but for one field or two, so the deeper checks (the schema, the rules) answer
references = st.one_of(st.uuids().map(lambda u: json.dumps(str(u))), json_texts)
full_money = st.fixed_dictionaries({"amount": amounts, "currency": currencies}).map(_object)
near_valid_optty = st.fixed_dictionaries({
    "refundReference": references, "refundAmount": full_money,
    "refundDescription": st.one_of(st.just('"d"'), json_texts)}).map(_object)
near_valid_afterpay = st.fixed_dictionaries({"amount": full_money}, optional={
    "requestId": references, "merchantReference": references}).map(_object)
afterpay_bodies = st.one_of(near_valid_afterpay, json_texts, _shaped({
    "amount": st.one_of(money, json_texts), "requestId": json_texts,
    "merchantReference": json_texts, "refundMerchantReference": json_texts}))
optty_bodies = st.one_of(near_valid_optty, json_texts, _shaped({
    "refundReference": json_texts, "refundAmount": st.one_of(money, json_texts),
    "refundDescription": json_texts, "isActivatedViaOAuth": json_texts}))
token_bodies = _shaped({"client_id": json_texts, "client_secret": json_texts,
                        "grant_type": json_texts, "scope": json_texts})
clock_bodies = st.one_of(json_texts, _shaped({"now": json_texts}),
                         _shaped({"seconds": json_texts, "minutes": json_texts,
                                  "hours": json_texts, "days": json_texts}))
scenario_bodies = st.one_of(json_texts, _shaped({
    "name": json_texts,
    "afterpay": _shaped({"payments": st.lists(_shaped({
        "id": json_texts, "merchantId": json_texts, "amount": json_texts,
        "captured": json_texts, "state": json_texts, "created": json_texts}), max_size=2)
        .map(_array)}),
    "optty": _shaped({"orders": st.lists(_shaped({
        "orderReference": json_texts, "merchantId": json_texts, "amount": json_texts,
        "currency": json_texts, "status": json_texts}), max_size=2).map(_array)}),
    "faults": st.lists(_shaped({"match": json_texts, "times": json_texts,
                                "respond": _shaped({"status": json_texts, "error": json_texts}),
                                "delay": json_texts}), max_size=2).map(_array)}))
media = st.sampled_from([None, "application/json", "text/plain", "application/xml",
                         "application/json; charset=latin1", "*/*", "text/html", ""])
order_ids = st.sampled_from(["100101785223", "100101785227", "100101785230", "0", "x", "None"])
optty_orders = st.sampled_from(["ORD-1001", "ORD-1003", "ORD-2001", "nope"])


def _requests(token: str) -> st.SearchStrategy[tuple[str, str, str, dict[str, str]]]:
    def with_media(headers: dict[str, str], content_type: str | None,
                   accept: str | None) -> dict[str, str]:
        headers = dict(headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        return headers

    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return st.one_of(
        st.builds(lambda o, b, c, a: ("POST", f"/v2/payments/{o}/refund", b,
                                      with_media(AFTERPAY, c, a)),
                  order_ids, afterpay_bodies, media, media),
        st.builds(lambda o, a: ("GET", f"/v2/payments/{o}", "", with_media(AFTERPAY, None, a)),
                  order_ids, media),
        st.builds(lambda o, b, c: ("POST", f"/orders/{o}/refund", b,
                                   with_media(bearer, c, None)), optty_orders, optty_bodies,
                  media),
        st.builds(lambda b: ("POST", "/token", b, {"Content-Type": "application/json"}),
                  token_bodies),
        st.builds(lambda b: ("PUT", "/__admin/clock", b, {"Content-Type": "application/json"}),
                  clock_bodies),
        st.builds(lambda b: ("POST", "/__admin/clock/advance", b,
                             {"Content-Type": "application/json"}), clock_bodies),
        st.builds(lambda b: ("POST", "/__admin/scenarios", b,
                             {"Content-Type": "application/json"}), scenario_bodies),
    )


@given(data=st.data())
@SETTINGS
def test_no_answer_carries_python_text(client: TestClient, optty_token: str,
                                       data: st.DataObject) -> None:
    method, path, body, headers = data.draw(_requests(optty_token))
    sent = path + body + " ".join(headers.values())
    assume(PYTHON_TEXT.search(sent) is None)  # an echo of the client's own words is no leak
    session = {"X-Sandbox-Session": "no-python"}
    answer = client.request(method, path, content=body.encode(), headers={**headers, **session})
    assert answer.status_code < 500, answer.text
    found = PYTHON_TEXT.search(answer.text)
    assert found is None, f"{method} {path} {body!r} -> {answer.status_code} {answer.text}"
    for name, value in answer.headers.items():
        assert PYTHON_TEXT.search(value) is None, (name, value)


@pytest.mark.parametrize(("amount", "message"), [
    ("1e26", "You can only refund amount up to AUD 102.50"),
    ("1e25", "You can only refund amount up to AUD 102.50"),
    ("1E+308", "You can only refund amount up to AUD 102.50"),
    ("123456789012345678901234567890.01", "You can only refund amount up to AUD 102.50"),
])
def test_huge_optty_amounts_get_the_over_refund_message(client: TestClient, optty_token: str,
                                                       amount: str, message: str) -> None:
    # valid by the provider's schema (number, minimum 0): the business rule answers, in Optty's
    # words, never the validator's (`Decimal('1E+26') is not a multiple of 0.01`)
    body = ('{"refundReference":"huge-%s","refundAmount":{"amount":%s,"currency":"AUD"},'
            '"refundDescription":"d"}' % (amount, amount))
    answer = client.post("/orders/ORD-1001/refund", content=body.encode(), headers={
        "Authorization": f"Bearer {optty_token}", "Content-Type": "application/json",
        "X-Sandbox-Session": "huge-amounts"})
    assert answer.status_code == 400
    assert answer.json() == {"statusCode": 400, "message": message, "error": "Bad Request"}
