"""The request pipeline's stages (core.pipeline), each on its own: an Exchange in, what the stage
does to it (and nothing else run)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.responses import Response

from mock_server.app import SandboxApp, create_app
from mock_server.core.http import Answer, Context, Problem
from mock_server.core.pipeline import Exchange, Pipeline
from mock_server.core.scenarios import parse_scenario
from mock_server.settings import Settings

from tests.conftest import AFTERPAY_HEADERS

Message = dict[str, Any]


def run(awaitable: Awaitable[Any]) -> Any:
    return asyncio.run(awaitable)  # type: ignore[arg-type]


@pytest.fixture
def app() -> SandboxApp:
    return create_app(Settings(seed=7, max_body_bytes=64, max_sessions=3,
                               max_header_field_bytes=512, max_header_bytes=2048))


@pytest.fixture
def pipe(app: SandboxApp) -> Pipeline:
    return app.pipeline


class Wire:
    """The receive and send of one request: the body's messages in, what was sent out."""

    def __init__(self, *chunks: bytes) -> None:
        self.incoming: list[Message] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks or (b"",))]
        self.received = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.received += 1
        return self.incoming.pop(0) if self.incoming else {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def exchange(method: str = "GET", path: str = "/ping", headers: dict[str, str] | None = None,
             wire: Wire | None = None, **scope: Any) -> Exchange:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1"))
           for k, v in (headers or {}).items()]
    wire = wire or Wire()
    full = {"type": "http", "method": method, "path": path, "headers": raw,
            "query_string": b"", **scope}
    return Exchange(full, wire.receive, wire.send, 0.0)


def through(pipe: Pipeline, x: Exchange, *stages: str) -> Exchange:
    """`x` taken through the named stages (sync ones called, coroutines awaited)."""
    for name in stages:
        result = getattr(pipe, name)(x)
        if asyncio.iscoroutine(result):
            run(result)
    return x


def ready(pipe: Pipeline, method: str = "GET", path: str = "/ping", **kw: Any) -> Exchange:
    """An exchange with its session and route found (the stages before the body)."""
    return through(pipe, exchange(method, path, **kw), "session", "route")


def load_rules(app: SandboxApp, session_name: str, faults: list[dict[str, Any]]) -> None:
    session = app.world.session(session_name)
    scenario = parse_scenario(json.dumps({"name": "rules", "faults": faults}), "<test>",
                              error_codes=app.world.error_codes, registry=app.registry)
    app.world.load(session, scenario)


# --- the ordered list -------------------------------------------------------------------------

def test_the_stages_run_in_the_documented_order(pipe: Pipeline,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    order = ["head_size", "session", "route", "body_limit", "journal", "faults", "dispatch",
             "safe_headers", "send_answer", "access_line"]
    for name in order:
        real = getattr(pipe, name)

        def spy(x: Exchange, real: Callable[..., Any] = real, name: str = name) -> Any:
            seen.append(name)
            return real(x)
        monkeypatch.setattr(pipe, name, spy)
    wire = Wire()
    x = exchange("GET", "/ping", AFTERPAY_HEADERS, wire)
    run(pipe(x.scope, wire.receive, wire.send))
    assert seen == order
    assert wire.sent[0]["status"] == 200


# --- 1. head size -----------------------------------------------------------------------------

def test_head_size_within_the_limits_goes_on(pipe: Pipeline) -> None:
    x = exchange(headers={"x-a": "a" * 400})
    assert pipe.head_size(x) is False and x.response is None


def test_head_size_over_a_field_limit_is_431_in_the_owners_shape(pipe: Pipeline) -> None:
    x = exchange(path="/v2/payments/1", headers={"x-a": "a" * 600})
    assert pipe.head_size(x) is True
    assert x.response is not None and x.response.status_code == 431
    assert json.loads(x.response.body)["errorCode"] == "request_header_fields_too_large"
    assert x.session is None  # no session looked up


def test_head_size_counts_the_whole_head(pipe: Pipeline) -> None:
    x = exchange(path="/__admin/health", headers={f"x-{i}": "v" * 300 for i in range(8)})
    assert pipe.head_size(x) is True
    assert json.loads(x.response.body)["error"] == "headers_too_large"  # type: ignore[union-attr]


def test_the_path_is_read_under_the_mounts_root_path() -> None:
    x = exchange(path="/sandbox/v2/ping", root_path="/sandbox")
    assert x.path == "/v2/ping"


# --- 2. session -------------------------------------------------------------------------------

def test_session_from_the_header_is_made_on_first_use(pipe: Pipeline) -> None:
    x = exchange(headers={"X-Sandbox-Session": "s1", "X-Sandbox-Session-Token": "t"})
    session = pipe.session(x)
    assert (session.name, x.created, x.full, x.bad_session) == ("s1", True, None, False)
    assert session.token is not None  # protected by the token it was created with
    assert isinstance(x.ctx, Context) and x.ctx.session is session and x.ctx.path == "/ping"
    again = exchange(headers={"X-Sandbox-Session": "s1"})
    assert pipe.session(again) is session and again.created is False


def test_session_from_the_path_prefix_which_the_path_loses(pipe: Pipeline) -> None:
    x = exchange(path="/sessions/s2/v2/ping", headers={"X-Sandbox-Session": "other"})
    assert pipe.session(x).name == "s2"
    assert x.path == "/v2/ping" and x.ctx.path == "/v2/ping"


def test_a_bad_session_name_uses_the_default_session(pipe: Pipeline) -> None:
    x = exchange(headers={"X-Sandbox-Session": "no spaces allowed"})
    assert pipe.session(x).name == "default" and x.bad_session is True


def test_no_room_for_a_session_uses_the_default_and_notes_why(app: SandboxApp,
                                                             pipe: Pipeline) -> None:
    for name in ("a", "b"):
        app.world.session(name).active += 1  # busy sessions are not evicted
    x = exchange(headers={"X-Sandbox-Session": "c"})
    assert pipe.session(x).name == "default" and x.full is not None


# --- 3. route ---------------------------------------------------------------------------------

def test_route_finds_the_operation_and_its_params(pipe: Pipeline) -> None:
    x = ready(pipe, "GET", "/v2/payments/100101785223")
    assert x.provider.name == "afterpay" and x.problem is None
    assert x.ctx.operation is not None and x.ctx.operation.operation_id == "getPayment"
    assert x.ctx.params == {"orderId": "100101785223"}


def test_route_unknown_path_and_wrong_method_are_problems(pipe: Pipeline) -> None:
    unknown = ready(pipe, "GET", "/v2/nothing")
    assert unknown.provider.name == "afterpay"
    assert unknown.problem is not None and unknown.problem.kind == Problem.ROUTE_NOT_FOUND
    wrong = ready(pipe, "DELETE", "/ping")
    assert wrong.problem is not None and wrong.problem.kind == Problem.METHOD_NOT_ALLOWED
    assert "GET" in wrong.problem.allow and wrong.ctx.operation is None


def test_route_a_bad_session_name_is_a_problem(pipe: Pipeline) -> None:
    x = ready(pipe, headers={"X-Sandbox-Session": "bad name"})
    assert x.problem is not None and x.problem.kind == Problem.BAD_SESSION


def test_route_a_write_gives_a_shared_session_its_own_copy_a_read_does_not(
        pipe: Pipeline) -> None:
    read = ready(pipe, "GET", "/v2/payments/1", headers={"X-Sandbox-Session": "r"})
    assert read.session.template is not None
    write = ready(pipe, "POST", "/v2/payments/1/refund", headers={"X-Sandbox-Session": "w"})
    assert write.session.template is None


# --- 4. body limit ----------------------------------------------------------------------------

def test_body_limit_one_message(pipe: Pipeline) -> None:
    wire = Wire(b'{"a":1}')
    x = through(pipe, ready(pipe, "POST", "/v2/payments/1/refund", wire=wire), "body_limit")
    assert x.ctx.body == b'{"a":1}' and x.problem is None


def test_body_limit_several_messages_within_the_limit(pipe: Pipeline) -> None:
    wire = Wire(b"a" * 30, b"b" * 30)
    x = through(pipe, ready(pipe, "POST", "/v2/payments/1/refund", wire=wire), "body_limit")
    assert x.ctx.body == b"a" * 30 + b"b" * 30


def test_body_limit_sent_over_the_limit_is_413(pipe: Pipeline) -> None:
    wire = Wire(b"a" * 40, b"b" * 40)
    x = through(pipe, ready(pipe, "POST", "/v2/payments/1/refund", wire=wire), "body_limit")
    assert x.problem is not None and x.problem.kind == Problem.PAYLOAD_TOO_LARGE


def test_body_limit_declared_over_the_limit_is_refused_unread(pipe: Pipeline) -> None:
    wire = Wire(b"x")
    x = through(pipe, ready(pipe, "POST", "/v2/payments/1/refund", headers={"Content-Length": "65"}, wire=wire),
                "body_limit")
    assert x.problem is not None and x.problem.kind == Problem.PAYLOAD_TOO_LARGE
    assert wire.received == 0


# --- 5. journal -------------------------------------------------------------------------------

def test_journal_records_a_provider_request(pipe: Pipeline) -> None:
    x = through(pipe, ready(pipe, "POST", "/v2/payments/7/refund", wire=Wire(b"{}")),
                "body_limit", "journal")
    assert x.journaled is True and x.ctx.entry is not None
    assert (x.ctx.entry.provider, x.ctx.entry.operation) == ("afterpay", "createRefund")
    assert x.session.journal.get(x.ctx.entry.id) is x.ctx.entry


@pytest.mark.parametrize("case", ["admin", "bad_session", "full"])
def test_journal_leaves_out_admin_bad_sessions_and_no_room(app: SandboxApp, pipe: Pipeline,
                                                          case: str) -> None:
    if case == "admin":
        x = ready(pipe, "GET", "/__admin/clock")
    elif case == "bad_session":
        x = ready(pipe, headers={"X-Sandbox-Session": "bad name"})
    else:
        for name in ("a", "b"):
            app.world.session(name).active += 1
        x = ready(pipe, headers={"X-Sandbox-Session": "c"})
    pipe.journal(x)
    assert x.journaled is False and x.ctx.entry is None


# --- 6. faults --------------------------------------------------------------------------------

def test_faults_none_for_a_session_without_rules(pipe: Pipeline) -> None:
    x = through(pipe, ready(pipe), "journal")
    assert pipe.faults(x) is False and x.rule is None


def test_faults_a_rule_fires_is_counted_and_answers(app: SandboxApp, pipe: Pipeline) -> None:
    load_rules(app, "f", [{"name": "outage", "match": {"path": "/ping"},
                           "respond": {"status": 503}}])
    x = through(pipe, ready(pipe, headers={"X-Sandbox-Session": "f"}), "journal")
    assert pipe.faults(x) is True
    assert x.rule is not None and x.rule.name == "outage"
    assert app.metrics.faults == {("afterpay", "outage", "respond"): 1}
    assert x.ctx.entry is not None and x.ctx.entry.fault == {"rule": "outage",
                                                             "action": "respond 503"}
    run(pipe.fault_answer(x))
    assert x.response is not None and x.response.status_code == 503


def test_faults_not_for_requests_left_out_of_the_journal(app: SandboxApp, pipe: Pipeline) -> None:
    load_rules(app, "default", [{"name": "all", "match": {}, "respond": {"status": 500}}])
    x = through(pipe, ready(pipe, "GET", "/__admin/clock"), "journal")
    assert pipe.faults(x) is False


# --- 7. dispatch ------------------------------------------------------------------------------

def test_dispatch_calls_the_handler(pipe: Pipeline) -> None:
    x = through(pipe, ready(pipe, headers=AFTERPAY_HEADERS), "body_limit", "dispatch")
    assert x.response is not None and (x.response.status_code, x.response.body) == (200, b"pong")


def test_dispatch_keeps_a_fault_rules_answer(pipe: Pipeline) -> None:
    x = ready(pipe, headers=AFTERPAY_HEADERS)
    scripted = Response(b"scripted", 418)
    x.response = scripted
    run(pipe.dispatch(x))
    assert x.response is scripted


def test_dispatch_answers_a_problem_in_the_surfaces_shape(pipe: Pipeline) -> None:
    x = through(pipe, ready(pipe, "GET", "/__admin/nothing"), "dispatch")
    assert x.response is not None and x.response.status_code == 404
    assert json.loads(x.response.body)["error"] == "not_found"


def test_dispatch_no_room_is_503(app: SandboxApp, pipe: Pipeline) -> None:
    for name in ("a", "b"):
        app.world.session(name).active += 1
    x = through(pipe, ready(pipe, headers={"X-Sandbox-Session": "c", **AFTERPAY_HEADERS}),
                "dispatch")
    assert x.response is not None and x.response.status_code == 503
    assert x.response.headers["x-sandbox-warning"].startswith("no room for a new session")


def test_dispatch_hands_what_a_handler_raises_to_its_surfaces_error_handler(
        pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    x = ready(pipe, headers=AFTERPAY_HEADERS)
    boom = RuntimeError("boom")

    async def crashing(ctx: Context) -> Response:
        raise boom
    handled: list[Exception] = []
    monkeypatch.setitem(x.provider.handlers, "ping", crashing)  # type: ignore[index]
    monkeypatch.setattr(x.provider, "handle_error",
                        lambda ctx, exc: handled.append(exc) or Response(b"mine", 599))
    run(pipe.dispatch(x))
    assert handled == [boom]
    assert x.response is not None and x.response.body == b"mine"


def test_shutdown_answer_only_once_the_grace_period_ended(app: SandboxApp,
                                                         pipe: Pipeline) -> None:
    x = ready(pipe, headers=AFTERPAY_HEADERS)
    assert pipe.shutdown_answer(x) is False and x.response is None
    app.shutdown_deadline = 0.0
    assert pipe.shutdown_answer(x) is True
    assert x.response is not None and x.response.status_code == 503
    assert x.response.headers["x-sandbox-warning"] == "the sandbox is shutting down"


# --- 8. safe headers --------------------------------------------------------------------------

def test_safe_headers_one_warning_line_and_no_control_characters(pipe: Pipeline) -> None:
    x = ready(pipe)
    x.response = Answer(b"", 200, [(b"x-sandbox-warning", b"old"), (b"x-data", b"a\r\nb"),
                                   (b"content-length", b"0")])
    x.ctx.warn("first")
    x.ctx.warn("merchant \u00e9\nid")
    pipe.safe_headers(x)
    assert x.response.raw_headers == [(b"x-data", b"a\\u000d\\u000ab"),
                                      (b"content-length", b"0"),
                                      (b"x-sandbox-warning",
                                       b"first; merchant \\u00e9\\u000aid")]


def test_safe_headers_without_warnings_leaves_the_headers(pipe: Pipeline) -> None:
    x = ready(pipe)
    headers = [(b"content-length", b"0")]
    x.response = Answer(b"", 200, headers)
    pipe.safe_headers(x)
    assert x.response.raw_headers is headers


# --- 9. send ----------------------------------------------------------------------------------

def test_send_an_answer_as_two_messages(pipe: Pipeline) -> None:
    wire = Wire()
    x = ready(pipe, wire=wire)
    x.response = Answer(b"hi", 201, [(b"content-length", b"2")])
    assert run(pipe.send_answer(x)) is True
    assert wire.sent == [{"type": "http.response.start", "status": 201,
                          "headers": [(b"content-length", b"2")]},
                         {"type": "http.response.body", "body": b"hi"}]


def test_send_any_other_response_through_starlette(pipe: Pipeline) -> None:
    wire = Wire()
    x = ready(pipe, wire=wire)
    x.response = Response(b"plain", 202, media_type="text/plain")
    assert run(pipe.send_answer(x)) is True
    assert wire.sent[0]["status"] == 202 and wire.sent[-1]["body"] == b"plain"


def test_send_cut_off_by_the_shutdown(app: SandboxApp, pipe: Pipeline) -> None:
    async def cancelled(message: Message) -> None:
        raise asyncio.CancelledError
    x = ready(pipe)
    x.send = cancelled
    x.response = Answer(b"", 200, [])
    with pytest.raises(asyncio.CancelledError):  # not shutting down: goes on up
        run(pipe.send_answer(x))
    app.shutdown_deadline = 0.0
    assert run(pipe.send_answer(x)) is False


def test_send_a_network_fault_instead(app: SandboxApp, pipe: Pipeline) -> None:
    load_rules(app, "n", [{"name": "cut", "match": {"path": "/ping"}, "fault": "connection_reset"}])
    wire = Wire()
    x = through(pipe, ready(pipe, headers={"X-Sandbox-Session": "n", **AFTERPAY_HEADERS},
                            wire=wire), "body_limit", "journal", "faults", "dispatch")
    assert run(pipe.send_answer(x)) is True
    assert x.lost is not None and x.response is not None and x.response.status_code == 0
    assert not any(m["type"] == "http.response.body" for m in wire.sent)


# --- 10. access line --------------------------------------------------------------------------

def test_access_line_finishes_the_entry_counts_and_logs(app: SandboxApp, pipe: Pipeline,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    x = through(pipe, ready(pipe, headers=AFTERPAY_HEADERS), "body_limit", "journal",
                "dispatch")
    x.ctx.warn("w")
    with caplog.at_level(logging.INFO, logger="mock_server.access"):
        pipe.access_line(x)
    entry = x.ctx.entry
    assert entry is not None and entry.status == 200 and entry.warnings == ("w",)
    assert app.metrics.requests == {("afterpay", "ping", 200): 1}
    [record] = [r for r in caplog.records if r.name == "mock_server.access"]
    assert (record.session, record.operation, record.status) == (  # type: ignore[attr-defined]
        "default", "ping", 200)


@pytest.mark.parametrize(("status", "problem", "operation", "kept"), [
    (201, False, "createRefund", True), (401, False, "createRefund", False),
    (403, False, "getPayment", False), (404, True, None, False), (200, False, "health", False)])
def test_kept_a_new_session_only_when_the_request_used_it(
        pipe: Pipeline, status: int, problem: bool, operation: str | None, kept: bool) -> None:
    path = "/__admin/health" if operation == "health" else "/v2/payments/1/refund"
    x = ready(pipe, "POST" if operation == "createRefund" else "GET", path)
    if problem:
        x.problem = Problem(Problem.ROUTE_NOT_FOUND)
    x.response = Answer(b"", status, [])
    assert pipe.kept(x) is kept


def test_a_refused_request_leaves_no_new_session_behind(app: SandboxApp) -> None:
    wire = Wire()
    x = exchange("GET", "/v2/payments/1", {"X-Sandbox-Session": "gone"}, wire)
    run(app.pipeline(x.scope, wire.receive, wire.send))
    assert wire.sent[0]["status"] == 401
    assert "gone" not in {s.name for s in app.world.sessions()}
    kept = Wire()
    y = exchange("GET", "/v2/payments/100101785223",
                 {"X-Sandbox-Session": "kept", **AFTERPAY_HEADERS}, kept)
    run(app.pipeline(y.scope, kept.receive, kept.send))
    assert kept.sent[0]["status"] == 200
    assert "kept" in {s.name for s in app.world.sessions()}
    assert app.world.session("kept").active == 0

