"""Point 9: a missing User-Agent gets the normal answer plus X-Sandbox-Warning; with --strict,
400 invalid_request."""

from __future__ import annotations

import pytest

from mock_server.afterpay import handlers
from mock_server.settings import Settings

STRICT = Settings(seed=7, strict=True)
REQUIRED = ("invalid_request", "User-Agent header is required")


@pytest.fixture
def bare(afterpay):
    """A client that sends no User-Agent at all (the test client adds one by default)."""
    afterpay.client.headers.pop("user-agent", None)
    return afterpay


@pytest.mark.parametrize("how", ["absent", "empty", "blank"])
def test_missing_user_agent_answers_normally_with_a_warning(bare, how: str) -> None:
    headers = {"absent": {}, "empty": {"User-Agent": ""}, "blank": {"User-Agent": "  "}}[how]
    drop = ["User-Agent"] if how == "absent" else []
    answer = bare.refund(headers=headers, drop=drop)
    assert answer.status_code == 201
    assert answer.headers["x-sandbox-warning"] == handlers.WARN_NO_USER_AGENT
    payment = bare.payment(headers=headers, drop=drop)
    assert payment.status_code == 200
    assert payment.headers["x-sandbox-warning"] == handlers.WARN_NO_USER_AGENT
    assert len(payment.json()["refunds"]) == 1


def test_warning_also_on_errors_and_ping(bare) -> None:
    answer = bare.refund("404404", drop=["User-Agent"])
    bare.assert_error(answer, 404, "not_found")
    assert answer.headers["x-sandbox-warning"] == handlers.WARN_NO_USER_AGENT
    ping = bare.client.get("/ping")
    assert ping.text == "pong" and ping.headers["x-sandbox-warning"] == handlers.WARN_NO_USER_AGENT


def test_no_warning_with_a_user_agent(afterpay) -> None:
    assert "x-sandbox-warning" not in afterpay.refund().headers
    assert "x-sandbox-warning" not in afterpay.payment().headers


def test_warning_is_journaled(bare) -> None:
    bare.refund(drop=["User-Agent"])
    entries = bare.client.get("/__admin/requests", params={"limit": 1}).json()
    assert handlers.WARN_NO_USER_AGENT in str(entries)


@pytest.mark.parametrize("settings", [STRICT])
def test_strict_mode_refuses_a_missing_user_agent(bare, settings) -> None:
    bare.assert_error(bare.refund(drop=["User-Agent"]), 400, *REQUIRED)
    bare.assert_error(bare.payment(drop=["User-Agent"]), 400, *REQUIRED)
    bare.assert_error(bare.client.get("/ping"), 400, *REQUIRED)
    assert bare.open_to_refund() == 120  # nothing moved


@pytest.mark.parametrize("settings", [STRICT])
def test_strict_mode_with_a_user_agent_is_normal(afterpay, settings) -> None:
    assert afterpay.refund().status_code == 201
    assert "x-sandbox-warning" not in afterpay.refund().headers


@pytest.mark.parametrize("settings", [STRICT])
def test_strict_user_agent_check_comes_after_credentials(bare, settings) -> None:
    answer = bare.refund(drop=["User-Agent"], headers={"Authorization": "Basic eDp5"})
    bare.assert_error(answer, 401, "unauthorized")
    # ... and before everything else
    answer = bare.refund("404404", raw=b"{", drop=["User-Agent"],
                         headers={"Content-Type": "text/plain"})
    bare.assert_error(answer, 400, *REQUIRED)
    answer = bare.client.get("/v2/nowhere", headers=bare.headers(drop=["User-Agent"]))
    bare.assert_error(answer, 400, *REQUIRED)
