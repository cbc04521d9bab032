"""Opt-in session protection: a session created with X-Sandbox-Session-Token needs the same
token on every admin call; naming it is no longer enough to read its journal or reset it."""

from __future__ import annotations

import json

from mock_server.app import create_app
from mock_server.settings import Settings
from tests.reliability.conftest import AFTERPAY, PAYMENT, run

TOKEN = "s3cret-of-ci-job-42"
REFUND = json.dumps({"amount": {"amount": "1.00", "currency": "AUD"}}).encode()


def admin(app: object, method: str, path: str, token: str | None = None,
          body: bytes = b"") -> tuple[int, dict[str, object]]:
    headers = {"x-sandbox-session": "ci-42", "content-type": "application/json"}
    if token is not None:
        headers["x-sandbox-session-token"] = token
    answer = run(app, method, path, headers, body)
    return answer.status, answer.json()


def protected_app() -> object:
    app = create_app(Settings(seed=1))
    assert admin(app, "POST", "/__admin/reset", TOKEN)[0] == 200  # creates it, protected
    return app


def test_admin_calls_need_the_token() -> None:
    app = protected_app()
    for method, path in [("GET", "/__admin/requests"), ("POST", "/__admin/reset"),
                         ("GET", "/__admin/scenarios"), ("DELETE", "/__admin/requests"),
                         ("PUT", "/__admin/clock"), ("DELETE", "/__admin/scenarios/default")]:
        body = b'{"now": "2026-01-01T00:00:00Z"}' if method == "PUT" else b""
        for token in (None, "wrong"):
            status, answer = admin(app, method, path, token, body)
            assert status == 403, (method, path, token)
            assert answer == {"error": "session_protected", "message": "session 'ci-42' was "
                              "created with a token; send it in X-Sandbox-Session-Token"}
    assert admin(app, "GET", "/__admin/requests", TOKEN)[0] == 200
    # the health probe stays open
    assert admin(app, "GET", "/__admin/health")[0] == 200


def test_provider_calls_do_not_need_it_and_the_journal_hides_it() -> None:
    app = protected_app()
    headers = {**AFTERPAY, "x-sandbox-session": "ci-42", "x-sandbox-session-token": TOKEN}
    assert run(app, "POST", f"/v2/payments/{PAYMENT}/refund", headers, REFUND).status == 201
    headers.pop("x-sandbox-session-token")
    assert run(app, "GET", f"/v2/payments/{PAYMENT}", headers).status == 200
    status, journal = admin(app, "GET", "/__admin/requests", TOKEN)
    assert status == 200
    sent = [entry["headers"] for entry in journal["requests"]]  # type: ignore[union-attr]
    assert sent[1]["x-sandbox-session-token"] == "[REDACTED]"
    assert TOKEN not in json.dumps(journal)


def test_a_reset_keeps_the_protection() -> None:
    app = protected_app()
    assert admin(app, "POST", "/__admin/reset", TOKEN)[0] == 200
    assert admin(app, "GET", "/__admin/requests")[0] == 403


def test_an_existing_session_cannot_be_claimed() -> None:
    app = create_app(Settings(seed=1))
    assert admin(app, "GET", "/__admin/requests")[0] == 200  # ci-42 exists, unprotected
    assert admin(app, "GET", "/__admin/requests", "late-claim")[0] == 200
    assert admin(app, "GET", "/__admin/requests")[0] == 200  # still open to all
    # nor the default session
    answer = run(app, "GET", "/__admin/requests", {"x-sandbox-session-token": "mine"})
    assert answer.status == 200
    assert run(app, "GET", "/__admin/requests").status == 200


def test_a_refused_request_does_not_claim_a_name() -> None:
    app = create_app(Settings(seed=1, admin_token="admin"))
    headers = {"x-sandbox-session": "ci-42", "x-sandbox-session-token": "squatter"}
    assert run(app, "GET", "/__admin/requests", headers).status == 401  # no admin token
    owner = {"x-sandbox-session": "ci-42", "x-sandbox-session-token": TOKEN,
             "authorization": "Bearer admin"}
    assert run(app, "GET", "/__admin/requests", owner).status == 200
    assert run(app, "GET", "/__admin/requests", {**owner, "x-sandbox-session-token": "squatter"}
               ).status == 403
