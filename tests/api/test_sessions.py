"""Sessions: header and path prefix, isolation, copies of the startup world, reset."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import AFTERPAY_HEADERS

REFUND = {"amount": {"amount": "10.00", "currency": "AUD"}}
PAYMENT = "/v2/payments/100101785223"


def _refund(client: TestClient, prefix: str = "", **headers: str) -> int:
    answer = client.post(f"{prefix}{PAYMENT}/refund", json=REFUND,
                         headers={**AFTERPAY_HEADERS, **headers})
    return answer.status_code


def _left(client: TestClient, prefix: str = "", **headers: str) -> str:
    answer = client.get(f"{prefix}{PAYMENT}", headers={**AFTERPAY_HEADERS, **headers})
    return str(answer.json()["openToRefundAmount"]["amount"])


def test_header_names_the_session(client: TestClient) -> None:
    assert _refund(client, **{"X-Sandbox-Session": "a"}) == 201
    assert _left(client, **{"X-Sandbox-Session": "a"}) == "110.00"
    assert _left(client) == "120.00"


def test_path_prefix_names_the_session(client: TestClient) -> None:
    assert _refund(client, prefix="/sessions/b") == 201
    assert _left(client, prefix="/sessions/b") == "110.00"
    # the header and the prefix name the same world
    assert _left(client, **{"X-Sandbox-Session": "b"}) == "110.00"
    assert _left(client) == "120.00"


def test_admin_paths_take_the_prefix_too(client: TestClient) -> None:
    client.post("/sessions/c/__admin/clock/advance", json={"days": 3})
    assert client.get("/sessions/c/__admin/clock").json()["offsetSeconds"] == 3 * 86400
    assert client.get("/__admin/clock").json()["offsetSeconds"] == 0


def test_new_session_is_a_copy_of_the_startup_world(client: TestClient) -> None:
    _refund(client)
    # a session created after the default one was changed still starts from the startup world
    assert _left(client, **{"X-Sandbox-Session": "fresh"}) == "120.00"


def test_sessions_never_share_journal_or_clock(client: TestClient) -> None:
    _refund(client, **{"X-Sandbox-Session": "j1"})
    assert client.get("/__admin/requests", headers={"X-Sandbox-Session": "j1"}
                      ).json()["total"] == 1
    assert client.get("/__admin/requests", headers={"X-Sandbox-Session": "j2"}
                      ).json()["total"] == 0


def test_reset_restores_one_session_only(client: TestClient) -> None:
    _refund(client, **{"X-Sandbox-Session": "r1"})
    _refund(client, **{"X-Sandbox-Session": "r2"})
    answer = client.post("/__admin/reset", headers={"X-Sandbox-Session": "r1"})
    assert answer.json() == {"session": "r1", "status": "reset"}
    assert _left(client, **{"X-Sandbox-Session": "r1"}) == "120.00"
    assert _left(client, **{"X-Sandbox-Session": "r2"}) == "110.00"
    assert client.get("/__admin/requests", headers={"X-Sandbox-Session": "r1"}
                      ).json()["total"] == 1  # only the read-back after the reset


def test_reset_clears_clock_and_idempotency(client: TestClient) -> None:
    body = {**REFUND, "requestId": "q", "merchantReference": "m"}
    first = client.post(f"{PAYMENT}/refund", json=body, headers=AFTERPAY_HEADERS)
    client.post("/__admin/clock/advance", json={"days": 1})
    client.post("/__admin/reset")
    assert client.get("/__admin/clock").json()["offsetSeconds"] == 0
    assert first.status_code == 201
    again = client.post(f"{PAYMENT}/refund", json=body, headers=AFTERPAY_HEADERS)
    assert again.status_code == 201
    # a replay would have moved no money in the fresh world; a new refund moves 10.00
    assert _left(client) == "110.00"


def test_bad_session_name_is_refused_in_the_provider_shape(client: TestClient) -> None:
    answer = client.get(PAYMENT, headers={**AFTERPAY_HEADERS, "X-Sandbox-Session": "a b/c"})
    assert answer.status_code == 400
    assert answer.json()["errorCode"] == "invalid_request"
    answer = client.get("/__admin/clock", headers={"X-Sandbox-Session": "x" * 65})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_session"
