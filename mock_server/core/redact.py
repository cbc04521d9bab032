"""Secrets taken out of what the journal keeps: named headers and fields, and JWTs anywhere.

Every scanner here moves forward through its text and never looks back, so its work is linear in
the length of the text whatever a client sends (tests/reliability/test_linear_patterns.py)."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"
_REDACTED_BYTES = REDACTED.encode()

# Header names, query parameters and form or JSON fields whose value is a credential, compared
# case-insensitively: Basic credentials, an OAuth token request (client_secret) and its
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
_PAIR_VALUE_RUN = re.compile(rb"[^&\"'\s,;}<>]*+")
_VALUE = operator.itemgetter(1)


class Redactor:
    """The names to redact, ready for the journal's write path (bytes in, bytes out)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = {n.strip().lower() for n in (*DEFAULT_NAMES, *extra) if n.strip()}
        self.names = frozenset(names)
        self.header_names = frozenset(n.encode("latin-1", "replace") for n in names)
        self._json_keys = tuple(f'"{n}"'.encode("utf-8") for n in sorted(names))
        self._pair_keys = tuple(f"{n}=".encode("utf-8") for n in sorted(names))
        # A text without any of these holds nothing to redact (most requests): the names that
        # contain no other name, looked for in C in the lower-cased text. ("secret" stands for
        # client_secret and secret_key, "token" for access_token...)
        encoded = {n.encode("utf-8") for n in names} | {b"eyj"}
        self._hints = tuple(sorted(n for n in encoded
                                   if not any(o != n and o in n for o in encoded)))
        # one search for all of them (literals only, no repeat: linear,
        # tests/reliability/test_linear_patterns.py)
        self._hint = re.compile(b"|".join(re.escape(h) for h in self._hints))

    # -- headers -------------------------------------------------------------------------------

    def headers(self, headers: tuple[tuple[str | bytes, str | bytes], ...]
                ) -> tuple[tuple[bytes, bytes], ...]:
        """The headers with secret values replaced; the same tuple when there is none (most
        requests: ASGI's lower-case byte names, looked up in C)."""
        names = self.header_names
        if headers and type(headers[0][0]) is bytes:
            if b"eyJ" not in b"\0".join(map(_VALUE, headers)):  # type: ignore[arg-type]
                if names.isdisjoint(dict(headers)):
                    return headers  # type: ignore[return-value]
                return tuple([(n, _REDACTED_BYTES) if n in names else (n, v)  # type: ignore
                              for n, v in headers])
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            raw_name = name if isinstance(name, bytes) else name.encode("latin-1", "replace")
            raw_value = value if isinstance(value, bytes) else value.encode("latin-1", "replace")
            if raw_name.lower() in names:
                raw_value = _REDACTED_BYTES
            elif b"eyJ" in raw_value:
                raw_value = JWT_BYTES.sub(_REDACTED_BYTES, raw_value)
            kept.append((raw_name, raw_value))
        return tuple(kept)

    # -- text: path and query ------------------------------------------------------------------

    def path(self, path: str) -> str:
        return JWT.sub(REDACTED, path) if "eyJ" in path else path

    def query(self, query: str) -> str:
        """The query with secret fields replaced; the same string when it holds none."""
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

    def body(self, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
        """The body with named form or JSON fields and JWTs replaced (`headers` tell a form
        from JSON); the same bytes when nothing in it can be a secret (one search, in C)."""
        if not body or not self._may_hold(body.lower()):
            return body
        if b"x-www-form-urlencoded" in _content_type(headers).lower():
            return self._pairs(body.decode("latin-1")).encode("latin-1")
        redacted = self._inline_pairs(self._json_fields(body, body.lower()))
        return JWT_BYTES.sub(_REDACTED_BYTES, redacted) if b"eyJ" in redacted else redacted

    def _inline_pairs(self, body: bytes) -> bytes:
        return _inline_pairs_of(body, self._pair_keys)

    def jwts(self, body: bytes) -> bytes:
        return JWT_BYTES.sub(_REDACTED_BYTES, body)

    def _may_hold(self, lowered: bytes) -> bool:
        return self._hint.search(lowered) is not None

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


def _inline_pairs_of(body: bytes, keys: tuple[bytes, ...]) -> bytes:
    """`name=value` anywhere in a text (a URL quoted in a message, a form inside JSON): the
    value, up to a delimiter, replaced. One pass per name, never back."""
    for key in keys:
        lowered = body.lower()
        if key not in lowered:
            continue
        out: list[bytes] = []
        last = 0
        at = lowered.find(key)
        while at != -1:
            start = at + len(key)
            # only a whole name: what comes before it is no part of a longer one
            if at == 0 or not (lowered[at - 1:at].isalnum() or lowered[at - 1] == 0x5F):
                stop = _PAIR_VALUE_RUN.match(body, start).end()  # type: ignore[union-attr]
                if stop > start:
                    out += [body[last:start], _REDACTED_BYTES]
                    last = stop
                    start = stop
            at = lowered.find(key, start)
        if out:
            out.append(body[last:])
            body = b"".join(out)
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


def _content_type(headers: tuple[tuple[bytes, bytes], ...]) -> bytes:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value
    return b""


@functools.lru_cache(maxsize=16)
def redactor(extra: tuple[str, ...] = ()) -> Redactor:
    return Redactor(extra)
