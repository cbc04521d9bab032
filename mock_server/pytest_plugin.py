"""The `sandbox` pytest fixture: one sandbox server per test run, one sandbox session per test."""

# pytest imports this module in every run of every project that has the package installed
# (the pytest11 entry point), so only the standard library and pytest are imported here; the
# server (uvicorn, Starlette, the specs) is loaded when a test first asks for the fixture.

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest

if TYPE_CHECKING:
    from mock_server.app import SandboxApp
    from mock_server.settings import Settings

URL_ENV = "MOCK_SERVER_URL"
ADMIN_TOKEN_ENV = "MOCK_SERVER_ADMIN_TOKEN"
STARTUP_TIMEOUT = 15.0
_SESSION_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SCENARIO_SUFFIXES = (".yaml", ".yml", ".json")
_JOURNAL_MAX = 10_000
_PAGE_MAX = 1000  # GET /__admin/requests gives at most this many entries a page


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbox", "refund-mock-server sandbox (the `sandbox` fixture)")
    group.addoption("--sandbox-scenario", action="append", default=None, metavar="PATH",
                    help="startup world of the in-process sandbox: a scenario file or directory; "
                         "repeatable (default: the bundled default world)")
    group.addoption("--sandbox-seed", type=int, default=None, metavar="N",
                    help="seed for the sandbox's ids and fault probabilities (default 0)")
    group.addoption("--sandbox-url", default=None, metavar="URL",
                    help="use the sandbox already running there (e.g. a CI service container) "
                         f"instead of starting one in-process; default: ${URL_ENV}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sandbox_scenario(*documents_or_paths): loaded into the test's sandbox "
                   "session before it runs (paths relative to the test file)")


class SandboxError(Exception):
    """The sandbox refused an admin call (a bad scenario, a bad clock move)."""

    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body
        detail = body
        if isinstance(body, dict):
            problems = body.get("problems")
            detail = "\n".join(problems) if problems else body.get("message", body)
        super().__init__(f"{what}: {status} {detail}")


class SandboxServer:
    """The sandbox the tests talk to: started in-process on a free loopback port, or found at
    --sandbox-url. `app` is the in-process SandboxApp (None for an external server)."""

    def __init__(self, url: str, *, app: SandboxApp | None = None,
                 admin_token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.app = app
        self.admin_token = admin_token
        import urllib.request
        # loopback only: an HTTP(S)_PROXY in the environment must not catch these calls
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, url: str, body: bytes | None = None,
             headers: Mapping[str, str] | None = None, what: str = "") -> tuple[int, Any]:
        import urllib.error
        import urllib.request
        request = urllib.request.Request(url, data=body, method=method,
                                         headers=dict(headers or {}))
        if self.admin_token:
            request.add_header("Authorization", f"Bearer {self.admin_token}")
        try:
            with self._opener.open(request, timeout=30) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        if status >= 400:
            raise SandboxError(status, payload, what or f"{method} {url}")
        return status, payload

    def healthy(self) -> bool:
        try:
            _, body = self.call("GET", f"{self.url}/__admin/health", what="health")
        except (OSError, SandboxError):
            return False
        return isinstance(body, dict) and body.get("status") == "ok"

    def session(self, name: str) -> SandboxSession:
        return SandboxSession(self, name)


class SandboxSession:
    """One test's own world on the sandbox: base URLs for the client under test, and the admin
    calls a test needs (scenarios, journal, clock, reset), all scoped to this session."""

    def __init__(self, server: SandboxServer, name: str) -> None:
        self.server = server
        self.name = name
        self.base_url = f"{server.url}/sessions/{name}"
        # both providers answer on the one port; each keeps its real paths under the prefix
        self.afterpay_url = self.base_url
        self.optty_url = self.base_url
        self.optty_token_url = f"{self.base_url}/token"
        # for a client that can set a header but not change its base URL
        self.headers = {"X-Sandbox-Session": name}

    def __repr__(self) -> str:
        return f"<SandboxSession {self.name} at {self.base_url}>"

    def _admin(self, method: str, path: str, payload: Any = None, *, raw: bytes | None = None,
               headers: Mapping[str, str] | None = None, query: Mapping[str, Any] | None = None
               ) -> Any:
        url = f"{self.base_url}/__admin{path}"
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        body = raw
        sent = dict(headers or {})
        if payload is not None:
            body = json.dumps(payload).encode()
            sent.setdefault("Content-Type", "application/json")
        return self.server.call(method, url, body, sent, what=f"sandbox {method} {path}")[1]

    # -- scenarios --------------------------------------------------------------------------

    def load_scenario(self, scenario: Mapping[str, Any] | str | bytes | os.PathLike[str]
                      ) -> dict[str, Any]:
        """Seeds this session and adds fault rules: a dict (the document), YAML/JSON text, or a
        path to a .yaml/.yml/.json file. A bad document raises SandboxError listing every
        `source:line: problem`, and nothing of it is applied."""
        source = "<test>"
        if isinstance(scenario, Mapping):
            data = json.dumps(scenario).encode()
        elif isinstance(scenario, bytes):
            data = scenario
        elif _is_path(scenario):
            path = Path(scenario)
            data = path.read_bytes()
            source = str(path)
        elif isinstance(scenario, str):
            data = scenario.encode()
        else:
            raise TypeError(f"a scenario is a dict, YAML/JSON text or a path, not {scenario!r}")
        result: dict[str, Any] = self._admin(
            "POST", "/scenarios", raw=data,
            headers={"Content-Type": "application/yaml", "X-Scenario-Source": source})
        return result

    def scenarios(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._admin("GET", "/scenarios")["scenarios"]
        return result

    def unload_scenario(self, name: str) -> dict[str, Any]:
        """Removes that scenario's fault rules (what it seeded stays)."""
        result: dict[str, Any] = self._admin("DELETE", f"/scenarios/{name}")
        return result

    # -- journal ----------------------------------------------------------------------------

    def requests(self, *, provider: str | None = None, status: int | None = None,
                 operation: str | None = None, limit: int = _JOURNAL_MAX
                 ) -> list[dict[str, Any]]:
        """What reached this session, newest first (secrets redacted), up to `limit` entries:
        the journal's pages followed one after another (at most 1000 entries each)."""
        result: list[dict[str, Any]] = []
        before: int | None = None
        while len(result) < limit:
            page = self._admin("GET", "/requests", query={
                "provider": provider, "status": status, "operation": operation,
                "limit": min(limit - len(result), _PAGE_MAX), "before": before})
            result.extend(page["requests"])
            before = page.get("next")
            if before is None:
                break
        return result

    def clear_requests(self) -> int:
        return int(self._admin("DELETE", "/requests")["cleared"])

    # -- clock ------------------------------------------------------------------------------

    def now(self) -> datetime:
        return _instant(self._admin("GET", "/clock")["now"])

    def freeze(self, now: datetime | str) -> datetime:
        """Stops this session's clock at `now` (a datetime, or ISO 8601; no offset means UTC)."""
        text = now.isoformat() if isinstance(now, datetime) else now
        return _instant(self._admin("PUT", "/clock", {"now": text})["now"])

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Moves this session's clock forward: advance(days=121), advance(timedelta(...))."""
        if delta is not None:
            units["seconds"] = units.get("seconds", 0) + delta.total_seconds()
        return _instant(self._admin("POST", "/clock/advance", units)["now"])

    def reset_clock(self) -> datetime:
        """Back to real time."""
        return _instant(self._admin("DELETE", "/clock")["now"])

    # -- everything -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the startup world: seed re-applied; refunds, faults, journal, clock cleared."""
        self._admin("POST", "/reset")


def _is_path(scenario: object) -> bool:
    # a one-line string naming a scenario file is a path; anything else is the document
    return isinstance(scenario, os.PathLike) or (
        isinstance(scenario, str) and "\n" not in scenario
        and scenario.lower().endswith(_SCENARIO_SUFFIXES))


def _relative_to(folder: Path, scenario: Any) -> Any:
    if not _is_path(scenario):
        return scenario
    path = Path(scenario)
    return path if path.is_absolute() else folder / path


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def session_name(nodeid: str) -> str:
    """A sandbox session name for a test: readable, at most 64 characters, and the same for the
    same test in every run (the session's ids are seeded from its name)."""
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:10]
    slug = _SESSION_UNSAFE.sub("-", nodeid.rsplit("::", 1)[-1]).strip("-.")
    return f"{slug[:64 - len(digest) - 1]}-{digest}" if slug else digest


def _in_process(settings: Settings) -> Iterator[SandboxServer]:
    import socket

    import uvicorn

    from mock_server.app import create_app
    from mock_server.core.scenarios import ScenarioError

    try:
        app = create_app(settings)
    except ScenarioError as err:
        pytest.fail("the sandbox's startup world is invalid:\n" + "\n".join(err.problems),
                    pytrace=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    grace = settings.shutdown_timeout.total_seconds()
    # timeout_graceful_shutdown is annotated int; uvicorn hands it to asyncio.wait_for
    from mock_server.core.protocol import uvicorn_options

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            log_level=None, **uvicorn_options(app),
                            timeout_graceful_shutdown=grace)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    # not the main thread, so uvicorn leaves the test run's signal handlers alone
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"mock-server:{port}", daemon=True)
    thread.start()
    running = SandboxServer(f"http://127.0.0.1:{port}", app=app, admin_token=settings.admin_token)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not (server.started and running.healthy()):
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            pytest.fail("the in-process sandbox did not start (see the captured log)",
                        pytrace=False)
        time.sleep(0.01)
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=grace + 5)


def connect(url: str, admin_token: str | None = None,
            timeout: float | None = None) -> SandboxServer:
    """A sandbox running elsewhere (a service container, `mock-server serve &`), once its health
    check answers; for a `sandbox_server` fixture of your own (see the README's CI section)."""
    running = SandboxServer(url, admin_token=admin_token)
    timeout = STARTUP_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while not running.healthy():
        if time.monotonic() > deadline:
            pytest.fail(f"no sandbox answers at {running.url}/__admin/health "
                        f"within {timeout:.0f}s", pytrace=False)
        time.sleep(0.1)
    return running


@pytest.fixture(scope="session")
def sandbox_settings(pytestconfig: pytest.Config) -> Settings:
    """The in-process sandbox's settings; override this fixture for more (strict=True, ...)."""
    from mock_server.settings import Settings

    here = pytestconfig.invocation_params.dir
    scenarios = tuple(str(here / path)
                      for path in pytestconfig.getoption("sandbox_scenario") or ())
    seed = pytestconfig.getoption("sandbox_seed")
    return Settings(host="127.0.0.1", port=0, scenarios=scenarios,
                    seed=0 if seed is None else seed)


@pytest.fixture(scope="session")
def sandbox_server(pytestconfig: pytest.Config, sandbox_settings: Settings
                   ) -> Iterator[SandboxServer]:
    """The sandbox of this test run. Under pytest-xdist every worker runs its own."""
    url = pytestconfig.getoption("sandbox_url") or os.environ.get(URL_ENV)
    if url:
        yield connect(url, os.environ.get(ADMIN_TOKEN_ENV))
    else:
        yield from _in_process(sandbox_settings)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, sandbox_server: SandboxServer
            ) -> Iterator[SandboxSession]:
    """This test's own sandbox session, fresh from the startup world; nothing another test
    does (in this process, another xdist worker, or on a shared server) is visible in it."""
    session = sandbox_server.session(session_name(request.node.nodeid))
    if sandbox_server.app is None:
        # a shared server may hold this name from an earlier run
        session.reset()
    folder = Path(str(request.node.path)).parent
    for marker in reversed(list(request.node.iter_markers("sandbox_scenario"))):
        for document in marker.args:
            session.load_scenario(_relative_to(folder, document))
    request.node.stash[_SESSION_KEY] = session
    yield session
    if sandbox_server.app is not None:
        # an in-process server forgets the session (a long run keeps no dead worlds in memory);
        # a rerun of this test starts again from the startup world
        sandbox_server.app.world.discard(session.name)


_SESSION_KEY = pytest.StashKey[SandboxSession]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    session = item.stash.get(_SESSION_KEY, None)
    if session is not None and report.failed and report.when == "call":
        # what the client under test sent, next to the assertion that failed
        report.sections.append((f"sandbox requests ({session.name}, oldest first)",
                                _journal_text(session)))


def _journal_text(session: SandboxSession, limit: int = 50) -> str:
    try:
        entries = session.requests(limit=limit)
    except (OSError, SandboxError) as err:
        return f"(journal unavailable: {err})"
    lines = []
    for entry in reversed(entries):
        body = " ".join(str(entry.get("responseBody", "")).split())
        lines.append(f"{entry.get('method')} {entry.get('path')} -> {entry.get('status')} "
                     f"{body[:200]}")
    return "\n".join(lines) or "(no requests reached the sandbox)"
