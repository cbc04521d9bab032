"""Schemathesis hooks for the live CLI run (.ci/conformance-live loads them via SCHEMATHESIS_HOOKS).

The in-process suite predicts every answer exactly because each of its requests gets a fresh
session; the live run shares one session per spec, so it adds only what holds whatever happened
before: the default world's payments and orders never go missing. Without this, a server started
without its seed would pass, since 404 is a documented answer for an unknown id.
"""

from __future__ import annotations

from typing import Any

import schemathesis

# The default world's ids that belong to the credentials in <spec>.toml (README, "The default
# world"); 100101785300 and ORD-2001 belong to other merchants and rightly answer 404.
SEEDED = {
    "orderId": {"100101785223", "100101785224", "100101785225", "100101785226", "100101785227",
                "100101785228", "100101785229", "100101785230"},
    "orderReference": {"ORD-1001", "ORD-1002", "ORD-1003", "ORD-1004", "ORD-1005", "ORD-1006",
                       "ORD-1007"},
}

# the Optty merchant the seeded orders belong to (an admin call may name a merchant)
SEEDED_MERCHANT = "sandbox-merchant"


# Loaded by the CLI (SCHEMATHESIS_HOOKS, a file: schemathesis names the module so), the hooks are
# registered; imported by the in-process suite for its helpers below, they are not.
LOADED_BY_CLI = __name__ == "_schemathesis_hooks"


def seeded_ids_are_found(ctx: Any, response: Any, case: Any) -> bool | None:
    # a method the path does not have is another matter (Optty's NestJS answers it 404)
    if response.status_code != 404 or case.method.upper() != case.operation.method.upper():
        return None
    body = case.body
    if isinstance(body, dict) and body.get("merchantId", SEEDED_MERCHANT) != SEEDED_MERCHANT:
        return None  # the caller named another merchant, whose view rightly lacks the order
    for name, seeded in SEEDED.items():
        value = (case.path_parameters or {}).get(name)
        assert value not in seeded, f"{name} {value} is in the seeded world, yet answered 404"
    return None


def outgoing_headers(case: Any) -> dict[str, str]:
    """The headers a case must be sent with explicitly, so the request is what the case says.

    - Accept: OpenAPI 3.0 says a header parameter named Accept "SHALL be ignored", so
      schemathesis generates the declared one (pattern and its negation) but sends its own
      `Accept: */*`; passed explicitly, the generated value is what the sandbox gets.
    - User-Agent: the transport adds `schemathesis/<version>` (in process: `testclient`) to a
      request without one, so a generated "User-Agent missing" case (Afterpay declares it
      required) would never be sent as such; it is sent blank, which the sandbox treats as
      missing (docs/fidelity.md). The in-process suite also drops its client's default.
    """
    headers: dict[str, str] = {}
    declared = {p.name.lower(): p for p in case.operation.headers}
    given = {name.lower(): value for name, value in (case.headers or {}).items()}
    if "accept" in declared and "accept" in given:
        headers["Accept"] = str(given["accept"])
    agent = declared.get("user-agent")
    if agent is not None and agent.is_required and not str(given.get("user-agent", ""))\
            .strip(" \t"):
        headers["User-Agent"] = ""
    return headers


# A live case "User-Agent missing" cannot be sent as such: when schemathesis leaves the header
# out, the requests session adds `python-requests/<version>`. The in-process suite sends it
# without one (call_as_generated); the live run gives such a case a User-Agent, which makes it a
# positive case (schemathesis revalidates a case a hook changed) instead of a false failure.
LIVE_USER_AGENT = "refund-mock-server-conformance/1.0 (schemathesis; live) https://127.0.0.1"


def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if "User-Agent" in outgoing_headers(case):
        if case.headers is None:
            case.headers = {}
        case.headers["User-Agent"] = LIVE_USER_AGENT


if LOADED_BY_CLI:
    schemathesis.check(seeded_ids_are_found)
    schemathesis.hook(before_call)


def call_as_generated(case: Any, app: Any, **kwargs: Any) -> Any:
    """case.call() in process, sending what the case says (see outgoing_headers)."""
    from schemathesis.python import asgi

    headers = {**(kwargs.pop("headers", None) or {}), **outgoing_headers(case)}
    if "User-Agent" not in headers:
        return case.call(headers=headers, **kwargs)
    # the in-process client adds `User-Agent: testclient` unless it has no default one
    events = case.operation.schema.config.max_stream_events_for(operation=case.operation)
    with asgi.get_client(app, max_stream_events=events) as client:
        client.headers.pop("user-agent", None)
        return case.call(session=client, headers=headers, **kwargs)
