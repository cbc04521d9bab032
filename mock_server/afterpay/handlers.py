"""Afterpay HTTP in and out: parse, call the model, answer in Afterpay's exact shape."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from starlette.responses import Response

from mock_server.afterpay import errors
from mock_server.afterpay.jackson import dumps
from mock_server.afterpay.models import AfterpayModel, AfterpayState, Merchant
from mock_server.afterpay.requests import JsonNumber, parse_refund_request
from mock_server.core.http import Context, answer, processing_time
from mock_server.core.ledger import IdempotencyKey

JSON = "application/json"
# recorded: the two recorders that keep header names as sent show underscores
# (clearpay-api-client `HTTP_CORRELATION_ID`, afterpay-ruby `http_correlation_id`); the one that
# shows `Http-Correlation-Id` (solidus_afterpay, WebMock) rewrites `_` to `-` (fidelity notes).
# uvicorn writes every header name in lower case.
CORRELATION_HEADER = "http_correlation_id"
# no ";" inside a warning: the app joins several with "; "
WARN_NO_USER_AGENT = (
    "User-Agent is missing: Afterpay documents it as required on every call, in the form "
    "Module/1.0.0 (Platform/1.0 Language/x.y Merchant/<id>) <url> with semicolons between "
    "the parts in brackets")
WARN_REPLAY_BODY_DIFFERS = (
    "idempotent replay: this request differs from the original with the same requestId "
    "and merchantReference (body or orderId), the original answer is returned unchanged")


_CORRELATION_NAME = CORRELATION_HEADER.lower().encode()
_JSON_BYTES = JSON.encode()
# recorded (solidus_afterpay find_payment/valid and /invalid, afterpay-ruby
# _get_payment_by_order_id): reads carry this Cache-Control, the 200 also Vary
_NO_CACHE = (b"cache-control", b"private, no-cache, no-store, no-transform, must-revalidate, "
                               b"max-age=0")
_VARY = (b"vary", b"Accept-Encoding")
# what Starlette's Response would send for media_type="text/plain"
_TEXT_BYTES = b"text/plain; charset=utf-8"


def respond(ctx: Context, status: int, body: bytes, content_type: bytes = _JSON_BYTES,
            headers: dict[str, str] | None = None,
            before: tuple[tuple[bytes, bytes], ...] = (),
            after: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
    # every real answer carries a correlation id (26 lowercase letters and digits); `before` and
    # `after` are ready header pairs around it, in the recorded order
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1"))
             for name, value in (headers or {}).items()]
    return answer(body, status, content_type, *before,
                  (_CORRELATION_NAME, ctx.session.ids.alnum(26).encode()), *after, *extra)


def error(ctx: Context, err: errors.AfterpayError, headers: dict[str, str] | None = None,
          before: tuple[tuple[bytes, bytes], ...] = ()) -> Response:
    return respond(ctx, err.status, errors.render(err, ctx.session.ids.hex(16)), headers=headers,
                   before=before)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json.loads builds a new decoder whenever it is given parse_float; one is enough
_DECODER = json.JSONDecoder(parse_float=JsonNumber, parse_int=JsonNumber,
                            parse_constant=_reject_constant)


def parse_body(raw: bytes) -> Any:
    """Jackson's strictness: no NaN/Infinity, no trailing garbage, UTF-8 only.

    Numbers stay the text they were written as (JsonNumber): Jackson gives a String property
    that text, and reads numbers of any length or exponent (Python's int parser refuses more
    than 4300 digits; Decimal refuses huge exponents). A leading UTF-8 byte order mark is
    skipped, as Jackson's byte-source bootstrapper does.
    """
    try:
        return _DECODER.decode(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.InvalidJson() from None


# What admits JSON, as the spec's Accept pattern says it (openapi/afterpay.yaml; JSON Schema's
# `pattern` is unanchored, so it can describe "some range in the list"): an empty header, or a
# range application/json, application/*, */* or any +json type (any case, optional spaces),
# whose parameters hold no zero quality (q=0, q=0.000: RFC 9110's zero qvalue). Written with
# explicit character classes, so Python and ECMA-262 read it the same.
ACCEPT_JSON_PATTERN = (
    r"^[ \t]*$|(^|,)[ \t]*([Aa][Pp][Pp][Ll][Ii][Cc][Aa][Tt][Ii][Oo][Nn]/([Jj][Ss][Oo][Nn]|\*)"
    r"|\*/\*|[^,;]*\+[Jj][Ss][Oo][Nn])[ \t]*"
    r"(;(?![ \t]*[Qq][ \t]*=[ \t]*0(\.0{0,3})?[ \t]*(;|,|$))[^,;]*)*(,|$)")
_ACCEPT_JSON = re.compile(ACCEPT_JSON_PATTERN)


@functools.lru_cache(maxsize=256)
def accepts_json(accept: str | None) -> bool:
    """Whether an Accept header admits application/json (no header: it does)."""
    return accept is None or _ACCEPT_JSON.search(accept) is not None


@functools.lru_cache(maxsize=256)
def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";")[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


class AfterpayHandlers:
    """The order of checks (fidelity notes, "Afterpay: order of checks"): what a Spring
    application behind a gateway would do -- the filter chain (credentials, then the sandbox's
    User-Agent rule), then the handler mapping (route, method, Content-Type, Accept), then the
    body (JSON, the Money table, references), and only then the payment and its rules. An
    AfterpayError raised by an operation is answered by the surface's handle_error
    (routes.py)."""

    def __init__(self, model: AfterpayModel) -> None:
        self.model = model

    def filters(self, ctx: Context, *, authenticate: bool = True) -> Merchant | None:
        """Credentials, then User-Agent; raises the AfterpayError to answer with."""
        state: AfterpayState = ctx.session.state("afterpay")
        merchant = (self.model.authenticate(state, ctx.headers.get("authorization"))
                    if authenticate else None)
        if not ctx.headers.get("user-agent", "").strip(" \t"):
            # Decision: the real reaction to a missing User-Agent is unknown
            if ctx.settings.strict:
                raise errors.InvalidRequest()
            ctx.warn(WARN_NO_USER_AGENT)
        return merchant

    def _merchant(self, ctx: Context) -> tuple[AfterpayState, Merchant]:
        merchant = self.filters(ctx)
        assert merchant is not None
        return ctx.session.state("afterpay"), merchant

    @staticmethod
    def conforms(ctx: Context, request: dict[str, Any]) -> None:
        """The request as Afterpay read it (after Jackson's coercions and the Money table) is
        checked against the spec's schema too: whatever the ordered rules let through that the
        document forbids is still refused, in Afterpay's shape. The raw body is not checked,
        because Afterpay accepts more than it documents (a number in a string field)."""
        assert ctx.operation is not None
        violations = ctx.operation.validate_body(request)
        if violations:
            first = violations[0]
            # the Bean Validation @Size wording of the reference rows, else plain words with
            # JSON values (never the validator's Python text)
            detail = (f"size must be between 0 and {first.argument}"
                      if first.keyword == "maxLength" else first.describe())
            raise errors.InvalidObject(f"{first.dotted or 'body'} {detail}")

    async def create_refund(self, ctx: Context) -> Response:
        # an AfterpayError raised here is answered by the surface's handle_error (routes.py);
        # refused before the processing moment, it is answered at once, so the retry of a
        # delayed refund gets its 409 while the original is still in flight
        claimed: IdempotencyKey | None = None
        completed = False
        try:
            state, merchant = self._merchant(ctx)
            # Spring's handler mapping checks consumes (415) before produces (406)
            if not is_json(ctx.headers.get("content-type")):
                raise errors.UnsupportedMediaType()
            if not accepts_json(ctx.headers.get("accept")):
                raise errors.NotAcceptable()
            request = parse_refund_request(parse_body(ctx.body), merchant.currencies)
            self.conforms(ctx, request.echo())
            order_id = ctx.params["orderId"]
            payment = self.model.payment(state, merchant, order_id)
            key = self.model.idempotency_key(merchant, request)
            if key is not None:
                replay = self.model.claim(ctx.session, key, order_id, request)  # 409 in flight
                if replay is not None:
                    if replay.body_differs:
                        ctx.warn(WARN_REPLAY_BODY_DIFFERS)
                    return respond(ctx, replay.answer.status, replay.answer.body)
                claimed = key
            # a scripted delay happens here, while this request holds its idempotency key
            await processing_time(ctx, let_others_in=True)
            _entry, body = self.model.refund(ctx.session, payment, request, claimed)
            completed = True
            return respond(ctx, 201, body)
        finally:
            # Decision: only a success is kept for replay; a refusal (or a crash, or a cancelled
            # request) gives the key back, so the corrected request can be sent again
            if claimed is not None and not completed:
                ctx.session.ledger.release(claimed)

    async def get_payment(self, ctx: Context) -> Response:
        # a refusal gets the read's Cache-Control (routes.READS, handle_error)
        state, merchant = self._merchant(ctx)
        if not accepts_json(ctx.headers.get("accept")):
            raise errors.NotAcceptable()
        payment = self.model.payment(state, merchant, ctx.params["orderId"])
        await processing_time(ctx)
        return respond(ctx, 200, dumps(self.model.payment_body(ctx.session, payment)),
                       before=(_NO_CACHE,), after=(_VARY,))

    async def ping(self, ctx: Context) -> Response:
        # docs: ping needs no credentials; User-Agent is still documented for every call
        self.filters(ctx, authenticate=False)
        await processing_time(ctx)
        return respond(ctx, 200, b"pong", _TEXT_BYTES)
