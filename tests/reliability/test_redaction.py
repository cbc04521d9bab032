"""Point: secrets are taken out when a journal entry is written (not only when it is read):
Optty's client_secret in token bodies and query strings, JWTs in token answers, paths and
queries, X-Api-Key and the other named headers; --redact adds names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from mock_server import cli
from mock_server.app import SandboxApp, create_app
from mock_server.core.journal import JournalEntry
from mock_server.core.redact import REDACTED, Redactor
from mock_server.settings import Settings

NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
S = {"X-Sandbox-Session": "r"}
FORM = {"client_id": "sandbox-client", "client_secret": "sandbox-secret",
        "grant_type": "client_credentials", "scope": "api-user"}


@pytest.fixture
def app() -> SandboxApp:
    return create_app(Settings(seed=4), time_source=lambda: NOW)


@pytest.fixture
def client(app: SandboxApp) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        keep_session(c)
        yield c


def keep_session(client: TestClient) -> None:
    """Makes the session before the refused requests of a test (a session whose first request
    is refused is not kept: tests/reliability/test_sessions.py)."""
    assert client.post("/__admin/reset", headers=S).status_code == 200


def stored(app: SandboxApp, session: str = "r") -> list[JournalEntry]:
    return app.world.session(session).journal.query(limit=100)[1]


def everything_kept(entry: JournalEntry) -> bytes:
    """All the journal holds of an entry, as stored (not as the admin API shows it)."""
    parts = [entry.path.encode(), entry.query.encode(), entry.raw_body, entry.raw_response_body]
    for name, value in (*entry.raw_headers, *entry.raw_response_headers):
        parts += [name if isinstance(name, bytes) else name.encode(),
                  value if isinstance(value, bytes) else value.encode()]
    return b"\n".join(parts)


def test_a_token_request_and_answer_keep_neither_the_secret_nor_the_token(
        app: SandboxApp, client: TestClient) -> None:
    answer = client.post("/token?client_secret=sandbox-secret", data=FORM, headers=S)
    assert answer.status_code == 201
    token = answer.json()["access_token"]
    [entry] = stored(app)
    kept = everything_kept(entry)
    assert b"sandbox-secret" not in kept
    assert token.encode() not in kept and token.split(".")[1].encode() not in kept
    assert entry.query == f"client_secret={REDACTED}"
    assert b"client_secret=" + REDACTED.encode() in entry.raw_body
    assert b"client_id=sandbox-client" in entry.raw_body  # not a secret: kept
    assert json.loads(entry.raw_response_body)["access_token"] == REDACTED
    assert json.loads(entry.raw_response_body)["token_type"] == "Bearer"


def test_a_jwt_in_a_path_and_a_query_is_not_kept(app: SandboxApp, client: TestClient) -> None:
    token = client.post("/token", data=FORM, headers=S).json()["access_token"]
    client.get(f"/orders/{token}?state={token}&keep=1",
               headers={**S, "Authorization": f"Bearer {token}"})
    entry = stored(app)[0]
    assert token.encode() not in everything_kept(entry)
    assert entry.path == f"/orders/{REDACTED}"
    assert entry.query == f"state={REDACTED}&keep=1"


def test_named_headers_are_redacted_as_stored(app: SandboxApp, client: TestClient) -> None:
    client.get("/ping", headers={**S, "X-Api-Key": "k-1234567", "Cookie": "sid=abc123",
                                 "X-Trace": "t-1"})
    headers = dict(stored(app)[0].raw_headers)
    assert headers[b"x-api-key"] == REDACTED.encode()
    assert headers[b"cookie"] == REDACTED.encode()
    assert headers[b"x-trace"] == b"t-1"


def test_json_fields_are_redacted_and_the_rest_kept(app: SandboxApp, client: TestClient) -> None:
    body = b'{"refundReference":"r1", "password" : "hunter2", "nested":{"Client_Secret":7},' \
           b'"note":"the word password in a value stays"}'
    client.post("/orders/o-1/refund", content=body,
                headers={**S, "Content-Type": "application/json"})
    kept = stored(app)[0].raw_body
    assert json.loads(kept) == {"refundReference": "r1", "password": REDACTED,
                                "nested": {"Client_Secret": REDACTED},
                                "note": "the word password in a value stays"}


def test_more_names_come_from_settings() -> None:
    app = create_app(Settings(seed=4, redact=("X-Merchant-Pin", "pin")),
                     time_source=lambda: NOW)
    with TestClient(app) as client:
        keep_session(client)
        client.post("/orders/o-1/refund?pin=1234", content=b'{"pin":"9876"}',
                    headers={**S, "X-Merchant-Pin": "5555", "Content-Type": "application/json"})
    entry = stored(app)[0]
    kept = everything_kept(entry)
    assert b"5555" not in kept and b"9876" not in kept and b"1234" not in kept


def test_the_redact_flag_and_environment_add_names(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(["serve", "--redact", "pin", "--redact", "otp"])
    assert cli.settings_from(args).redact == ("pin", "otp")
    monkeypatch.setenv("MOCK_SERVER_REDACT", "pin, otp")
    args = cli.build_parser().parse_args(["serve"])
    assert cli.settings_from(args).redact == ("pin", "otp")


def test_a_callback_entry_is_redacted_too(app: SandboxApp) -> None:
    journal = app.world.session("r").journal
    entry = journal.record(at=NOW, provider="optty", operation=None, method="POST",
                           path="/hook", query="", kind="callback",
                           headers=[("Authorization", "Bearer eyJa.eyJb.c")],
                           body=b'{"token":"eyJhbGciOi.eyJzdWIi.sig"}')
    assert b"eyJ" not in everything_kept(entry)


def test_a_secret_cut_by_the_entry_budget_is_not_kept_in_part() -> None:
    # the body is redacted before it is cut: half a JWT is not left behind
    clean = Redactor()
    body = b'{"x":"' + b"p" * 100 + b'","t":"eyJ' + b"a" * 50 + b".eyJ" + b"b" * 50 + b'.s"}'
    from mock_server.core.journal import _kept
    _headers, kept, cut, _size, _redacted = _kept((), body, 124, clean)
    assert cut and b"eyJ" not in kept


def test_an_answer_that_echoes_a_secret_is_redacted_too(app: SandboxApp,
                                                        client: TestClient) -> None:
    # NestJS's not-found message quotes the URL as sent: "Cannot GET /nowhere?client_secret=..."
    answer = client.get("/nowhere?client_secret=s3cr3t-value", headers=S)
    assert "s3cr3t-value" in answer.text  # the client gets Optty's answer as it is
    entry = stored(app)[0]
    assert b"s3cr3t-value" not in everything_kept(entry)
