"""Optty's surface: operationId -> handler, Express's routing rules, NestJS's shape for problems."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from mock_server.core.http import Context, Handler, Problem, crashed
from mock_server.core.openapi import RouteMatch, Spec
from mock_server.optty import errors
from mock_server.optty.handlers import OpttyHandlers, error, read_body
from mock_server.optty.models import OpttyModel
from mock_server.optty.webhooks import WebhookDispatcher
from mock_server.settings import Settings

if TYPE_CHECKING:
    from mock_server.core.host import Host

_PARAM = re.compile(r"\{([^}/]+)\}")
_SESSION_PREFIX = "/sessions/"


class ExpressRoutes(Spec):
    """The spec's router with Express's defaults on top: paths match case-insensitively and
    with or without one trailing slash (`/Orders/ORD-1/refund/` is `/orders/ORD-1/refund`), as
    NestJS's Express router does (path-to-regexp with sensitive=false, strict=false)."""

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec.provider, spec.document)
        self._loose: list[tuple[re.Pattern[str], str]] = []
        for template in dict.fromkeys(op.template for op in self.operations.values()):
            pattern, last = "", 0
            for found in _PARAM.finditer(template):
                pattern += re.escape(template[last:found.start()]) + f"(?P<{found.group(1)}>[^/]+?)"
                last = found.end()
            pattern += re.escape(template[last:])
            self._loose.append((re.compile(f"^{pattern}/?$", re.IGNORECASE), template))

    def match(self, path: str) -> RouteMatch | None:
        found = super().match(path)
        if found is not None:
            return found
        for pattern, template in self._loose:
            loose = pattern.match(path)
            if loose is not None:
                params: dict[str, str] = loose.groupdict()
                canonical = _PARAM.sub(_filler(params), template)
                return super().match(canonical)
        return None


def _filler(params: dict[str, str]) -> Callable[[re.Match[str]], str]:
    return lambda found: params[found.group(1)]


def original_url(ctx: Context) -> str:
    """Express's req.originalUrl: the path as the client sent it (still percent-encoded), with
    its query string; a /sessions/<name> prefix is the sandbox's, not part of the API's URL."""
    raw = ctx.state.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else ctx.path
    if path.startswith(_SESSION_PREFIX) and not ctx.path.startswith(_SESSION_PREFIX):
        path = "/" + path[len(_SESSION_PREFIX):].partition("/")[2]
    # as sent (the journal's copy has its secrets taken out)
    query = ctx.query_string.decode("latin-1")
    return f"{path}?{query}" if query else path


class OpttyApp:
    name = "optty"

    def __init__(self, spec: Spec, settings: Settings) -> None:
        self.spec = ExpressRoutes(spec)
        self.model = OpttyModel(settings.jwt_secret)
        self.dispatcher = WebhookDispatcher()
        handlers = OpttyHandlers(self.model, self.dispatcher)
        self.handlers: dict[str, Handler] = {
            "issueToken": handlers.issue_token,
            "RefundsController_refundOrder": handlers.refund_order,
            "getOrder": handlers.get_order,
            "createOrder": handlers.create_order,
            "captureOrder": handlers.capture_order,
            "voidOrder": handlers.void_order,
            "createCustomerSession": handlers.create_customer_session,
        }
        self.lifecycle = handlers.lifecycle
        self.lifecycle.wake = self.dispatcher.poke
        self.dispatcher.on_timers = self.lifecycle.fire_timers
        missing = set(spec.operations) ^ set(self.handlers)
        if missing:
            raise RuntimeError(f"optty spec and handlers disagree on {sorted(missing)}")

    def attach(self, app: Host) -> None:
        """REFUND_CALLBACK deliveries run for as long as the server does."""
        self.dispatcher.attach(app.world)
        app.startup_hooks.append(self.dispatcher.start)

        async def deliver_then_stop() -> None:
            # a graceful stop first delivers what is due, within the grace period; the app
            # then reports whatever is still pending ("shutdown: not delivered: ...")
            await self.dispatcher.drain(app.shutdown_remaining())
            await self.dispatcher.stop()

        app.shutdown_hooks.append(deliver_then_stop)

    def pending_callbacks(self) -> list[dict[str, Any]]:
        """Asynchronous refunds not yet final and callbacks not yet delivered, every session."""
        return self.dispatcher.pending_callbacks()

    async def drain(self, timeout: float) -> list[dict[str, Any]]:
        """Delivers what is due and waits up to `timeout` s for attempts in flight; returns
        what is still pending (for a graceful shutdown to report)."""
        return await self.dispatcher.drain(timeout)

    def owns(self, path: str) -> bool:
        return True  # Optty's API sits at the root of its host: every other path is NestJS's

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        if problem.kind in (Problem.ROUTE_NOT_FOUND, Problem.METHOD_NOT_ALLOWED):
            # The body parsers are middleware ahead of the router: a malformed JSON body is a
            # 400 even where no route matches. Then NestJS's not-found handler answers an
            # unmatched route and a wrong method alike (Express never answers 405).
            try:
                read_body(ctx)
            except errors.OpttyError as err:
                return error(ctx, err)
            return error(ctx, errors.RouteNotFound(ctx.method, original_url(ctx)))
        if problem.kind == Problem.PAYLOAD_TOO_LARGE:
            return error(ctx, errors.PayloadTooLarge())
        if problem.kind == Problem.HEADERS_TOO_LARGE:
            return error(ctx, errors.HeadersTooLarge())
        if problem.kind == Problem.BAD_SESSION:
            return error(ctx, errors.BadRequest(problem.detail))
        return error(ctx, errors.InternalError())

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return error(ctx, errors.error_for_code(code, status))

    def handle_error(self, ctx: Context, exc: Exception) -> Response:
        """Optty's one error handler (NestJS's exception filter): an OpttyError raised by a
        handler in NestJS's shape, anything else its 500 "Internal server error"."""
        if isinstance(exc, errors.OpttyError):
            return error(ctx, exc)
        return crashed(self, ctx, exc)
