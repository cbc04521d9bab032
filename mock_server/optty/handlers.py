"""Optty HTTP in and out: NestJS's order of work (body parser, guard, pipe, controller)."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from starlette.responses import Response

from mock_server.core.http import Context, answer, processing_time
from mock_server.core.world import Session
from mock_server.optty import errors
from mock_server.optty.bodyparser import parse_request_body
from mock_server.optty.jsonparse import stringify
from mock_server.optty.models import PROVIDER, OpttyModel, ReferenceBusy
from mock_server.optty.validation import (
    OrderRefund,
    schema_violation_message,
    validate_refund,
)
from mock_server.optty.webhooks import WebhookDispatcher

JSON = "application/json; charset=utf-8"  # Express's res.json


_JSON_BYTES = JSON.encode()


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


async def _reference_freed(session: Session, key: Hashable) -> None:
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


class OpttyHandlers:
    def __init__(self, model: OpttyModel, dispatcher: WebhookDispatcher) -> None:
        self.model = model
        self.dispatcher = dispatcher

    async def issue_token(self, ctx: Context) -> Response:
        try:
            body = read_body(ctx)
            return respond(201, self.model.issue_token(ctx.session, body))
        except errors.OpttyError as err:
            return error(ctx, err)

    async def refund_order(self, ctx: Context) -> Response:
        try:
            body = read_body(ctx)
            merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
            refund = validate_refund(body)
            conforms(ctx, refund)
            order = self.model.order(ctx.session, merchant, ctx.params["orderReference"])
            while True:
                try:
                    claim = self.model.begin_refund(ctx.session, merchant, order, refund)
                    break
                except ReferenceBusy as busy:
                    await _reference_freed(ctx.session, busy.key)
            try:
                await processing_time(ctx)
                result = self.model.complete_refund(ctx.session, merchant, order, refund, claim)
            finally:
                self.model.abandon(ctx.session, claim)
                _free_reference(ctx.session, claim.key)
        except errors.OpttyError as err:
            return error(ctx, err)
        for warning in result.warnings:
            ctx.warn(warning)
        if result.body.get("refundStatus") == "PENDING":
            self.dispatcher.ensure_running()
        return respond(201, result.body)

    async def get_order(self, ctx: Context) -> Response:
        try:
            read_body(ctx)
            merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
            order = self.model.order(ctx.session, merchant, ctx.params["orderReference"])
            return respond(200, self.model.order_body(ctx.session, order))
        except errors.OpttyError as err:
            return error(ctx, err)
