"""mock_server.client against a real sandbox: every admin call, typed; errors; the async twin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest

from mock_server.client import (
    AsyncSandboxClient,
    Clock,
    JournalEntry,
    JournalPage,
    SandboxClient,
    SandboxError,
    SandboxUnreachable,
)
from mock_server.testing import RunningSandbox, running_sandbox
from tests.conftest import AFTERPAY_HEADERS

PAYMENT = "/v2/payments/100101785223"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(seed=5) as running:
        yield running


@pytest.fixture
def session(request: pytest.FixtureRequest, sandbox: RunningSandbox) -> Iterator[str]:
    name = request.node.name[:40].replace("[", "-").replace("]", "")
    yield name
    sandbox.app.world.discard(name)


def refund(sandbox: RunningSandbox, session: str, amount: str, request_id: str) -> int:
    answer = httpx.post(f"{sandbox.session_url(session)}{PAYMENT}/refund", headers=AFTERPAY_HEADERS,
                        json={"requestId": request_id,
                              "amount": {"amount": amount, "currency": "AUD"}}, trust_env=False)
    return answer.status_code


def test_health_and_reset(sandbox: RunningSandbox, session: str) -> None:
    client = sandbox.client(session)
    health = client.health()
    assert health.status == "ok" and health.sessions >= 1 and client.healthy()
    assert refund(sandbox, session, "120.00", "r-1") == 201
    client.reset()
    assert client.requests().total == 0
    assert refund(sandbox, session, "120.00", "r-2") == 201


def test_scenarios_load_list_and_unload_typed(sandbox: RunningSandbox, session: str) -> None:
    client = sandbox.client(session)
    loaded = client.load_scenario({"name": "outage", "faults": [
        {"name": "down", "match": {"provider": "afterpay"}, "times": 1,
         "respond": {"status": 503, "error": "service_unavailable"}}]})
    assert (loaded.session, loaded.name, loaded.faults) == (session, "outage", 1)
    [info] = [s for s in client.scenarios() if s.name == "outage"]
    assert info.faults[0].name == "down" and info.faults[0].remaining == 1
    assert isinstance(info.loaded_at, datetime)
    removed = client.unload_scenario("outage")
    assert removed.removed_faults == 1
    with pytest.raises(SandboxError) as missing:
        client.unload_scenario("outage")
    assert missing.value.status == 404 and missing.value.error == "not_found"


def test_a_dict_scenario_names_the_key_path_without_a_line(sandbox: RunningSandbox,
                                                           session: str) -> None:
    with pytest.raises(SandboxError) as refused:
        sandbox.client(session).load_scenario(
            {"name": "bad", "afterpay": {"payments": [{"id": "9", "merchantId": "100101382",
                                                       "amount": "lots"}]}})
    assert refused.value.problems == [
        "afterpay.payments[0].amount: 'lots' is not a money amount (digits with at most 2 "
        "decimals)"]
    assert "<dict>" not in str(refused.value) and ":1:" not in str(refused.value)


def test_a_text_scenario_keeps_its_lines(sandbox: RunningSandbox, session: str) -> None:
    with pytest.raises(SandboxError) as refused:
        sandbox.client(session).load_scenario(
            "name: bad\nafterpay:\n  payments:\n    - {id: '9', merchantId: '100101382', "
            "amount: lots}\n")
    assert refused.value.problems[0].startswith("<test>:4: afterpay.payments[0].amount:")


def test_journal_pages_typed_and_filtered(sandbox: RunningSandbox, session: str) -> None:
    client = sandbox.client(session)
    for n in range(5):
        assert refund(sandbox, session, "1.00", f"p-{n}") == 201
    page = client.requests(limit=2)
    assert isinstance(page, JournalPage) and page.total == 5 and page.next is not None
    assert [e.id for e in page.requests] == [5, 4]
    entry = page.requests[0]
    assert isinstance(entry, JournalEntry) and entry.operation == "createRefund"
    assert entry.json()["requestId"] == "p-4" and entry.response_json()["refundId"]
    assert entry.headers["authorization"] == "[REDACTED]" and entry.finished
    assert [e.id for e in client.iter_requests(page_size=2)] == [5, 4, 3, 2, 1]
    assert [e.id for e in client.iter_requests(status=201, operation="createRefund",
                                               page_size=3)] == [5, 4, 3, 2, 1]
    assert client.requests(provider="optty").requests == []
    assert client.clear_requests() == 5 and client.requests().total == 0


def test_one_entry_by_id_answers_in_the_admin_shape(sandbox: RunningSandbox,
                                                    session: str) -> None:
    client = sandbox.client(session)
    assert refund(sandbox, session, "1.00", "one") == 201
    try:
        entry = client.request(1)
    except SandboxError as err:  # a server without GET /__admin/requests/{id}
        assert err.status == 404 and err.error == "not_found"
    else:
        assert entry.id == 1 and entry.json()["requestId"] == "one"
    with pytest.raises(SandboxError) as unknown:
        client.request(999)
    assert unknown.value.status == 404


def test_clock_typed(sandbox: RunningSandbox, session: str) -> None:
    client = sandbox.client(session)
    at = datetime(2027, 1, 1, tzinfo=UTC)
    frozen = client.freeze(at)
    assert isinstance(frozen, Clock) and frozen.now == at and frozen.frozen
    assert client.advance(days=1).now == at + timedelta(days=1)
    assert client.advance(timedelta(minutes=5)).now == at + timedelta(days=1, minutes=5)
    assert client.now() == at + timedelta(days=1, minutes=5)
    assert not client.reset_clock().frozen
    with pytest.raises(SandboxError) as refused:
        client.advance(weeks=1)
    assert refused.value.status == 400 and refused.value.error == "invalid_request"


def test_sessions_are_the_clients_own(sandbox: RunningSandbox, session: str) -> None:
    assert refund(sandbox, session, "1.00", "mine") == 201
    assert sandbox.client(session).requests().total == 1
    assert sandbox.client(session + "-other").requests().total == 0
    sandbox.app.world.discard(session + "-other")


def test_nothing_listening_is_unreachable_not_a_traceback_of_httpx() -> None:
    with SandboxClient("http://127.0.0.1:9", admin_token="") as client:
        with pytest.raises(SandboxUnreachable) as dead:
            client.health()
        assert not client.healthy()
    assert isinstance(dead.value, ConnectionError)
    assert str(dead.value).startswith("no sandbox answers at http://127.0.0.1:9:")


def test_a_refused_admin_token_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOCK_SERVER_ADMIN_TOKEN", raising=False)
    with running_sandbox(admin_token="s3cret-token") as sandbox:
        with SandboxClient(sandbox.url) as anonymous:
            with pytest.raises(SandboxError) as refused:
                anonymous.clock()
            assert anonymous.health().status == "ok"  # the probe needs no token
        assert refused.value.status == 401
        assert "MOCK_SERVER_ADMIN_TOKEN" in str(refused.value)
        monkeypatch.setenv("MOCK_SERVER_ADMIN_TOKEN", "s3cret-token")
        with SandboxClient(sandbox.url) as from_env:
            assert from_env.clock().session == "default"
        assert sandbox.client().clock().session == "default"


def test_the_async_client_makes_the_same_calls(sandbox: RunningSandbox, session: str) -> None:
    async def main() -> None:
        async with sandbox.async_client(session) as client:
            assert (await client.health()).status == "ok"
            await client.load_scenario({"name": "a", "faults": []})
            assert [s.name for s in await client.scenarios()][-1] == "a"
            assert (await client.freeze("2027-01-01T00:00:00Z")).now.year == 2027
            assert (await client.advance(days=2)).now.day == 3
            assert refund(sandbox, session, "1.00", "async") == 201
            await client.assert_requests(operation="createRefund", count=1)
            assert [e.id async for e in client.iter_requests(page_size=1)] == [1]
            assert (await client.requests()).total == 1
            assert await client.clear_requests() == 1
            await client.reset()

    anyio.run(main)


def test_the_async_client_reports_a_dead_url() -> None:
    async def main() -> None:
        async with AsyncSandboxClient("http://127.0.0.1:9", admin_token="") as client:
            assert not await client.healthy()
            with pytest.raises(SandboxUnreachable):
                await client.requests()

    anyio.run(main)


def test_a_scenario_file_is_sent_with_its_name(sandbox: RunningSandbox, session: str,
                                               tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "bad.json"  # type: ignore[operator]
    path.write_text(json.dumps({"name": "f", "faults": [{"name": "x", "match": {}}]},
                               indent=2))
    with pytest.raises(SandboxError) as refused:
        sandbox.client(session).load_scenario(path)
    assert all(p.startswith(f"{path}:") for p in refused.value.problems)


def test_unloading_a_scenario_says_what_it_seeded_stays(sandbox: RunningSandbox,
                                                        session: str) -> None:
    client = sandbox.client(session)
    client.load_scenario({"name": "seeds", "optty": {"merchants": [
        {"merchantId": "m-9", "clientId": "c-9", "clientSecret": "s-9",
         "webhookUrl": "http://127.0.0.1:9/hook"}]}, "faults": [
        {"name": "x", "match": {"provider": "optty"},
         "respond": {"status": 503, "error": "service_unavailable"}}]})
    removed = client.unload_scenario("seeds")
    assert removed.removed_faults == 1
    assert removed.kept == {"afterpayMerchants": 0, "afterpayPayments": 0, "opttyMerchants": 1,
                            "opttyOrders": 0}
    token = httpx.post(f"{sandbox.session_url(session)}/token", trust_env=False, data={
        "client_id": "c-9", "client_secret": "s-9", "grant_type": "client_credentials",
        "scope": "api-user"})
    assert token.status_code in (200, 201)  # the seeded merchant is still in force, no rule


def test_the_optty_outcome_is_a_client_call(sandbox: RunningSandbox, session: str) -> None:
    client = sandbox.client(session)
    # ORD-1005 is PENDING in the default world: the shopper's step decides it
    outcome = client.optty_outcome("ORD-1005", "DECLINED", reason="card declined")
    assert (outcome["orderReference"], outcome["status"]) == ("ORD-1005", "DECLINED")
    with pytest.raises(SandboxError) as refused:  # final now: its outcome cannot change
        client.optty_outcome("ORD-1005", "SUCCESSFUL")
    assert refused.value.status == 409
