"""Big scenario POSTs: refused past --max-scenario-bytes, and parsed off the event loop so every
other session keeps being served meanwhile."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from mock_server.admin import routes
from mock_server.app import create_app
from mock_server.settings import Settings
from tests.reliability.conftest import run


def test_a_document_over_the_limit_is_refused_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(Settings(seed=1, max_scenario_bytes=1000))

    def must_not_parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsed a document over the limit")

    monkeypatch.setattr(routes, "parse_scenario", must_not_parse)
    body = ("name: big\nfaults:\n" + "".join(
        f"  - {{name: r{i}, match: {{path: /ping}}, respond: {{status: 503}}}}\n"
        for i in range(40))).encode()
    assert len(body) > 1000
    answer = run(app, "POST", "/__admin/scenarios",
                 {"x-sandbox-session": "big", "content-type": "application/yaml"}, body)
    assert answer.status == 413
    assert answer.json() == {"error": "payload_too_large", "message": "scenario document larger "
                             "than 1000 bytes (--max-scenario-bytes)"}
    assert run(app, "GET", "/ping", {"x-sandbox-session": "big"}).status == 200


def test_other_sessions_are_served_while_a_document_is_parsed(
        monkeypatch: pytest.MonkeyPatch, live_server: Any) -> None:
    app = create_app(Settings(seed=1))
    server = live_server(app)
    parsing = threading.Event()
    release = threading.Event()
    real_parse = routes.parse_scenario

    def slow_parse(*args: Any, **kwargs: Any) -> Any:
        parsing.set()
        assert release.wait(30), "never released"
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(routes, "parse_scenario", slow_parse)
    answers: list[httpx.Response] = []
    doc = json.dumps({"name": "slow", "faults": [
        {"name": "down", "match": {"path": "/ping"}, "respond": {"status": 503}}]})

    def post() -> None:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            answers.append(client.post("/__admin/scenarios", content=doc,
                                       headers={"X-Sandbox-Session": "slow",
                                                "Content-Type": "application/json"}))

    poster = threading.Thread(target=post)
    poster.start()
    try:
        assert parsing.wait(10)
        # the parse is under way (and held); the loop still serves everyone else
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
            assert client.get("/__admin/health").status_code == 200
            assert client.get("/ping", headers={"X-Sandbox-Session": "other"}).status_code == 200
    finally:
        release.set()
        poster.join(30)
    assert [a.status_code for a in answers] == [201]
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        assert client.get("/ping", headers={"X-Sandbox-Session": "slow"}).status_code == 503
