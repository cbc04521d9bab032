"""The journal read page by page (`before` / `next`), network faults by status 0, and requests
that name an invalid session."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_HEADERS, LiveServer, ManualTime


def _ping(client: TestClient, times: int) -> None:
    for _ in range(times):
        assert client.get("/ping").status_code == 200


def test_pages_follow_the_cursor_to_the_oldest_entry(client: TestClient) -> None:
    _ping(client, 5)
    first = client.get("/__admin/requests?limit=2").json()
    assert [e["id"] for e in first["requests"]] == [5, 4]
    assert (first["total"], first["next"]) == (5, 4)
    second = client.get(f"/__admin/requests?limit=2&before={first['next']}").json()
    assert [e["id"] for e in second["requests"]] == [3, 2] and second["next"] == 2
    last = client.get(f"/__admin/requests?limit=2&before={second['next']}").json()
    assert [e["id"] for e in last["requests"]] == [1] and last["next"] is None


def test_a_page_that_ends_the_journal_exactly_has_no_cursor(client: TestClient) -> None:
    _ping(client, 2)
    body = client.get("/__admin/requests?limit=2").json()
    assert len(body["requests"]) == 2 and body["next"] is None


def test_the_cursor_keeps_the_filters(client: TestClient) -> None:
    for _ in range(3):
        client.get("/ping")
        client.get("/v2/payments/nope", headers=AFTERPAY_HEADERS)
    page = client.get("/__admin/requests?status=404&limit=2").json()
    assert [e["status"] for e in page["requests"]] == [404, 404] and page["total"] == 3
    rest = client.get(f"/__admin/requests?status=404&limit=2&before={page['next']}").json()
    assert [e["id"] for e in rest["requests"]] == [2] and rest["next"] is None


@pytest.mark.parametrize("query", ["before=0", "before=x", "before=-1", "before=1.5",
                                   "before=99999999999999999999", "status=1", "status=00"])
def test_bad_cursors_and_statuses_are_400(client: TestClient, query: str) -> None:
    answer = client.get(f"/__admin/requests?{query}")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert "Traceback" not in answer.text


def test_status_0_finds_the_requests_a_network_fault_cut(
        live_server: Callable[[SandboxApp], LiveServer]) -> None:
    server = live_server(create_app(Settings(seed=3), time_source=ManualTime()))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        rule = {"name": "reset", "fault": "connection_reset", "times": 1,
                "match": {"provider": "afterpay", "path": "/ping"}}
        assert http.post("/__admin/scenarios", content=json.dumps(
            {"name": "net", "faults": [rule]})).status_code == 201
        with pytest.raises(httpx.TransportError):
            http.get("/ping")
        assert http.get("/ping").status_code == 200
        cut = http.get("/__admin/requests?status=0").json()
    assert cut["total"] == 1
    assert cut["requests"][0]["fault"]["rule"] == "reset"


def test_a_request_naming_an_invalid_session_is_journaled_nowhere(client: TestClient) -> None:
    answer = client.get("/ping", headers={"X-Sandbox-Session": "no spaces allowed"})
    assert answer.status_code == 400
    assert client.get("/__admin/requests").json()["total"] == 0
