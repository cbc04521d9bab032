"""`mock-server serve` start-up: a bad flag, an unreadable scenario, a port in use -> one line
saying what and where, exit code 2, no traceback."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from mock_server import cli


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(cli.ENV_PREFIX)}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mock_server", *args], capture_output=True,
                          text=True, timeout=60, env=clean_env(), check=False)


@pytest.fixture
def no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(cli.ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def fails_with(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# -- the three start-up errors, as a user meets them: a real process --------------------------

def test_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", "--port", str(port))
    assert done.returncode == 2
    assert done.stderr == (f"mock-server: error: cannot listen on 127.0.0.1:{port}: "
                           "address already in use (--port / MOCK_SERVER_PORT)\n")
    assert done.stdout == ""


def test_unreadable_scenario_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "drills" / "outage.yaml"
    done = run_cli("serve", "--port", "0", "--scenario", str(missing))
    assert done.returncode == 2
    assert done.stderr == (f"mock-server: error: {missing}:1: cannot read: "
                           "No such file or directory\n")


# -- more of the same, in-process --------------------------------------------------------------

@pytest.mark.parametrize(("argv", "line"), [
    (["serve", "--port", "abc"],
     "mock-server serve: error: argument --port: 'abc' is not a port number (0-65535)"),
    (["serve", "--log-format", "xml"],
     "mock-server serve: error: argument --log-format: invalid choice: 'xml' (choose from "),
    (["serve", "--shutdown-timeout", "soon"],
     "mock-server serve: error: argument --shutdown-timeout: 'soon' is not a duration "
     "(e.g. 250ms, 2s, 1m, 7d)"),
    (["serve", "--journal-size", "0"],
     "mock-server serve: error: argument --journal-size: '0' is not a positive integer"),
    (["srve"], "mock-server: error: argument command: invalid choice: 'srve' (choose from "),
    (["serve", "--prot", "8080"], "mock-server: error: unrecognized arguments: --prot 8080"),
])
def test_bad_flag_value_says_which_flag(capsys: pytest.CaptureFixture[str], no_server_env: None,
                                        argv: list[str], line: str) -> None:
    err = fails_with(capsys, argv)
    assert err.count("\n") == 1
    if line.endswith("(choose from "):
        # argparse words the list of choices differently from one Python to the next
        assert err.startswith(line)
    else:
        assert err == line + "\n"


@pytest.mark.parametrize(("name", "value", "line"), [
    ("MOCK_SERVER_PORT", "abc", "MOCK_SERVER_PORT: 'abc' is not a port number (0-65535)"),
    ("MOCK_SERVER_STRICT", "maybe", "MOCK_SERVER_STRICT='maybe' is not a boolean"),
    ("MOCK_SERVER_LOG_FORMAT", "xml", "MOCK_SERVER_LOG_FORMAT='xml' must be one of text, json"),
    ("MOCK_SERVER_SHUTDOWN_TIMEOUT", "5", "MOCK_SERVER_SHUTDOWN_TIMEOUT: '5' is not a duration "
                                          "(e.g. 250ms, 2s, 1m, 7d)"),
])
def test_bad_environment_value_says_which_variable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_server_env: None,
        name: str, value: str, line: str) -> None:
    monkeypatch.setenv(name, value)
    assert fails_with(capsys, ["serve"]) == f"mock-server: error: {line}\n"


def test_every_problem_of_a_bad_scenario_is_a_line_with_file_and_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, no_server_env: None,
        restore_logging: None) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nafterpay:\n  payments:\n    - id: 1\n      amount: lots\n")
    lines = fails_with(capsys, ["serve", "--port", "0", "--scenario", str(bad)]).splitlines()
    assert len(lines) >= 2
    for line in lines:
        assert line.startswith(f"mock-server: error: {bad}:")
    assert any(line.startswith(f"mock-server: error: {bad}:5: ") for line in lines)


def test_an_address_that_is_not_here_is_one_line(
        capsys: pytest.CaptureFixture[str], no_server_env: None, restore_logging: None) -> None:
    # 203.0.113.0/24 is TEST-NET-3: never an address of this machine
    err = fails_with(capsys, ["serve", "--host", "203.0.113.7", "--port", "0"])
    assert err.startswith("mock-server: error: cannot listen on 203.0.113.7:0: ")
    assert err.endswith(" (--host / MOCK_SERVER_HOST)\n")
    assert err.count("\n") == 1


def test_shutdown_timeout_from_flag_and_environment(monkeypatch: pytest.MonkeyPatch,
                                                    no_server_env: None) -> None:
    parser = cli.build_parser()
    settings = cli.settings_from(parser.parse_args(["serve", "--shutdown-timeout", "2s"]))
    assert settings.shutdown_timeout == timedelta(seconds=2)
    monkeypatch.setenv("MOCK_SERVER_SHUTDOWN_TIMEOUT", "250ms")
    settings = cli.settings_from(parser.parse_args(["serve"]))
    assert settings.shutdown_timeout == timedelta(milliseconds=250)
    assert cli.settings_from(parser.parse_args(["serve", "--shutdown-timeout", "1s"])
                             ).shutdown_timeout == timedelta(seconds=1)
