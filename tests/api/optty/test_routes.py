"""Express's routing and NestJS's not-found and crash answers around Optty's three operations."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mock_server.optty import models

INTERNAL = b'{"statusCode":500,"message":"Internal server error"}'


def not_found(message: str) -> dict[str, Any]:
    return {"statusCode": 404, "message": message, "error": "Not Found"}


@pytest.mark.parametrize(("method", "path", "message"), [
    ("POST", "/x", "Cannot POST /x"),
    ("GET", "/orders", "Cannot GET /orders"),
    ("GET", "/", "Cannot GET /"),
    ("PUT", "/orders/ORD-1001/refund", "Cannot PUT /orders/ORD-1001/refund"),
    ("GET", "/orders/ORD-1001/refund", "Cannot GET /orders/ORD-1001/refund"),
    ("DELETE", "/orders/ORD-1001", "Cannot DELETE /orders/ORD-1001"),
    ("GET", "/token", "Cannot GET /token"),
    ("OPTIONS", "/token", "Cannot OPTIONS /token"),
    ("POST", "/orders/ORD-1001/refunds", "Cannot POST /orders/ORD-1001/refunds"),
    ("POST", "/v1/orders/ORD-1001/refund", "Cannot POST /v1/orders/ORD-1001/refund"),
])
def test_unmatched_routes_and_methods(method: str, path: str, message: str, optty: Any) -> None:
    answer = optty.http.request(method, path, headers=optty.auth())
    assert answer.status_code == 404
    assert answer.json() == not_found(message)


def test_the_url_is_the_original_one_with_its_query(optty: Any) -> None:
    answer = optty.http.post("/refund/a%20b?x=1&y=%2F")
    assert answer.json() == not_found("Cannot POST /refund/a%20b?x=1&y=%2F")


def test_the_session_prefix_is_not_part_of_the_url(optty: Any) -> None:
    answer = optty.http.post("/sessions/route-test/nope?z=1")
    assert answer.json() == not_found("Cannot POST /nope?z=1")


def test_body_parsing_comes_before_the_not_found_handler(optty: Any) -> None:
    answer = optty.post_raw("/nope", b"{oops", auth=False)
    assert answer.status_code == 400
    assert answer.json()["message"] == "Unexpected token o in JSON at position 1"


@pytest.mark.parametrize("path", ["/Orders/ORD-1001/Refund", "/orders/ORD-1001/refund/",
                                  "/ORDERS/ORD-1001/REFUND/"])
def test_routes_match_case_insensitively_and_with_a_trailing_slash(path: str, optty: Any
                                                                   ) -> None:
    answer = optty.http.post(path, json={
        "refundReference": f"r{path}", "refundAmount": {"amount": 1, "currency": "AUD"},
        "refundDescription": "route"}, headers=optty.auth())
    assert answer.status_code == 201


def test_the_order_reference_itself_stays_case_sensitive(optty: Any) -> None:
    assert optty.http.get("/orders/ord-1001", headers=optty.auth()).status_code == 404
    assert optty.http.get("/orders/ORD-1001/", headers=optty.auth()).status_code == 200


def test_token_route_matches_like_express(optty: Any) -> None:
    answer = optty.http.post("/Token/", data={
        "client_id": "sandbox-client", "client_secret": "sandbox-secret",
        "grant_type": "client_credentials", "scope": "api-user"})
    assert answer.status_code == 201


def test_head_runs_the_get_route(optty: Any) -> None:
    assert optty.http.head("/orders/ORD-1001", headers=optty.auth()).status_code == 200
    assert optty.http.head("/orders/ORD-1001").status_code == 401


def test_a_bad_session_name_is_a_nestjs_400(optty: Any) -> None:
    answer = optty.http.post("/orders/ORD-1001/refund", headers={"X-Sandbox-Session": "a b"})
    assert answer.status_code == 400
    assert answer.json()["statusCode"] == 400
    assert answer.json()["error"] == "Bad Request"


def test_a_crash_is_nestjs_500_and_records_nothing(optty: Any, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    token = optty.token

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the sandbox broke")

    monkeypatch.setattr(models.OpttyModel, "complete_refund", broken)
    with caplog.at_level(logging.ERROR, logger="mock_server"):
        answer = optty.refund("ORD-1001", 5, "r-crash", token=token)
    assert answer.status_code == 500
    assert answer.content == INTERNAL
    assert "the sandbox broke" not in answer.text
    assert any("crashed" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    # nothing half-recorded: no money moved, and the reference is free again
    assert optty.order("ORD-1001")["refundedAmount"] == "0.00"
    assert optty.refund("ORD-1001", 5, "r-crash").status_code == 201


def test_every_answer_is_journaled_with_its_operation(optty: Any) -> None:
    optty.refund("ORD-1001", 5, "r-journal")
    optty.http.post("/nowhere")
    entries = optty.journal(provider="optty")
    assert [(e["operation"], e["status"]) for e in entries[:2]] == [
        (None, 404), ("RefundsController_refundOrder", 201)]
