"""The request context handed to handlers, and what a provider's HTTP side must provide."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response

from mock_server.core import clock
from mock_server.core.openapi import Operation, Spec
from mock_server.core.world import Session, World
from mock_server.settings import Settings

if TYPE_CHECKING:
    from mock_server.core.journal import JournalEntry

log = logging.getLogger("mock_server")


class RequestHeaders(Headers):
    """Starlette's read-only Headers with a lookup that is a dict access (the first value of a
    repeated name, as Headers.get gives) instead of a scan that decodes every header. ASGI
    servers hand header names lower-cased."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        super().__init__(raw=raw)
        self._first = dict(reversed(raw))

    def get(self, key: str, default: Any = None) -> Any:
        value = self._first.get(_name(key))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        return self._first[_name(key)].decode("latin-1")

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and _name(key) in self._first


@functools.lru_cache(maxsize=256)
def _name(key: str) -> bytes:
    """A header name as ASGI has it (lower case, bytes); handlers ask for the same few names."""
    return key.lower().encode("latin-1")


@dataclass(slots=True)
class Context:
    """One request as the handlers see it: session, operation, raw body, warnings to add."""

    world: World
    settings: Settings
    session: Session
    method: str
    path: str
    headers: Headers
    query_string: bytes
    body: bytes
    operation: Operation | None = None
    params: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    entry: JournalEntry | None = None
    state: dict[str, Any] = field(default_factory=dict)
    _query: QueryParams | None = None

    @property
    def query(self) -> QueryParams:
        """The query string, parsed when a handler first asks."""
        if self._query is None:
            self._query = QueryParams(self.query_string)
        return self._query

    def warn(self, text: str) -> None:
        self.warnings.append(text)


class Answer(Response):
    """A provider's answer from bytes and header pairs that are ready: what Response would send
    for `Response(body, status, headers, media_type)` (the given headers, then content-length,
    then content-type), without rendering or rebuilding any of it."""

    def __init__(self, body: bytes, status: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


def answer(body: bytes, status: int, content_type: bytes,
           *first: tuple[bytes, bytes]) -> Answer:
    """An answer with a body (never 1xx, 204 or 304): `first` headers (lower-case names), then
    content-length and content-type, as Starlette orders them."""
    return Answer(body, status, [*first, (b"content-length", str(len(body)).encode()),
                                 (b"content-type", content_type)])


class Problem:
    """Failures found before or around a handler, rendered in the owning provider's shape."""

    ROUTE_NOT_FOUND = "route_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    BAD_SESSION = "bad_session"
    HEADERS_TOO_LARGE = "headers_too_large"  # 431; `detail` says which limit (core.limits)
    INTERNAL_ERROR = "internal_error"

    def __init__(self, kind: str, *, allow: list[str] | None = None, detail: str = "") -> None:
        self.kind = kind
        self.allow = allow or []
        self.detail = detail


Handler = Callable[[Context], Awaitable[Response]]


class ProviderApp(Protocol):
    """A provider's HTTP side. Each handler awaits `processing_time(ctx)` at the moment the
    provider processes the request (a scripted `delay` happens there)."""

    @property
    def name(self) -> str: ...

    @property
    def spec(self) -> Spec: ...

    @property
    def handlers(self) -> Mapping[str, Handler]: ...

    def owns(self, path: str) -> bool:
        """Whether an unknown path belongs to this provider (its error shape answers it)."""

    def problem_response(self, ctx: Context, problem: Problem) -> Response: ...

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        """A scripted error (fault rule `respond.error`) in this provider's shape."""

    def handle_error(self, ctx: Context, exc: Exception) -> Response:
        """The provider's one error handler: the answer to any exception raised in its
        handlers (its own error types in its error shape; anything else is a crash, answered
        by `crashed`). The request pipeline's dispatch stage calls it."""


def crashed(provider: ProviderApp, ctx: Context, exc: BaseException) -> Response:
    """A crash inside a provider, logged with its traceback, answered 500 in that provider's
    own shape."""
    log.error("handler %s crashed", ctx.operation.operation_id if ctx.operation else None,
              exc_info=exc)
    return provider.problem_response(ctx, Problem(Problem.INTERNAL_ERROR))


async def processing_time(ctx: Context, *, let_others_in: bool = False) -> None:
    """Time the provider "spends" on an operation: a scripted delay, taken while the request
    holds its idempotency key, so a concurrent repeat meets a request still in flight.

    `let_others_in`: with a store shared by processes, the request gives its session back
    for the wait (saved first), so the session's other requests, in any process, run meanwhile
    (a refund's repeat gets its 409); the request takes the session again after. Only for
    handlers that read their objects' money from the ledger after the wait (refunds)."""
    delay = ctx.state.pop("processing_delay", None)
    if delay:
        if let_others_in and ctx.world.store is not None:
            async with ctx.world.paused(ctx.session):
                await clock.wait(delay)
        else:
            await clock.wait(delay)
