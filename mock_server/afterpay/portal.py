"""Afterpay's page set of the shopper's pages (core.portal.PortalApp serves it): the sandbox's
stand-in for Afterpay's portal page, and the admin calls that do the same headless. Plain HTML,
no JavaScript; each button POSTs back and is answered 303 to the merchant's URL in Afterpay's
own format (reference afterpay-lifecycle.md, "The consumer approval step")."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from mock_server.afterpay.lifecycle import CARDS, ConsumerActionError, Lifecycle
from mock_server.core.clock import iso_millis
from mock_server.core.http import Context, Handler
from mock_server.core.journal import finish
from mock_server.core.portal import PREFIX, not_found, page, redirect

PAGE = PREFIX + "/afterpay/{country}/checkout/"
PATHS: dict[str, Any] = {
    PAGE: {"get": {"operationId": "afterpayPortalPage"}},
    PAGE + "confirm": {"post": {"operationId": "afterpayPortalConfirm"}},
    PAGE + "cancel": {"post": {"operationId": "afterpayPortalCancel"}},
}
MAX_FORM_FIELDS = 8


def _form(action: str, token: str, label: str, element_id: str, card: str | None = None
          ) -> str:
    card_field = (f'<input type="hidden" name="card" value="{card}">' if card else "")
    return (f'<form method="post" action="{action}">'
            f'<input type="hidden" name="token" value="{html.escape(token)}">{card_field}'
            f'<button type="submit" id="{element_id}">{html.escape(label)}</button></form>')


class AfterpayPortal:
    """The checkout page and its buttons (journaled as `portal`: afterpayPortalPage,
    afterpayPortalConfirm, afterpayPortalCancel), so the journal shows what the shopper did."""

    paths = PATHS

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.handlers: dict[str, Handler] = {
            "afterpayPortalPage": self.checkout_page,
            "afterpayPortalConfirm": self.confirm,
            "afterpayPortalCancel": self.cancel,
        }

    # -- pages ------------------------------------------------------------------------------

    async def checkout_page(self, ctx: Context) -> Response:
        token = ctx.query.get("token") or ""
        state = ctx.session.state("afterpay")
        checkout = state.checkouts.get(token)
        if checkout is None:
            return not_found("No Afterpay checkout has this token in this session.")
        r = checkout.request
        now = ctx.session.clock.now()
        if checkout.payment_id is not None or now >= checkout.expires:
            why = ("a payment was already made from it" if checkout.payment_id is not None
                   else f"it expired at {iso_millis(checkout.expires)}")
            return page("Checkout closed", f"<p>This checkout cannot be confirmed: {why}.</p>",
                        409)
        rows = "".join(
            f"<tr><td>{html.escape(str(item.get('name', '')))}</td>"
            f"<td>{html.escape(str(item.get('quantity', '')))}</td>"
            f"<td>{html.escape(item['price']['amount'])} "
            f"{html.escape(item['price']['currency'])}</td></tr>" for item in r.items)
        consumer = " ".join(str(r.consumer.get(k) or "") for k in ("givenNames", "surname"))
        status_line = {"pending": "Waiting for the shopper.",
                       "confirmed": f"Confirmed ({checkout.card} card).",
                       "cancelled": "Cancelled by the shopper (it can be reopened)."}
        content = (
            f'<p id="amount">Total: <strong>{r.amount:.2f} {html.escape(r.currency)}'
            f"</strong></p>"
            f'<p id="consumer">{html.escape(consumer.strip())} '
            f"&lt;{html.escape(str(r.consumer.get('email') or ''))}&gt;</p>"
            + (f'<table id="items"><tr><th>Item</th><th>Qty</th><th>Price</th></tr>{rows}'
               "</table>" if rows else "")
            + f'<p id="status">{status_line[checkout.status]}</p>'
            + _form("confirm", token, "Confirm (approved card)", "confirm-approved", "approved")
            + _form("confirm", token, "Confirm (declined card)", "confirm-declined", "declined")
            + _form("cancel", token, "Cancel", "cancel"))
        return page("Afterpay sandbox checkout", content)

    async def confirm(self, ctx: Context) -> Response:
        return self._act(ctx, "confirm")

    async def cancel(self, ctx: Context) -> Response:
        return self._act(ctx, "cancel")

    def _act(self, ctx: Context, action: str) -> Response:
        try:
            form = dict(parse_qsl(ctx.body.decode("utf-8", "replace"), keep_blank_values=True,
                                  max_num_fields=MAX_FORM_FIELDS))
        except ValueError:
            return page("Bad request", "<p>The form could not be read.</p>", 400)
        card = form.get("card") if action == "confirm" else None
        if action == "confirm" and card not in CARDS:
            return page("Bad request", "<p>card must be approved or declined.</p>", 400)
        try:
            _checkout, url = self.lifecycle.consumer_action(ctx.session, form.get("token", ""),
                                                            action, card)
        except ConsumerActionError as err:
            return page("Checkout unavailable", f"<p>{html.escape(err.message)}.</p>",
                        err.status)
        return redirect(url)


# -- the admin calls (openapi/admin.yaml) -----------------------------------------------------

def admin_consumer_action(lifecycle: Lifecycle, ctx: Context, action: str,
                          card: str | None) -> dict[str, str]:
    """POST /__admin/afterpay/checkouts/{token}/confirm|cancel -> {"redirectUrl": ...}; the
    body was checked against openapi/admin.yaml. ConsumerActionError: 404 or 409."""
    checkout, url = lifecycle.consumer_action(ctx.session, ctx.params["token"], action, card)
    answer = {"redirectUrl": url, "token": checkout.token, "status": checkout.status}
    # the journal shows what the shopper did, as it shows the portal page's requests
    entry = ctx.session.journal.record(
        at=ctx.session.clock.now(), provider="portal",
        operation="consumerConfirm" if action == "confirm" else "consumerCancel",
        method=ctx.method, path=ctx.path, query="", headers=[], body=ctx.body,
        kind="consumer")
    finish(entry, status=200, headers=[(b"content-type", b"application/json")],
           body=json.dumps(answer).encode(), duration_ms=0.0)
    return answer
