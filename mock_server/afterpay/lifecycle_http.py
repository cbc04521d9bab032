"""Afterpay's lifecycle operations over HTTP: checkouts, capture, auth, void, reads, update,
configuration. The same order of checks as a refund: filters, media types, body, payment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from mock_server.afterpay import errors
from mock_server.afterpay import handlers as base
from mock_server.afterpay.checkout import (
    money_json,
    parse_capture,
    parse_checkout,
    parse_token_request,
    parse_update,
    parse_void,
)
from mock_server.afterpay.handlers import (
    _NO_CACHE,
    _VARY,
    WARN_REPLAY_BODY_DIFFERS,
    AfterpayHandlers,
    accepts_json,
    is_json,
    parse_body,
    respond,
)
from mock_server.afterpay.jackson import dumps
from mock_server.afterpay.lifecycle import Lifecycle
from mock_server.afterpay.models import PROVIDER, AfterpayModel, AfterpayState, Merchant, Payment
from mock_server.core.clock import parse_instant
from mock_server.core.http import Context
from mock_server.core.ledger import IdempotencyKey

# recorded ([S], [C]): reads are not cacheable (handlers._NO_CACHE; payment reads' 200 also
# Vary, handlers._VARY); the configuration is, for 30 minutes
CONFIGURATION_CACHE_CONTROL = "private, no-transform, max-age=1800"
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 250
LIST_ORDER = ("createdAt", "id", "totalAmount", "merchantReference", "email")
WARN_NEXT_LINK = "includeNextLink is not supported by the sandbox and was ignored"
WARN_BAD_DATE = ("{name} is not an ISO 8601 date-time: real Afterpay answers 500 error "
                 "here (documented), the sandbox 422")
BAD_DATE = "{name} must be an ISO 8601 date-time"  # Decision
# a warning never quotes what the client sent (header values are Latin-1, bounded)
WARN_BAD_ORDER = "orderBy is not one of " + ", ".join(LIST_ORDER) + ", createdAt was used"
WARN_LIST_VALUES = "at most 250 values are read from each repeated filter"


def portal_base(ctx: Context) -> str:
    """Where the shopper's browser reaches the sandbox: --public-url, else the creating
    request's Host; the session is put in the path, as a browser sends no session header."""
    base = (ctx.settings.public_url or "").rstrip("/")
    if not base:
        host = ctx.headers.get("host", "").strip()
        # a Host made of URL-safe characters only, else the server's own address
        if not host or len(host) > 255 or not all(c.isalnum() or c in ".-:[]_" for c in host):
            host = f"{ctx.settings.host}:{ctx.settings.port}"
        base = f"http://{host}"
    if ctx.session.name != "default":
        base += f"/sessions/{ctx.session.name}"
    return base


class LifecycleHandlers(AfterpayHandlers):
    def __init__(self, model: AfterpayModel) -> None:
        super().__init__(model)
        self.lifecycle = Lifecycle(model)

    # -- helpers ----------------------------------------------------------------------------

    def _json_call(self, ctx: Context, *, empty_allowed: bool = False
                   ) -> tuple[AfterpayState, Merchant, Any]:
        """Filters, then 415, 406, then the decoded body."""
        state, merchant = self._merchant(ctx)
        empty = not ctx.body.strip()
        if not (empty and empty_allowed) and not is_json(ctx.headers.get("content-type")):
            raise errors.UnsupportedMediaType()
        if not accepts_json(ctx.headers.get("accept")):
            raise errors.NotAcceptable()
        return state, merchant, {} if empty and empty_allowed else parse_body(ctx.body)

    def _read_call(self, ctx: Context) -> tuple[AfterpayState, Merchant]:
        state, merchant = self._merchant(ctx)
        if not accepts_json(ctx.headers.get("accept")):
            raise errors.NotAcceptable()
        return state, merchant

    def _payment(self, ctx: Context, payment: Payment, status: int, *, read: bool) -> Response:
        body = dumps(self.model.payment_body(ctx.session, payment, read=read))
        if read:
            return respond(ctx, status, body, before=(_NO_CACHE,), after=(_VARY,))
        return respond(ctx, status, body)

    def _current(self, ctx: Context, payment: Payment) -> Payment:
        """The payment as the session clock has it now: an auth past its `expires` is expired
        first. A read of a session still sharing the startup world (core.world) gives the
        session its own copy before anything changes."""
        if not self.lifecycle.expiry_due(ctx.session, payment):
            return payment
        if ctx.session.shared:
            ctx.world.materialise(ctx.session)
            state: AfterpayState = ctx.session.state(PROVIDER)
            payment = state.payments[payment.id]
        self.lifecycle.expire_if_due(ctx.session, payment)
        return payment

    # -- checkouts --------------------------------------------------------------------------

    async def create_checkout(self, ctx: Context) -> Response:
        _state, merchant, body = self._json_call(ctx)
        request = parse_checkout(body, merchant.currencies)
        await base.processing_time(ctx)
        checkout = self.lifecycle.create_checkout(ctx.session, merchant, request,
                                                  portal_base(ctx))
        return respond(ctx, 201, dumps(self.lifecycle.created_body(checkout)))

    async def get_checkout(self, ctx: Context) -> Response:
        _state, merchant = self._read_call(ctx)
        checkout = self.lifecycle.readable_checkout(ctx.session, merchant,
                                                    ctx.params["token"])
        await base.processing_time(ctx)
        return respond(ctx, 200, dumps(self.lifecycle.checkout_body(checkout)),
                       before=(_NO_CACHE,))

    # -- immediate capture, auth ------------------------------------------------------------

    async def _pay(self, ctx: Context, operation: str) -> Response:
        _state, merchant, body = self._json_call(ctx)
        request = parse_token_request(body)
        await base.processing_time(ctx)
        outcome = self.lifecycle.pay(ctx.session, merchant, request, operation)
        return self._payment(ctx, outcome.payment, outcome.status, read=False)

    async def capture_full(self, ctx: Context) -> Response:
        return await self._pay(ctx, "capture")

    async def authorise(self, ctx: Context) -> Response:
        return await self._pay(ctx, "auth")

    # -- deferred capture, void -------------------------------------------------------------

    async def _change(self, ctx: Context, operation: str) -> Response:
        claimed: IdempotencyKey | None = None
        completed = False
        try:
            state, merchant, body = self._json_call(ctx, empty_allowed=operation == "void")
            order_id = ctx.params["orderId"]
            if operation == "capture":
                capture = parse_capture(body, merchant.currencies)
                request_id, fingerprint = capture.request_id, capture.fingerprint(order_id)
                unknown: type[errors.AfterpayError] = errors.NoValidAuth
            else:
                void = parse_void(body, merchant.currencies)
                request_id, fingerprint = void.request_id, void.fingerprint(order_id)
                unknown = errors.NotFound
            payment = self.lifecycle.payment_for(state, merchant, order_id, unknown=unknown)
            key = self.lifecycle.idempotency_key(merchant, order_id, operation, request_id)
            if key is not None:
                differs = self.lifecycle.claim(ctx.session, key, fingerprint)
                if differs is not None:
                    if differs:
                        ctx.warn(WARN_REPLAY_BODY_DIFFERS)
                    self.lifecycle.expire_if_due(ctx.session, payment)
                    return self._payment(ctx, payment, 201, read=False)
                claimed = key
            # a scripted delay happens here, while this call holds its idempotency key
            await base.processing_time(ctx)
            if operation == "capture":
                self.lifecycle.capture(ctx.session, payment, capture, claimed)
            else:
                self.lifecycle.void(ctx.session, payment, void, claimed)
            completed = True
            return self._payment(ctx, payment, 201, read=False)
        finally:
            # Decision: refusals keep nothing (as refunds)
            if claimed is not None and not completed:
                ctx.session.ledger.release(claimed)

    async def capture_deferred(self, ctx: Context) -> Response:
        return await self._change(ctx, "capture")

    async def void_payment(self, ctx: Context) -> Response:
        return await self._change(ctx, "void")

    # -- reads, update, configuration -------------------------------------------------------

    async def get_payment(self, ctx: Context) -> Response:
        state, merchant = self._read_call(ctx)
        payment = self.model.payment(state, merchant, ctx.params["orderId"])
        await base.processing_time(ctx)
        payment = self._current(ctx, payment)
        return self._payment(ctx, payment, 200, read=True)

    async def get_payment_by_token(self, ctx: Context) -> Response:
        state, merchant = self._read_call(ctx)
        payment_id = state.payment_of_token.get(ctx.params["token"])
        if payment_id is None:
            raise errors.NotFound()  # Decision: the payments' own 404 message
        payment = self.model.payment(state, merchant, payment_id)
        await base.processing_time(ctx)
        payment = self._current(ctx, payment)
        return self._payment(ctx, payment, 200, read=True)

    async def update_payment(self, ctx: Context) -> Response:
        state, merchant, body = self._json_call(ctx)
        reference = parse_update(body)
        payment = self.model.payment(state, merchant, ctx.params["orderId"])
        await base.processing_time(ctx)
        self.lifecycle.expire_if_due(ctx.session, payment)
        self.lifecycle.update_reference(ctx.session, payment, reference)
        # recorded: 200 (the docs say 201)
        return self._payment(ctx, payment, 200, read=False)

    async def get_configuration(self, ctx: Context) -> Response:
        _state, merchant = self._read_call(ctx)
        await base.processing_time(ctx)
        options, currency = merchant.options, merchant.currencies[0]
        # Decision: `?include=activeCountries` (sdk-php) is ignored
        body = {"minimumAmount": money_json(options.minimum_amount, currency),
                "maximumAmount": money_json(options.maximum_amount, currency)}
        return respond(ctx, 200, dumps(body),
                       headers={"Cache-Control": CONFIGURATION_CACHE_CONTROL})

    async def list_payments(self, ctx: Context) -> Response:
        state, merchant = self._read_call(ctx)
        query = ctx.query
        limit = _int_query(query.get("limit"), LIST_LIMIT_DEFAULT)
        if limit is None or not 1 <= limit <= LIST_LIMIT_MAX:
            raise errors.BadListQuery()
        offset = _int_query(query.get("offset"), 0)
        if offset is None or offset < 0:
            raise errors.BadListQuery("offset must be 0 or more")  # Decision
        bounds: list[datetime | None] = []
        for name in ("fromCreatedDate", "toCreatedDate"):
            raw = query.get(name)
            try:
                bounds.append(_list_date(raw) if raw else None)
            except ValueError:
                # Decision: the docs answer 500 here; a client's mistake is never a 5xx
                # from the sandbox, so it is 422 `error`, with the difference in a warning
                ctx.warn(WARN_BAD_DATE.format(name=name))
                raise errors.BadListQuery(BAD_DATE.format(name=name)) from None
        if query.get("includeNextLink") is not None:
            ctx.warn(WARN_NEXT_LINK)
        filters = {}
        for name in ("tokens", "ids", "merchantReferences", "statuses"):
            values = query.getlist(name)
            if len(values) > LIST_LIMIT_MAX:
                ctx.warn(WARN_LIST_VALUES)
                values = values[:LIST_LIMIT_MAX]
            if values:
                filters[name] = {v.upper() for v in values} if name == "statuses" \
                    else set(values)
        order_by = query.get("orderBy") or "createdAt"
        if order_by not in LIST_ORDER:
            ctx.warn(WARN_BAD_ORDER)
            order_by = "createdAt"
        ascending = (query.get("ascending") or "false").lower() == "true"
        await base.processing_time(ctx)
        mine = [p for p in state.payments.values() if p.merchant_id == merchant.merchant_id]
        if ctx.session.shared and any(self.lifecycle.expiry_due(ctx.session, p)
                                      for p in mine):
            ctx.world.materialise(ctx.session)  # as _current, for the whole list
            state = ctx.session.state(PROVIDER)
            mine = [state.payments[p.id] for p in mine]
        found = []
        for payment in mine:
            self.lifecycle.expire_if_due(ctx.session, payment)
            status = "DECLINED" if payment.state in ("AUTH_DECLINED",
                                                     "CAPTURE_DECLINED") else "APPROVED"
            if (("tokens" in filters and payment.token not in filters["tokens"])
                    or ("ids" in filters and payment.id not in filters["ids"])
                    or ("merchantReferences" in filters
                        and payment.merchant_reference not in filters["merchantReferences"])
                    or ("statuses" in filters and status not in filters["statuses"])
                    or (bounds[0] is not None and payment.created < bounds[0])
                    or (bounds[1] is not None and payment.created > bounds[1])):
                continue
            found.append(payment)
        found.sort(key=_sort_key(order_by), reverse=not ascending)
        page = found[offset:offset + limit]
        body = {"totalResults": len(found), "offset": offset, "limit": limit,
                "results": [self.model.payment_body(ctx.session, p, read=True)
                            for p in page]}
        return respond(ctx, 200, dumps(body), before=(_NO_CACHE,), after=(_VARY,))


def _list_date(raw: str) -> datetime:
    """An ISO 8601 bound; a leap second reads as :59, a date beyond what can be compared is
    the earliest or latest instant."""
    text = raw.strip()
    if len(text) > 64:
        raise ValueError(text[:64])
    if text[17:19] == "60" and text[13:14] == ":" and text[16:17] == ":":
        text = text[:17] + "59" + text[19:]
    try:
        return parse_instant(text)
    except OverflowError:
        return (datetime.min if text.startswith("0") else datetime.max).replace(tzinfo=UTC)


def _int_query(raw: str | None, default: int) -> int | None:
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not text.lstrip("-").isdigit() or not text.isascii() or len(text) > 12:
        return None
    return int(text)


def _sort_key(order_by: str) -> Callable[[Payment], Any]:
    if order_by == "id":
        return lambda p: (len(p.id), p.id)
    if order_by == "totalAmount":
        return lambda p: (p.amount, p.created)
    if order_by == "merchantReference":
        return lambda p: (p.merchant_reference or "", p.created)
    if order_by == "email":
        return lambda p: (((p.order_details or {}).get("consumer") or {}).get("email") or "",
                          p.created)
    return lambda p: (p.created, len(p.id), p.id)


__all__ = ["LifecycleHandlers", "portal_base"]
