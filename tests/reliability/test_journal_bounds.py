"""Points: the journal keeps a bounded number of bytes per entry and per session, and is read in
pages (cursor `before`, `next`, at most 1000 entries, bodies cut in lists, one entry whole at
GET /__admin/requests/{id}) so that reading it costs a bounded amount whatever it holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from mock_server.admin.routes import PAGE_BYTES
from mock_server.app import SandboxApp, create_app
from mock_server.core.journal import LIST_BODY_BYTES
from mock_server.settings import Settings

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
S = {"X-Sandbox-Session": "j"}


def client_for(app: SandboxApp) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def app() -> SandboxApp:
    return create_app(Settings(seed=2), time_source=lambda: NOW)


@pytest.fixture
def client(app: SandboxApp) -> Iterator[TestClient]:
    with client_for(app) as c:
        # the session exists before the refused requests below (a session whose first request
        # is refused is not kept: tests/reliability/test_sessions.py)
        assert c.post("/__admin/reset", headers=S).status_code == 200
        yield c


def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> None:
    client.post("/orders/o-1/refund", content=body,
                headers={**S, "Content-Type": "application/json", **(headers or {})})


def test_pages_walk_the_journal_newest_first_without_gaps_or_repeats(
        client: TestClient) -> None:
    for i in range(25):
        post(client, b'{"n":%d}' % i)
    seen: list[int] = []
    before = None
    pages = []
    while True:
        query = "limit=10" + (f"&before={before}" if before else "")
        page = client.get(f"/__admin/requests?{query}", headers=S).json()
        assert page["total"] == 25
        pages.append(len(page["requests"]))
        seen.extend(e["id"] for e in page["requests"])
        before = page["next"]
        if before is None:
            break
    assert pages == [10, 10, 5]
    assert seen == list(range(25, 0, -1))


def test_filters_apply_within_pages(client: TestClient) -> None:
    for _ in range(6):
        post(client, b"{}")
        client.get("/ping", headers=S)
    page = client.get("/__admin/requests?provider=afterpay&limit=4", headers=S).json()
    assert page["total"] == 6 and len(page["requests"]) == 4
    assert {e["provider"] for e in page["requests"]} == {"afterpay"}
    rest = client.get(f"/__admin/requests?provider=afterpay&before={page['next']}",
                      headers=S).json()
    assert len(rest["requests"]) == 2 and rest["next"] is None


def test_status_0_finds_the_entries_no_status_was_sent_for(app: SandboxApp,
                                                           client: TestClient) -> None:
    session = app.world.session("j")
    session.journal.record(at=NOW, provider="afterpay", operation="createRefund",
                           method="POST", path="/v2/payments/1/refund", query="", headers=[],
                           body=b"")  # a connection fault: never finished with a status
    client.get("/ping", headers=S)
    page = client.get("/__admin/requests?status=0", headers=S).json()
    assert [e["status"] for e in page["requests"]] == [0]


def test_a_limit_over_the_maximum_is_refused(client: TestClient) -> None:
    answer = client.get("/__admin/requests?limit=1001", headers=S)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_request",
                             "message": "limit must be an integer from 1 to 1000"}


def test_lists_cut_bodies_and_one_entry_is_given_whole(client: TestClient) -> None:
    body = b'{"pad":"' + b"x" * 40_000 + b'"}'
    post(client, body)
    listed = client.get("/__admin/requests", headers=S).json()["requests"][0]
    assert len(listed["body"]) == LIST_BODY_BYTES
    assert listed["bodyTruncated"] is True and listed["bodyBytes"] == len(body)
    whole = client.get(f"/__admin/requests/{listed['id']}", headers=S)
    assert whole.status_code == 200
    assert whole.json()["body"] == body.decode()
    assert whole.json()["bodyTruncated"] is False
    assert whole.json()["responseBody"] == listed["responseBody"]  # a small answer, uncut


@pytest.mark.parametrize("entry", ["999", "0", "x", "²", "9" * 40])
def test_an_unknown_entry_is_404_in_the_admin_shape(client: TestClient, entry: str) -> None:
    post(client, b"{}")
    answer = client.get(f"/__admin/requests/{entry}", headers=S)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


def test_an_entry_keeps_at_most_its_budget_of_headers_and_body_together() -> None:
    app = create_app(Settings(seed=2, journal_entry_bytes=32 * 1024), time_source=lambda: NOW)
    headers = {f"X-Pad-{i}": "h" * 4000 for i in range(4)}  # about 16 KiB of headers
    with client_for(app) as client:
        post(client, b"b" * 500_000, headers)
    entry = app.world.session("j").journal.query()[1][0]
    kept = sum(len(n) + len(v) for n, v in entry.raw_headers) + len(entry.raw_body)
    assert kept <= 32 * 1024
    assert len(entry.raw_body) > 10_000  # the body got what the headers left
    assert entry.to_json()["bodyTruncated"] is True


def test_a_session_journal_keeps_at_most_its_byte_budget_newest_first() -> None:
    budget = 1024 * 1024
    app = create_app(Settings(seed=2, journal_bytes=budget), time_source=lambda: NOW)
    with client_for(app) as client:
        assert client.post("/__admin/reset", headers=S).status_code == 200
        for i in range(60):
            post(client, b'{"n":%d,"pad":"' % i + b"x" * 100_000 + b'"}')
        journal = app.world.session("j").journal
        assert journal.bytes <= budget
        ids = [e.id for e in journal.query(limit=100)[1]]
        assert ids[0] == 60 and ids == list(range(60, 60 - len(ids), -1))
        assert len(ids) < 60  # the oldest went
        assert client.get("/__admin/requests/1", headers=S).status_code == 404


def test_a_page_of_large_entries_ends_early_at_its_byte_bound() -> None:
    app = create_app(Settings(seed=2), time_source=lambda: NOW)
    with client_for(app) as client:
        for _ in range(200):  # 200 entries of 64 KiB kept each: more than one page's bound
            post(client, b"x" * (1024 * 1024))
        answer = client.get("/__admin/requests?limit=1000", headers=S)
    page = answer.json()
    assert page["total"] == 200
    assert page["next"] is not None and len(page["requests"]) < 200
    assert len(answer.content) <= PAGE_BYTES
