"""uvicorn's httptools protocol with a bounded request head.

llhttp (httptools) puts no limit on the request line or on a header: uvicorn would hold a 100 MB
header in memory and pass it on. Here the bytes of each head are counted as they arrive; one
byte over --max-header-bytes and the request is answered 431 in the owning provider's shape
(SandboxApp.refuse_head) and the connection closed, before the rest of the head is read.
Header lines over --max-header-field-bytes within that are refused by the app (core.limits)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from mock_server.core.limits import HEAD_TOO_LARGE


# after a 431, how long and how much the client may go on sending before the connection closes
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024


def bounded_protocol(sandbox: Any, max_head: int) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn.Config(http=...), answering through `sandbox`."""

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True  # between a message's first byte and its headers' end
            self._head_bytes = 0
            self._refusal: bytes | None = None  # waiting for the answer in flight to finish
            self._discarded = -1  # once the refusal is out: bytes read and dropped since

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes = True, 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            if self._discarded >= 0:
                self._discard(len(data))
                return
            # Only the part of `data` that may still be head is counted: the parser is fed at
            # most what is left of the budget, so it says where the head ended before a body
            # (or the next pipelined request) is counted as head.
            while data and self._in_head and self._refusal is None:
                room = max_head - self._head_bytes
                if room <= 0:
                    self._refuse()
                    return
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
                super().data_received(piece)
                if self.transport.is_closing() or self.parser is None:
                    return
            if data and self._refusal is None:
                super().data_received(data)

        def _refuse(self) -> None:
            try:
                method = self.parser.get_method().decode("ascii", "replace")
            except Exception:  # noqa: BLE001 - not even a method yet
                method = "GET"
            target = (getattr(self, "url", b"") or b"/").split(b"?", 1)[0]
            response = sandbox.refuse_head(method, target.decode("latin-1") or "/",
                                           HEAD_TOO_LARGE.format(limit=max_head), target)
            head = [STATUS_LINE[response.status_code]]
            for name, value in [*self.server_state.default_headers,
                                *response.raw_headers, (b"connection", b"close")]:
                head += [name, b": ", value, b"\r\n"]
            self._refusal = b"".join([*head, b"\r\n", bytes(response.body)])
            if self.cycle is not None and not self.cycle.response_complete:
                self.flow.pause_reading()  # an earlier request's answer goes out first
            else:
                self._send_refusal()

        def _send_refusal(self) -> None:
            # A lingering close, as nginx's: closing while the client is still sending would
            # reset the connection and could destroy the 431 before the client reads it. The
            # sending side is shut, what still arrives is read and dropped, up to a bound.
            assert self._refusal is not None
            self.transport.write(self._refusal)
            if not self.transport.can_write_eof():
                self.transport.close()
                return
            self.transport.write_eof()
            self._discarded = 0
            asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)

        def _discard(self, size: int) -> None:
            self._discarded += size
            if self._discarded > LINGER_BYTES:
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._refusal is not None and not self.pipeline and not self.transport.is_closing():
                self._send_refusal()

    return BoundedHttpToolsProtocol


def uvicorn_options(sandbox: Any) -> dict[str, Any]:
    """What uvicorn.Config needs to bound request heads as `mock-server serve` does."""
    limit = sandbox.settings.max_header_bytes
    # were uvicorn to use h11, h11's own limit on an incomplete head is the same figure
    return {"http": bounded_protocol(sandbox, limit), "h11_max_incomplete_event_size": limit}
