"""The ASGI application: every surface on one port; a request's stages are core.pipeline's."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from pathlib import Path
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mock_server.core import pipeline
from mock_server.core.clock import TimeSource, real_time
from mock_server.core.http import Context, Problem, ProviderApp, RequestHeaders
from mock_server.core.host import ShutdownHook
from mock_server.core.openapi import Spec
from mock_server.core.pipeline import (  # noqa: F401 - the app's names for them
    ADMIN_READS,
    SESSION_HEADER,
    SESSION_TOKEN_HEADER,
    WARNING_HEADER,
    BodyTooLarge,
    writes,
)
from mock_server.core.providers import Provider, Registry, default_registry
from mock_server.core.scenarios import Scenario, load_scenario_paths
from mock_server.core.stores import Store, refuse_serving
from mock_server.core.world import DEFAULT_SESSION, ProviderModel, World
from mock_server.logs import log_access
from mock_server.resources import default_scenario_path, spec_path
from mock_server.settings import Settings

log = logging.getLogger("mock_server")
access_log = logging.getLogger("mock_server.access")


# however little of the grace period in-flight requests left, each hook gets this much to report
MIN_HOOK_SECONDS = 1.0


def unavailable(provider: ProviderApp, ctx: Context, reason: str) -> Response:
    """A 503 in the provider's own shape, the reason in X-Sandbox-Warning."""
    if provider.name == "admin":
        from mock_server.admin.routes import AdminError, error_response
        response = error_response(AdminError(503, "service_unavailable", reason))
    else:
        response = provider.error_response(ctx, "service_unavailable", 503)
    response.headers[WARNING_HEADER] = reason
    return response


class SandboxApp:
    """One port for every surface: admin, Afterpay and Optty, each matched by its spec."""

    def __init__(self, world: World, providers: Sequence[ProviderApp]) -> None:
        self.world = world
        self.settings = world.settings
        self.providers = list(providers)
        # the last provider answers paths nobody owns (Optty's NestJS "Cannot GET /x")
        self.fallback: ProviderApp | None = self.providers[-1] if self.providers else None
        # the providers it was built from (create_app sets the one it was given)
        self.registry: Registry = default_registry()
        # the providers' admin operations by operationId (core.providers.Built.admin)
        self.admin_operations: dict[str, Any] = {}
        self.started_at = time.monotonic()
        self.startup_hooks: list[Callable[[], Awaitable[None]]] = []
        self.shutdown_hooks: list[ShutdownHook] = []
        # time.monotonic() by which shutdown must be done; the server sets it when a signal
        # arrives, so the hooks get what in-flight requests left of the grace period
        self.shutdown_deadline: float | None = None
        # HTTP requests begun so far: tells an idle server from a busy one (core.gcpolicy)
        self.requests_started = 0
        self.metrics = world.metrics
        # a request's stages, in order (core.pipeline)
        self.pipeline = pipeline.Pipeline(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests_started += 1
            await self.pipeline(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._run_startup_hooks()
                except Exception as exc:  # noqa: BLE001 - reported to the server, not raised
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._run_shutdown_hooks()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @contextlib.asynccontextmanager
    async def lifespan(self, host: object = None) -> AsyncIterator[None]:
        """The sandbox's start-up and shutdown for a host that mounts it (an ASGI server sends
        lifespan events to the host only):
        `Starlette(routes=[Mount("/sandbox", app=sandbox)], lifespan=sandbox.lifespan)`."""
        await self._run_startup_hooks()
        try:
            yield
        finally:
            await self._run_shutdown_hooks()

    async def _run_startup_hooks(self) -> None:
        for hook in self.startup_hooks:
            await hook()

    def shutdown_remaining(self) -> float:
        """Seconds left of the shutdown grace period (a hook's budget, e.g. to drain callbacks)."""
        if self.shutdown_deadline is None:
            self.shutdown_deadline = (time.monotonic()
                                      + self.settings.shutdown_timeout.total_seconds())
        return max(self.shutdown_deadline - time.monotonic(), MIN_HOOK_SECONDS)

    def pending_callbacks(self) -> list[str]:
        """What providers still have to send (a provider may list it with pending_callbacks())."""
        found: list[str] = []
        for provider in self.providers:
            pending = getattr(provider, "pending_callbacks", None)
            if callable(pending):
                try:
                    found.extend(str(item) for item in pending())
                except Exception:
                    log.exception("shutdown: %s could not list its pending callbacks",
                                  provider.name)
        return found

    async def _run_shutdown_hooks(self) -> None:
        # Every hook runs, whatever the one before did; what is left undone is logged, so a
        # pending callback is either delivered or reported, never silently dropped.
        waiting = self.pending_callbacks()
        if waiting:
            log.info("shutdown: %d callback(s) pending", len(waiting))
        reported: set[str] = set()
        for hook in self.shutdown_hooks:
            name = getattr(hook, "__qualname__", None) or repr(hook)
            budget = self.shutdown_remaining()
            try:
                left = await asyncio.wait_for(hook(), budget)
            except TimeoutError:
                log.warning("shutdown: %s did not finish within %.1fs; stopped it", name, budget)
                continue
            except Exception:
                log.exception("shutdown: %s failed", name)
                continue
            for item in [left] if isinstance(left, str) else list(left or ()):
                reported.add(str(item))
                log.warning("shutdown: not finished: %s", item)
        for item in self.pending_callbacks():
            if item not in reported:
                log.warning("shutdown: not delivered: %s", item)
        # last: the hooks above may journal too (callback attempts). With a shared store, the
        # journal entries finished and not written yet are written now (each session's journal
        # writes them once per turn of the loop; the loop may stop before its next turn)
        flush_journals = getattr(self.world.store, "flush_journals", None)
        if flush_journals is not None:
            flush_journals()
        if self.world.store is not None:
            # locks kept for a next request that will not come: other processes need not wait
            self.world.give_back_kept()

    def route(self, path: str) -> tuple[ProviderApp, Any]:
        for provider in self.providers:
            found = provider.spec.match(path)
            if found is not None:
                return provider, found
        for provider in self.providers:
            if provider.owns(path):
                return provider, None
        assert self.fallback is not None
        return self.fallback, None

    def refuse_head(self, method: str, path: str, detail: str,
                    raw_path: bytes | None = None) -> Any:
        """The 431 for a request head over the limits, in the shape of the provider owning
        `path`: nothing journaled, no session looked up or made (the default one lends its id
        source to the error body)."""
        provider, _found = self.route(path or "/")
        # (with a shared store, as this process last read it: nothing of it is changed)
        lender = (self.world.acquire(DEFAULT_SESSION)[0] if self.world.store is not None
                  else self.world.session(DEFAULT_SESSION))
        ctx = Context(self.world, self.settings, lender, method, path or "/",
                      RequestHeaders([]), b"", b"")
        ctx.state["raw_path"] = raw_path
        response = provider.problem_response(ctx, Problem(Problem.HEADERS_TOO_LARGE,
                                                          detail=detail))
        if access_log.isEnabledFor(logging.INFO):
            log_access({"session": None, "provider": provider.name, "operation": None,
                        "method": method, "path": path[:256], "status": response.status_code,
                        "duration_ms": 0.0, "fault": None})
        return response

    def unavailable(self, provider: ProviderApp, ctx: Context, reason: str) -> Response:
        return unavailable(provider, ctx, reason)


@functools.cache
def _spec(name: str, where: str | None = None) -> Spec:
    # Parsed specs never change after loading, so every app built in one process (the test
    # suite builds hundreds) shares them. `where`: a spec file outside openapi/.
    return Spec.load(name, Path(where) if where is not None else spec_path(name))


def _provider_spec(provider: Provider) -> Spec:
    spec_name = provider.spec_name
    if spec_name.endswith((".yaml", ".yml", ".json")):
        return _spec(provider.name, spec_name)
    return _spec(spec_name)


def load_startup(settings: Settings, error_codes: dict[str, frozenset[str]], *,
                 registry: Registry | None = None) -> list[Scenario]:
    paths = list(settings.scenarios) or [str(default_scenario_path())]
    return load_scenario_paths(paths, error_codes=error_codes, registry=registry)


def create_app(settings: Settings | None = None, *, time_source: TimeSource = real_time,
               scenarios: Sequence[Scenario] | None = None,
               providers: Registry | None = None,
               store: Store | None = None) -> SandboxApp:
    """Builds the whole sandbox: specs loaded once, startup world parsed, default session seeded.

    `providers`: the registry to build from (default: mock_server.providers.registry()).
    `store` holds the session state (core.stores.open_store); None or `memory` is this process
    only; `sqlite:` and `redis://` are shared by every process serving from them."""
    if store is not None:
        refuse_serving(store.url)
        if not store.shared:
            store = None  # memory: this process's own objects, as without a store
    from mock_server.admin.routes import AdminApp
    from mock_server.core.portal import PortalApp

    settings = settings or Settings()
    registry = providers if providers is not None else default_registry()
    built = [provider.build(_provider_spec(provider), settings)
             for provider in registry.providers]
    models: list[ProviderModel] = [part.model for part in built]
    error_codes = {m.name: m.error_codes for m in models}
    startup = (list(scenarios) if scenarios is not None
               else load_startup(settings, error_codes, registry=registry))
    world = World(settings, models, startup, time_source=time_source, store=store)
    app = SandboxApp(world, [])
    app.registry = registry
    app.admin_operations = {operation_id: handler for part in built
                            for operation_id, handler in part.admin.items()}
    admin = AdminApp(_spec("admin"), app)
    # the shopper's pages last, all in one portal app: every API request is routed without
    # trying their paths first
    pages = [pageset for part in built for pageset in part.pages]
    app.providers = [admin, *(part.surface for part in built),
                     *([PortalApp(pages)] if pages else [])]
    app.fallback = next((part.surface for part in built if part.surface.name == registry.fallback),
                        admin)
    for provider in app.providers:
        attach = getattr(provider, "attach", None)
        if attach is not None:
            attach(app)
    if settings.session_idle_ttl is not None:
        _expire_idle_sessions(app)
    if settings.watch and scenarios is None:
        from mock_server.core.watch import install
        install(app, list(settings.scenarios) or [str(default_scenario_path())])
    return app


def _expire_idle_sessions(app: SandboxApp) -> None:
    """While the app runs, sessions idle for longer than --session-idle-ttl are forgotten."""
    ttl = app.settings.session_idle_ttl
    assert ttl is not None
    interval = min(max(ttl.total_seconds() / 4, 0.5), 60.0)
    task: asyncio.Task[None] | None = None

    async def sweep() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                app.world.expire_idle()
            except Exception:  # noqa: BLE001 - the sweeper must outlive one bad round
                log.exception("expiring idle sessions failed")

    async def start() -> None:
        nonlocal task
        task = asyncio.get_running_loop().create_task(sweep())

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.startup_hooks.append(start)
    app.shutdown_hooks.append(stop)
