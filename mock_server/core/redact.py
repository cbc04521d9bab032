"""Secrets taken out of what the journal keeps: named headers and fields, and JWTs anywhere.

Every scanner here moves forward through its text and never looks back, so its work is linear in
the length of the text whatever a client sends (tests/reliability/test_linear_patterns.py)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"
_REDACTED_BYTES = REDACTED.encode()

# Header names, query parameters and form or JSON fields whose value is a credential, compared
# case-insensitively: Afterpay's Basic credentials, Optty's token request (client_secret) and
# answer (access_token), API keys, cookies. --redact NAME adds to these.
DEFAULT_NAMES = (
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
    "api_key", "apikey", "client_secret", "clientsecret", "secret", "secretkey", "secret_key",
    "password", "passwd", "access_token", "refresh_token", "id_token", "token",
)

# A JWT (three base64url segments, the first a JSON object "{"..." = eyJ) starting where a run of
# base64url characters starts: the look-behind lets an attempt begin only at the start of a run
# and the possessive repeats never give back what they took, so each character is read at most
# twice (as the end of one segment, the start of the next), never once per start position.
_JWT_CHARS = "A-Za-z0-9_-"
JWT = re.compile(f"(?<![{_JWT_CHARS}])eyJ[{_JWT_CHARS}]*+\\.[{_JWT_CHARS}]++\\.[{_JWT_CHARS}]*+")
JWT_BYTES = re.compile(JWT.pattern.encode())
# the inside of a JSON string from a given position: anchored, one possessive class
_JSON_STRING_RUN = re.compile(rb'[^"\\]*+')
_JSON_SCALAR_RUN = re.compile(rb"[^,}\]\s]*+")
_JSON_SPACE_RUN = re.compile(rb"[ \t\r\n]*+")


class Redactor:
    """The names to redact, ready for the journal's write path (bytes in, bytes out)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = {n.strip().lower() for n in (*DEFAULT_NAMES, *extra) if n.strip()}
        self.names = frozenset(names)
        self.header_names = frozenset(n.encode("latin-1", "replace") for n in names)
        self._json_keys = tuple(f'"{n}"'.encode("utf-8") for n in sorted(names))
        # a text without any of these holds nothing to redact: most requests, checked in C
        self._hints = tuple(sorted({n.encode("utf-8") for n in names}, key=len))

    # -- headers -------------------------------------------------------------------------------

    def headers(self, headers: Iterable[tuple[str | bytes, str | bytes]]
                ) -> list[tuple[bytes, bytes]]:
        kept: list[tuple[bytes, bytes]] = []
        names = self.header_names
        for name, value in headers:
            raw_name = name if isinstance(name, bytes) else name.encode("latin-1", "replace")
            raw_value = value if isinstance(value, bytes) else value.encode("latin-1", "replace")
            if raw_name.lower() in names:
                raw_value = _REDACTED_BYTES
            elif b"eyJ" in raw_value:
                raw_value = JWT_BYTES.sub(_REDACTED_BYTES, raw_value)
            kept.append((raw_name, raw_value))
        return kept

    # -- text: path and query ------------------------------------------------------------------

    def path(self, path: str) -> str:
        return JWT.sub(REDACTED, path) if "eyJ" in path else path

    def query(self, query: str) -> str:
        if not query:
            return query
        if not self._may_hold(query.lower().encode("utf-8", "replace")):
            return query
        return self._pairs(query) if "=" in query else self.path(query)

    def _pairs(self, text: str) -> str:
        # a=b&c=d: every piece once, split in C; the name is compared percent-decoded
        pieces = text.split("&")
        for index, piece in enumerate(pieces):
            name, equals, value = piece.partition("=")
            if equals and unquote_plus(name).strip().lower() in self.names:
                pieces[index] = f"{name}={REDACTED}"
            elif "eyJ" in value:
                pieces[index] = f"{name}{equals}{JWT.sub(REDACTED, value)}"
        return "&".join(pieces)

    # -- bodies --------------------------------------------------------------------------------

    def body(self, body: bytes, content_type: bytes | None = None) -> bytes:
        if not body:
            return body
        lowered = body.lower()
        if not self._may_hold(lowered):
            return body
        if content_type is not None and b"x-www-form-urlencoded" in content_type.lower():
            text = body.decode("latin-1")
            return self._pairs(text).encode("latin-1")
        redacted = self._json_fields(body, lowered)
        return JWT_BYTES.sub(_REDACTED_BYTES, redacted) if b"eyJ" in redacted else redacted

    def _may_hold(self, lowered: bytes) -> bool:
        return b"eyj" in lowered or any(map(lowered.__contains__, self._hints))

    def _json_fields(self, body: bytes, lowered: bytes) -> bytes:
        """`"name": value` for each name: the value (a string or a scalar) replaced. One pass
        per name, each from the start to the end of the body, never back."""
        for key in self._json_keys:
            if key not in lowered:
                continue
            out: list[bytes] = []
            last = 0  # what is copied to `out` so far
            at = lowered.find(key)
            while at != -1:
                end = _value_span(body, at + len(key))
                if end is None:
                    at = lowered.find(key, at + len(key))
                    continue
                start, stop = end
                out.append(body[last:start])
                out.append(b'"' + _REDACTED_BYTES + b'"')
                last = stop
                at = lowered.find(key, stop)
            if out:
                out.append(body[last:])
                body = b"".join(out)
                lowered = body.lower()
        return body


def _value_span(body: bytes, at: int) -> tuple[int, int] | None:
    """Where the JSON value after a key ends: (start, stop) of `: <value>`'s value, or None when
    no colon follows (the key was a value itself)."""
    at = _JSON_SPACE_RUN.match(body, at).end()  # type: ignore[union-attr]
    if at >= len(body) or body[at] != 0x3A:  # ':'
        return None
    at = _JSON_SPACE_RUN.match(body, at + 1).end()  # type: ignore[union-attr]
    if at >= len(body) or body[at] in b"{[":
        return None  # an object or array: its own fields are looked at on their own
    start = at
    if body[at] == 0x22:  # '"'
        at += 1
        while True:
            at = _JSON_STRING_RUN.match(body, at).end()  # type: ignore[union-attr]
            if at >= len(body):
                return start, len(body)  # unterminated: the rest is the value
            if body[at] == 0x5C:  # '\\' and the character it escapes
                at += 2
                continue
            return start, at + 1
    stop = _JSON_SCALAR_RUN.match(body, at).end()  # type: ignore[union-attr]
    return (start, stop) if stop > start else None


@functools.lru_cache(maxsize=16)
def redactor(extra: tuple[str, ...] = ()) -> Redactor:
    return Redactor(extra)
