"""mock_server.testing: running_sandbox and its async twin, for any runner or script."""

from __future__ import annotations

import anyio
import httpx
import pytest

from mock_server.core.scenarios import ScenarioError
from mock_server.testing import async_running_sandbox, running_sandbox
from tests.conftest import AFTERPAY_HEADERS


def test_running_sandbox_serves_on_loopback_and_stops() -> None:
    with running_sandbox(strict=True, journal_size=3) as sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:")
        assert sandbox.settings.strict and sandbox.settings.journal_size == 3
        for _ in range(5):
            httpx.get(f"{sandbox.session_url('t1')}/ping", trust_env=False)
        assert sandbox.client("t1").requests().total == 3
        assert sandbox.client("t1") is sandbox.client("t1")
        url = sandbox.url
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/__admin/health", trust_env=False, timeout=2)


def test_scenarios_are_the_startup_world(tmp_path: pytest.TempPathFactory) -> None:
    world = tmp_path / "world.yaml"  # type: ignore[operator]
    world.write_text("name: world\nafterpay:\n  merchants:\n    - {merchantId: '100101382', "
                     "secretKey: 'sandbox-secret-key', currency: AUD}\n  payments:\n"
                     "    - {id: '900', merchantId: '100101382', amount: '9.00'}\n")
    with running_sandbox(scenarios=[world]) as sandbox:
        answer = httpx.get(f"{sandbox.url}/v2/payments/900", headers=AFTERPAY_HEADERS,
                           trust_env=False)
        assert answer.status_code == 200
        assert [s.name for s in sandbox.client().scenarios()] == ["world"]


def test_a_bad_startup_world_raises_its_problems(tmp_path: pytest.TempPathFactory) -> None:
    world = tmp_path / "world.yaml"  # type: ignore[operator]
    world.write_text("name: world\nafterpay:\n  payments:\n    - {id: '9', amount: nine}\n")
    with pytest.raises(ScenarioError) as refused:
        with running_sandbox(scenarios=str(world)):
            pass  # pragma: no cover
    assert any(p.startswith(f"{world}:4: ") for p in refused.value.problems)


def test_an_unknown_setting_is_named() -> None:
    with pytest.raises(TypeError, match="unknown sandbox setting.*colour"):
        with running_sandbox(colour="blue"):
            pass  # pragma: no cover


def test_the_async_sandbox_runs_on_the_callers_loop() -> None:
    async def main() -> str:
        async with async_running_sandbox(seed=1) as sandbox:
            with pytest.raises(RuntimeError, match="async_client"):
                sandbox.client()
            async with httpx.AsyncClient(trust_env=False) as http:
                assert (await http.get(f"{sandbox.session_url('a')}/ping")).status_code == 200
            async with sandbox.async_client("a") as client:
                await client.assert_requests(path="/ping", count=1)
            return sandbox.url

    url = anyio.run(main)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/__admin/health", trust_env=False, timeout=2)
