"""The shopper's step: the sandbox's stand-in for Afterpay's portal page, and the admin calls
that do the same headless. Plain HTML, no JavaScript; each button POSTs back and is answered
303 to the merchant's URL in Afterpay's own format (reference afterpay-lifecycle.md)."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from mock_server.afterpay.lifecycle import CARDS, ConsumerActionError, Lifecycle
from mock_server.core.clock import iso_millis
from mock_server.core.http import Context, Handler, Problem
from mock_server.core.journal import finish
from mock_server.core.openapi import Spec

# the portal's routes; its own small document (pages for browsers, not part of any API spec)
PORTAL_PATHS: dict[str, Any] = {
    "/__portal/afterpay/{country}/checkout/": {"get": {"operationId": "portalCheckoutPage"}},
    "/__portal/afterpay/{country}/checkout/confirm": {"post": {"operationId": "portalConfirm"}},
    "/__portal/afterpay/{country}/checkout/cancel": {"post": {"operationId": "portalCancel"}},
}
HTML = "text/html; charset=utf-8"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{padding:.2em .6em;text-align:left}}
form{{display:inline-block;margin:.5em .5em 0 0}}</style></head>
<body><h1>{title}</h1>
{content}
</body></html>"""


def _page(title: str, content: str, status: int = 200) -> Response:
    body = _PAGE.format(title=html.escape(title), content=content).encode()
    # the page is for a browser in a sandbox: nothing cached, no framing by other sites
    return Response(body, status, media_type="text/html",
                    headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                             "Content-Security-Policy": "default-src 'none'; "
                             "style-src 'unsafe-inline'; form-action *"})


def _form(action: str, token: str, label: str, element_id: str, card: str | None = None
          ) -> str:
    card_field = (f'<input type="hidden" name="card" value="{card}">' if card else "")
    return (f'<form method="post" action="{action}">'
            f'<input type="hidden" name="token" value="{html.escape(token)}">{card_field}'
            f'<button type="submit" id="{element_id}">{html.escape(label)}</button></form>')


class AfterpayPortalApp:
    """Journaled as Afterpay requests (operations portalCheckoutPage, portalConfirm,
    portalCancel), so the request journal shows what the shopper did."""

    name = "afterpay"

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.spec = Spec("afterpay-portal", {"openapi": "3.0.3", "paths": PORTAL_PATHS})
        self.handlers: dict[str, Handler] = {
            "portalCheckoutPage": self.checkout_page,
            "portalConfirm": self.confirm,
            "portalCancel": self.cancel,
        }

    def owns(self, path: str) -> bool:
        return path.startswith("/__portal/afterpay/")

    def problem_response(self, ctx: Context, problem: Problem) -> Response:
        if problem.kind == Problem.METHOD_NOT_ALLOWED:
            response = _page("Method not allowed", "<p>Use the page's buttons.</p>", 405)
            response.headers["Allow"] = ", ".join(problem.allow)
            return response
        if problem.kind == Problem.ROUTE_NOT_FOUND:
            return _page("Not found", "<p>No such sandbox page.</p>", 404)
        if problem.kind == Problem.PAYLOAD_TOO_LARGE:
            return _page("Too large", "<p>The form was too large.</p>", 413)
        if problem.kind == Problem.BAD_SESSION:
            return _page("Bad session", f"<p>{html.escape(problem.detail)}</p>", 400)
        return _page("Error", "<p>The sandbox failed; see its log.</p>", 500)

    def error_response(self, ctx: Context, code: str, status: int | None) -> Response:
        return _page("Afterpay is unavailable", f"<p>{html.escape(code)}</p>", status or 500)

    # -- pages ------------------------------------------------------------------------------

    async def checkout_page(self, ctx: Context) -> Response:
        token = ctx.query.get("token") or ""
        state = ctx.session.state("afterpay")
        checkout = state.checkouts.get(token)
        if checkout is None:
            return _page("Checkout not found", "<p>No Afterpay checkout has this token.</p>",
                         404)
        r = checkout.request
        now = ctx.session.clock.now()
        if checkout.payment_id is not None or now >= checkout.expires:
            why = ("a payment was already made from it" if checkout.payment_id is not None
                   else f"it expired at {iso_millis(checkout.expires)}")
            return _page("Checkout closed", f"<p>This checkout cannot be confirmed: {why}.</p>",
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
        return _page("Afterpay sandbox checkout", content)

    async def confirm(self, ctx: Context) -> Response:
        return self._act(ctx, "confirm")

    async def cancel(self, ctx: Context) -> Response:
        return self._act(ctx, "cancel")

    def _act(self, ctx: Context, action: str) -> Response:
        form = dict(parse_qsl(ctx.body.decode("utf-8", "replace"), keep_blank_values=True,
                              max_num_fields=8))
        card = form.get("card") if action == "confirm" else None
        if action == "confirm" and card not in CARDS:
            return _page("Bad request", "<p>card must be approved or declined.</p>", 400)
        try:
            _checkout, url = self.lifecycle.consumer_action(ctx.session, form.get("token", ""),
                                                            action, card)
        except ConsumerActionError as err:
            return _page("Checkout unavailable", f"<p>{html.escape(err.message)}.</p>",
                         err.status)
        except ValueError:
            return _page("Bad request", "<p>The form could not be read.</p>", 400)
        return Response(b"", 303, headers={"Location": url, "Cache-Control": "no-store"})


# -- the admin calls (openapi/admin.yaml) -----------------------------------------------------

class AdminActionError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def admin_consumer_action(lifecycle: Lifecycle, ctx: Context, action: str) -> dict[str, str]:
    """POST /__admin/afterpay/checkouts/{token}/confirm|cancel -> {"redirectUrl": ...}."""
    card = None
    if action == "confirm":
        try:
            body = json.loads(ctx.body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise AdminActionError(400, "invalid_json", "body is not valid JSON") from None
        if not isinstance(body, dict) or body.get("card", "approved") not in CARDS \
                or set(body) - {"card"}:
            raise AdminActionError(400, "invalid_request",
                                   'body must be {"card": "approved"} or {"card": "declined"}')
        card = body.get("card", "approved")
    try:
        checkout, url = lifecycle.consumer_action(ctx.session, ctx.params["token"], action, card)
    except ConsumerActionError as err:
        raise AdminActionError(err.status, err.error, err.message) from None
    answer = {"redirectUrl": url, "token": checkout.token, "status": checkout.status}
    # the journal shows what the shopper did, as it shows the portal page's requests
    entry = ctx.session.journal.record(
        at=ctx.session.clock.now(), provider="afterpay",
        operation="consumerConfirm" if action == "confirm" else "consumerCancel",
        method=ctx.method, path=ctx.path, query="", headers=[], body=ctx.body,
        kind="consumer")
    finish(entry, status=200, headers=[(b"content-type", b"application/json")],
           body=json.dumps(answer).encode(), duration_ms=0.0)
    return answer
