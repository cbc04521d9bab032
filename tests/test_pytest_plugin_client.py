"""The pytest plugin over the client: assert_requests, the async fixture, clear errors for a
dead --sandbox-url or a missing admin token."""

from __future__ import annotations

import pytest

from mock_server import pytest_plugin
from mock_server.testing import running_sandbox

pytest_plugins = ["pytester"]
QUIET = ("-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest")


def test_a_dead_sandbox_url_fails_after_a_few_refusals_not_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    naps: list[float] = []
    monkeypatch.setattr(pytest_plugin.time, "sleep", naps.append)
    # a clock that never moves: only the refusals can end the wait
    monkeypatch.setattr(pytest_plugin.time, "monotonic", lambda: 0.0)
    with pytest.raises(pytest.fail.Exception) as failed:
        pytest_plugin.connect("http://127.0.0.1:9")
    assert "connection refused (is it running? --sandbox-url / $MOCK_SERVER_URL)" in str(
        failed.value)
    assert len(naps) == pytest_plugin.REFUSED_TRIES - 1


def test_a_sandbox_that_wants_a_token_names_the_variable(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    with running_sandbox(admin_token="t0ken-value") as sandbox:
        with pytest.raises(pytest.fail.Exception) as failed:
            pytest_plugin.connect(sandbox.url, admin_token="")
        assert "runs with --admin-token: set $MOCK_SERVER_ADMIN_TOKEN" in str(failed.value)
        with pytest.raises(pytest.fail.Exception) as wrong:
            pytest_plugin.connect(sandbox.url, admin_token="not-it")
        assert "(the one set is refused)" in str(wrong.value)
        server = pytest_plugin.connect(sandbox.url, admin_token="t0ken-value")
        assert server.session("s1").requests() == []
        server.close()


def test_assert_requests_and_the_async_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import httpx
import pytest

AUTH = {"Authorization": "Basic MTAwMTAxMzgyOnNhbmRib3gtc2VjcmV0LWtleQ=="}


def refund(url, amount):
    return httpx.post(f"{url}/v2/payments/100101785223/refund", headers=AUTH, trust_env=False,
                      json={"amount": {"amount": amount, "currency": "AUD"}}).status_code


def test_verified(sandbox):
    assert refund(sandbox.afterpay_url, "10.00") == 201
    [made] = sandbox.assert_requests(operation="createRefund", status=201, count=1,
                                     body={"amount": {"amount": "10.00"}})
    assert made.json()["amount"]["currency"] == "AUD"


def test_unverified(sandbox):
    assert refund(sandbox.afterpay_url, "10.00") == 201
    sandbox.assert_requests(operation="createRefund", body={"amount": {"amount": "11.00"}})


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_async(async_sandbox, sandbox):
    assert (await async_sandbox.health()).status == "ok"
    assert refund(sandbox.afterpay_url, "1.00") == 201
    await async_sandbox.assert_requests(operation="createRefund", count=1)
''')
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "E * AssertionError: expected at least 1 request matching operation=createRefund "
        'body={"amount": {"amount": "11.00"}}; 0 matched, of 1 in the journal',
        "E * nearest requests that did not match:",
        "E * #1 POST /v2/payments/100101785223/refund -> 201 (createRefund)",
        'E * body.amount.amount: expected "11.00", got "10.00"'])
    # the client's and the plugin's frames are hidden: the test's own line is the last shown
    result.stdout.no_fnmatch_line("*mock_server/client.py*")
