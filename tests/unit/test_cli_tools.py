"""`mock-server requests`, `drills`, `schema`, `check` against the startup world, the health
check with a base URL, the seed printed at start-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from mock_server import cli, commands
from mock_server.client import SandboxClient
from mock_server.core.journal import finish
from mock_server.resources import schema_path
from mock_server.testing import RunningSandbox, running_sandbox
from tests.conftest import AFTERPAY_HEADERS

USES_DEFAULT_MERCHANT = ("name: extra\nafterpay:\n  payments:\n"
                         "    - {id: '700', merchantId: '100101382', amount: '7.00'}\n")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(seed=2) as running:
        yield running


def get(sandbox: RunningSandbox, session: str, path: str) -> int:
    return httpx.get(f"{sandbox.session_url(session)}{path}", headers=AFTERPAY_HEADERS,
                     trust_env=False).status_code


# -- drills, schema -------------------------------------------------------------------------


def test_drills_lists_each_with_one_line_and_its_installed_path(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["drills"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = sorted(p.stem for p in commands.drills_dir().glob("*.yaml"))
    assert len(names) >= 6 and len(lines) == 2 * len(names)
    at = 2 * names.index("flaky-network")
    assert lines[at].startswith("flaky-network ") and "TCP reset" in lines[at]
    assert Path(lines[at + 1].strip()) == commands.drills_dir() / "flaky-network.yaml"
    assert Path(lines[at + 1].strip()).is_file()


def test_one_drill_is_printed_whole_or_as_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["drills", "provider-outage"]) == 0
    text = capsys.readouterr().out
    assert text == (commands.drills_dir() / "provider-outage.yaml").read_text()
    assert cli.main(["drills", "provider-outage", "--path"]) == 0
    assert capsys.readouterr().out.strip().endswith("drills/provider-outage.yaml")


def test_an_unknown_drill_names_the_drills(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["drills", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mock-server: error: no drill named 'nope'; the drills are: ")
    assert "flaky-network" in err


def test_a_printed_drill_loads_as_is(sandbox: RunningSandbox,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["drills", "provider-outage"]) == 0
    loaded = sandbox.client("drill").load_scenario(capsys.readouterr().out)
    assert loaded.name == "provider-outage" and loaded.faults == 2


def test_schema_prints_the_bundled_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(schema_path("scenario.schema.json").read_text())
    assert printed["$schema"].startswith("https://json-schema.org/")


# -- check ----------------------------------------------------------------------------------


def test_check_takes_the_default_worlds_merchants_as_the_server_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], sandbox: RunningSandbox) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(USES_DEFAULT_MERCHANT)
    assert sandbox.client("check").load_scenario(extra).name == "extra"  # the server takes it
    assert cli.main(["check", str(extra)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{extra}: ok (extra)\n"
    assert "onto the bundled default world (POST /__admin/scenarios)" in captured.err
    assert "--startup" in captured.err


def test_check_startup_checks_them_as_a_whole_world(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(USES_DEFAULT_MERCHANT)
    assert cli.main(["check", "--startup", str(extra)]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"{extra}:4: unknown Afterpay merchant '100101382'\n"
    assert "as a startup world (serve --scenario" in captured.err


def test_check_onto_another_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = tmp_path / "world.yaml"
    world.write_text("name: world\nafterpay:\n  merchants:\n    - {merchantId: '5', "
                     "secretKey: 'k', currency: AUD}\n")
    extra = tmp_path / "extra.yaml"
    extra.write_text(USES_DEFAULT_MERCHANT)
    assert cli.main(["check", "--world", str(world), str(extra)]) == 1
    assert "unknown Afterpay merchant '100101382'" in capsys.readouterr().out


# -- healthcheck ----------------------------------------------------------------------------


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
    return subprocess.run([sys.executable, "-m", "mock_server.healthcheck", *args],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


def test_healthcheck_takes_a_base_url(sandbox: RunningSandbox) -> None:
    assert probe(sandbox.url).returncode == 0
    assert probe(sandbox.url + "/").returncode == 0
    assert probe(sandbox.url + "/__admin/health").returncode == 0


def test_a_failed_healthcheck_says_why(sandbox: RunningSandbox) -> None:
    dead = probe("http://127.0.0.1:9")
    assert dead.returncode == 1
    assert dead.stderr.startswith("healthcheck: no answer from http://127.0.0.1:9/__admin/health")
    not_ours = probe(sandbox.url + "/v2/nothing/__admin/health")
    assert not_ours.returncode == 1 and "answered" in not_ours.stderr
    assert probe("127.0.0.1:8080").stderr == "healthcheck: '127.0.0.1:8080' is not an http:// URL\n"


# -- requests -------------------------------------------------------------------------------


def test_requests_prints_the_sessions_journal_oldest_first(
        sandbox: RunningSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert get(sandbox, "tail-1", "/v2/payments/100101785223") == 200
    assert get(sandbox, "tail-1", "/v2/payments/nope") == 404
    assert cli.main(["requests", "--url", sandbox.url, "--session", "tail-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert " #1 GET /v2/payments/100101785223 200 " in lines[0] and lines[0].endswith(
        "afterpay getPayment")
    assert " #2 GET /v2/payments/nope 404 " in lines[1]
    assert cli.main(["requests", "--url", sandbox.url, "--session", "tail-1",
                     "--status", "404", "--json"]) == 0
    [only] = capsys.readouterr().out.splitlines()
    assert json.loads(only)["path"] == "/v2/payments/nope"


def test_requests_against_nothing_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["requests", "--url", "http://127.0.0.1:9", "--admin-token", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mock-server: error: no sandbox answers at http://127.0.0.1:9")
    assert "Traceback" not in err


def test_requests_refuses_a_bad_status_before_asking(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["requests", "--status", "42"])
    assert stopped.value.code == 2
    assert "'42' is not a status (0, or 100-599)" in capsys.readouterr().err


def test_follow_prints_each_entry_once_when_it_is_answered(sandbox: RunningSandbox) -> None:
    session = "tail-follow"
    client = sandbox.client(session)
    tail = commands.JournalTail(client, commands.Filters(), page_size=2)
    assert get(sandbox, session, "/ping") == 200
    assert [e.id for e in tail.start(1)] == [1]
    assert tail.poll() == []
    # an entry still being answered (as under a `delay` rule) waits; later ones go on
    journal = sandbox.app.world.session(session).journal
    slow = journal.record(at=datetime.now(UTC), provider="afterpay", operation="ping",
                          method="GET", path="/ping", query="", headers=[], body=b"")
    for _ in range(3):
        assert get(sandbox, session, "/ping") == 200
    assert [e.id for e in tail.poll()] == [3, 4, 5]
    assert tail.poll() == []
    finish(slow, status=200, headers=[], body=b"pong", duration_ms=75_000.0)
    assert [e.id for e in tail.poll()] == [2]
    assert tail.poll() == []
    client.reset()  # a reset journal starts its ids again
    assert get(sandbox, session, "/ping") == 200
    assert [e.id for e in tail.poll()] == [1]


def test_follow_polls_until_interrupted(sandbox: RunningSandbox) -> None:
    session = "tail-poll"
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            raise KeyboardInterrupt
        assert get(sandbox, session, "/ping") == 200

    out = __import__("io").StringIO()
    args = SimpleNamespace(url=sandbox.url, session=session, provider=None, status=None,
                           operation=None, limit=20, follow=True, poll=True, interval=0.25,
                           json=False, admin_token=None)
    assert commands.requests_command(args, stdout=out, sleep=sleep) == 0
    assert polls == [0.25, 0.25, 0.25]
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["#1", "#2"]


def test_the_event_stream_is_read_event_by_event() -> None:
    entry: dict[str, Any] = {"id": 4, "path": "/ping"}
    lines = [": keep-alive", "", "event: request", f"data: {json.dumps(entry)}", "",
             "event: other", "data: {}", "", "event: request", "data: not json", "",
             "event: request", 'data: {"id":', 'data: 5}', ""]
    assert list(commands.sse_entries(lines)) == [entry, {"id": 5}]


# -- the seed of a run ----------------------------------------------------------------------


def test_a_run_without_seed_prints_the_seed_to_replay_it() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
    server = subprocess.Popen([sys.executable, "-m", "mock_server", "serve", "--port", "0"],
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stderr is not None
        seen = []
        for line in server.stderr:
            seen.append(line)
            if "listening on" in line:
                break
        # SIGTERM once it serves (a signal in the instant before uvicorn takes it is lost)
        url = seen[-1].split("listening on ", 1)[1].strip()
        with SandboxClient(url, admin_token="") as client:
            while not client.healthy():
                pass
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    [said] = [line for line in seen if "seed" in line]
    seed = said.split("seed ", 1)[1].split()[0]
    assert seed.isdigit()
    assert f"replay this run with --seed {seed} (or MOCK_SERVER_SEED={seed})" in said


# -- the README's commands ------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    return README.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_drill_commands_need_no_clone(tmp_path: Path) -> None:
    text = section("Fault drills") + section("Admin API")
    assert "@scenarios/" not in text
    named = {m.split()[0] for m in text.split("mock-server drills ")[1:]} - {"NAME`"}
    assert named and named <= set(commands.drills())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_SERVER_")}
    for name in named:  # from a folder that holds no scenarios/
        done = subprocess.run([sys.executable, "-m", "mock_server", "drills", name, "--path"],
                              cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=60, check=True)
        assert Path(done.stdout.strip()).is_file()


def test_the_readmes_admin_example_reads_the_session_it_wrote() -> None:
    block = section("Admin API").split("```sh\n", 1)[1].split("```", 1)[0]
    calls = [line for line in block.splitlines() if "curl " in line]
    assert len(calls) == 3
    assert all("X-Sandbox-Session: t1" in line for line in calls)


def test_the_readmes_pytest_example_says_to_install_pytest() -> None:
    assert "pip install refund-mock-server pytest" in section("Using the sandbox from pytest")


def test_follow_falls_back_to_polling_where_there_is_no_event_stream(
        sandbox: RunningSandbox) -> None:
    session = "tail-fallback"
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            raise KeyboardInterrupt
        assert get(sandbox, session, "/ping") == 200

    with httpx.stream("GET", f"{sandbox.url}/__admin/requests/stream?limit=1",
                      trust_env=False) as stream:
        has_stream = stream.headers.get("content-type", "").startswith("text/event-stream")
    if has_stream:
        pytest.skip("this server has the event stream")
    out = __import__("io").StringIO()
    args = SimpleNamespace(url=sandbox.url, session=session, provider=None, status=None,
                           operation=None, limit=0, follow=True, poll=False, interval=0.5,
                           json=True, admin_token=None)
    assert commands.requests_command(args, stdout=out, sleep=sleep) == 0
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == [1]
