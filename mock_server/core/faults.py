"""Fault rules loaded from scenario documents: matching, counters, and the outcome a rule picks."""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from mock_server.core.scenarios import Scenario, parse_duration
from mock_server.core.sessionstore import FaultCounters

log = logging.getLogger("mock_server.faults")

_NO_VALUE = object()


@dataclass(slots=True)
class FaultRule:
    name: str
    scenario: str
    spec: dict[str, Any]
    # requests the rule acted on (the admin API's `matched`), and requests it was asked about
    # while live: `after` and `probability` let some of those through
    matched: int = 0
    seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # where the counters live when the session's state is in a store shared by processes; None:
    # `matched` and `seen` above are the counters (one process, the default)
    counters: FaultCounters | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """The rule's name in the store's counters."""
        return f"{self.scenario}/{self.name}"

    def _matched(self) -> int:
        return self.matched if self.counters is None else self.counters.counts(self.key)[1]

    @property
    def provider(self) -> str | None:
        return (self.spec.get("match") or {}).get("provider")

    @property
    def remaining(self) -> int | None:
        times = self.spec.get("times")
        return None if times is None else max(times - self._matched(), 0)

    @property
    def spent(self) -> bool:
        times = self.spec.get("times")
        return times is not None and self._matched() >= times

    @property
    def delay_seconds(self) -> float:
        delay = self.spec.get("delay")
        return parse_duration(delay).total_seconds() if delay else 0.0

    @property
    def respond(self) -> dict[str, Any] | None:
        return self.spec.get("respond")

    @property
    def fault(self) -> str | None:
        return self.spec.get("fault")

    def outcome_text(self) -> str:
        parts: list[str] = []
        if self.spec.get("delay"):
            parts.append(f"delay {self.spec['delay']}")
        respond = self.spec.get("respond")
        if respond:
            what = respond.get("error") or ("literal body" if "body" in respond else "")
            parts.append(f"respond {respond.get('status')} {what}".strip())
        if self.spec.get("fault"):
            parts.append(f"fault {self.spec['fault']}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "provider": self.provider, "matched": self._matched(),
                "remaining": self.remaining, "outcome": self.outcome_text()}

    def matches(self, request: FaultRequest) -> bool:
        return rule_matches(self.spec.get("match") or {}, request)

    def consider(self, draw: Callable[[], float]) -> bool:
        """Counts one matching request; True when the rule fires for it.

        `after: N` lets the first N matches through, `probability` draws from the session's
        seeded generator; a request the rule lets through goes on to the next rule."""
        if self.counters is not None:
            return self._consider_stored(self.counters, draw)
        with self.lock:
            if self.spent:
                return False
            self.seen += 1
            if self.seen <= int(self.spec.get("after") or 0):
                return False
            probability = self.spec.get("probability")
            if probability is not None and not draw() < probability:
                return False
            self.matched += 1
            return True

    def _consider_stored(self, counters: FaultCounters, draw: Callable[[], float]) -> bool:
        # the same steps, each counter change one atomic store operation: `see` counts the
        # request unless the rule is spent, `fire` ("fire if count < times") takes one of the
        # rule's `times`, which a process sharing the store may have taken meanwhile
        times = self.spec.get("times")
        seen = counters.see(self.key, times)
        if seen is None or seen <= int(self.spec.get("after") or 0):
            return False
        probability = self.spec.get("probability")
        if probability is not None and not draw() < probability:
            return False
        return counters.fire(self.key, times)

    def record(self) -> dict[str, Any]:
        """What the journal and the access log keep about a firing."""
        return {"rule": self.name, "action": self.outcome_text()}


def rules_from(scenario: Scenario) -> list[FaultRule]:
    return [FaultRule(str(spec["name"]), scenario.name, dict(spec))
            for spec in scenario.document.get("faults") or []]


class FaultRequest:
    """The parts of a request a rule can match on; the body is parsed once, on first need."""

    __slots__ = ("provider", "method", "path", "params", "headers", "_raw", "_media", "_body")

    def __init__(self, provider: str, method: str, path: str, params: Mapping[str, str],
                 headers: Mapping[str, str], body: bytes) -> None:
        self.provider = provider
        self.method = method
        self.path = path
        self.params = params
        self.headers = headers  # case-insensitive lookup (Starlette Headers)
        self._raw = body
        self._media = (headers.get("content-type") or "").split(";")[0].strip().lower()
        self._body: Any = _NO_VALUE

    @property
    def body(self) -> Any:
        if self._body is _NO_VALUE:
            self._body = _parse_body(self._raw, self._media)
        return self._body


def choose(rules: Iterable[FaultRule], request: FaultRequest,
           draw: Callable[[], float]) -> FaultRule | None:
    """The first live rule that matches the request and fires for it, counters updated."""
    for rule in rules:
        if rule.spent or not rule.matches(request):
            continue
        if rule.consider(draw):
            return rule
    return None


class FaultIndex:
    """A session's rules by what they name of provider, method and a path without globs, so a
    request is matched against the few rules that can apply to it, not all of them; the first
    live matching rule still wins (rules keep their load order)."""

    __slots__ = ("_buckets", "_size")

    def __init__(self, rules: Iterable[FaultRule]) -> None:
        self._buckets: dict[tuple[str | None, str | None, str | None],
                            list[tuple[int, FaultRule]]] = {}
        self._size = 0
        for order, rule in enumerate(rules):
            self._size += 1
            match = rule.spec.get("match") or {}
            provider = match.get("provider")
            method = match.get("method")
            path = match.get("path")
            key = (provider if isinstance(provider, str) else None,
                   method.upper() if isinstance(method, str) else None,
                   path if isinstance(path, str) and not _GLOB_CHARS.intersection(path)
                   else None)
            self._buckets.setdefault(key, []).append((order, rule))

    def __len__(self) -> int:
        return self._size

    def candidates(self, request: FaultRequest) -> list[FaultRule]:
        """The rules that may match the request, in load order."""
        buckets = self._buckets
        if not buckets:
            return []
        found: list[tuple[int, FaultRule]] = []
        method = request.method.upper()
        for provider in (request.provider, None):
            for verb in (method, None):
                for path in (request.path, None):
                    bucket = buckets.get((provider, verb, path))
                    if bucket:
                        found.extend(bucket)
        if len(found) > 1:
            found.sort(key=_order)
        return [rule for _, rule in found]


_GLOB_CHARS = frozenset("*?")


def _order(item: tuple[int, FaultRule]) -> int:
    return item[0]


# --- matching ---------------------------------------------------------------------------------

def rule_matches(match: Mapping[str, Any], request: FaultRequest) -> bool:
    """Every field given must match; an empty `match` matches every provider request."""
    provider = match.get("provider")
    if provider is not None and provider != request.provider:
        return False
    method = match.get("method")
    if method is not None and method.upper() != request.method.upper():
        return False
    path = match.get("path")
    if path is not None and not glob(path).fullmatch(request.path):
        return False
    for name, pattern in (match.get("params") or {}).items():
        value = request.params.get(name)
        if value is None or not glob(str(pattern)).fullmatch(value):
            return False
    for name, pattern in (match.get("headers") or {}).items():
        # a header rule needs the header: even "*" does not match a missing one
        value = request.headers.get(name.lower())
        if value is None or not glob(str(pattern)).fullmatch(value):
            return False
    wanted = match.get("body") or {}
    if wanted:
        body = request.body
        for dotted, expected in wanted.items():
            if not value_matches(lookup(body, dotted), expected):
                return False
    return True


class Glob:
    """`*` matches any run of characters (slashes too), `?` one character; nothing else is
    special, so a path or reference with brackets or dots matches itself.

    Matched piece by piece, not as one regex: `.*a.*a.*b` tries every way of placing each star
    (a path of 30,000 a's: hours). The pieces between stars hold no repeat; each is placed at
    its leftmost fit after the one before (for star-only globs that placement is enough: a
    later fit is never needed), so matching costs the length of the text times the pattern's."""

    def __init__(self, pattern: str) -> None:
        def piece(text: str) -> re.Pattern[str]:
            return re.compile("".join("." if c == "?" else re.escape(c) for c in text),
                              re.DOTALL)
        self.pattern = pattern
        parts = pattern.split("*")
        self._whole = piece(parts[0]) if len(parts) == 1 else None
        self._first, self._last = piece(parts[0]), piece(parts[-1])
        self._middle = [piece(p) for p in parts[1:-1] if p]
        self._last_width = len(parts[-1])

    def fullmatch(self, text: str) -> Glob | None:
        if self._whole is not None:
            return self if self._whole.fullmatch(text) else None
        start = self._first.match(text)
        if start is None:
            return None
        at = start.end()
        tail = len(text) - self._last_width
        if tail < at or not self._last.fullmatch(text, tail):
            return None
        for middle in self._middle:
            found = middle.search(text, at, tail)
            if found is None:
                return None
            at = found.end()
        return self


@functools.lru_cache(maxsize=1024)
def glob(pattern: str) -> Glob:
    return Glob(pattern)


def lookup(document: Any, dotted: str) -> Any:
    """The value at a dotted path (`amount.currency`, `items.0.sku`), or _NO_VALUE.

    A key that itself contains dots (`"a.b": 1`) is found too: the longest key that fits wins."""
    if dotted in ("", "."):
        return document
    if isinstance(document, dict):
        if dotted in document:
            return document[dotted]
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:cut])
            if head in document:
                found = lookup(document[head], ".".join(parts[cut:]))
                if found is not _NO_VALUE:
                    return found
        return _NO_VALUE
    if isinstance(document, list):
        head, _, rest = dotted.partition(".")
        if head.isdigit() and int(head) < len(document):
            return lookup(document[int(head)], rest) if rest else document[int(head)]
    return _NO_VALUE


def value_matches(value: Any, expected: Any) -> bool:
    """A string is a glob against the value's text (a JSON number as written, true/false/null);
    a number, boolean or null must equal the value exactly. A missing field matches nothing."""
    if value is _NO_VALUE or isinstance(value, dict | list):
        return False
    if isinstance(expected, str):
        return glob(expected).fullmatch(_text(value)) is not None
    if expected is None or isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(value, int | Decimal) and isinstance(expected, int | float):
        try:
            return Decimal(value) == Decimal(str(expected))
        except InvalidOperation:
            return False
    return False


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_body(raw: bytes, media: str) -> Any:
    if not raw:
        return None
    if media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    try:
        # numbers keep their written text (10.50 stays "10.50" for a glob)
        return json.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
