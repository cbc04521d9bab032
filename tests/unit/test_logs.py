"""Access lines as text and JSON, and secrets kept out of every log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mock_server.app import create_app
from mock_server.logs import (
    MASK,
    JsonFormatter,
    SecretMask,
    TextFormatter,
    configure_logging,
    log_access,
)
from mock_server.settings import Settings
from tests.conftest import AFTERPAY_SECRET, basic

CREATED = 1_793_523_600.123  # 2026-11-01T09:00:00.123Z


def access_record(**fields: Any) -> logging.LogRecord:
    extra = {"session": "t1", "provider": "afterpay", "operation": "createRefund",
             "method": "POST", "path": "/v2/payments/100101785223/refund", "status": 201,
             "duration_ms": 3.214, "fault": None}
    extra.update(fields)
    record = logging.LogRecord("mock_server.access", logging.INFO, "app.py", 1,
                               "%s %s", ("t1", "afterpay"), None)
    record.__dict__.update(extra)
    record.created = CREATED
    return record


def test_text_access_line_reads_left_to_right() -> None:
    line = TextFormatter().format(access_record())
    assert line == ("2026-11-01T09:00:00.123Z INFO access POST /v2/payments/100101785223/refund "
                    "201 3.2ms session=t1 provider=afterpay operation=createRefund")


def test_text_access_line_names_the_fault_applied() -> None:
    line = TextFormatter().format(access_record(
        status=503, fault={"rule": "afterpay-outage", "respond": 503}))
    assert line.endswith(' fault={"rule":"afterpay-outage","respond":503}')


def test_text_access_line_without_operation_shows_a_dash() -> None:
    line = TextFormatter().format(access_record(operation=None, path="/nowhere", status=404))
    assert "POST /nowhere 404 3.2ms session=t1 provider=afterpay operation=-" in line


def test_a_decoded_newline_in_the_path_cannot_forge_a_second_line() -> None:
    forged = "/orders/x\n2026-11-01T09:00:00.000Z INFO access GET /ping 200"
    line = TextFormatter().format(access_record(path=forged))
    assert "\n" not in line
    assert '"/orders/x\\n2026-11-01T09:00:00.000Z INFO access GET /ping 200"' in line


def test_json_access_line_is_one_object_with_every_field() -> None:
    line = JsonFormatter().format(access_record(fault={"rule": "flaky"}))
    payload = json.loads(line)
    assert payload == {
        "time": "2026-11-01T09:00:00.123Z", "level": "info", "logger": "mock_server.access",
        "message": "POST /v2/payments/100101785223/refund 201 3.2ms session=t1 "
                   'provider=afterpay operation=createRefund fault={"rule":"flaky"}',
        "session": "t1", "provider": "afterpay", "operation": "createRefund", "method": "POST",
        "path": "/v2/payments/100101785223/refund", "status": 201, "duration_ms": 3.214,
        "fault": {"rule": "flaky"}}


def test_json_keeps_a_traceback_on_one_line() -> None:
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        record = logging.LogRecord("mock_server", logging.ERROR, "app.py", 1, "handler crashed",
                                   (), __import__("sys").exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["message"] == "handler crashed"
    assert "ValueError: first\nsecond" in payload["exception"]


def test_text_names_uvicorn_plainly() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, "server.py", 1, "Shutting down",
                               (), None)
    record.created = CREATED
    assert TextFormatter().format(record) == "2026-11-01T09:00:00.123Z INFO uvicorn: Shutting down"


@pytest.mark.parametrize(("text", "masked"), [
    (f"Authorization: {basic()}",
     f"Authorization: Basic {MASK}"),
    ("sent Bearer abc.def-ghi_jkl", f"sent Bearer {MASK}"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here", f"token {MASK} here"),
    ("client_id=a&client_secret=s3cr3t&grant_type=x",
     f"client_id=a&client_secret={MASK}&grant_type=x"),
    ('{"client_secret": "s3cr3t"}', f'{{"client_secret": "{MASK}"}}'),
    ("secretKey: sandbox-secret-key", f"secretKey: {MASK}"),
    ("POST /v2/payments/1/refund 201", "POST /v2/payments/1/refund 201"),
])
def test_secret_patterns_are_masked(text: str, masked: str) -> None:
    assert SecretMask()(text) == masked


@pytest.mark.parametrize("text", [
    "POST /v2/payments/1/refund 201", "GET /orders/ORD-1/\u212a 200 caf\u00e9",
    "Authorization: basic MTAwMTAxMzgy", "to\u212aen=abc123", "\u017fecret=abc123",
    "x EYJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "apikey=12345", "PASSWD=hunter2",
])
def test_the_quick_look_for_secrets_masks_what_the_pattern_alone_masks(text: str) -> None:
    from mock_server.logs import _SECRETS, _mask_match
    assert SecretMask()(text) == _SECRETS.sub(_mask_match, text)


def test_configured_secrets_are_masked_wherever_they_appear() -> None:
    mask = SecretMask(["admin-token-123", None, "k"])
    assert mask("x admin-token-123y") == f"x {MASK}y"
    assert mask("k stays: too short to be a secret") == "k stays: too short to be a secret"


# -- a whole run: nothing a client sends as a credential reaches the log -------------------------

AFTERPAY_HEADERS = {"Authorization": basic(),
                    "User-Agent": "Shop/1.0 (Python; Merchant/100101382) https://shop.example"}
ADMIN_TOKEN = "admin-token-5f2b9c"
JWT_SECRET = "jwt-key-9d8e7f6a5b-4c3d2e1f0a9b8c7d6e5f"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("text", "debug", secrets=(ADMIN_TOKEN, JWT_SECRET), stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_run_with_credentials_never_logs_them(fmt: str, log_output: io.StringIO,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    if fmt == "json":
        configure_logging("json", "debug", secrets=(ADMIN_TOKEN, JWT_SECRET), stream=log_output)
    app = create_app(Settings(seed=7, admin_token=ADMIN_TOKEN, jwt_secret=JWT_SECRET))
    optty = app.providers[2]
    original = optty.handlers["getOrder"]

    async def crashing(ctx: Any) -> Any:
        # a crash whose message carries what the client sent, as a careless error might
        raise RuntimeError(f"cannot handle {ctx.headers.get('authorization')}")

    monkeypatch.setitem(optty.handlers, "getOrder", crashing)
    with TestClient(app) as client:
        paid = client.post("/v2/payments/100101785223/refund", headers=AFTERPAY_HEADERS,
                           json={"requestId": "r-1", "amount": {"amount": "1.00",
                                                                "currency": "AUD"}})
        assert paid.status_code == 201
        answer = client.post("/token", data={"client_id": "sandbox-client",
                                             "client_secret": "sandbox-secret",
                                             "grant_type": "client_credentials",
                                             "scope": "api-user"})
        assert answer.status_code == 201
        jwt = answer.json()["access_token"]
        crashed = client.get("/orders/ORD-1001", headers={"Authorization": f"Bearer {jwt}"})
        assert crashed.status_code == 500
        admin = client.get("/__admin/requests",
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.status_code == 200
        # the journal keeps the form body for reading back, the secret taken out; the log
        # keeps neither
        assert "client_secret=[REDACTED]" in admin.text and "sandbox-secret" not in admin.text
    monkeypatch.setitem(optty.handlers, "getOrder", original)
    output = log_output.getvalue()
    assert "createRefund" in output and "issueToken" in output and "cannot handle" in output
    for secret in (basic().split()[1], AFTERPAY_SECRET, "sandbox-secret", jwt,
                   jwt.split(".")[2], ADMIN_TOKEN, JWT_SECRET):
        assert secret not in output
    if fmt == "json":
        for line in output.splitlines():
            json.loads(line)


# -- the access line written directly, and through logging when something else listens -----------

FIELDS = {"session": "t1", "provider": "afterpay", "operation": "createRefund", "method": "POST",
          "path": "/v2/payments/100101785223/refund", "status": 201, "duration_ms": 3.214,
          "fault": None}


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_direct_access_line_is_the_formatters_line(
        fmt: str, restore_root: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    configure_logging(fmt, "info", secrets=(ADMIN_TOKEN,), stream=stream)
    monkeypatch.setattr("mock_server.logs.time.time", lambda: CREATED)
    log_access(dict(FIELDS, path=f"/v2/payments/{ADMIN_TOKEN}/refund"))
    formatter = (JsonFormatter if fmt == "json" else TextFormatter)(SecretMask([ADMIN_TOKEN]))
    expected = formatter.format(access_record(path=f"/v2/payments/{ADMIN_TOKEN}/refund"))
    assert stream.getvalue() == expected + "\n"
    assert ADMIN_TOKEN not in stream.getvalue()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_access_lines_reach_another_listener_too(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging("text", "info", stream=stream)
    listener = _Collect()
    logging.getLogger().addHandler(listener)  # as pytest's caplog does
    log_access(dict(FIELDS))
    assert [r.getMessage() for r in listener.records] == [
        "t1 afterpay createRefund POST 201 3.2ms"]
    assert listener.records[0].__dict__["path"] == FIELDS["path"]
    assert stream.getvalue().endswith(
        "INFO access POST /v2/payments/100101785223/refund 201 3.2ms session=t1 "
        "provider=afterpay operation=createRefund\n")


def test_no_access_line_below_the_level(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging("text", "warning", stream=stream)
    log_access(dict(FIELDS))
    assert stream.getvalue() == ""


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_access_lines_of_one_loop_iteration_are_written_together(restore_root: None) -> None:
    import asyncio

    from mock_server.logs import batch_access_lines

    stream = _CountingStream()
    configure_logging("text", "info", stream=stream)

    async def serve_three() -> tuple[str, int]:
        batch_access_lines(asyncio.get_running_loop())
        for status in (201, 202, 203):
            log_access(dict(FIELDS, status=status))
        waiting = stream.getvalue()
        await asyncio.sleep(0)  # the loop's next iteration
        await asyncio.sleep(0)
        return waiting, stream.writes

    try:
        waiting, writes = asyncio.run(serve_three())
    finally:
        batch_access_lines(None)
    assert waiting == ""
    assert writes == 1
    assert [line.split()[5] for line in stream.getvalue().splitlines()] == ["201", "202", "203"]


def test_another_line_first_writes_the_waiting_access_lines(restore_root: None) -> None:
    import asyncio

    from mock_server.logs import batch_access_lines

    stream = io.StringIO()
    configure_logging("text", "info", stream=stream)

    async def interleave() -> str:
        batch_access_lines(asyncio.get_running_loop())
        log_access(dict(FIELDS, status=201))
        logging.getLogger("mock_server").warning("in between")
        log_access(dict(FIELDS, status=202))
        return stream.getvalue()

    try:
        before_the_iteration_ends = asyncio.run(interleave())
    finally:
        batch_access_lines(None)
    assert " 201 " in before_the_iteration_ends and "in between" in before_the_iteration_ends
    lines = stream.getvalue().splitlines()
    assert [(" 201 " in line, "in between" in line, " 202 " in line) for line in lines] == [
        (True, False, False), (False, True, False), (False, False, True)]


def test_access_lines_are_written_at_once_outside_the_serving_loop(restore_root: None) -> None:
    import asyncio
    import threading

    from mock_server.logs import batch_access_lines

    stream = io.StringIO()
    configure_logging("text", "info", stream=stream)

    async def elsewhere() -> str:
        log_access(dict(FIELDS, status=201))
        return stream.getvalue()

    assert " 201 " in asyncio.run(elsewhere())  # nothing batches: written at once
    loop = asyncio.new_event_loop()
    try:
        batch_access_lines(loop)  # this thread serves on `loop`; another thread logs
        other = threading.Thread(target=log_access, args=(dict(FIELDS, status=202),))
        other.start()
        other.join()
        assert " 202 " in stream.getvalue()
        log_access(dict(FIELDS, status=203))  # the serving thread: waits for the loop
        assert " 203 " not in stream.getvalue()
    finally:
        batch_access_lines(None)  # stopping writes what still waits
        loop.close()
    assert stream.getvalue().splitlines()[-1].split()[5] == "203"


def test_a_second_serving_loop_batches_too(restore_root: None) -> None:
    """A loop that stopped with a write still scheduled does not keep the next one waiting."""
    import asyncio

    from mock_server.logs import batch_access_lines

    stream = io.StringIO()
    configure_logging("text", "info", stream=stream)

    first = asyncio.new_event_loop()
    batch_access_lines(first)  # this thread serves on `first`...
    log_access(dict(FIELDS, status=201))  # ...which stops before its scheduled write runs
    first.close()

    async def then_wait(status: int) -> str:
        batch_access_lines(asyncio.get_running_loop())
        log_access(dict(FIELDS, status=status))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return stream.getvalue()

    try:
        written = asyncio.run(then_wait(202))
    finally:
        batch_access_lines(None)
    assert " 201 " in written and " 202 " in written
