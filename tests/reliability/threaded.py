"""Attacks on a real server, in-process: the sandbox under uvicorn with `mock-server serve`'s protocol
options, in a thread, on a free loopback port; stopped after each test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from mock_server.app import SandboxApp, create_app
from mock_server.core.protocol import uvicorn_options
from mock_server.settings import Settings

# only to turn a hang into a failure; no test asserts how long anything took
STUCK_SECONDS = 30.0


@dataclass
class Served:
    app: SandboxApp
    port: int

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=STUCK_SECONDS)
        return sock

    def exchange(self, data: bytes) -> bytes:
        """Sends `data` (from another thread, so a server that answers early is seen to) and
        reads until the server closes."""
        with self.connect() as sock:
            def send() -> None:
                try:
                    sock.sendall(data)
                except OSError:
                    pass  # answered and closed before all was sent
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
            reply = read_all(sock)
            sender.join(STUCK_SECONDS)
            return reply


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def split_reply(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
def threaded_server() -> Iterator[Callable[..., Served]]:
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(settings: Settings | None = None) -> Served:
        app = create_app(settings or Settings(seed=5))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                log_level="warning", timeout_graceful_shutdown=1,
                                **uvicorn_options(app))
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread))
        deadline = time.monotonic() + STUCK_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return Served(app, port)

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(STUCK_SECONDS)
