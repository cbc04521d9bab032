"""Fault rules through the app: scripted answers in each provider's shape, delays, sessions,
counters in the admin API, and what the journal and the access log record."""

from __future__ import annotations

import http.client
import json
import logging
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.afterpay.errors import SERVICE_UNAVAILABLE_MESSAGE
from mock_server.app import SandboxApp, create_app
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, RecordedWaits, optty_token

PAYMENT = "/v2/payments/100101785223"
REFUND = f"{PAYMENT}/refund"


def refund_body(request_id: str = "r-1", amount: str = "10.00") -> dict[str, Any]:
    return {"requestId": request_id, "merchantReference": f"ref-{request_id}",
            "amount": {"amount": amount, "currency": "AUD"}}


def load(client: TestClient, document: str | dict[str, Any], session: str | None = None
         ) -> dict[str, Any]:
    """POSTs a scenario document (YAML text, or a mapping sent as JSON) into a session."""
    text = document if isinstance(document, str) else json.dumps(document)
    headers = {"X-Sandbox-Session": session} if session else {}
    answer = client.post("/__admin/scenarios", content=text.encode(), headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def rules(client: TestClient, session: str | None = None) -> dict[str, dict[str, Any]]:
    headers = {"X-Sandbox-Session": session} if session else {}
    listing = client.get("/__admin/scenarios", headers=headers).json()
    return {rule["name"]: rule for s in listing["scenarios"] for rule in s["faults"]}


def last_entry(client: TestClient, session: str | None = None) -> dict[str, Any]:
    headers = {"X-Sandbox-Session": session} if session else {}
    return dict(client.get("/__admin/requests?limit=1", headers=headers).json()["requests"][0])


def refunded(client: TestClient, session: str | None = None) -> list[str]:
    headers = dict(AFTERPAY_HEADERS)
    if session:
        headers["X-Sandbox-Session"] = session
    payment = client.get(PAYMENT, headers=headers).json()
    return [r["amount"]["amount"] for r in payment["refunds"]]


# --- respond ----------------------------------------------------------------------------------

def test_an_error_code_is_rendered_in_afterpays_shape(client: TestClient) -> None:
    load(client, """
faults:
  - name: outage
    match: {provider: afterpay, method: POST, path: "/v2/payments/*/refund"}
    respond: {status: 503, error: service_unavailable}
""")
    answer = client.post(REFUND, json=refund_body(), headers=AFTERPAY_HEADERS)
    assert answer.status_code == 503
    body = answer.json()
    assert list(body) == ["errorCode", "errorId", "message", "httpStatusCode"]
    assert body["errorCode"] == "service_unavailable"
    assert body["message"] == SERVICE_UNAVAILABLE_MESSAGE
    assert body["httpStatusCode"] == 503
    assert re.fullmatch(r"[0-9a-f]{16}", body["errorId"])
    assert re.fullmatch(r"[a-z0-9]{26}", answer.headers["http_correlation_id"])
    assert answer.text.startswith('{\n  "errorCode" : ')  # Jackson's pretty printer


def test_a_scripted_error_replaces_the_refund(client: TestClient) -> None:
    load(client, """
faults:
  - {name: outage, match: {provider: afterpay, method: POST}, respond: {status: 500, error: error}}
""")
    assert client.post(REFUND, json=refund_body(), headers=AFTERPAY_HEADERS).status_code == 500
    assert refunded(client) == []


def test_an_error_code_is_rendered_in_nestjs_shape_for_optty(client: TestClient) -> None:
    load(client, """
faults:
  - {name: throttled, match: {provider: optty, path: /token}, times: 1,
     respond: {status: 429, error: too_many_requests}}
""")
    answer = client.post("/token", data={"client_id": "sandbox-client"})
    assert answer.status_code == 429
    assert answer.content == (b'{"statusCode":429,'
                              b'"message":"ThrottlerException: Too Many Requests"}')
    optty_token(client)  # the rule is spent: tokens are issued again


def test_a_rule_for_any_provider_answers_in_each_providers_shape(client: TestClient) -> None:
    load(client, {"faults": [{"name": "all-down",
                              "respond": {"status": 503, "error": "service_unavailable"}}]})
    afterpay = client.get("/ping")
    optty = client.get("/orders/ORD-1001")
    assert afterpay.json()["errorCode"] == "service_unavailable"
    assert optty.content == b'{"statusCode":503,"message":"Service Unavailable"}'


def test_the_admin_api_is_never_faulted(client: TestClient) -> None:
    load(client, {"faults": [{"name": "all-down",
                              "respond": {"status": 503, "error": "service_unavailable"}}]})
    assert client.get("/__admin/health").status_code == 200
    assert client.get("/__admin/scenarios").status_code == 200


def test_unknown_paths_of_a_provider_are_faulted_too(client: TestClient) -> None:
    load(client, {"faults": [{"name": "down", "match": {"provider": "afterpay"},
                              "respond": {"status": 502, "error": "bad_gateway"}}]})
    answer = client.get("/v2/nothing-here")
    assert answer.status_code == 502
    assert answer.json()["errorCode"] == "bad_gateway"


def test_a_literal_body_is_sent_as_json_with_the_given_headers(client: TestClient) -> None:
    load(client, """
faults:
  - name: odd
    match: {provider: afterpay, path: /ping}
    respond:
      status: 200
      body: {ok: false, items: [1, "two"]}
      headers: {Retry-After: "5", X-Odd: "yes"}
""")
    answer = client.get("/ping")
    assert answer.status_code == 200
    assert answer.content == b'{"ok":false,"items":[1,"two"]}'
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["x-odd"] == "yes"


def test_a_literal_string_body_is_sent_as_written(client: TestClient) -> None:
    load(client, """
faults:
  - name: gateway-page
    match: {provider: optty}
    respond:
      status: 502
      body: "<html><body>502 Bad Gateway</body></html>"
      headers: {Content-Type: text/html}
""")
    answer = client.get("/orders/ORD-1001")
    assert answer.status_code == 502
    assert answer.text == "<html><body>502 Bad Gateway</body></html>"
    assert answer.headers["content-type"] == "text/html"


def test_a_status_alone_sends_an_empty_body(client: TestClient) -> None:
    load(client, "faults:\n  - {name: empty, match: {path: /ping}, respond: {status: 503}}\n")
    answer = client.get("/ping")
    assert (answer.status_code, answer.content) == (503, b"")


# --- rules belong to their session --------------------------------------------------------------

def test_rules_belong_to_the_session_they_were_loaded_into(client: TestClient) -> None:
    load(client, "faults:\n  - {name: down, respond: {status: 503, error: service_unavailable}}\n",
         session="ci-a")
    assert client.get("/ping", headers={"X-Sandbox-Session": "ci-a"}).status_code == 503
    assert client.get("/ping", headers={"X-Sandbox-Session": "ci-b"}).status_code == 200
    assert client.get("/ping").status_code == 200
    assert client.get("/sessions/ci-a/ping").status_code == 503


def test_a_request_with_an_invalid_session_name_meets_no_rule(client: TestClient) -> None:
    load(client, {"faults": [{"name": "down", "respond": {"status": 503}}]})
    answer = client.get("/ping", headers={"X-Sandbox-Session": "bad name!"})
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "invalid_request"


def test_startup_rules_are_copied_into_each_session_with_their_own_counters(
        tmp_path: Any, time_source: Any) -> None:
    drill = tmp_path / "once.yaml"
    drill.write_text("name: once\nfaults:\n  - {name: once, match: {path: /ping}, times: 1, "
                     "respond: {status: 503}}\n")
    from mock_server.resources import default_scenario_path
    app = create_app(Settings(seed=7, scenarios=(str(default_scenario_path()), str(drill))),
                     time_source=time_source)
    with TestClient(app) as client:
        for session in ("a", "b"):
            headers = {"X-Sandbox-Session": session}
            assert client.get("/ping", headers=headers).status_code == 503
            assert client.get("/ping", headers=headers).status_code == 200


def test_reset_restores_the_startup_rules_with_fresh_counters(client: TestClient) -> None:
    load(client, {"name": "extra", "faults": [
        {"name": "down", "match": {"path": "/ping"}, "times": 1, "respond": {"status": 503}}]})
    assert client.get("/ping").status_code == 503
    client.post("/__admin/reset")
    assert rules(client) == {}
    assert client.get("/ping").status_code == 200


def test_deleting_a_scenario_removes_its_rules(client: TestClient) -> None:
    load(client, {"name": "extra", "faults": [
        {"name": "down", "match": {"path": "/ping"}, "respond": {"status": 503}}]})
    assert client.get("/ping").status_code == 503
    assert client.delete("/__admin/scenarios/extra").json()["removedFaults"] == 1
    assert client.get("/ping").status_code == 200


# --- counters in the admin API -----------------------------------------------------------------

def test_the_admin_api_lists_each_rule_with_its_counters(client: TestClient) -> None:
    load(client, """
name: drills
faults:
  - {name: skip-two-then-one, match: {path: /ping}, after: 2, times: 1, respond: {status: 503}}
  - {name: unlimited, match: {provider: optty}, delay: 10ms}
""")
    statuses = [client.get("/ping").status_code for _ in range(4)]
    assert statuses == [200, 200, 503, 200]
    listed = rules(client)
    assert listed["skip-two-then-one"] == {
        "name": "skip-two-then-one", "provider": None, "matched": 1, "remaining": 0,
        "outcome": "respond 503"}
    assert listed["unlimited"] == {"name": "unlimited", "provider": "optty", "matched": 0,
                                   "remaining": None, "outcome": "delay 10ms"}


def test_loading_a_scenario_again_replaces_its_rules_and_counters(client: TestClient) -> None:
    text = {"name": "again", "faults": [
        {"name": "once", "match": {"path": "/ping"}, "times": 1, "respond": {"status": 503}}]}
    load(client, text)
    assert client.get("/ping").status_code == 503
    assert rules(client)["once"]["remaining"] == 0
    load(client, text)
    assert rules(client)["once"]["remaining"] == 1
    assert client.get("/ping").status_code == 503


# --- the journal and the access log -------------------------------------------------------------

def test_the_journal_records_which_rule_fired_and_what_it_did(client: TestClient) -> None:
    load(client, """
name: drills
faults:
  - name: outage
    match: {provider: afterpay, path: /ping}
    times: 1
    respond: {status: 503, error: service_unavailable}
""")
    client.get("/ping")
    entry = last_entry(client)
    assert entry["fault"] == {"rule": "outage", "action": "respond 503 service_unavailable"}
    assert entry["status"] == 503
    assert json.loads(entry["responseBody"])["errorCode"] == "service_unavailable"
    client.get("/ping")
    assert last_entry(client)["fault"] is None


def test_the_access_log_carries_the_fault(client: TestClient,
                                          caplog: pytest.LogCaptureFixture) -> None:
    load(client, {"name": "d", "faults": [
        {"name": "outage", "match": {"path": "/ping"}, "respond": {"status": 503}}]})
    with caplog.at_level(logging.INFO, logger="mock_server.access"):
        client.get("/ping")
    record = next(r for r in caplog.records if r.name == "mock_server.access")
    assert record.fault == {"rule": "outage", "action": "respond 503"}  # type: ignore[attr-defined]


# --- delay ------------------------------------------------------------------------------------

def test_a_delay_alone_answers_normally_after_waiting(client: TestClient,
                                                     waits: RecordedWaits) -> None:
    load(client, "faults:\n  - {name: slow, match: {path: /ping}, delay: 300ms}\n")
    answer = client.get("/ping")
    assert waits.seconds == [0.3]
    assert (answer.status_code, answer.text) == (200, "pong")
    assert last_entry(client)["fault"]["action"] == "delay 300ms"


def test_a_delayed_refund_is_made_after_the_wait(client: TestClient,
                                                 waits: RecordedWaits) -> None:
    load(client, {"faults": [
        {"name": "slow", "match": {"method": "POST", "provider": "afterpay"}, "delay": "300ms"}]})
    answer = client.post(REFUND, json=refund_body(), headers=AFTERPAY_HEADERS)
    assert waits.seconds == [0.3]
    assert answer.status_code == 201
    assert refunded(client) == ["10.00"]


def test_a_refund_refused_before_processing_is_not_delayed(client: TestClient,
                                                           waits: RecordedWaits) -> None:
    load(client, {"faults": [
        {"name": "slow", "match": {"method": "POST", "provider": "afterpay"}, "delay": "5s"}]})
    answer = client.post(REFUND, content=b"{not json", headers=AFTERPAY_HEADERS)
    assert answer.status_code == 400
    assert waits.seconds == []  # the rule matched, but the refusal came before the wait
    assert last_entry(client)["fault"]["action"] == "delay 5s"


def test_a_delay_then_a_scripted_answer(client: TestClient, waits: RecordedWaits) -> None:
    load(client, {"faults": [{"name": "late-error", "match": {"path": "/ping"}, "delay": "300ms",
                              "respond": {"status": 504, "error": "gateway_timeout"}}]})
    answer = client.get("/ping")
    assert waits.seconds == [0.3]
    assert answer.status_code == 504
    assert answer.json()["errorCode"] == "gateway_timeout"


# --- network faults without a real connection ---------------------------------------------------

def test_without_a_real_connection_a_reset_raises_in_the_client(client: TestClient) -> None:
    load(client, "faults:\n  - {name: reset, match: {method: POST}, fault: connection_reset}\n")
    with pytest.raises(ConnectionResetError):
        client.post(REFUND, json=refund_body(), headers=AFTERPAY_HEADERS)
    # the provider answered before the connection was lost: the refund is made and journaled
    assert refunded(client) == ["10.00"]
    entry = client.get("/__admin/requests?operation=createRefund").json()["requests"][0]
    assert (entry["status"], entry["responseBody"]) == (0, "")  # nothing went out
    assert entry["fault"]["action"] == "fault connection_reset after the provider answered 201"


def test_without_a_real_connection_an_empty_response_raises_remote_disconnected(
        client: TestClient) -> None:
    load(client, "faults:\n  - {name: empty, match: {path: /ping}, fault: empty_response}\n")
    with pytest.raises(http.client.RemoteDisconnected):
        client.get("/ping")


def test_malformed_body_works_without_a_real_connection(client: TestClient) -> None:
    load(client, "faults:\n  - {name: junk, match: {path: /ping}, fault: malformed_body}\n")
    answer = client.get("/ping")
    assert answer.status_code == 200
    assert answer.content[:1] == b"\xff"
    assert int(answer.headers["content-length"]) == len(answer.content) >= 16


def test_garbage_depends_on_the_seed(time_source: Any) -> None:
    def junk(seed: int) -> bytes:
        app: SandboxApp = create_app(Settings(seed=seed), time_source=time_source)
        with TestClient(app) as client:
            load(client, "faults:\n  - {name: junk, match: {path: /ping}, fault: malformed_body}\n")
            return client.get("/ping").content

    assert junk(7) == junk(7)
    assert junk(7) != junk(8)
