"""The README's CI section stays true: every flag in the environment table, examples that parse,
a health check that answers as documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from mock_server import cli, pytest_plugin
from mock_server.pytest_plugin import SandboxServer

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def ci_section() -> str:
    return README.read_text().split("\n## CI\n", 1)[1].split("\n## ", 1)[0]


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_environment_table_lists_every_serve_flag(ci_section: str) -> None:
    rows = re.findall(r"^\| `(MOCK_SERVER_[A-Z_]+)` \| `(--[a-z-]+)` \|", ci_section, re.M)
    expected = [(cli.ENV_PREFIX + flag.upper().replace("-", "_"), f"--{flag}")
                for flag in cli._SERVE_FLAGS]
    assert rows == expected


def test_github_actions_example_waits_for_the_health_check(ci_section: str) -> None:
    workflow = yaml.safe_load(blocks(ci_section, "yaml")[0])
    service = workflow["jobs"]["test"]["services"]["sandbox"]
    assert "--health-cmd \"python -m mock_server.healthcheck\"" in service["options"]
    assert service["ports"] == ["8080:8080"]
    assert workflow["jobs"]["test"]["env"][pytest_plugin.URL_ENV] == "http://localhost:8080"
    known = {cli.ENV_PREFIX + f.upper().replace("-", "_") for f in cli._SERVE_FLAGS}
    assert set(service["env"]) <= known


def test_compose_example_starts_tests_once_the_sandbox_is_healthy(ci_section: str) -> None:
    compose = yaml.safe_load(blocks(ci_section, "yaml")[1])
    sandbox, tests = compose["services"]["sandbox"], compose["services"]["tests"]
    assert sandbox["healthcheck"]["test"] == ["CMD", "python", "-m", "mock_server.healthcheck"]
    assert tests["depends_on"] == {"sandbox": {"condition": "service_healthy"}}
    known = {cli.ENV_PREFIX + f.upper().replace("-", "_") for f in cli._SERVE_FLAGS}
    assert set(sandbox["environment"]) <= known


def test_testcontainers_example_compiles_against_the_plugin(ci_section: str) -> None:
    [code] = blocks(ci_section, "python")
    compile(code, "conftest.py", "exec")
    assert "from mock_server.pytest_plugin import connect" in code
    assert callable(pytest_plugin.connect)


def test_health_check_answers_as_documented(sandbox_server: SandboxServer) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{sandbox_server.url}/__admin/health", timeout=10) as answer:
        assert answer.status == 200
        body = json.load(answer)
    assert body["status"] == "ok" and set(body) == {"status", "version", "sessions",
                                                    "uptimeSeconds", "maxSessions",
                                                    "sessionsEvicted", "sessionsExpired",
                                                    "pid"}
    probe = [sys.executable, "-m", "mock_server.healthcheck"]
    up = subprocess.run([*probe, f"{sandbox_server.url}/__admin/health"], timeout=60, check=False)
    down = subprocess.run([*probe, "http://127.0.0.1:9/__admin/health"], timeout=60, check=False)
    assert (up.returncode, down.returncode) == (0, 1)


def test_the_optty_full_flow_runs_as_written(sandbox_server: SandboxServer) -> None:
    # the README's curl commands, verbatim but for the base URL, against a real server
    section = README.read_text().split("\n### Optty: from order to refund\n", 1)[1]
    script = blocks(section.split("\n## ", 1)[0], "sh")[0]
    script = script.replace("SANDBOX=http://127.0.0.1:8080", f"SANDBOX={sandbox_server.url}")
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                         text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    answers = [json.loads(line) for line in ran.stdout.replace("}{", "}\n{").splitlines()
               if line.strip()]
    created, outcome, capture, void, refund, order = answers
    assert created["redirectUrl"].endswith(created["orderToken"])
    assert outcome["status"] == "SUCCESSFUL"
    assert capture["capturedAmount"] == 60 and void["amount"] == 50
    assert refund["refundedAmount"] == "20.00"
    assert (order["status"], order["captureStatus"], order["capturedAmount"],
            order["voidedAmount"], order["refundableAmount"]) == (
        "SUCCESSFUL", "CAPTURED", "60.00", "50.00", "40.00")


def test_the_state_and_scale_compose_example_shares_one_redis() -> None:
    section = README.read_text().split("\n## State and scale\n", 1)[1].split("\n## ", 1)[0]
    [document] = blocks(section, "yaml")
    compose = yaml.safe_load(document)
    services = compose["services"]
    sandboxes = {name: s for name, s in services.items() if name.startswith("sandbox")}
    assert len(sandboxes) == 2
    dockerfile = (README.parent / "Dockerfile").read_text()
    known = {cli.ENV_PREFIX + f.upper().replace("-", "_") for f in cli._SERVE_FLAGS}
    ports = set()
    for sandbox in sandboxes.values():
        # the image's own command and health check, settings from the environment only
        assert "command" not in sandbox and 'CMD ["mock-server", "serve"]' in dockerfile
        assert sandbox["healthcheck"]["test"] == ["CMD", "python", "-m",
                                                  "mock_server.healthcheck"]
        assert '"python", "-m", "mock_server.healthcheck"' in dockerfile
        environment = sandbox["environment"]
        assert set(environment) <= known
        settings = cli.settings_from(cli.build_parser().parse_args(
            ["serve", "--store", environment["MOCK_SERVER_STORE"],
             "--workers", environment["MOCK_SERVER_WORKERS"]]))
        assert settings.store == "redis://redis:6379/0" and settings.workers == 2
        assert sandbox["depends_on"] == {"redis": {"condition": "service_healthy"}}
        [published] = sandbox["ports"]
        host_port, container_port = published.split(":")
        assert container_port == "8080" and "EXPOSE 8080" in dockerfile
        ports.add(host_port)
    assert len(ports) == 2
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
