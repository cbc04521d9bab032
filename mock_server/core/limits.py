"""The request head's size limits (--max-header-bytes, --max-header-field-bytes).

Checked twice: by the HTTP protocol while the head arrives (core.protocol: a head over the limit
is never held whole in memory), and by the app on the scope it is given (any ASGI server, the
test client), before a session is looked up or anything is journaled."""

from __future__ import annotations

from collections.abc import Iterable

# "METHOD SP target SP HTTP/1.1 CRLF" around the target, and ": " + CRLF around a header
_REQUEST_LINE_EXTRA = len(" HTTP/1.1\r\n ")
_FIELD_EXTRA = len(": \r\n")

FIELD_TOO_LARGE = ("a request header line is larger than {limit} bytes "
                   "(--max-header-field-bytes)")
HEAD_TOO_LARGE = ("the request line and headers are larger than {limit} bytes "
                  "(--max-header-bytes)")


def head_problem(method: str, target_bytes: int, headers: Iterable[tuple[bytes, bytes]],
                 *, max_head: int, max_field: int) -> str | None:
    """What is wrong with a request head's size, or None when it is within both limits."""
    total = len(method) + target_bytes + _REQUEST_LINE_EXTRA
    for name, value in headers:
        size = len(name) + len(value) + _FIELD_EXTRA
        if size > max_field:
            return FIELD_TOO_LARGE.format(limit=max_field)
        total += size
    if total > max_head:
        return HEAD_TOO_LARGE.format(limit=max_head)
    return None
