"""Refund bodies refused the NestJS way: Node's JSON errors, class-validator lists, body limits."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.optty.jsonparse import BODY_LIMIT_BYTES
from mock_server.settings import Settings

REFUND_PATH = "/orders/ORD-1001/refund"
TOO_LARGE = b'{"statusCode":413,"message":"request entity too large"}'


def refund_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"refundReference": "body-1",
                            "refundAmount": {"amount": 10, "currency": "AUD"},
                            "refundDescription": "Please refund this order"}
    body.update(overrides)
    return body


# ---- class-validator ---------------------------------------------------------------------


def test_an_empty_object_lists_every_failed_constraint(optty: Any, nest: Callable[..., Any]
                                                       ) -> None:
    answer = optty.post_raw(REFUND_PATH, b"{}")
    assert answer.status_code == 400
    assert answer.json() == nest(400, [
        "refundReference should not be empty",
        "refundReference must be a string",
        "refundAmount must be an object",
        "refundDescription must be a string",
    ], "Bad Request")


@pytest.mark.parametrize(("overrides", "messages"), [
    ({"refundAmount": {"amount": 0, "currency": "AUD"}},
     ["refundAmount.amount must be a positive number"]),
    ({"refundAmount": {"amount": -5, "currency": "AUD"}},
     ["refundAmount.amount must be a positive number"]),
    ({"refundAmount": {"amount": "10.00", "currency": "AUD"}},
     ["refundAmount.amount must be a positive number",
      "refundAmount.amount must be a number conforming to the specified constraints"]),
    ({"refundAmount": {"amount": 10.125, "currency": "AUD"}},
     ["refundAmount.amount must be a number conforming to the specified constraints"]),
    ({"refundAmount": {"amount": 10}},
     ["refundAmount.currency should not be empty", "refundAmount.currency must be a string"]),
    ({"refundAmount": 10},
     ["refundAmount must be an object",
      "nested property refundAmount must be either object or array"]),
    ({"refundReference": ""}, ["refundReference should not be empty"]),
    ({"refundReference": 42}, ["refundReference must be a string"]),
    ({"refundDescription": None}, ["refundDescription must be a string"]),
    ({"isActivatedViaOAuth": "yes"}, ["isActivatedViaOAuth must be a boolean value"]),
])
def test_class_validator_messages(overrides: dict[str, Any], messages: list[str], optty: Any,
                                  nest: Callable[..., Any]) -> None:
    answer = optty.post_raw(REFUND_PATH, json.dumps(refund_json(**overrides)).encode())
    assert answer.status_code == 400
    assert answer.json() == nest(400, messages, "Bad Request")


def test_isactivatedviaoauth_is_optional_and_a_boolean_passes(optty: Any) -> None:
    assert optty.refund("ORD-1001", 1, "oauth-absent").status_code == 201
    assert optty.refund("ORD-1001", 1, "oauth-true", isActivatedViaOAuth=True).status_code == 201


def test_a_number_node_prints_in_exponent_form_is_a_400_with_a_warning(optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, json.dumps(refund_json(
        refundAmount={"amount": 1e-7, "currency": "AUD"})).encode())
    assert answer.status_code == 400
    assert answer.json()["message"] == [
        "refundAmount.amount must be a number conforming to the specified constraints"]
    assert "may answer 500" in answer.headers["x-sandbox-warning"]


# ---- Node's JSON.parse -------------------------------------------------------------------


def test_the_docs_example_position_157(optty: Any, nest: Callable[..., Any]) -> None:
    head = ('{"refundReference":"TgEHcPtpN2HSrTMK-0","refundAmount":{"amount":100,'
            '"currency":"AUD"},"refundDescription":"Please refund this order",'
            '"isActivatedViaOAuth":')
    body = head.ljust(157) + "aye}"
    assert body[157] == "a"
    answer = optty.post_raw(REFUND_PATH, body.encode())
    assert answer.status_code == 400
    assert answer.json() == nest(400, "Unexpected token a in JSON at position 157", "Bad Request")


def test_a_body_that_stops_early(optty: Any, nest: Callable[..., Any]) -> None:
    answer = optty.post_raw(REFUND_PATH, b'{"refundReference":"x","refundAmount":{"amount":1')
    assert answer.status_code == 400
    assert answer.json() == nest(400, "Unexpected end of JSON input", "Bad Request")


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"a":1,}', "Unexpected token } in JSON at position 7"),
    (b"{'a':1}", "Unexpected token ' in JSON at position 1"),
    (b'{"a":01}', "Unexpected number in JSON at position 6"),
    (b'{"a" "b"}', "Unexpected string in JSON at position 5"),
    (b'"just a string"', 'Unexpected token " in JSON at position 0'),
    (b"refundReference=x", "Unexpected token r in JSON at position 0"),
    (b'{"a":"\xf0\x9f\x98\x80",x}', "Unexpected token x in JSON at position 10"),  # 2 UTF-16 units
])
def test_nodes_wording_and_utf16_positions(raw: bytes, message: str, optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, raw)
    assert answer.status_code == 400
    assert answer.json()["message"] == message


def test_a_get_with_a_malformed_json_body_is_400_too(optty: Any) -> None:
    answer = optty.http.request("GET", "/orders/ORD-1001", content=b"{x",
                                headers={**optty.auth(), "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["message"] == "Unexpected token x in JSON at position 1"


def test_a_get_with_a_content_type_and_no_body_is_fine(optty: Any) -> None:
    # Optty's plugin reads orders this way (Guzzle, Content-Type: application/json, no body)
    answer = optty.http.get("/orders/ORD-1001",
                            headers={**optty.auth(), "Content-Type": "application/json"})
    assert answer.status_code == 200


def test_an_empty_json_body_is_an_empty_object(optty: Any) -> None:
    # body-parser: "special-case empty json body, as it's a common client-side mistake"
    answer = optty.post_raw(REFUND_PATH, b"")
    assert answer.status_code == 400
    assert answer.json()["message"][0] == "refundReference should not be empty"


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/vnd.api+json", None, "application/json-patch"])
def test_other_content_types_are_never_parsed(content_type: str | None, optty: Any) -> None:
    # Express reads only application/json and form bodies: the handler sees no fields, no 415
    answer = optty.post_raw(REFUND_PATH, json.dumps(refund_json()).encode(), content_type)
    assert answer.status_code == 400
    assert answer.json()["message"] == [
        "refundReference should not be empty", "refundReference must be a string",
        "refundAmount must be an object", "refundDescription must be a string"]


def test_content_type_parameters_and_case_are_ignored(optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, json.dumps(refund_json()).encode(),
                            "Application/JSON; charset=UTF-8")
    assert answer.status_code == 201


def test_a_form_body_is_parsed_with_qs_nesting(optty: Any) -> None:
    form = (b"refundReference=form-1&refundAmount[amount]=10&refundAmount[currency]=AUD"
            b"&refundDescription=form")
    answer = optty.post_raw(REFUND_PATH, form, "application/x-www-form-urlencoded")
    assert answer.status_code == 400  # form values are strings, never numbers
    assert answer.json()["message"] == [
        "refundAmount.amount must be a positive number",
        "refundAmount.amount must be a number conforming to the specified constraints"]


# ---- charsets and encodings (body-parser) -------------------------------------------------


def test_a_non_utf_charset_is_415(optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, b"{}", "application/json; charset=latin1")
    assert answer.status_code == 415
    assert answer.content == b'{"statusCode":415,"message":"unsupported charset \\"LATIN1\\""}'


def test_utf16_json_is_read(optty: Any) -> None:
    body = json.dumps(refund_json(refundReference="utf16")).encode("utf-16")
    answer = optty.post_raw(REFUND_PATH, body, "application/json; charset=utf-16")
    assert answer.status_code == 201, answer.text


def test_gzip_and_deflate_bodies_are_inflated(optty: Any) -> None:
    for encoding, packed in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        raw = json.dumps(refund_json(refundReference=f"packed-{encoding}")).encode()
        answer = optty.post_raw(REFUND_PATH, packed(raw), headers={"Content-Encoding": encoding})
        assert answer.status_code == 201, answer.text


def test_a_body_that_does_not_inflate_is_400(optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, b"not gzip", headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400
    assert answer.json() == {"statusCode": 400, "message": "incorrect header check"}


def test_an_unknown_content_encoding_is_415(optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, b"{}", headers={"Content-Encoding": "br"})
    assert answer.status_code == 415
    assert answer.json() == {"statusCode": 415, "message": 'unsupported content encoding "br"'}


# ---- body-parser's 100kb limit -------------------------------------------------------------


def _padded(size: int) -> bytes:
    raw = json.dumps(refund_json(refundReference="big", refundDescription="")).encode()
    pad = size - len(raw)
    body = json.dumps(refund_json(refundReference="big", refundDescription="d" * pad)).encode()
    assert len(body) == size
    return body


def test_exactly_100kb_is_read(optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, _padded(BODY_LIMIT_BYTES))
    assert answer.status_code == 201


def test_one_byte_more_is_413(optty: Any) -> None:
    answer = optty.post_raw(REFUND_PATH, _padded(BODY_LIMIT_BYTES + 1))
    assert answer.status_code == 413
    assert answer.content == TOO_LARGE
    assert optty.order("ORD-1001")["refunds"] == []


def test_the_limit_comes_before_the_guard_and_the_router(optty: Any) -> None:
    big = _padded(BODY_LIMIT_BYTES + 1)
    assert optty.post_raw(REFUND_PATH, big, auth=False).content == TOO_LARGE
    assert optty.post_raw("/no/such/route", big, auth=False).content == TOO_LARGE


def test_a_form_body_has_the_same_limit(optty: Any) -> None:
    answer = optty.post_raw("/token", b"a=" + b"x" * BODY_LIMIT_BYTES,
                            "application/x-www-form-urlencoded", auth=False)
    assert answer.status_code == 413


def test_too_many_form_parameters_is_413(optty: Any) -> None:
    answer = optty.post_raw("/token", b"&".join([b"a=1"] * 1001),
                            "application/x-www-form-urlencoded", auth=False)
    assert answer.status_code == 413
    assert answer.json() == {"statusCode": 413, "message": "too many parameters"}


def test_the_limit_counts_inflated_bytes(optty: Any) -> None:
    bomb = gzip.compress(_padded(BODY_LIMIT_BYTES + 1))
    assert len(bomb) < BODY_LIMIT_BYTES
    answer = optty.post_raw(REFUND_PATH, bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413


def test_a_large_body_of_another_type_is_not_read(optty: Any) -> None:
    # Express never reads it, so no 413: the handler just sees no fields
    answer = optty.post_raw(REFUND_PATH, b"x" * (BODY_LIMIT_BYTES * 3), "text/plain")
    assert answer.status_code == 400
    assert isinstance(answer.json()["message"], list)


def test_the_sandbox_wide_limit_still_applies_first(time_source: Any) -> None:
    app = create_app(Settings(seed=7, max_body_bytes=50_000), time_source=time_source)
    with TestClient(app) as client:
        answer = client.post(REFUND_PATH, content=b"x" * 60_000,
                             headers={"Content-Type": "text/plain"})
        assert answer.status_code == 413
        assert answer.content == TOO_LARGE


def test_the_read_refund_is_checked_against_the_spec(optty, monkeypatch) -> None:
    """A refund the class-validator emulation lets through but the document forbids is still
    refused as a NestJS 400 list: here the spec is made stricter than the rules for one run."""
    from mock_server.core.openapi import Operation, Violation

    def forbid(self: Operation, value: object) -> list[Violation]:
        return [Violation(("refundAmount", "amount"), "maximum", "10 is greater than 5", 5, 10)]

    monkeypatch.setattr(Operation, "validate_body", forbid)
    answer = optty.refund("ORD-1001", 10, "spec-1")
    assert answer.status_code == 400
    assert answer.json() == {"statusCode": 400,
                             "message": ["refundAmount.amount must not be greater than 5"],
                             "error": "Bad Request"}
