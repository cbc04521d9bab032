"""The admin API: health, journal, clock, token protection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, ManualTime

PAYMENT = "/v2/payments/100101785223"


def test_health(client: TestClient) -> None:
    body = client.get("/__admin/health").json()
    assert body["status"] == "ok" and body["sessions"] >= 1


def test_journal_records_newest_first_with_authorization_redacted(client: TestClient) -> None:
    client.get(PAYMENT, headers=AFTERPAY_HEADERS)
    client.get("/v2/payments/nope", headers=AFTERPAY_HEADERS)
    body = client.get("/__admin/requests").json()
    assert body["total"] == 2
    newest, oldest = body["requests"]
    assert newest["path"] == "/v2/payments/nope" and newest["status"] == 404
    assert oldest["operation"] == "getPayment" and oldest["status"] == 200
    assert oldest["headers"]["authorization"] == "[REDACTED]"
    assert "sandbox-secret-key" not in str(body)
    assert oldest["responseHeaders"]["http_correlation_id"]


def test_journal_filters(client: TestClient) -> None:
    client.get(PAYMENT, headers=AFTERPAY_HEADERS)
    client.post("/token", data={"client_id": "x", "client_secret": "y",
                                "grant_type": "client_credentials", "scope": "api-user"})
    assert client.get("/__admin/requests?provider=optty").json()["total"] == 1
    assert client.get("/__admin/requests?status=200").json()["total"] == 1
    assert client.get("/__admin/requests?operation=getPayment").json()["total"] == 1
    assert len(client.get("/__admin/requests?limit=1").json()["requests"]) == 1


@pytest.mark.parametrize("query", ["provider=paypal", "status=abc", "status=99", "limit=0",
                                   "limit=10001"])
def test_journal_bad_filters_are_400(client: TestClient, query: str) -> None:
    answer = client.get(f"/__admin/requests?{query}")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_journal_is_bounded_per_session(time_source: ManualTime) -> None:
    app = create_app(Settings(seed=1, journal_size=5), time_source=time_source)
    with TestClient(app) as client:
        for _ in range(8):
            client.get("/ping")
        body = client.get("/__admin/requests?limit=100").json()
    assert body["total"] == 5


def test_clear_journal(client: TestClient) -> None:
    client.get("/ping")
    assert client.delete("/__admin/requests").json()["cleared"] == 1
    assert client.get("/__admin/requests").json()["total"] == 0


def test_clock_freeze_advance_reset(client: TestClient, time_source: ManualTime) -> None:
    frozen = client.put("/__admin/clock", json={"now": "2027-01-01T00:00:00Z"}).json()
    assert frozen["now"] == "2027-01-01T00:00:00.000Z" and frozen["frozen"] is True
    time_source.advance(hours=5)  # real time passing does not move a frozen clock
    moved = client.post("/__admin/clock/advance", json={"days": 1, "seconds": 30}).json()
    assert moved["now"] == "2027-01-02T00:00:30.000Z"
    real = client.delete("/__admin/clock").json()
    assert real["frozen"] is False
    assert real["now"] == time_source().astimezone(UTC).isoformat(timespec="milliseconds"
                                                                  ).replace("+00:00", "Z")


def test_clock_drives_refunded_at(client: TestClient) -> None:
    client.put("/__admin/clock", json={"now": "2026-11-20T08:00:00.250Z"})
    answer = client.post(f"{PAYMENT}/refund", headers=AFTERPAY_HEADERS,
                         json={"amount": {"amount": "1.00", "currency": "AUD"}})
    assert answer.json()["refundedAt"] == "2026-11-20T08:00:00.250Z"


@pytest.mark.parametrize("body", [{}, {"weeks": 1}, {"days": -1}, {"days": "1"},
                                  {"days": True}, {"days": 1e300}])
def test_clock_advance_refuses_bad_bodies(client: TestClient, body: object) -> None:
    answer = client.post("/__admin/clock/advance", json=body)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


@pytest.mark.parametrize("body", [{}, {"now": "yesterday"}, {"now": 5}, []])
def test_clock_freeze_refuses_bad_bodies(client: TestClient, body: object) -> None:
    answer = client.put("/__admin/clock", json=body)
    assert answer.status_code == 400


def test_admin_malformed_json_is_400(client: TestClient) -> None:
    answer = client.put("/__admin/clock", content=b"{nope")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_json"


def test_unknown_admin_path_and_wrong_method(client: TestClient) -> None:
    assert client.get("/__admin/nope").json()["error"] == "not_found"
    answer = client.delete("/__admin/health")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET"


def test_admin_token_protects_all_but_health(time_source: ManualTime) -> None:
    app = create_app(Settings(seed=1, admin_token="s3cret"), time_source=time_source)
    with TestClient(app) as client:
        assert client.get("/__admin/health").status_code == 200
        refused = client.get("/__admin/clock")
        assert refused.status_code == 401
        assert refused.json() == {"error": "unauthorized", "message": "Admin token required"}
        assert client.get("/__admin/clock", headers={"Authorization": "Bearer wrong"}
                          ).status_code == 401
        assert client.get("/__admin/clock", headers={"Authorization": "Bearer s3cret"}
                          ).status_code == 200
        # the provider surfaces never need the admin token
        assert client.get("/ping").status_code == 200


def test_clock_time_is_the_injected_source(client: TestClient, time_source: ManualTime) -> None:
    now = client.get("/__admin/clock").json()["now"]
    assert now == "2026-11-01T09:00:00.123Z"
    assert time_source() == datetime(2026, 11, 1, 9, 0, 0, 123000, tzinfo=UTC)
