"""Header values the sandbox builds from data (a merchant id in X-Sandbox-Warning, a scripted
header), made safe to send: one line of printable ASCII, of bounded length.

A CR or LF in a value would end the header (or let text forge another); a character beyond
Latin-1 cannot be encoded at all. uvicorn refuses either once the answer has begun, which drops
the connection after the handler did its work. Such characters are written as \\uXXXX escapes
(the journal keeps the text as it was), and a value is cut at MAX_VALUE_CHARS."""

from __future__ import annotations

import re

MAX_VALUE_CHARS = 4096
_CUT = "..."
# what no header value may hold: controls (TAB aside) and DEL - one class, searched in C
_UNSAFE_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def header_value(text: str) -> bytes:
    """`text` as a header value: printable ASCII kept, everything else escaped, cut to size."""
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS - len(_CUT)] + _CUT
    if text.isascii() and text.isprintable():
        return text.encode("ascii")  # the common case, checked in C
    safe = "".join(c if " " <= c <= "~" else _escape(c) for c in text)
    if len(safe) > MAX_VALUE_CHARS:
        safe = safe[:MAX_VALUE_CHARS - len(_CUT)] + _CUT
    return safe.encode("ascii")


def safe_raw_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The same headers with any value uvicorn would refuse escaped (a last line of defence:
    values built from data go through header_value already)."""
    if not any(_UNSAFE_BYTES.search(value) for _name, value in headers):
        return headers
    return [(name, header_value(value.decode("latin-1")) if _UNSAFE_BYTES.search(value)
             else value) for name, value in headers]
