"""Request verification in the style of WireMock's verify: which journal entries match, and
when the count is wrong, the nearest entries and what differed in each."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import Any, Protocol
from urllib.parse import parse_qsl



class JournalEntry(Protocol):
    """What verification reads of a journal entry (mock_server.client.JournalEntry has it)."""

    @property
    def id(self) -> int: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def operation(self) -> str | None: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def body(self) -> str: ...
    @property
    def status(self) -> int: ...


NEAREST = 3
_SHOWN = 80
_MISSING = object()


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(
        value, Decimal) else f'"{value}"'
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


@dataclass(frozen=True)
class RequestMatch:
    """What a request must be like; None: not compared."""

    provider: str | None = None
    operation: str | None = None
    method: str | None = None
    path: str | None = None  # a glob: * any run of characters, ? one
    status: int | None = None
    headers: Mapping[str, str] | None = None  # names in any case, globs on values
    body: Any = None  # a partial match of the JSON (or form) body; a str: the whole body
    query: str | None = None  # a glob on the raw query string

    def describe(self) -> str:
        parts = [f"{name}={_show(value) if name in ('body', 'headers') else value}"
                 for name, value in (("provider", self.provider), ("operation", self.operation),
                                     ("method", self.method), ("path", self.path),
                                     ("query", self.query), ("status", self.status),
                                     ("headers", self.headers), ("body", self.body))
                 if value is not None]
        return " ".join(parts) or "(any request)"

    def differences(self, entry: JournalEntry) -> list[str]:
        found: list[str] = []
        for name in ("provider", "operation", "status"):
            wanted = getattr(self, name)
            if wanted is not None and getattr(entry, name) != wanted:
                found.append(f"{name}: expected {_show(wanted)}, got {_show(getattr(entry, name))}")
        if self.method is not None and entry.method.upper() != self.method.upper():
            found.append(f"method: expected {self.method.upper()}, got {entry.method}")
        if self.path is not None and not fnmatchcase(entry.path, self.path):
            found.append(f"path: expected {_show(self.path)}, got {_show(entry.path)}")
        if self.query is not None and not fnmatchcase(entry.query, self.query):
            found.append(f"query: expected {_show(self.query)}, got {_show(entry.query)}")
        for header, pattern in (self.headers or {}).items():
            value = entry.headers.get(header.lower())
            if value is None:
                found.append(f"header {header}: missing (expected {_show(pattern)})")
            elif not fnmatchcase(value, pattern):
                found.append(f"header {header}: expected {_show(pattern)}, got {_show(value)}")
        if self.body is not None:
            found.extend(_body_differences(self.body, entry.body))
        return found


def _body_differences(expected: Any, text: str) -> list[str]:
    if isinstance(expected, str | bytes):
        wanted = expected.decode() if isinstance(expected, bytes) else expected
        return [] if text == wanted else [f"body: expected {_show(wanted)}, got {_show(text)}"]
    try:
        actual: Any = json.loads(text)
    except ValueError:
        # a form body (Optty's POST /token): its fields, each once
        pairs = parse_qsl(text, keep_blank_values=True) if "=" in text else None
        if not pairs:
            return [f"body: expected JSON like {_show(expected)}, got {_show(text)}"]
        actual = dict(pairs)
    out: list[str] = []
    _diff(expected, actual, "body", out)
    return out


def _diff(expected: Any, actual: Any, where: str, out: list[str]) -> None:
    if isinstance(expected, Mapping):
        if not isinstance(actual, dict):
            out.append(f"{where}: expected an object, got {_show(actual)}")
            return
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}.{key}: missing (expected {_show(value)})")
            else:
                _diff(value, actual[key], f"{where}.{key}", out)
    elif isinstance(expected, list | tuple):
        if not isinstance(actual, list) or len(actual) != len(expected):
            out.append(f"{where}: expected {len(expected)} items like {_show(list(expected))}, "
                       f"got {_show(actual)}")
            return
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _diff(want, got, f"{where}[{index}]", out)
    elif not _equal(expected, actual):
        out.append(f"{where}: expected {_show(expected)}, got {_show(actual)}")


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Decimal):
        # money: "10.00", "10.0" and 10 are one amount
        if isinstance(actual, bool) or not isinstance(actual, str | int | float):
            return False
        try:
            return Decimal(str(actual)) == expected
        except InvalidOperation:
            return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(type(expected) is type(actual) and expected == actual) or (
        isinstance(expected, int | float) and isinstance(actual, int | float)
        and expected == actual)


def _line(entry: JournalEntry) -> str:
    operation = f" ({entry.operation})" if entry.operation else ""
    return f"#{entry.id} {entry.method} {entry.path} -> {entry.status}{operation}"


def mismatch_report(wanted: RequestMatch, entries: Sequence[JournalEntry], *,
                    count: int | None = None, at_least: int | None = None
                    ) -> tuple[list[JournalEntry], str | None]:
    """(the matching entries oldest first, None) when the count is right, else the text of the
    AssertionError. `entries` newest first, as the journal gives them."""
    if count is not None and at_least is not None:
        raise ValueError("give count (exactly) or at_least, not both")
    if count is not None and count < 0 or at_least is not None and at_least < 0:
        raise ValueError("count and at_least cannot be negative")
    checked = [(entry, wanted.differences(entry)) for entry in entries]
    matched = [entry for entry, diff in reversed(checked) if not diff]
    low = at_least if at_least is not None else (1 if count is None else count)
    ok = len(matched) == count if count is not None else len(matched) >= low
    if ok:
        return matched, None
    expectation = (f"exactly {count}" if count is not None else f"at least {low}")
    plural = "" if (count if count is not None else low) == 1 else "s"
    lines = [f"expected {expectation} request{plural} matching {wanted.describe()}; "
             f"{len(matched)} matched, of {len(entries)} in the journal"]
    if matched:
        lines.append("matched:")
        lines.extend(f"  {_line(entry)}" for entry in matched[:10])
        if len(matched) > 10:
            lines.append(f"  ... and {len(matched) - 10} more")
    # the nearest: fewest differences first, then the newest
    near = sorted((item for item in checked if item[1]), key=lambda item: len(item[1]))[:NEAREST]
    if near:
        lines.append("nearest requests that did not match:")
        for entry, diff in near:
            lines.append(f"  {_line(entry)}")
            lines.extend(f"      {line}" for line in diff)
    elif not entries:
        lines.append("(the journal of this session is empty)")
    return matched, "\n".join(lines)
