"""Optty HTTP in and out: NestJS's order of work (body parser, guard, pipe, controller)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from mock_server.core.http import Context, processing_time
from mock_server.optty import errors
from mock_server.optty.jsonparse import JsonSyntaxError, parse_json
from mock_server.optty.models import OpttyModel
from mock_server.optty.validation import validate_refund


def respond(status: int, payload: Any) -> Response:
    # Express's res.json: compact JSON.stringify output
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status, media_type="application/json")


def error(ctx: Context, err: errors.OpttyError) -> Response:
    return Response(errors.render(err), err.status, media_type="application/json")


def _media(ctx: Context) -> str:
    return (ctx.headers.get("content-type") or "").split(";")[0].strip().lower()


def parse_body(ctx: Context) -> Any:
    """Express's body parsers run before any guard: a JSON body is parsed (or refused) first;
    any other content type leaves the body empty, as Express does."""
    media = _media(ctx)
    if media == "application/json" or media.endswith("+json"):
        try:
            return parse_json(ctx.body)
        except JsonSyntaxError as exc:
            raise errors.BadRequest(exc.message) from None
    if media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(ctx.body.decode("utf-8", errors="replace"),
                              keep_blank_values=True))
    return {}


class OpttyHandlers:
    def __init__(self, model: OpttyModel) -> None:
        self.model = model

    async def issue_token(self, ctx: Context) -> Response:
        try:
            body = parse_body(ctx)
            form = {k: v for k, v in body.items() if isinstance(v, str)} \
                if isinstance(body, dict) else {}
            return respond(201, self.model.issue_token(ctx.session, form))
        except errors.OpttyError as err:
            return error(ctx, err)

    async def refund_order(self, ctx: Context) -> Response:
        try:
            body = parse_body(ctx)
            merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
            refund = validate_refund(body)
            order = self.model.order(ctx.session, merchant, ctx.params["orderReference"])
            await processing_time(ctx)
            return respond(201, self.model.refund(ctx.session, merchant, order, refund))
        except errors.OpttyError as err:
            return error(ctx, err)

    async def get_order(self, ctx: Context) -> Response:
        try:
            merchant = self.model.authenticate(ctx.session, ctx.headers.get("authorization"))
            order = self.model.order(ctx.session, merchant, ctx.params["orderReference"])
            return respond(200, self.model.order_body(ctx.session, order))
        except errors.OpttyError as err:
            return error(ctx, err)
