"""Stopping with requests still running; starting with a scenario path that is not a file."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import AFTERPAY, PAYMENT

SLOW = f"""\
name: slow
faults:
  - name: slow-read
    match: {{provider: afterpay, method: GET, path: "/v2/payments/{PAYMENT}"}}
    delay: "60s"
"""


def test_a_request_cut_off_by_the_shutdown_timeout_is_answered_503(
        serve: Any, tmp_path: Path) -> None:
    from mock_server.resources import default_scenario_path

    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW)
    server = serve("--scenario", str(default_scenario_path()), "--scenario", str(slow),
                   "--shutdown-timeout", "1s")
    answers: list[tuple[int, bytes]] = []

    def get(session: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("GET", f"/v2/payments/{PAYMENT}",
                           headers={**AFTERPAY, "X-Sandbox-Session": session})
        answer = connection.getresponse()
        answers.append((answer.status, answer.read()))

    clients = [threading.Thread(target=get, args=(f"s{i}",)) for i in range(3)]
    for client in clients:
        client.start()
    _wait_in_flight(server, 3)  # all three are in their journals, waiting out their delay
    assert server.stop(signal.SIGTERM) == 0
    for client in clients:
        client.join(30)
    assert len(answers) == 3
    for status, body in answers:
        assert status == 503
        assert b'"errorCode" : "service_unavailable"' in body  # Afterpay's own shape
    log = server.log()
    assert len(re.findall(r"shutdown: answered 503 to GET /v2/payments/\d+ \(session s\d\)",
                          log)) == 3
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def _wait_in_flight(server: Any, count: int) -> None:
    import json
    import time
    import urllib.request

    deadline = time.monotonic() + 30
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        seen = 0
        for i in range(count):
            request = urllib.request.Request(f"{server.url}/__admin/requests",
                                             headers={"X-Sandbox-Session": f"s{i}"})
            with opener.open(request, timeout=10) as answer:
                seen += json.load(answer)["total"]
        if seen >= count:
            return
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.02)


def serve_once(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run([sys.executable, "-m", "mock_server", *argv], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=60)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_scenario_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    done = serve_once("serve", "--port", "0", "--scenario", str(fifo), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"mock-server: error: {fifo}:1: cannot read: not a regular file or "
                           "a directory: a named pipe (FIFO)\n")
    checked = serve_once("check", str(fifo), cwd=tmp_path)
    assert checked.returncode == 1
    assert "a named pipe (FIFO)" in checked.stdout


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_as_scenario_is_refused(tmp_path: Path) -> None:
    done = serve_once("serve", "--port", "0", "--scenario", "/dev/zero", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("mock-server: error: /dev/zero:1: cannot read: not a regular file or "
                           "a directory: a character device\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_inside_a_scenario_directory_is_refused_too(tmp_path: Path) -> None:
    folder = tmp_path / "drills"
    folder.mkdir()
    (folder / "a.yaml").write_text("name: a\n")
    os.mkfifo(folder / "b.yaml")
    done = serve_once("serve", "--port", "0", "--scenario", str(folder), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "b.yaml:1: cannot read: not a regular file" in \
        done.stderr


HELD = """\
name: held
faults:
  - name: held-optty
    match: {provider: optty, path: /token}
    delay: 60s
    respond: {status: 500, error: internal_error}
  - name: held-afterpay
    match: {provider: afterpay, path: /ping}
    delay: 60s
    respond: {status: 500}
"""


@pytest.mark.parametrize("method,path,headers,shape", [
    ("POST", "/token", {"content-type": "application/x-www-form-urlencoded"},
     {"statusCode": 503, "message": "Service Unavailable"}),
    ("GET", "/ping", {}, {"errorCode": "service_unavailable", "httpStatusCode": 503}),
])
def test_each_provider_answers_its_own_503_at_shutdown(
        method: str, path: str, headers: dict[str, str], shape: dict[str, object],
        caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import json
    import logging

    from mock_server.app import create_app
    from mock_server.core.scenarios import parse_scenario
    from mock_server.settings import Settings
    from tests.reliability.conftest import call

    app = create_app(Settings(seed=1))
    session = app.world.session("held")
    app.world.load(session, parse_scenario(HELD, error_codes=app.world.error_codes))

    async def drill() -> object:
        task = asyncio.create_task(call(app, method, path, {**headers,
                                                             "x-sandbox-session": "held"}))
        for _ in range(1000):  # until the request is journaled and held by its rule
            await asyncio.sleep(0)
            if len(session.journal):
                break
        assert len(session.journal) == 1
        app.shutdown_deadline = 0.0  # the server is stopping and the grace period is over
        task.cancel()
        return await task

    with caplog.at_level(logging.WARNING, logger="mock_server"):
        answer = asyncio.run(drill())
    assert answer.status == 503  # type: ignore[attr-defined]
    body = json.loads(answer.body)  # type: ignore[attr-defined]
    assert shape.items() <= body.items()
    assert [r.getMessage() for r in caplog.records] == [
        f"shutdown: answered 503 to {method} {path} (session held): still running when "
        "--shutdown-timeout ended"]
    assert session.journal.query()[1][0].status == 503
