"""Applying a session's fault rules to a request: the rule that fires, its delay, its scripted
answer. The rules, their matching and counters live in core.faults; this is the request side."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from mock_server.core import clock
from mock_server.core.faults import FaultRequest, FaultRule, choose
from mock_server.core.http import Context, Problem, ProviderApp

log = logging.getLogger("mock_server.faults")


def fire(ctx: Context, provider: str) -> FaultRule | None:
    """The rule of the request's session that fires for it, if any; the journal is told."""
    session = ctx.session
    index = session.fault_index()
    if not len(index):
        return None
    request = FaultRequest(provider, ctx.method, ctx.path, ctx.params, ctx.headers, ctx.body)
    rule = choose(index.candidates(request), request, session.fault_chances.chance)
    if rule is not None and ctx.entry is not None:
        ctx.entry.fault = rule.record()
    return rule


async def before_handler(ctx: Context, provider: ProviderApp, rule: FaultRule, *,
                         handled: bool) -> Response | None:
    """A scripted answer that replaces the provider's, after any delay; None lets the provider
    answer. A `delay` alone is taken by the handler at its processing moment
    (core.http.processing_time): a refund handler takes it while holding its idempotency key,
    so a concurrent repeat meets a request still in flight (409); a request refused or replayed
    before that moment answers at once. A request no handler answers (`handled` false: unknown
    route, wrong method, body too large) waits here."""
    delay = rule.delay_seconds
    respond = rule.respond
    if respond is None:
        if delay and handled:
            ctx.state["processing_delay"] = delay
        elif delay:
            await clock.wait(delay)
        return None
    if delay:
        await clock.wait(delay)
    return scripted_response(ctx, provider, respond)


def scripted_response(ctx: Context, provider: ProviderApp, respond: Mapping[str, Any]
                      ) -> Response:
    status = int(respond["status"])
    code = respond.get("error")
    if code is not None:
        try:
            response = provider.error_response(ctx, str(code), status)
        except ValueError:
            # a rule for another provider's code reached this one; scenario checks prevent it
            log.exception("fault rule error %r cannot be rendered by %s", code, provider.name)
            response = provider.problem_response(ctx, Problem(Problem.INTERNAL_ERROR))
    elif "body" in respond:
        body = respond["body"]
        if isinstance(body, str):
            # a string goes out as written: a gateway's HTML page, a plain-text error
            response = Response(body.encode(), status, media_type="text/plain")
        else:
            response = Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False)
                                .encode(), status, media_type="application/json")
    else:
        response = Response(b"", status)
    for name, value in (respond.get("headers") or {}).items():
        response.headers[name] = str(value)
    return response
