"""The `sandbox` pytest fixture: one sandbox server per test run, one sandbox session per test."""

# pytest imports this module in every run of every project that has the package installed
# (the pytest11 entry point), so only the standard library and pytest are imported here; the
# server (uvicorn, Starlette, the specs) is loaded when a test first asks for the fixture.

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mock_server.app import SandboxApp
    from mock_server.client import AsyncSandboxClient, JournalEntry, SandboxClient
    from mock_server.core.providers import Registry
    from mock_server.settings import Settings

URL_ENV = "MOCK_SERVER_URL"
ADMIN_TOKEN_ENV = "MOCK_SERVER_ADMIN_TOKEN"
STARTUP_TIMEOUT = 15.0
# --sandbox-url: this many refused connections in a row (0.1 s apart) and nothing listens there
REFUSED_TRIES = 10
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


def __getattr__(name: str) -> Any:
    # SandboxError lives with the client (httpx), imported when a test first names it
    if name == "SandboxError":
        from mock_server.client import SandboxError
        return SandboxError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SandboxServer:
    """The sandbox the tests talk to: started in-process on a free loopback port, or found at
    --sandbox-url. `app` is the in-process SandboxApp (None for an external server); `client`
    its admin client (mock_server.client.SandboxClient, session `default`)."""

    def __init__(self, url: str, *, app: SandboxApp | None = None,
                 admin_token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.app = app
        self.admin_token = admin_token
        self._client: SandboxClient | None = None

    @property
    def client(self) -> SandboxClient:
        if self._client is None:
            from mock_server.client import SandboxClient
            self._client = SandboxClient(self.url, admin_token=self.admin_token or "")
        return self._client

    def healthy(self) -> bool:
        return self.client.healthy()

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The providers it serves: the in-process app's registry, else the built-in ones."""
        if self.app is not None:
            return self.app.registry.names
        from mock_server.core.providers import default_registry
        return default_registry().names

    def session(self, name: str) -> SandboxSession:
        return SandboxSession(self, name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class SandboxSession:
    """One test's own world on the sandbox: base URLs for the client under test, and the admin
    calls a test needs (scenarios, journal, clock, reset), all scoped to this session. A thin
    layer over `client` (mock_server.client.SandboxClient): the same calls, answered as the
    JSON the admin API gives; `client` gives them typed."""

    def __init__(self, server: SandboxServer, name: str) -> None:
        self.server = server
        self.name = name
        self.base_url = f"{server.url}/sessions/{name}"
        # every provider answers on the one port; each keeps its real paths under the prefix
        self.afterpay_url = self.base_url
        self.optty_url = self.base_url
        self.optty_token_url = f"{self.base_url}/token"
        # provider name -> the base URL its client under test uses (the server's registry)
        self.urls: dict[str, str] = {name: self.base_url for name in server.provider_names}
        # for a client that can set a header but not change its base URL
        self.headers = {"X-Sandbox-Session": name}
        self.client = server.client.for_session(name)

    def __repr__(self) -> str:
        return f"<SandboxSession {self.name} at {self.base_url}>"

    def async_client(self) -> AsyncSandboxClient:
        """This session's AsyncSandboxClient (use it as `async with`, in the test's loop)."""
        from mock_server.client import AsyncSandboxClient
        return AsyncSandboxClient(self.server.url, session=self.name,
                                  admin_token=self.server.admin_token or "")

    # -- scenarios --------------------------------------------------------------------------

    def load_scenario(self, scenario: Mapping[str, Any] | str | bytes | os.PathLike[str]
                      ) -> dict[str, Any]:
        """Seeds this session and adds fault rules: a dict (the document), YAML/JSON text, or a
        path to a .yaml/.yml/.json file. A bad document raises SandboxError listing every
        `source:line: problem` (for a dict, the key path), and nothing of it is applied."""
        __tracebackhide__ = True
        return self.client.load_scenario(scenario).raw

    def scenarios(self) -> list[dict[str, Any]]:
        return [s.raw for s in self.client.scenarios()]

    def unload_scenario(self, name: str) -> dict[str, Any]:
        """Removes that scenario's fault rules (what it seeded stays)."""
        return self.client.unload_scenario(name).raw

    # -- journal ----------------------------------------------------------------------------

    def requests(self, *, provider: str | None = None, status: int | None = None,
                 operation: str | None = None, limit: int = _JOURNAL_MAX
                 ) -> list[dict[str, Any]]:
        """What reached this session, newest first (secrets redacted), up to `limit` entries:
        the journal's pages followed one after another."""
        result: list[dict[str, Any]] = []
        for entry in self.client.iter_requests(provider=provider, status=status,
                                               operation=operation,
                                               page_size=min(limit, _PAGE_MAX)):
            result.append(entry.raw)
            if len(result) >= limit:
                break
        return result

    def clear_requests(self) -> int:
        return self.client.clear_requests()

    def assert_requests(self, **criteria: Any) -> list[JournalEntry]:
        """client.assert_requests: count, at_least, provider, operation, method, path, status,
        headers, body (partial), query."""
        __tracebackhide__ = True
        return self.client.assert_requests(**criteria)

    # -- clock ------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.client.now()

    def freeze(self, now: datetime | str) -> datetime:
        """Stops this session's clock at `now` (a datetime, or ISO 8601; no offset means UTC)."""
        return self.client.freeze(now).now

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Moves this session's clock forward: advance(days=121), advance(timedelta(...))."""
        return self.client.advance(delta, **units).now

    def reset_clock(self) -> datetime:
        """Back to real time."""
        return self.client.reset_clock().now

    # -- everything -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the startup world: seed re-applied; refunds, faults, journal, clock cleared."""
        self.client.reset()


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


def session_name(nodeid: str) -> str:
    """A sandbox session name for a test: readable, at most 64 characters, and the same for the
    same test in every run (the session's ids are seeded from its name)."""
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:10]
    slug = _SESSION_UNSAFE.sub("-", nodeid.rsplit("::", 1)[-1]).strip("-.")
    return f"{slug[:64 - len(digest) - 1]}-{digest}" if slug else digest


def _in_process(settings: Settings, providers: Registry | None = None
                ) -> Iterator[SandboxServer]:
    from mock_server.core.scenarios import ScenarioError
    from mock_server.testing import SandboxStartError, ThreadedSandbox

    try:
        threaded = ThreadedSandbox(settings, providers=providers)
    except ScenarioError as err:
        pytest.fail("the sandbox's startup world is invalid:\n" + "\n".join(err.problems),
                    pytrace=False)
    try:
        running = threaded.start(STARTUP_TIMEOUT)
    except SandboxStartError:
        pytest.fail("the in-process sandbox did not start (see the captured log)", pytrace=False)
    server = SandboxServer(running.url, app=running.app, admin_token=settings.admin_token)
    try:
        yield server
    finally:
        server.close()
        threaded.stop()


def connect(url: str, admin_token: str | None = None,
            timeout: float | None = None) -> SandboxServer:
    """A sandbox running elsewhere (a service container, `mock-server serve &`), once its health
    check answers; for a `sandbox_server` fixture of your own (see the README's CI section).
    Gives up at once when nothing listens there (after REFUSED_TRIES refusals in a row), and
    names the setting to fix when the sandbox wants an admin token."""
    from mock_server.client import SandboxError, SandboxUnreachable

    running = SandboxServer(url, admin_token=admin_token)
    timeout = STARTUP_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    refused = 0
    while True:
        try:
            if running.client.health().status == "ok":
                break
            refused = 0
        except SandboxUnreachable as err:
            refused = refused + 1 if "refused" in err.reason.lower() else 0
            if refused >= REFUSED_TRIES:
                running.close()
                pytest.fail(f"no sandbox answers at {running.url}/__admin/health: connection "
                            f"refused (is it running? --sandbox-url / ${URL_ENV})", pytrace=False)
        except SandboxError:
            refused = 0
        if time.monotonic() > deadline:
            running.close()
            pytest.fail(f"no sandbox answers at {running.url}/__admin/health "
                        f"within {timeout:.0f}s (--sandbox-url / ${URL_ENV})", pytrace=False)
        time.sleep(0.1)
    try:
        running.client.clock()  # the first call that needs the admin token, if one is set
    except SandboxError as err:
        running.close()
        if err.status == 401:
            pytest.fail(f"the sandbox at {running.url} runs with --admin-token: set "
                        f"${ADMIN_TOKEN_ENV} to the same token"
                        + (" (the one set is refused)" if admin_token else ""), pytrace=False)
        pytest.fail(f"the sandbox at {running.url} refused an admin call: {err}", pytrace=False)
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
def sandbox_providers() -> Registry | None:
    """The in-process sandbox's providers: None for the built-in ones; override this fixture
    to return a mock_server.core.providers.Registry with providers of your own."""
    return None


@pytest.fixture(scope="session")
def sandbox_server(pytestconfig: pytest.Config, sandbox_settings: Settings,
                   sandbox_providers: Registry | None) -> Iterator[SandboxServer]:
    """The sandbox of this test run. Under pytest-xdist every worker runs its own."""
    url = pytestconfig.getoption("sandbox_url") or os.environ.get(URL_ENV)
    if url:
        yield connect(url, os.environ.get(ADMIN_TOKEN_ENV))
    else:
        yield from _in_process(sandbox_settings, sandbox_providers)


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


@pytest.fixture
async def async_sandbox(sandbox: SandboxSession) -> AsyncIterator[AsyncSandboxClient]:
    """The `sandbox` session's AsyncSandboxClient, for async tests (run by anyio's pytest
    plugin, which comes with httpx, or by pytest-asyncio)."""
    async with sandbox.async_client() as client:
        yield client


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
    from mock_server.client import SandboxError

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
