"""Logging set-up: one access line per request, as text or JSON, with secrets masked."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

ACCESS_LOGGER = "mock_server.access"
ACCESS_FIELDS = ("session", "provider", "operation", "method", "path", "status", "duration_ms",
                 "fault")
MASK = "[REDACTED]"

# What a log line must never carry, wherever it comes from (a handler's exception text, uvicorn,
# a future log call): JWTs, the credentials of an Authorization header, and secret-looking fields
# of a form, JSON or query string. The access line itself holds no header and no body.
_SECRETS = re.compile(
    r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+"
    r"|(?P<scheme>\b(?:Basic|Bearer|Digest)\s++)[A-Za-z0-9._~+/=-]{4,}+"
    r"|(?P<field>\b(?:client_secret|secret_?key|secret|password|passwd|access_token"
    r"|refresh_token|api_?key|token)[\"']?\s*+[=:]\s*+[\"']?)[^\s&\"',;}]++",
    re.IGNORECASE)
# Linear in the length of the text (tests/reliability/test_linear_patterns.py): a JWT is
# looked for only where a run of base64url characters starts, and no repeat gives back what it
# took, so a 32k path of "eyJeyJ..." is read a few times over, not once per start position.


# Every text _SECRETS can match contains one of these (ASCII, lower-cased): a line without any of
# them is left as it is without running the pattern (most access lines, at every request).
_SECRET_HINTS = ("eyj", "basic", "bearer", "digest", "secret", "passw", "token", "key")


def _may_hold_secret(text: str) -> bool:
    if not text.isascii():
        return True  # case-insensitive matching beyond ASCII: let the pattern decide
    # map over a bound method: no Python-level generator for a check that runs on every line
    return any(map(text.lower().__contains__, _SECRET_HINTS))


def _mask_match(match: re.Match[str]) -> str:
    return (match.group("scheme") or match.group("field") or "") + MASK


class SecretMask:
    """Replaces secrets in a finished log line: the patterns above, and the values this server
    was configured with (admin token, JWT key) wherever they appear."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # longest first, so a secret that contains another is masked whole
        self.literals = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for literal in self.literals:
            if literal in text:
                text = text.replace(literal, MASK)
        return _SECRETS.sub(_mask_match, text) if _may_hold_secret(text) else text


# the "YYYY-MM-DDTHH:MM:SS." of the last second a line was stamped in: lines come in bursts
_stamped_second: tuple[int, str] = (-1, "")


def _stamp(created: float) -> str:
    """A time.time() as ISO 8601 UTC with milliseconds, rounded to the microsecond first as
    datetime.fromtimestamp does, the date part formatted once per second."""
    global _stamped_second
    whole = int(created)
    micros = round((created - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    cached, prefix = _stamped_second
    if whole != cached:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _stamped_second = (whole, prefix)
    return f"{prefix}{micros // 1000:03d}Z"


_PLAIN = re.compile(r"^[\x21-\x7e\u00a0-\u2027\u202a-\uffff]*$")


def _text_value(value: object) -> str:
    """A field as `key=value` shows it: quoted and escaped when it has spaces or control
    characters (a percent-decoded path may hold a newline; it must not start a forged line)."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    text = str(value)
    if text.isascii() and text.isprintable() and " " not in text and text:
        return text  # the common case of _PLAIN, without the pattern
    return text if text and _PLAIN.match(text) else json.dumps(text)


def access_fields_text(fields: Mapping[str, Any]) -> str:
    """`POST /v2/payments/1/refund 201 3.2ms session=t1 provider=afterpay operation=createRefund`
    plus `fault=...` when a fault rule shaped the answer."""
    duration = fields.get("duration_ms")
    text = (f"{_text_value(fields.get('method', '-'))} {_text_value(fields.get('path', '-'))} "
            f"{fields.get('status', '-')} "
            f"{f'{duration:.1f}ms' if isinstance(duration, int | float) else '-'} "
            f"{_names(fields.get('session'), fields.get('provider'), fields.get('operation'))}")
    fault = fields.get("fault")
    return f"{text} fault={_text_value(fault)}" if fault else text


@functools.lru_cache(maxsize=1024)
def _names(session: str | None, provider: str | None, operation: str | None) -> str:
    """`session=.. provider=.. operation=..`: the same few combinations line after line."""
    return (f"session={'-' if session is None else _text_value(session)} "
            f"provider={'-' if provider is None else _text_value(provider)} "
            f"operation={'-' if operation is None else _text_value(operation)}")


def _is_access(record: logging.LogRecord) -> bool:
    return record.name == ACCESS_LOGGER and "status" in record.__dict__


class TextFormatter(logging.Formatter):
    """`2026-11-01T09:00:00.123Z INFO access POST /ping 200 0.4ms session=default ...`"""

    def __init__(self, mask: SecretMask | None = None) -> None:
        super().__init__()
        self.mask = mask or SecretMask()

    def format_access(self, created: float, level: str, fields: Mapping[str, Any]) -> str:
        return self.mask(f"{_stamp(created)} {level} access {access_fields_text(fields)}")

    def format(self, record: logging.LogRecord) -> str:
        if _is_access(record):
            return self.format_access(record.created, record.levelname, record.__dict__)
        else:
            # uvicorn says everything that is not an access line on "uvicorn.error"
            name = "uvicorn" if record.name == "uvicorn.error" else record.name
            line = f"{_stamp(record.created)} {record.levelname} {name}: {record.getMessage()}"
            if record.exc_info:
                line += "\n" + self.formatException(record.exc_info)
            elif record.exc_text:
                line += "\n" + record.exc_text
        return self.mask(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the access fields."""

    def __init__(self, mask: SecretMask | None = None) -> None:
        super().__init__()
        self.mask = mask or SecretMask()

    def format_access(self, created: float, level: str, fields: Mapping[str, Any]) -> str:
        payload: dict[str, Any] = {
            "time": _stamp(created),
            "level": level.lower(),
            "logger": ACCESS_LOGGER,
            "message": access_fields_text(fields),
        }
        for name in ACCESS_FIELDS:
            payload[name] = fields.get(name)
        return self._dumps(payload)

    def format(self, record: logging.LogRecord) -> str:
        if _is_access(record) and not record.exc_info:
            return self.format_access(record.created, record.levelname, record.__dict__)
        payload: dict[str, Any] = {
            "time": _stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return self._dumps(payload)

    def _dumps(self, payload: dict[str, Any]) -> str:
        masked = {key: self._masked(value) for key, value in payload.items()}
        # json.dumps escapes every newline: one record is always exactly one line
        return json.dumps(masked, ensure_ascii=False, default=str, separators=(",", ":"))

    def _masked(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self._masked(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._masked(v) for v in value]
        return value


def configure_logging(fmt: str = "text", level: str = "info", *,
                      secrets: Iterable[str | None] = (), stream: TextIO | None = None) -> None:
    """The server's logging: one handler on the root logger (uvicorn's loggers propagate to it),
    writing to stderr, every line masked."""
    # No line says which thread, process or source line logged it: not looking them up for
    # every record is the logging module's own documented optimisation ("Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    handler = ServerHandler(stream if stream is not None else sys.stderr)
    mask = SecretMask(secrets)
    handler.setFormatter(JsonFormatter(mask) if fmt == "json" else TextFormatter(mask))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    global _server_handler
    _server_handler = handler


class ServerHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The server's one handler: a StreamHandler that also takes finished access lines
    (log_access). While the serving event loop runs (batch_access_lines), the access lines of one
    loop iteration are written together, in one write, once the iteration's other callbacks
    have run: under load that is one system call for many requests instead of one each. Any
    other line first writes what is waiting, so the order of lines is kept; so does flush()
    (which logging.shutdown calls at exit), so nothing waits past the server's end."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.pending: list[str] = []
        self.batch_loop: asyncio.AbstractEventLoop | None = None
        # the thread that runs batch_loop: a line logged there is logged on the loop (the
        # server logs access lines from its request tasks, never from a thread of their own)
        self.batch_thread: int | None = None
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.pending:
            self._drain()
        super().emit(record)

    def write_line(self, line: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            loop = self.batch_loop
            if loop is not None and threading.get_ident() == self.batch_thread:
                self.pending.append(line + self.terminator)
                if not self._scheduled:
                    self._scheduled = True
                    loop.call_soon(self._drain_soon)
                return
            self.pending.append(line + self.terminator)
            self._drain()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self.pending:
                self._drain()
            else:
                super().flush()

    def _drain_soon(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            if self.pending:
                self._drain()

    def _drain(self) -> None:
        text = "".join(self.pending)
        self.pending.clear()
        try:
            self.stream.write(text)
            super().flush()
        except Exception:  # noqa: BLE001 - as Handler.handleError: lines are lost, not requests
            self.handleError(logging.makeLogRecord({"msg": text}))


def batch_access_lines(loop: asyncio.AbstractEventLoop | None) -> None:
    """Access lines logged on `loop` (called from the thread running it) are written once per
    loop iteration (None: each at once, and what waits is written now)."""
    handler = _server_handler
    if handler is not None:
        with handler.lock:  # type: ignore[union-attr]
            handler.batch_loop = loop
            handler.batch_thread = threading.get_ident() if loop is not None else None
            # a write scheduled on an earlier loop that stopped first never ran
            handler._scheduled = False
        if loop is None:
            handler.flush()


# The handler configure_logging installed: while it is the only way out for an access line, the
# line is formatted by log_access and handed to it directly.
_server_handler: ServerHandler | None = None
_access_logger = logging.getLogger(ACCESS_LOGGER)
_root_logger = logging.getLogger()


def log_access(fields: dict[str, Any]) -> None:
    """One access line (fields: ACCESS_FIELDS). The same line as `access_logger.info(...,
    extra=fields)` would give, by the same formatter, and the same way out: a LogRecord is only
    made when something else listens too (a pytest caplog, a handler or filter added later),
    because making one costs about as much as everything else the line takes together."""
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    handler = _server_handler
    if (handler is None or _root_logger.handlers != [handler] or _access_logger.handlers
            or _access_logger.filters or _root_logger.filters or handler.filters
            or not _access_logger.propagate or logging.INFO < handler.level
            or not isinstance(handler.formatter, TextFormatter | JsonFormatter)):
        _access_logger.info("%s %s %s %s %d %.1fms", fields["session"], fields["provider"],
                            fields["operation"] or "-", fields["method"], fields["status"],
                            fields["duration_ms"], extra=fields)
        return
    handler.write_line(handler.formatter.format_access(time.time(), "INFO", fields))
