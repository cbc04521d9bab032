"""Network faults on the real connection: a reset, an empty reply, garbage, a cut or slow body.

ASGI gives an application no socket, yet a reset or a reply that stops half-way can only be
produced on the socket. Under uvicorn (the `serve` command, or uvicorn run in-process) the
`receive` callable is a method of the request's cycle object, which holds the asyncio transport:
that is where the sandbox reaches the connection. Under a server without a transport (an
in-process test client), the faults that need one raise in the application instead, so the
client still sees the exchange fail; see FaultWithoutConnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.client
import logging
import random
import socket
import struct
from typing import TYPE_CHECKING, Any, cast

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mock_server.core import clock
from mock_server.core.ids import IdSource

if TYPE_CHECKING:
    from mock_server.core.journal import JournalEntry

log = logging.getLogger("mock_server.faults")

# slow_body: the status line and headers at once, then the body in this many pieces spread
# evenly over this many seconds; long enough to trip a client's read timeout, short enough
# that a drill never holds a connection for long
SLOW_BODY_SECONDS = 3.0
SLOW_BODY_PIECES = 6
# how long to wait for the server to notice a connection the sandbox closed
_CLOSE_WAIT_SECONDS = 2.0


class FaultWithoutConnection(Exception):
    """A network fault under a server that gives no transport: raised in the application (and
    so in an in-process client) after the journal is written. `sent` is what did go out."""

    sent: Response


class ResetWithoutConnection(ConnectionResetError, FaultWithoutConnection):
    pass


class EmptyWithoutConnection(http.client.RemoteDisconnected, FaultWithoutConnection):
    """What http.client raises for a connection closed before any byte of a reply."""


class TruncatedWithoutConnection(ConnectionError, FaultWithoutConnection):
    pass


def transport_of(receive: Receive) -> asyncio.Transport | None:
    """The connection's transport, when the ASGI server is uvicorn (h11 or httptools, asyncio
    or uvloop)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    # duck-typed: uvloop's TCPTransport is not an asyncio.BaseTransport subclass
    if all(hasattr(transport, name) for name in ("abort", "close", "write", "get_extra_info")):
        return cast("asyncio.Transport", transport)
    return None


async def deliver(fault: str, response: Response, scope: Scope, receive: Receive, send: Send,
                  chances: IdSource, entry: JournalEntry | None = None) -> Response:
    """Sends `response` damaged as `fault` says and returns what went out, for the journal
    (status 0: no status line). The provider has already answered (a refund is recorded); the
    client just does not get that answer whole, and the journal's action says what it was."""
    if entry is not None and entry.fault is not None:
        entry.fault["action"] += f" after the provider answered {response.status_code}"
    if fault == "slow_body":
        await _slow_body(response, receive, send)
        return response
    if fault == "malformed_body":
        return await _malformed_body(response, send, random.Random(chances.chance()))
    if fault == "truncated_body":
        return await _truncated_body(response, receive, send)
    if fault == "connection_reset":
        return await _connection_reset(receive)
    if fault == "empty_response":
        return await _empty_response(receive)
    # the scenario schema lists every fault; an unknown one is a programming error
    raise ValueError(f"unknown network fault {fault!r}")


def _sent(response: Response, body: bytes, content_length: int) -> Response:
    """A response as it goes on the wire: these bytes of body, this Content-Length."""
    sent = Response(body, response.status_code)
    kept = [(name, value) for name, value in response.raw_headers if name != b"content-length"]
    sent.raw_headers = [*kept, (b"content-length", str(content_length).encode())]
    return sent


async def _start(sent: Response, send: Send) -> None:
    await send({"type": "http.response.start", "status": sent.status_code,
                "headers": sent.raw_headers})


def _nothing_sent() -> Response:
    sent = Response(b"", 0)
    sent.raw_headers = []
    return sent


async def _slow_body(response: Response, receive: Receive, send: Send) -> None:
    body = bytes(response.body)
    transport = transport_of(receive)
    await _start(_sent(response, body, len(body)), send)
    pieces = max(1, min(SLOW_BODY_PIECES, len(body)))
    size = -(-len(body) // pieces) if body else 0
    pause = SLOW_BODY_SECONDS / pieces
    for index in range(pieces):
        await clock.wait(pause)
        if transport is not None and transport.is_closing():
            return  # the client gave up (its read timeout): nobody is left to dribble to
        chunk = body[index * size:(index + 1) * size]
        last = index == pieces - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": not last})


def garbage(length: int, rng: random.Random) -> bytes:
    """Bytes no JSON parser accepts: 0xFF cannot start UTF-8 text, let alone JSON."""
    return b"\xff" + rng.randbytes(max(length, 16) - 1)


async def _malformed_body(response: Response, send: Send, rng: random.Random) -> Response:
    body = garbage(len(response.body), rng)
    sent = _sent(response, body, len(body))
    await _start(sent, send)
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return sent


async def _truncated_body(response: Response, receive: Receive, send: Send) -> Response:
    body = bytes(response.body)
    declared = max(len(body), 1)
    sent = _sent(response, body[: len(body) // 2], declared)
    transport = transport_of(receive)
    await _start(sent, send)
    await send({"type": "http.response.body", "body": sent.body, "more_body": True})
    if transport is None:
        raise _without(TruncatedWithoutConnection(
            f"{len(sent.body)} of {declared} bytes sent, then the connection closed"), sent)
    transport.close()  # what was written still goes out, then FIN: fewer bytes than declared
    await _closed(receive)
    return sent


async def _connection_reset(receive: Receive) -> Response:
    transport = transport_of(receive)
    if transport is None:
        raise _without(ResetWithoutConnection(
            errno.ECONNRESET, "Connection reset by peer (sandbox fault)"), _nothing_sent())
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # linger on, timeout 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await _closed(receive)
    return _nothing_sent()


async def _empty_response(receive: Receive) -> Response:
    transport = transport_of(receive)
    if transport is None:
        raise _without(EmptyWithoutConnection(
            "Remote end closed connection without response (sandbox fault)"), _nothing_sent())
    transport.close()
    await _closed(receive)
    return _nothing_sent()


def _without(err: FaultWithoutConnection, sent: Response) -> FaultWithoutConnection:
    err.sent = sent
    return err


async def _closed(receive: Receive) -> None:
    """Waits until the server has seen the connection go, so it does not try to answer on it
    (uvicorn would otherwise log 'ASGI callable returned without starting response')."""
    try:
        async with asyncio.timeout(_CLOSE_WAIT_SECONDS):
            while True:
                message: Any = await receive()
                if message.get("type") == "http.disconnect":
                    return
    except TimeoutError:
        log.warning("a faulted connection did not report its close in %.0fs", _CLOSE_WAIT_SECONDS)
