"""Afterpay HTTP in and out: parse, call the model, answer in Afterpay's exact shape."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from mock_server.afterpay import errors
from mock_server.afterpay.jackson import dumps
from mock_server.afterpay.models import AfterpayModel, AfterpayState
from mock_server.afterpay.requests import parse_refund_request
from mock_server.core.http import Context, processing_time

JSON = "application/json"
CORRELATION_HEADER = "Http-Correlation-Id"
WARN_NO_USER_AGENT = (
    "User-Agent is missing; Afterpay documents it as required on every call "
    "(Module/1.0.0 (Platform/1.0; Language/x.y; Merchant/<id>) <url>)")
WARN_REPLAY_BODY_DIFFERS = (
    "idempotent replay: this body differs from the original request with the same requestId "
    "and merchantReference; the original answer is returned unchanged")
_JSON_MEDIA = ("application/json", "application/*", "*/*")


def respond(ctx: Context, status: int, body: bytes, media_type: str = JSON,
            headers: dict[str, str] | None = None) -> Response:
    # every real answer carries a correlation id (26 lowercase letters and digits)
    all_headers = {CORRELATION_HEADER: ctx.session.ids.alnum(26), **(headers or {})}
    return Response(body, status, headers=all_headers, media_type=media_type)


def error(ctx: Context, err: errors.AfterpayError, headers: dict[str, str] | None = None
          ) -> Response:
    return respond(ctx, err.status, errors.render(err, ctx.session.ids.hex(16)), headers=headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json.loads builds a new decoder whenever it is given parse_float; one is enough
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def parse_body(raw: bytes) -> Any:
    """Jackson's strictness: no NaN/Infinity, no trailing garbage, UTF-8 only; numbers exact."""
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            raise ValueError("byte order mark")  # json.loads refuses it too
        return _DECODER.decode(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.InvalidJson() from None


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for media_range in accept.split(","):
        media = media_range.split(";")[0].strip().lower()
        if media in _JSON_MEDIA or media.endswith("+json"):
            return True
    return False


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";")[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


class AfterpayHandlers:
    def __init__(self, model: AfterpayModel) -> None:
        self.model = model

    def _merchant_checks(self, ctx: Context) -> tuple[AfterpayState, Any]:
        state: AfterpayState = ctx.session.state("afterpay")
        merchant = self.model.authenticate(state, ctx.headers.get("authorization"))
        if not ctx.headers.get("user-agent"):
            if ctx.settings.strict:
                raise errors.InvalidRequest()
            ctx.warn(WARN_NO_USER_AGENT)
        if not _accepts_json(ctx.headers.get("accept")):
            raise errors.NotAcceptable()
        return state, merchant

    @staticmethod
    def _conforms(ctx: Context, body: Any) -> None:
        """The spec's schema, after Afterpay's own ordered Money rules have had their say: what
        the rules let through but the document forbids is still refused, in Afterpay's shape."""
        assert ctx.operation is not None
        violations = ctx.operation.validate_body(body)
        if violations:
            first = violations[0]
            raise errors.InvalidObject(f"{first.dotted or 'body'} {first.message}")

    async def create_refund(self, ctx: Context) -> Response:
        key = None
        completed = False
        try:
            state, merchant = self._merchant_checks(ctx)
            if not _is_json(ctx.headers.get("content-type")):
                raise errors.UnsupportedMediaType()
            body = parse_body(ctx.body)
            request = parse_refund_request(body, merchant.currencies)
            self._conforms(ctx, body)
            payment = self.model.payment(state, merchant, ctx.params["orderId"])
            key = self.model.idempotency_key(merchant, request)
            if key is not None:
                replay = self.model.claim(ctx.session, key, request)
                if replay is not None:
                    key = None  # not ours to release
                    if replay.body_differs:
                        ctx.warn(WARN_REPLAY_BODY_DIFFERS)
                    return respond(ctx, replay.answer.status, replay.answer.body)
            await processing_time(ctx)
            _entry, body = self.model.refund(ctx.session, payment, request, key)
            completed = True
            return respond(ctx, 201, body)
        except errors.AfterpayError as err:
            return error(ctx, err)
        finally:
            if key is not None and not completed:
                ctx.session.ledger.release(key)

    async def get_payment(self, ctx: Context) -> Response:
        try:
            state, merchant = self._merchant_checks(ctx)
            payment = self.model.payment(state, merchant, ctx.params["orderId"])
            return respond(ctx, 200, dumps(self.model.payment_body(ctx.session, payment)))
        except errors.AfterpayError as err:
            return error(ctx, err)

    async def ping(self, ctx: Context) -> Response:
        return respond(ctx, 200, b"pong", media_type="text/plain")
