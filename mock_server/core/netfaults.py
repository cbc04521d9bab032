"""Network faults on the real connection: a reset, an empty reply, garbage, a cut or slow body.

ASGI gives an application no socket, yet a reset or a reply that stops half-way can only be
produced on the socket. Under uvicorn (the `serve` command, or uvicorn run in-process) the
`receive` callable is a method of the request's cycle object, which holds the asyncio transport:
that is where the sandbox reaches the connection. Under a server without a transport (an
in-process test client), the faults that need one raise in the application instead, so the
client still sees the exchange fail; see deliver().
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
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mock_server.core.ids import IdSource

log = logging.getLogger("mock_server.faults")

# slow_body: the status line and headers at once, then the body in this many pieces spread
# evenly over this many seconds; long enough to trip a client's read timeout, short enough
# that a drill never holds a connection for long
SLOW_BODY_SECONDS = 3.0
SLOW_BODY_PIECES = 6
# how long to wait for the server to notice a connection the sandbox closed
_CLOSE_WAIT_SECONDS = 2.0


class ConnectionFault(ConnectionError):
    """Raised in the application when a network fault has no real connection to act on."""


def transport_of(receive: Receive) -> asyncio.Transport | None:
    """The connection's transport, when the ASGI server is uvicorn (h11 or httptools)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if isinstance(transport, asyncio.BaseTransport) and hasattr(transport, "abort"):
        return transport  # type: ignore[return-value]
    return None


async def deliver(fault: str, response: Response, scope: Scope, receive: Receive, send: Send,
                  chances: IdSource) -> None:
    """Sends `response` damaged as `fault` says. The provider has already answered (a refund
    is recorded); the client just does not get that answer whole."""
    if fault == "slow_body":
        await _slow_body(response, receive, send)
    elif fault == "malformed_body":
        await _malformed_body(response, send, random.Random(chances.chance()))
    elif fault == "truncated_body":
        await _truncated_body(response, receive, send)
    elif fault == "connection_reset":
        await _connection_reset(receive)
    elif fault == "empty_response":
        await _empty_response(receive)
    else:  # the scenario schema lists every fault; an unknown one is a programming error
        raise ValueError(f"unknown network fault {fault!r}")


def _headers(response: Response, content_length: int) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in response.raw_headers if name != b"content-length"]
    return [*kept, (b"content-length", str(content_length).encode())]


async def _start(response: Response, send: Send, content_length: int) -> None:
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": _headers(response, content_length)})


async def _slow_body(response: Response, receive: Receive, send: Send) -> None:
    body = bytes(response.body)
    transport = transport_of(receive)
    await _start(response, send, len(body))
    pieces = max(1, min(SLOW_BODY_PIECES, len(body)))
    size = -(-len(body) // pieces) if body else 0
    pause = SLOW_BODY_SECONDS / pieces
    for index in range(pieces):
        await asyncio.sleep(pause)
        if transport is not None and transport.is_closing():
            return  # the client gave up (its read timeout): nobody is left to dribble to
        chunk = body[index * size:(index + 1) * size]
        last = index == pieces - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": not last})


def garbage(length: int, rng: random.Random) -> bytes:
    """Bytes no JSON parser accepts: 0xFF cannot start UTF-8 text, let alone JSON."""
    return b"\xff" + rng.randbytes(max(length, 16) - 1)


async def _malformed_body(response: Response, send: Send, rng: random.Random) -> None:
    body = garbage(len(response.body), rng)
    await _start(response, send, len(body))
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _truncated_body(response: Response, receive: Receive, send: Send) -> None:
    body = bytes(response.body)
    declared = max(len(body), 1)
    partial = body[: len(body) // 2]
    transport = transport_of(receive)
    await _start(response, send, declared)
    await send({"type": "http.response.body", "body": partial, "more_body": True})
    if transport is None:
        raise ConnectionFault(
            f"truncated_body: {len(partial)} of {declared} bytes sent, then the connection closed")
    transport.close()  # what was written still goes out, then FIN: fewer bytes than declared
    await _closed(receive)


async def _connection_reset(receive: Receive) -> None:
    transport = transport_of(receive)
    if transport is None:
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer (sandbox fault)")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # linger on, timeout 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await _closed(receive)


async def _empty_response(receive: Receive) -> None:
    transport = transport_of(receive)
    if transport is None:
        # what http.client raises for a connection closed before any byte of a reply
        raise http.client.RemoteDisconnected(
            "Remote end closed connection without response (sandbox fault)")
    transport.close()
    await _closed(receive)


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
