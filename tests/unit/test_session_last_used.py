"""Session.last_used: the wall clock of the latest request that named the session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from mock_server.app import SandboxApp

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class _Wall:
    now_value = T0

    @classmethod
    def now(cls, tz: object = None) -> datetime:
        return cls.now_value


def test_each_request_stamps_its_session_only(app: SandboxApp, client: TestClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mock_server.app.datetime", _Wall)
    client.get("/sessions/a/__admin/clock")
    client.get("/sessions/b/__admin/clock")
    _Wall.now_value = T0 + timedelta(minutes=5)
    client.get("/v2/payments/100101785223", headers={"X-Sandbox-Session": "a"})
    assert app.world.session("a").last_used == T0 + timedelta(minutes=5)
    assert app.world.session("b").last_used == T0
