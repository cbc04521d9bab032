"""The shopper's page for Optty orders, `/__portal/optty/<bnplProvider>/<orderToken>`: plain
HTML standing in for the provider's own page (reference/optty-lifecycle.md, Decision 1).

Opening it moves an INITIATED order to PENDING; each button POSTs its outcome back and is
answered 303 to the merchant's URL in Optty's format (hash, reference, status,
providerReference). The session is in the path (`/sessions/<s>/__portal/...`): a browser sends
no X-Sandbox-Session header."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from mock_server.core.http import Answer, Context, Handler, Problem, answer
from mock_server.core.openapi import Spec
from mock_server.optty.lifecycle import (
    OUTCOMES,
    PORTAL_PREFIX,
    OrderLifecycle,
    OutcomeRefused,
    merchant_redirect,
)
from mock_server.optty.models import FINAL_STATUSES, PROVIDER, OpttyState, Order

if TYPE_CHECKING:
    from mock_server.optty.routes import OpttyApp

HTML = b"text/html; charset=utf-8"
# the buttons the reference lists, in its order: (label, status sent back, element id)
BUTTONS = (("Approve", "SUCCESSFUL", "approve"), ("Decline", "DECLINED", "decline"),
           ("Cancel", "CANCELLED", "cancel"), ("Fail", "ERROR", "fail"),
           ("Leave pending", "PENDING", "pending"))
MAX_FORM_FIELDS = 8

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Optty shopper page (sandbox)", "version": "1"},
    "paths": {
        PORTAL_PREFIX + "/{bnplProvider}/{orderToken}": {
            "get": {"operationId": "opttyPortalPage",
                    "responses": {"200": {"description": "the page"}}},
            "post": {"operationId": "opttyPortalOutcome",
                     "responses": {"303": {"description": "back to the merchant"}}},
        },
    },
}


def _page(title: str, body: str, status: int = 200) -> Answer:
    text = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # no icon to fetch: a browser would otherwise ask the sandbox for /favicon.ico
        "<link rel=\"icon\" href=\"data:,\">"
        "<style>body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{text-align:left;padding:.2em 1em .2em 0}"
        "button{margin:.3em .3em 0 0;padding:.5em 1em}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>\n")
    return answer(text.encode("utf-8"), status, HTML, (b"cache-control", b"no-store"))


def _details(order: Order, merchant_name: str) -> str:
    rows = (("Merchant", merchant_name), ("Order", order.reference),
            ("Provider", order.provider),
            ("Amount", f"{order.currency} {order.total:.2f}"), ("Status", order.status))
    cells = "".join(f"<tr><th>{escape(k)}</th><td id=\"{escape(k.lower())}\">{escape(v)}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


class OpttyPortal:
    """A provider app of its own (journaled as `portal`; fault rules never match it)."""

    name = "portal"

    def __init__(self, optty: OpttyApp) -> None:
        self.spec = Spec(self.name, _DOCUMENT)
        self.lifecycle: OrderLifecycle = optty.lifecycle
        self.handlers: dict[str, Handler] = {"opttyPortalPage": self.page,
                                             "opttyPortalOutcome": self.submit}

    def owns(self, path: str) -> bool:
        return path == PORTAL_PREFIX or path.startswith(PORTAL_PREFIX + "/")

    def _order(self, ctx: Context) -> Order | None:
        return self.lifecycle.by_token(ctx.session, ctx.params["bnplProvider"],
                                       ctx.params["orderToken"])

    def _merchant_name(self, ctx: Context, order: Order) -> str:
        state: OpttyState = ctx.session.state(PROVIDER)
        return state.merchants[order.merchant_id].merchant_id

    async def page(self, ctx: Context) -> Response:
        order = self._order(ctx)
        if order is None:
            return _not_found()
        self.lifecycle.open_page(ctx.session, order)
        details = _details(order, self._merchant_name(ctx, order))
        if order.status in FINAL_STATUSES:
            return _page(f"Order {order.status.lower()}",
                         details + self._back_link(ctx, order))
        buttons = "".join(
            f"<button type=\"submit\" name=\"status\" value=\"{value}\" id=\"{ident}\">"
            f"{label}</button>" for label, value, ident in BUTTONS)
        form = f"<form method=\"post\">{buttons}</form>"
        return _page(f"Pay with {order.provider}", details + form)

    def _back_link(self, ctx: Context, order: Order) -> str:
        state: OpttyState = ctx.session.state(PROVIDER)
        target = merchant_redirect(state.merchants[order.merchant_id], order, order.status)
        if target is None:
            return "<p>No redirect URL is known for this merchant.</p>"
        return f"<p><a id=\"back\" href=\"{escape(target)}\">Back to the shop</a></p>"

    async def submit(self, ctx: Context) -> Response:
        order = self._order(ctx)
        if order is None:
            return _not_found()
        try:
            fields = dict(parse_qsl(ctx.body.decode("utf-8", "replace"),
                                    max_num_fields=MAX_FORM_FIELDS))
        except ValueError:
            fields = {}
        status = fields.get("status", "")
        if status not in OUTCOMES:
            return _page("Bad request", f"<p>status must be one of "
                                        f"{escape(', '.join(OUTCOMES))}.</p>", 400)
        try:
            result = self.lifecycle.outcome(ctx.session, order, status)
        except OutcomeRefused as refused:
            return _page(f"Order {refused.status.lower()}",
                         f"<p>This order is already {escape(refused.status)}; its outcome "
                         "cannot change.</p>" + _details(order, self._merchant_name(ctx, order))
                         + self._back_link(ctx, order), 409)
        if result.redirect_url is not None:
            return Answer(b"", 303, [(b"location", result.redirect_url.encode("latin-1",
                                                                               "replace")),
                                     (b"cache-control", b"no-store"),
                                     (b"content-length", b"0")])
        for warning in result.warnings:
            ctx.warn(warning)
        return _page(f"Order {status.lower()}",
                     _details(order, self._merchant_name(ctx, order))
                     + "<p>No redirect URL is known for this merchant: the shopper stays here."
                       "</p>")

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        if problem.kind == Problem.METHOD_NOT_ALLOWED:
            response = _page("Method not allowed", "<p>Use GET or POST.</p>", 405)
            response.raw_headers.insert(0, (b"allow", ", ".join(problem.allow).encode()))
            return response
        if problem.kind == Problem.PAYLOAD_TOO_LARGE:
            return _page("Payload too large", "<p>The form is too large.</p>", 413)
        if problem.kind == Problem.BAD_SESSION:
            return _page("Bad request", f"<p>{escape(problem.detail)}</p>", 400)
        if problem.kind == Problem.ROUTE_NOT_FOUND:
            return _not_found()
        return _page("Internal error", "<p>The sandbox failed; see its log.</p>", 500)

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return _page("Error", f"<p>{escape(code)}</p>", status or 500)


def _not_found() -> Answer:
    return _page("Not found", "<p>No such order: the link is wrong, or the order belongs to "
                              "another session.</p>", 404)
