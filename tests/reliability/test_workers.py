"""`mock-server serve --workers N`: refused for the memory store and for N < 1 (one line, exit
code 2); with a shared store, N real processes on one port, every one serving with the
parent's settings, a dead one replaced, and SIGTERM to the parent stopping them all cleanly.

The real-process tests need `serve --store sqlite:...`, which core.stores.refuse_serving still
refuses while the store cannot hold all the session state; they are skipped until it does."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mock_server import cli
from mock_server.core.stores import StoreError, parse_store_url, refuse_serving


def _sqlite_serves() -> str | None:
    try:
        refuse_serving(parse_store_url("sqlite:probe.db"))
    except StoreError as exc:
        return f"serve --store sqlite: is still refused ({exc})"
    return None


needs_sqlite_serving = pytest.mark.skipif(_sqlite_serves() is not None,
                                          reason=str(_sqlite_serves()))

PIDS = re.compile(r"listening on http://127\.0\.0\.1:\d+ with (\d+) workers \(pids ([\d, ]+)\)")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stopped:
        cli.main(list(argv))
    return int(stopped.value.code or 0), capsys.readouterr().err


@pytest.fixture(autouse=True)
def _no_sandbox_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(cli.ENV_PREFIX):
            monkeypatch.delenv(key)


@pytest.mark.parametrize("argv,env", [
    (["--workers", "2"], {}),
    (["--workers", "2", "--store", "memory"], {}),
    ([], {"MOCK_SERVER_WORKERS": "2"}),
    (["--workers", "3"], {"MOCK_SERVER_STORE": "memory"}),
])
def test_workers_over_the_memory_store_are_refused_in_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        argv: list[str], env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, err = _run(capsys, "serve", "--port", "0", *argv)
    assert code == cli.EXIT_USAGE and err.count("\n") == 1, err
    assert "needs a store the processes share" in err and "--store sqlite:PATH" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,env,expected", [
    (["--workers", "0"], {}, "argument --workers: '0' is not a positive integer"),
    (["--workers", "-1"], {}, "argument --workers: '-1' is not a positive integer"),
    (["--workers", "two"], {}, "argument --workers: 'two' is not a positive integer"),
    ([], {"MOCK_SERVER_WORKERS": "0"}, "MOCK_SERVER_WORKERS: '0' is not a positive integer"),
    ([], {"MOCK_SERVER_WORKERS": "x"}, "MOCK_SERVER_WORKERS: 'x' is not a positive integer"),
])
def test_fewer_than_one_worker_is_refused_in_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
        env: dict[str, str], expected: str, tmp_path: Path) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, err = _run(capsys, "serve", "--port", "0", "--store", f"sqlite:{tmp_path / 's.db'}",
                     *argv)
    assert code == cli.EXIT_USAGE and err.count("\n") == 1 and expected in err, err


def test_one_worker_is_one_process_whatever_the_store(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr(cli, "_serve_workers", lambda settings: served.append(settings) or 0)
    monkeypatch.setattr(cli, "bind", lambda host, port: (_ for _ in ()).throw(SystemExit(9)))
    code, _ = _run(capsys, "serve", "--workers", "1")
    assert (code, served) == (9, [])  # went on to bind its own port: no supervisor


def test_a_worker_is_not_started_by_hand() -> None:
    ran = subprocess.run([sys.executable, "-m", "mock_server.worker", "3", "4", "1", "2"],
                         input=b"not the parent's settings", capture_output=True, timeout=60,
                         check=False)
    assert ran.returncode == 2 and ran.stderr.count(b"\n") == 1
    assert b"started by `mock-server serve --workers N`" in ran.stderr
    assert b"Traceback" not in ran.stderr


def _health(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:  # a new connection each time: the kernel hands it to any of the workers
        connection.request("GET", "/__admin/health", headers={"Connection": "close"})
        answer = connection.getresponse()
        assert answer.status == 200
        return dict(json.loads(answer.read()))
    finally:
        connection.close()


def _pids_answering(port: int, wanted: set[int], tries: int = 500) -> set[int]:
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(int(_health(port)["pid"]))
        if wanted <= seen:
            break
    return seen


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@needs_sqlite_serving
def test_two_workers_serve_one_port_with_the_parents_settings_and_stop_on_sigterm(
        serve: Any, tmp_path: Path) -> None:
    server = serve("--workers", "2", "--store", f"sqlite:{tmp_path / 'shared.db'}",
                   "--max-sessions", "7")
    found = PIDS.search(server.log())
    assert found and found.group(1) == "2", server.log()
    workers = {int(p) for p in found.group(2).split(", ")}
    assert len(workers) == 2 and server.process.pid not in workers
    # both answer, each with the settings the parent parsed (not the defaults)
    assert _pids_answering(server.port, workers) == workers
    assert _health(server.port)["maxSessions"] == 7
    # the seed is drawn once, by the parent, for all of them
    assert len(re.findall(r"seed \d+ drawn", server.log())) == 1
    assert server.stop(signal.SIGTERM) == 0
    log = server.log()
    for pid in workers:
        assert re.search(rf"worker \d \(pid {pid}\) exited with code 0", log), log
        assert _gone(pid)
    # each worker ran its own graceful stop (its shutdown hooks: the callback drain) to the end
    assert log.count("stopped (SIGTERM)") == 3, log
    assert "SIGTERM received: stopping 2 worker(s)" in log
    assert "Traceback" not in log


@needs_sqlite_serving
def test_a_worker_that_dies_is_replaced(serve: Any, tmp_path: Path) -> None:
    server = serve("--workers", "2", "--store", f"sqlite:{tmp_path / 'shared.db'}")
    found = PIDS.search(server.log())
    assert found
    first, second = (int(p) for p in found.group(2).split(", "))
    os.kill(first, signal.SIGKILL)
    server.wait_for(re.compile(rf"worker 1 \(pid {first}\) exited with code -9 while serving"))
    replacement = int(server.wait_for(
        re.compile(r"worker 1 of 2 serving \(pid (?!" + str(first) + r"\b)(\d+)\)")).group(1))
    assert _pids_answering(server.port, {second, replacement}) == {second, replacement}
    assert server.stop(signal.SIGTERM) == 0
    assert _gone(replacement) and _gone(second)


@needs_sqlite_serving
def test_a_worker_that_cannot_start_stops_the_server_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nafterpay: {merchants: 7}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
    ran = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--workers", "2",
         "--store", f"sqlite:{tmp_path / 's.db'}", "--scenario", str(bad)],
        capture_output=True, text=True, timeout=120, check=False, env=env)
    assert ran.returncode == 2, ran.stderr
    assert "bad.yaml" in ran.stderr and "worker 1 (pid" in ran.stderr
    assert "did not start" in ran.stderr and "worker 2 of 2" not in ran.stderr
    assert "Traceback" not in ran.stderr


@needs_sqlite_serving
def test_workers_stop_by_themselves_when_the_parent_is_killed(serve: Any, tmp_path: Path) -> None:
    server = serve("--workers", "2", "--store", f"sqlite:{tmp_path / 'shared.db'}")
    found = PIDS.search(server.log())
    assert found
    workers = [int(p) for p in found.group(2).split(", ")]
    server.process.kill()  # SIGKILL: the parent cannot pass anything on
    server.process.wait(timeout=30)
    for pid in workers:  # each reads the end of its stdin pipe and stops as on SIGTERM
        server.wait_for(re.compile(r"supervising process \(pid \d+\) is gone: stopping"))
        deadline = time.monotonic() + 60
        while not _gone(pid):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.02)
    assert server.log().count("stopped (SIGTERM)") == 2


@needs_sqlite_serving
def test_a_port_held_by_another_server_with_workers_is_refused(serve: Any, tmp_path: Path) -> None:
    first = serve("--workers", "2", "--store", f"sqlite:{tmp_path / 'a.db'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
    ran = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--port", str(first.port), "--workers",
         "2", "--store", f"sqlite:{tmp_path / 'b.db'}"],
        capture_output=True, text=True, timeout=120, check=False, env=env)
    assert ran.returncode == 2 and "address already in use" in ran.stderr, ran.stderr
    assert ran.stderr.count("error:") == 1
