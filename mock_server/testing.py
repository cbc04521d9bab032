"""An in-process sandbox for any test runner or script: running_sandbox() and its async twin."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from mock_server.client import AsyncSandboxClient, SandboxClient

if TYPE_CHECKING:
    import uvicorn

    from mock_server.app import SandboxApp
    from mock_server.settings import Settings

STARTUP_TIMEOUT = 15.0


class SandboxStartError(RuntimeError):
    """The in-process sandbox did not come up (its startup world is bad, or its server failed)."""


def sandbox_settings(settings: Settings | None = None, **overrides: Any) -> Settings:
    """Settings for an in-process sandbox: loopback, a free port, seed 0 unless given."""
    from mock_server.settings import Settings

    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown sandbox setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(known))}")
    scenarios = overrides.get("scenarios")
    if isinstance(scenarios, str):
        overrides["scenarios"] = (scenarios,)
    elif scenarios is not None:
        overrides["scenarios"] = tuple(str(path) for path in scenarios)
    base = settings or Settings(host="127.0.0.1", port=0, seed=0)
    return replace(base, **{"host": "127.0.0.1", "port": 0, **overrides})


@dataclass
class RunningSandbox:
    """A sandbox serving on `url` (http://127.0.0.1:PORT) in this process."""

    url: str
    app: SandboxApp
    settings: Settings
    # True under async_running_sandbox: the server shares the caller's event loop, where a
    # blocking call would wait for itself
    on_loop: bool = False
    _clients: dict[str | None, SandboxClient] = field(default_factory=dict, repr=False)

    def session_url(self, session: str) -> str:
        """The base URL that puts a client's provider calls in `session` (both providers)."""
        return f"{self.url}/sessions/{session}"

    def client(self, session: str | None = None) -> SandboxClient:
        """The admin client of one session (default: `default`), closed with the sandbox."""
        if self.on_loop:
            raise RuntimeError("this sandbox serves on your event loop: a blocking client "
                               "would wait for itself; use async_client()")
        client = self._clients.get(session)
        if client is None:
            first = self._clients.get(None)
            if first is None:
                first = SandboxClient(self.url, admin_token=self.settings.admin_token)
                self._clients[None] = first
            client = first if session is None else first.for_session(session)
            self._clients[session] = client
        return client

    def async_client(self, session: str | None = None) -> AsyncSandboxClient:
        """An async admin client of one session; close it (`async with`) in its event loop."""
        return AsyncSandboxClient(self.url, session=session,
                                  admin_token=self.settings.admin_token)

    def close_clients(self) -> None:
        first = self._clients.pop(None, None)
        self._clients.clear()
        if first is not None:
            first.close()


def _server(app: SandboxApp, settings: Settings) -> uvicorn.Server:
    import uvicorn

    class _Quiet(uvicorn.Server):
        # the host program's SIGINT/SIGTERM stay its own
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    grace = settings.shutdown_timeout.total_seconds()
    # timeout_graceful_shutdown is annotated int; uvicorn hands it to asyncio.wait_for
    from mock_server.core.protocol import uvicorn_options

    # request heads bounded while they arrive, as `mock-server serve` does (core.protocol)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            log_level=None, proxy_headers=False, **uvicorn_options(app),
                            timeout_graceful_shutdown=grace)  # type: ignore[arg-type]
    return _Quiet(config)


def _prepare(settings: Settings | None, overrides: dict[str, Any]
             ) -> tuple[Settings, SandboxApp, socket.socket]:
    from mock_server.app import create_app

    # `providers`: a provider registry (mock_server.core.providers.Registry), not a setting
    providers = overrides.pop("providers", None)
    chosen = sandbox_settings(settings, **overrides)
    app = create_app(chosen, providers=providers)  # a bad startup world raises ScenarioError, every problem listed
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return chosen, app, sock


class ThreadedSandbox:
    """start() / stop() around running_sandbox, for fixtures that cannot use `with`."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings, self.app, self._sock = _prepare(settings, overrides)
        self._server = _server(self.app, self.settings)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True,
                                        name=f"mock-server:{self._sock.getsockname()[1]}")
        self.running: RunningSandbox | None = None

    def start(self, timeout: float = STARTUP_TIMEOUT) -> RunningSandbox:
        self._thread.start()
        port = self._sock.getsockname()[1]
        running = RunningSandbox(f"http://127.0.0.1:{port}", self.app, self.settings)
        deadline = time.monotonic() + timeout
        while not (self._server.started and running.client().healthy()):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise SandboxStartError("the in-process sandbox did not start (see its log)")
            time.sleep(0.01)
        self.running = running
        return running

    def stop(self) -> None:
        if self.running is not None:
            self.running.close_clients()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=self.settings.shutdown_timeout.total_seconds() + 5)
        self._sock.close()


@contextlib.contextmanager
def running_sandbox(settings: Settings | None = None, **overrides: Any
                    ) -> Iterator[RunningSandbox]:
    """A sandbox on a free loopback port, in a thread of this process, for the `with` block:

        with running_sandbox(scenarios=["my-world.yaml"], seed=7) as sandbox:
            pay(base_url=sandbox.session_url("t1"))
            sandbox.client("t1").assert_requests(operation="createRefund", count=1)

    Keyword arguments are mock_server.settings.Settings fields (scenarios, seed, strict,
    admin_token, journal_size, ...); the host is always 127.0.0.1 and the port a free one."""
    threaded = ThreadedSandbox(settings, **overrides)
    running = threaded.start()
    try:
        yield running
    finally:
        threaded.stop()


@contextlib.asynccontextmanager
async def async_running_sandbox(settings: Settings | None = None, **overrides: Any
                                ) -> AsyncIterator[RunningSandbox]:
    """running_sandbox for asyncio code: the server runs on the caller's event loop."""
    chosen, app, sock = _prepare(settings, overrides)
    server = _server(app, chosen)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    running = RunningSandbox(f"http://127.0.0.1:{sock.getsockname()[1]}", app, chosen,
                             on_loop=True)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if task.done() or time.monotonic() > deadline:
                raise SandboxStartError("the in-process sandbox did not start (see its log)")
            await asyncio.sleep(0.01)
        yield running
    finally:
        running.close_clients()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()
