"""GET /__admin/metrics: requests, latency, refunds and amounts, faults, sessions, journal."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, ManualTime, optty_token

REFUND = "/v2/payments/100101785223/refund"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/__admin/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples}


def refund(client: TestClient, amount: str, request_id: str, **headers: str) -> int:
    return client.post(REFUND, headers={**AFTERPAY_HEADERS, **headers},
                       json={"requestId": request_id, "merchantReference": f"ref-{request_id}",
                             "amount": {"amount": amount, "currency": "AUD"}}).status_code


def test_requests_are_counted_by_provider_operation_and_status(client: TestClient) -> None:
    assert refund(client, "10.00", "a") == 201
    assert refund(client, "10.00", "b", **{"X-Sandbox-Session": "other"}) == 201
    assert refund(client, "999.00", "c") == 422
    found = scrape(client)
    created = ("sandbox_requests_total", (("operation", "createRefund"),
                                          ("provider", "afterpay"), ("status", "201")))
    refused = ("sandbox_requests_total", (("operation", "createRefund"),
                                          ("provider", "afterpay"), ("status", "422")))
    assert found[created] == 2 and found[refused] == 1
    histogram = ("sandbox_request_duration_seconds_count", (("provider", "afterpay"),))
    assert found[histogram] == 3
    inf = ("sandbox_request_duration_seconds_bucket", (("le", "+Inf"), ("provider", "afterpay")))
    assert found[inf] == 3


def test_refunds_and_amounts_by_currency_across_providers(client: TestClient) -> None:
    assert refund(client, "10.25", "a") == 201
    assert refund(client, "0.50", "b") == 201
    assert refund(client, "0.50", "b") == 201  # an idempotent replay is no new refund
    token = optty_token(client)
    answer = client.post("/orders/ORD-1001/refund", headers={"Authorization": f"Bearer {token}"},
                         json={"refundReference": "m-1", "refundDescription": "metrics",
                               "refundAmount": {"amount": 5, "currency": "AUD"}})
    assert answer.status_code in (200, 201), answer.text
    found = scrape(client)
    assert found[("sandbox_refunds_total", (("currency", "AUD"), ("provider", "afterpay")))] == 2
    assert found[("sandbox_refunded_amount_total",
                  (("currency", "AUD"), ("provider", "afterpay")))] == 10.75
    optty = [v for (name, labels), v in found.items()
             if name == "sandbox_refunds_total" and ("provider", "optty") in labels]
    assert optty == [1]


def test_faults_fired_by_rule_and_outcome(client: TestClient) -> None:
    rule: dict[str, Any] = {"name": "down", "match": {"provider": "afterpay"}, "times": 2,
                            "respond": {"status": 503, "error": "service_unavailable"}}
    assert client.post("/__admin/scenarios", content=json.dumps(
        {"name": "outage", "faults": [rule]})).status_code == 201
    for n in range(3):
        refund(client, "1.00", f"f-{n}")
    found = scrape(client)
    key = ("sandbox_faults_fired_total", (("outcome", "respond"), ("provider", "afterpay"),
                                          ("rule", "down")))
    assert found[key] == 2


def test_sessions_and_journal_are_gauges(client: TestClient) -> None:
    for name in ("s1", "s2"):
        client.get("/ping", headers={"X-Sandbox-Session": name})
    client.get("/ping")
    found = scrape(client)
    assert found[("sandbox_sessions", ())] == 3
    assert found[("sandbox_journal_entries", ())] == 3


def test_metrics_need_the_admin_token(time_source: ManualTime) -> None:
    with TestClient(create_app(Settings(seed=1, admin_token="tok-123"),
                               time_source=time_source)) as client:
        assert client.get("/__admin/metrics").status_code == 401
        answer = client.get("/__admin/metrics", headers={"Authorization": "Bearer tok-123"})
        assert answer.status_code == 200 and "sandbox_sessions 1.0" in answer.text
