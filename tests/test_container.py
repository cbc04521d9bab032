"""What can be checked of the container outside Docker: its command and its health check."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from mock_server import healthcheck
from mock_server.app import create_app
from mock_server.settings import Settings

DOCKERFILE = (Path(__file__).parents[1] / "Dockerfile").read_text()


def test_dockerfile_mirrors_the_readme() -> None:
    assert re.search(r"^FROM python:3\.\d+-slim$", DOCKERFILE, re.M)
    assert "RUN pip install --no-cache-dir '.[redis]'" in DOCKERFILE  # redis:// stores too
    assert "MOCK_SERVER_HOST=0.0.0.0" in DOCKERFILE
    assert re.search(r"^EXPOSE 8080$", DOCKERFILE, re.M)
    assert re.search(r"^USER sandbox$", DOCKERFILE, re.M)
    assert 'CMD ["mock-server", "serve"]' in DOCKERFILE
    assert 'CMD ["python", "-m", "mock_server.healthcheck"]' in DOCKERFILE
    assert "curl" not in DOCKERFILE.split("HEALTHCHECK", 1)[1].split("\n\n")[0].replace(
        "no curl", "")


@pytest.fixture
def live_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(seed=1)), log_config=None,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_healthcheck_passes_against_a_live_server(live_port: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SERVER_PORT", str(live_port))
    monkeypatch.setattr("sys.argv", ["healthcheck"])
    assert healthcheck.main() == 0


def test_healthcheck_fails_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.setattr("sys.argv", ["healthcheck"])
    monkeypatch.setenv("MOCK_SERVER_PORT", str(port))
    assert healthcheck.main() == 1
