"""Every serve flag, from the command line and from MOCK_SERVER_<FLAG>; the check command."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from mock_server.cli import build_parser, main, settings_from
from mock_server.settings import Settings


def _settings(argv: list[str]) -> Settings:
    return settings_from(build_parser().parse_args(["serve", *argv]))


def test_defaults_bind_loopback_8080(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MOCK_SERVER_"):
            monkeypatch.delenv(key)
    settings = _settings([])
    assert (settings.host, settings.port, settings.scenarios) == ("127.0.0.1", 8080, ())


FLAGS = [
    (["--host", "0.0.0.0"], "MOCK_SERVER_HOST", "0.0.0.0", "host", "0.0.0.0"),
    (["--port", "9001"], "MOCK_SERVER_PORT", "9001", "port", 9001),
    (["--scenario", "a.yaml", "--scenario", "dir"], "MOCK_SERVER_SCENARIO",
     f"a.yaml{os.pathsep}dir", "scenarios", ("a.yaml", "dir")),
    (["--seed", "42"], "MOCK_SERVER_SEED", "42", "seed", 42),
    (["--strict"], "MOCK_SERVER_STRICT", "true", "strict", True),
    (["--admin-token", "t"], "MOCK_SERVER_ADMIN_TOKEN", "t", "admin_token", "t"),
    (["--jwt-secret", "k"], "MOCK_SERVER_JWT_SECRET", "k", "jwt_secret", "k"),
    (["--watch"], "MOCK_SERVER_WATCH", "1", "watch", True),
    (["--log-format", "json"], "MOCK_SERVER_LOG_FORMAT", "json", "log_format", "json"),
    (["--log-level", "debug"], "MOCK_SERVER_LOG_LEVEL", "debug", "log_level", "debug"),
    (["--idempotency-ttl", "2d"], "MOCK_SERVER_IDEMPOTENCY_TTL", "2d", "idempotency_ttl",
     timedelta(days=2)),
    (["--journal-size", "50"], "MOCK_SERVER_JOURNAL_SIZE", "50", "journal_size", 50),
    (["--max-body-bytes", "2048"], "MOCK_SERVER_MAX_BODY_BYTES", "2048", "max_body_bytes", 2048),
    (["--max-sessions", "20"], "MOCK_SERVER_MAX_SESSIONS", "20", "max_sessions", 20),
    (["--session-idle-ttl", "30m"], "MOCK_SERVER_SESSION_IDLE_TTL", "30m", "session_idle_ttl",
     timedelta(minutes=30)),
    (["--max-fault-rules", "50"], "MOCK_SERVER_MAX_FAULT_RULES", "50", "max_fault_rules", 50),
    (["--max-scenario-bytes", "4096"], "MOCK_SERVER_MAX_SCENARIO_BYTES", "4096",
     "max_scenario_bytes", 4096),
    (["--max-connections", "300"], "MOCK_SERVER_MAX_CONNECTIONS", "300", "max_connections", 300),
    (["--keep-alive-timeout", "10s"], "MOCK_SERVER_KEEP_ALIVE_TIMEOUT", "10s",
     "keep_alive_timeout", timedelta(seconds=10)),
    (["--webhook-allow", "10.0.0.0/8,127.0.0.1"], "MOCK_SERVER_WEBHOOK_ALLOW",
     "10.0.0.0/8,127.0.0.1", "webhook_allow", ("10.0.0.0/8", "127.0.0.1/32")),
    (["--workers", "3"], "MOCK_SERVER_WORKERS", "3", "workers", 3),
]


@pytest.mark.parametrize("argv,env,raw,attr,value", FLAGS, ids=[f[1] for f in FLAGS])
def test_flag_from_command_line(argv: list[str], env: str, raw: str, attr: str,
                                value: object) -> None:
    assert getattr(_settings(argv), attr) == value


@pytest.mark.parametrize("argv,env,raw,attr,value", FLAGS, ids=[f[1] for f in FLAGS])
def test_flag_from_environment(monkeypatch: pytest.MonkeyPatch, argv: list[str], env: str,
                               raw: str, attr: str, value: object) -> None:
    monkeypatch.setenv(env, raw)
    assert getattr(_settings([]), attr) == value


def test_command_line_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SERVER_PORT", "9001")
    assert _settings(["--port", "9002"]).port == 9002


def test_no_strict_overrides_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SERVER_STRICT", "yes")
    assert _settings(["--no-strict"]).strict is False


@pytest.mark.parametrize("argv", [["serve", "--port", "http"], ["serve", "--port", "70000"],
                                  ["serve", "--log-format", "xml"], ["serve", "--bogus"],
                                  ["serve", "--idempotency-ttl", "soon"]])
def test_bad_flag_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                         argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


def test_bad_environment_value_is_exit_2(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MOCK_SERVER_STRICT", "maybe")
    with pytest.raises(SystemExit) as exited:
        main(["serve"])
    assert exited.value.code == 2
    assert "MOCK_SERVER_STRICT" in capsys.readouterr().err


def test_check_accepts_the_default_world(capsys: pytest.CaptureFixture[str]) -> None:
    default = Path(__file__).parents[2] / "scenarios" / "default.yaml"
    assert main(["check", str(default)]) == 0
    assert "ok (default)" in capsys.readouterr().out


def test_check_reports_file_line_and_exits_1(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nafterpay:\n  merchants:\n"
                   "    - {merchantId: '1', secretKey: 'k', currency: AUD}\n"
                   "  payments:\n"
                   "    - {id: '2', merchantId: '9', amount: '1.00'}\n")
    assert main(["check", str(bad)]) == 1
    assert capsys.readouterr().out == f"{bad}:6: unknown Afterpay merchant '9'\n"


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.yaml")]) == 1
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'nope.yaml'}:1: cannot read")


def test_python_dash_m_is_the_same_command() -> None:
    import subprocess
    import sys

    from mock_server import __version__
    done = subprocess.run([sys.executable, "-m", "mock_server", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"mock-server {__version__}"
