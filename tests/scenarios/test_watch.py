"""`--scenario` files and directories, and `--watch` reloading a changed file."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mock_server.app import SandboxApp, create_app
from mock_server.cli import build_parser, settings_from
from mock_server.core import watch
from mock_server.core.watch import ScenarioWatcher
from mock_server.resources import default_scenario_path
from mock_server.settings import Settings
from tests.conftest import ManualTime

PING_DOWN = """\
name: drills
faults:
  - {name: ping-down, match: {path: /ping}, respond: {status: 503}}
"""
PING_TEAPOT = """\
name: drills
faults:
  - {name: ping-teapot, match: {path: /ping}, respond: {status: 418}}
"""
SEEDED = """\
name: seeded
afterpay:
  payments:
    - {id: "555000111", merchantId: "100101382", amount: "%s"}
"""


def write(path: Path, text: str) -> None:
    """Writes and moves the mtime on, as an editor saving a second later would."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def settled(watcher: ScenarioWatcher) -> bool:
    """Two polls: the first sees a change and leaves it (it may still be being written), the
    second, seeing it unchanged, loads it."""
    assert watcher.poll() is False
    return watcher.poll()


def ping(app: SandboxApp, session: str) -> int:
    with TestClient(app) as client:
        return client.get("/ping", headers={"X-Sandbox-Session": session}).status_code


def world(tmp_path: Path, *extra: Path) -> tuple[SandboxApp, ScenarioWatcher]:
    paths = (str(default_scenario_path()), *map(str, extra))
    app = create_app(Settings(seed=7, scenarios=paths), time_source=ManualTime())
    return app, ScenarioWatcher(app.world, paths)


def test_scenario_takes_directories(tmp_path: Path) -> None:
    folder = tmp_path / "drills"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.yaml").write_text(PING_DOWN)
    (folder / "nested" / "b.json").write_text(
        '{"name": "b", "faults": [{"name": "b", "match": {"path": "/v2/*"}, "delay": "1ms"}]}')
    (folder / "notes.txt").write_text("not a scenario")
    app, _ = world(tmp_path, folder)
    names = [s.name for s in app.world.startup]
    assert names == ["default", "drills", "b"]
    assert ping(app, "any") == 503


def test_the_watch_flag_reaches_the_settings() -> None:
    args = build_parser().parse_args(["serve", "--watch", "--scenario", "scenarios/"])
    settings = settings_from(args)
    assert settings.watch is True
    assert settings.scenarios == ("scenarios/",)


def test_a_valid_change_replaces_the_files_rules_for_new_sessions(tmp_path: Path) -> None:
    drill = tmp_path / "drills.yaml"
    drill.write_text(PING_DOWN)
    app, watcher = world(tmp_path, drill)
    assert ping(app, "before") == 503
    assert watcher.poll() is False  # nothing changed yet
    write(drill, PING_TEAPOT)
    assert settled(watcher) is True
    assert ping(app, "after") == 418
    assert ping(app, "before") == 503  # a running session keeps its world
    with TestClient(app) as client:
        client.post("/__admin/reset", headers={"X-Sandbox-Session": "before"})
    assert ping(app, "before") == 418  # until it is reset


def test_a_valid_change_replaces_the_files_seed(tmp_path: Path) -> None:
    seeded = tmp_path / "seeded.yaml"
    seeded.write_text(SEEDED % "50.00")
    app, watcher = world(tmp_path, seeded)
    write(seeded, SEEDED % "75.00")
    assert settled(watcher) is True
    session = app.world.session("fresh")
    payment = session.state("afterpay").payments["555000111"]
    assert str(payment.amount) == "75.00"


def test_an_invalid_change_is_refused_with_its_line_and_the_old_rules_stay(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    drill = tmp_path / "drills.yaml"
    drill.write_text(PING_DOWN)
    app, watcher = world(tmp_path, drill)
    write(drill, PING_DOWN.replace("{status: 503}", "{status: 503, error: no_such_code}"))
    with caplog.at_level(logging.ERROR, logger="mock_server.watch"):
        assert settled(watcher) is False
    messages = [r.getMessage() for r in caplog.records]
    assert f"{drill}:3: faults[0].respond.error: unknown error code 'no_such_code' for " \
           "afterpay" in "\n".join(messages)
    assert any("refused" in m and str(drill) in m for m in messages)
    assert ping(app, "new") == 503


def test_a_change_that_breaks_the_world_is_refused_too(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seeded = tmp_path / "seeded.yaml"
    seeded.write_text(SEEDED % "50.00")
    app, watcher = world(tmp_path, seeded)
    write(seeded, (SEEDED % "50.00").replace("100101382", "999"))
    with caplog.at_level(logging.ERROR, logger="mock_server.watch"):
        assert settled(watcher) is False
    assert f"{seeded}:4: unknown Afterpay merchant '999'" in caplog.text
    assert "555000111" in app.world.session("new").state("afterpay").payments


def test_a_fixed_file_is_picked_up_after_a_refused_one(tmp_path: Path) -> None:
    drill = tmp_path / "drills.yaml"
    drill.write_text(PING_DOWN)
    app, watcher = world(tmp_path, drill)
    write(drill, "faults: [")
    assert settled(watcher) is False
    write(drill, PING_TEAPOT)
    assert settled(watcher) is True
    assert ping(app, "new") == 418


def test_a_file_added_to_or_removed_from_a_watched_directory(tmp_path: Path) -> None:
    folder = tmp_path / "drills"
    folder.mkdir()
    (folder / "a.yaml").write_text("name: a\nfaults:\n  - {name: a, match: {path: /v2/*}, "
                                   "delay: 1ms}\n")
    app, watcher = world(tmp_path, folder)
    (folder / "b.yaml").write_text(PING_DOWN)
    assert settled(watcher) is True
    assert [s.name for s in app.world.startup] == ["default", "a", "drills"]
    assert ping(app, "one") == 503
    (folder / "b.yaml").unlink()
    assert settled(watcher) is True
    assert [s.name for s in app.world.startup] == ["default", "a"]
    assert ping(app, "two") == 200


def test_a_named_file_that_disappears_keeps_its_rules(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    drill = tmp_path / "drills.yaml"
    drill.write_text(PING_DOWN)
    app, watcher = world(tmp_path, drill)
    drill.unlink()
    with caplog.at_level(logging.ERROR, logger="mock_server.watch"):
        assert settled(watcher) is False
    assert f"{drill}:1: cannot read" in caplog.text
    assert ping(app, "new") == 503


def test_serving_with_watch_polls_in_the_background(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "POLL_SECONDS", 0.05)
    drill = tmp_path / "drills.yaml"
    drill.write_text(PING_DOWN)
    settings = Settings(seed=7, watch=True, scenarios=(str(default_scenario_path()), str(drill)))
    app = create_app(settings, time_source=ManualTime())
    with TestClient(app) as client:
        assert client.get("/ping", headers={"X-Sandbox-Session": "s0"}).status_code == 503
        write(drill, PING_TEAPOT)
        statuses: list[Any] = []
        for attempt in range(100):
            statuses.append(client.get("/ping", headers={"X-Sandbox-Session": f"s{attempt + 1}"})
                            .status_code)
            if statuses[-1] == 418:
                break
            time.sleep(0.02)
        assert statuses[-1] == 418


def test_without_watch_nothing_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "POLL_SECONDS", 0.01)
    drill = tmp_path / "drills.yaml"
    drill.write_text(PING_DOWN)
    settings = Settings(seed=7, scenarios=(str(default_scenario_path()), str(drill)))
    app = create_app(settings, time_source=ManualTime())
    with TestClient(app) as client:
        write(drill, PING_TEAPOT)
        time.sleep(0.1)
        assert client.get("/ping", headers={"X-Sandbox-Session": "new"}).status_code == 503


def test_mock_server_serve_watch_reloads_and_logs_refusals(tmp_path: Path) -> None:
    """The real command: `serve --watch` picks up a valid edit and logs a bad one by line."""
    drill = tmp_path / "drills.yaml"
    drill.write_text(PING_DOWN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_file = tmp_path / "server.log"
    with log_file.open("wb") as log_out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mock_server", "serve", "--port", str(port), "--seed", "7",
             "--watch", "--scenario", str(default_scenario_path()), "--scenario", str(drill)],
            stdout=log_out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            def ping_in(session: str) -> int:
                return client.get("/ping", headers={"X-Sandbox-Session": session}).status_code

            wait_for(lambda: _up(client))
            assert ping_in("a") == 503
            write(drill, PING_TEAPOT)
            wait_for(lambda: "reloaded" in log_file.read_text())
            assert ping_in("b") == 418
            write(drill, PING_TEAPOT.replace("418", "999"))
            wait_for(lambda: "refused" in log_file.read_text())
            assert ping_in("c") == 418
    finally:
        server.terminate()
        server.wait(timeout=10)
    log = log_file.read_text()
    assert f"{drill}:3: faults[0].respond.status: must be at most 599, not 999" in log


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/__admin/health").status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
