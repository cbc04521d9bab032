"""Optty HTTP in and out: NestJS's order of work (body parser, guard, pipe, controller)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Hashable
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from mock_server.core.http import Context, answer, processing_time
from mock_server.core.openapi import Violation
from mock_server.core.world import Session
from mock_server.optty import errors
from mock_server.optty.bodyparser import parse_request_body
from mock_server.optty.customers import check_customer_token, customer_session
from mock_server.optty.jsonparse import stringify
from mock_server.optty.lifecycle import CAPTURE, MOVING, VOID, OrderLifecycle
from mock_server.optty.models import PROVIDER, OpttyModel, ReferenceBusy
from mock_server.optty.order_dtos import (
    check_amounts,
    validate_capture,
    validate_create_order,
    validate_void,
)
from mock_server.optty.validation import (
    OrderRefund,
    schema_violation_message,
    validate_refund,
)
from mock_server.optty.webhooks import WebhookDispatcher

JSON = "application/json; charset=utf-8"  # Express's res.json


_JSON_BYTES = JSON.encode()


# with a shared store: how soon a refund waiting for a reference held elsewhere asks again
_REFERENCE_RETRY_SECONDS = 0.005


def respond(status: int, payload: Any) -> Response:
    # Express's res.json: JSON.stringify output, compact
    return answer(stringify(payload), status, _JSON_BYTES)


def error(ctx: Context, err: errors.OpttyError) -> Response:
    for warning in err.warnings:
        ctx.warn(warning)
    return answer(errors.render(err), err.status, _JSON_BYTES)


def read_body(ctx: Context) -> Any:
    """Express's body parsers run before routing and before any guard: a JSON or form body is
    parsed (or refused) first; any other content type leaves the body empty, as Express does."""
    return parse_request_body(ctx.headers, ctx.body)


async def _reference_freed(ctx: Context, key: Hashable) -> None:
    session = ctx.session
    if ctx.world.store is not None:
        # shared by processes: the holder may be another process; the session is given back
        # a moment (so the holder, here or there, can finish) and the claim asked again
        async with ctx.world.paused(session):
            await asyncio.sleep(_REFERENCE_RETRY_SECONDS)
        return
    # One event per held reference, set by its holder when it answers; every request runs on
    # the server's event loop, so nothing can happen between the claim and this wait.
    waiters = session.state(PROVIDER).reference_waiters
    event = waiters.get(key)
    if event is None:
        event = waiters[key] = asyncio.Event()
    await event.wait()


def _free_reference(session: Session, key: Hashable) -> None:
    event = session.state(PROVIDER).reference_waiters.pop(key, None)
    if event is not None:
        event.set()


def conforms(ctx: Context, refund: OrderRefund) -> None:
    """The refund as the ValidationPipe let it through is checked against the spec's schema too:
    whatever the class-validator emulation passes that the document forbids is still refused,
    as a NestJS 400 list. (The raw body is not checked: it may carry fields NestJS ignores.)"""
    assert ctx.operation is not None
    violations = ctx.operation.validate_body({
        "refundReference": refund.refund_reference, "refundDescription": refund.description,
        "isActivatedViaOAuth": refund.activated_via_oauth,
        "refundAmount": {"amount": refund.amount, "currency": refund.currency}})
    if violations:
        raise errors.BadRequest([schema_violation_message(v) for v in violations])


def schema_conforms(ctx: Context, body: Any) -> None:
    """What the class-validator emulation let through is checked against the spec's schema too,
    its violations worded as class-validator would (never the validator's Python text). Numbers
    are checked as the JS doubles Node holds (`1.0` is the integer 1)."""
    assert ctx.operation is not None
    violations = ctx.operation.validate_body(_js_values(body, _JS_DEPTH))
    if violations:
        raise errors.BadRequest([_worded(v) for v in violations])


# the lifecycle DTOs nest at most 3 levels (orderItems -> item -> field); the schema looks no
# deeper, so deeper values are left as parsed
_JS_DEPTH = 4
_LIMIT = re.compile(r"(?:maximum|minimum) of (\S+)$")
_PATTERN = re.compile(r"does not match '(.*)'$")


def _js_values(value: Any, depth: int) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if depth <= 0:
        return value
    if isinstance(value, dict):
        return {k: _js_values(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_values(v, depth - 1) for v in value]
    return value


def _worded(violation: Violation) -> str:
    where = violation.dotted or "body"
    limit = _LIMIT.search(violation.message)
    if violation.keyword == "maximum" and limit:
        return f"{where} must not be greater than {limit.group(1)}"
    if violation.keyword == "minimum" and limit:
        return f"{where} must not be less than {limit.group(1)}"
    pattern = _PATTERN.search(violation.message)
    if violation.keyword == "pattern" and pattern:
        return f"{where} must match {pattern.group(1)} regular expression"
    if violation.keyword == "multipleOf":
        return f"{where} must be a number conforming to the specified constraints"
    if violation.keyword == "type":
        return f"{where} has the wrong type"
    return f"{where} is not valid"


_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def public_base(ctx: Context) -> str:
    """Where the sandbox's own pages are reached: --public-url, else the request's Host (a Host
    that is not a plain host[:port] gives the address the sandbox listens on)."""
    if ctx.settings.public_url:
        return ctx.settings.public_url.rstrip("/")
    host = ctx.headers.get("host") or ""
    if not _HOST.fullmatch(host):
        host = f"{ctx.settings.host}:{ctx.settings.port}"
    return f"http://{host}"


class OpttyHandlers:
    """The operations; an OpttyError they raise is answered by the surface's handle_error
    (routes.py), as NestJS's exception filter answers what a controller throws."""

    def __init__(self, model: OpttyModel, dispatcher: WebhookDispatcher,
                 lifecycle: OrderLifecycle | None = None) -> None:
        self.model = model
        self.dispatcher = dispatcher
        self.lifecycle = lifecycle or OrderLifecycle(model)

    async def issue_token(self, ctx: Context) -> Response:
        body = read_body(ctx)
        return respond(201, self.model.issue_token(ctx.session, body))

    async def refund_order(self, ctx: Context) -> Response:
        body = read_body(ctx)
        merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
        refund = validate_refund(body)
        conforms(ctx, refund)
        order = self.model.order(ctx.session, merchant, ctx.params["orderReference"])
        if order.status in MOVING:  # not a paid order yet: time may have decided it
            self.lifecycle.advance(ctx.session, order)
        while True:
            try:
                claim = self.model.begin_refund(ctx.session, merchant, order, refund)
                break
            except ReferenceBusy as busy:
                await _reference_freed(ctx, busy.key)
                order = self.model.order(ctx.session, merchant, ctx.params["orderReference"])
        try:
            await processing_time(ctx, let_others_in=True)
            result = self.model.complete_refund(ctx.session, merchant, order, refund, claim)
        finally:
            self.model.abandon(ctx.session, claim)
            _free_reference(ctx.session, claim.key)
        for warning in result.warnings:
            ctx.warn(warning)
        if result.body.get("refundStatus") == "PENDING":
            self.dispatcher.ensure_running()
        return respond(201, result.body)

    async def get_order(self, ctx: Context) -> Response:
        read_body(ctx)
        merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
        order = self.lifecycle.order(ctx.session, merchant, ctx.params["orderReference"])
        return respond(200, self.model.order_body(ctx.session, order))

    async def create_order(self, ctx: Context) -> Response:
        body = read_body(ctx)
        merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
        request = validate_create_order(body)
        schema_conforms(ctx, body)
        check_amounts(request)
        check_customer_token(body.get("customerToken"), merchant.merchant_id,
                             secret=self.model.jwt_secret, now=ctx.session.clock.now())
        await processing_time(ctx)
        created, warnings = self.lifecycle.create(ctx.session, merchant, request,
                                                  public_base(ctx))
        for warning in warnings:
            ctx.warn(warning)
        return respond(201, created)

    async def create_customer_session(self, ctx: Context) -> Response:
        body = read_body(ctx)
        merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
        session = customer_session(body, merchant.merchant_id, secret=self.model.jwt_secret,
                                   now=ctx.session.clock.now())
        return respond(201, session)

    async def capture_order(self, ctx: Context) -> Response:
        return await self._movement(ctx, CAPTURE)

    async def void_order(self, ctx: Context) -> Response:
        return await self._movement(ctx, VOID)

    async def _movement(self, ctx: Context, kind: str) -> Response:
        body = read_body(ctx)
        merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
        movement = validate_capture(body) if kind == CAPTURE else validate_void(body)
        schema_conforms(ctx, body)
        order = self.lifecycle.order(ctx.session, merchant, ctx.params["orderReference"])
        while True:
            try:
                claim = self.lifecycle.begin(ctx.session, merchant, order, kind, movement)
                break
            except ReferenceBusy as busy:
                await _reference_freed(ctx, busy.key)
                # the order as it is now (with a shared store, read again meanwhile)
                order = self.lifecycle.order(ctx.session, merchant, ctx.params["orderReference"])
        try:
            await processing_time(ctx)
            if kind == CAPTURE:
                result = self.lifecycle.capture(ctx.session, order, movement, claim)
            else:
                result = self.lifecycle.void(ctx.session, order, movement, claim)
        finally:
            self.lifecycle.abandon(ctx.session, claim)
            _free_reference(ctx.session, claim.key)
        return respond(201, result)
