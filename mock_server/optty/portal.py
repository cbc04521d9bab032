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

from mock_server.core.http import Context, Handler
from mock_server.core.portal import not_found, redirect
from mock_server.core.portal import page as _page
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

# the buttons the reference lists, in its order: (label, status sent back, element id)
BUTTONS = (("Approve", "SUCCESSFUL", "approve"), ("Decline", "DECLINED", "decline"),
           ("Cancel", "CANCELLED", "cancel"), ("Fail", "ERROR", "fail"),
           ("Leave pending", "PENDING", "pending"))
MAX_FORM_FIELDS = 8

_PATHS: dict[str, Any] = {
    PORTAL_PREFIX + "/{bnplProvider}/{orderToken}": {
        "get": {"operationId": "opttyPortalPage",
                "responses": {"200": {"description": "the page"}}},
        "post": {"operationId": "opttyPortalOutcome",
                 "responses": {"303": {"description": "back to the merchant"}}},
    },
}


def _details(order: Order, merchant_name: str) -> str:
    rows = (("Merchant", merchant_name), ("Order", order.reference),
            ("Provider", order.provider),
            ("Amount", f"{order.currency} {order.total:.2f}"), ("Status", order.status))
    cells = "".join(f"<tr><th>{escape(k)}</th><td id=\"{escape(k.lower())}\">{escape(v)}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


class OpttyPortal:
    """Optty's page set of the shopper's pages (core.portal.PortalApp serves it)."""

    paths = _PATHS

    def __init__(self, optty: OpttyApp) -> None:
        self.lifecycle: OrderLifecycle = optty.lifecycle
        self.handlers: dict[str, Handler] = {"opttyPortalPage": self.page,
                                             "opttyPortalOutcome": self.submit}

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
            return redirect(result.redirect_url)
        for warning in result.warnings:
            ctx.warn(warning)
        return _page(f"Order {status.lower()}",
                     _details(order, self._merchant_name(ctx, order))
                     + "<p>No redirect URL is known for this merchant: the shopper stays here."
                       "</p>")


def _not_found() -> Response:
    return not_found("No such order: the link is wrong, or the order belongs to another "
                     "session.")
