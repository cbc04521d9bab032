"""A typed client for the sandbox's admin API, over httpx: SandboxClient and AsyncSandboxClient."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from mock_server.verify import RequestMatch, mismatch_report

ADMIN_TOKEN_ENV = "MOCK_SERVER_ADMIN_TOKEN"
SESSION_HEADER = "X-Sandbox-Session"
# the journal's largest page (openapi/admin.yaml, listRequests `limit`)
MAX_PAGE = 10_000
_SCENARIO_SUFFIXES = (".yaml", ".yml", ".json")
DICT_SOURCE = "<dict>"

T = TypeVar("T")


class SandboxError(Exception):
    """The sandbox refused an admin call: `status`, its `error` code and `message`, and for a
    bad scenario every `problems` line (`source:line: what is wrong`)."""

    def __init__(self, status: int, body: Any, what: str) -> None:
        self.status = status
        self.body = body
        self.error = body.get("error") if isinstance(body, dict) else None
        self.message = body.get("message") if isinstance(body, dict) else None
        problems = body.get("problems") if isinstance(body, dict) else None
        self.problems: list[str] = list(problems) if isinstance(problems, list) else []
        detail = "\n".join(self.problems) if self.problems else (self.message or body)
        if status == 401:
            detail = (f"{detail}: the sandbox runs with --admin-token; give the same token as "
                      f"admin_token=... or in ${ADMIN_TOKEN_ENV}")
        super().__init__(f"{what}: {status} {detail}")


class SandboxUnreachable(SandboxError, ConnectionError):
    """No sandbox answered at the client's URL (refused, timed out, not HTTP)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        Exception.__init__(self, f"no sandbox answers at {url}: {reason}")
        self.status, self.body, self.error, self.message, self.problems = (
            0, None, "unreachable", reason, [])


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- what the admin API answers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    version: str
    sessions: int
    uptime_seconds: float
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Health:
        return cls(raw["status"], raw.get("version", ""), raw.get("sessions", 0),
                   raw.get("uptimeSeconds", 0.0), raw)


@dataclass(frozen=True, slots=True)
class Clock:
    session: str
    now: datetime
    frozen: bool
    offset_seconds: float
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Clock:
        return cls(raw["session"], _instant(raw["now"]), raw["frozen"], raw["offsetSeconds"], raw)


@dataclass(frozen=True, slots=True)
class ScenarioLoaded:
    session: str
    name: str
    seeded: dict[str, int]
    faults: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> ScenarioLoaded:
        return cls(raw["session"], raw["name"], dict(raw.get("seeded") or {}), raw["faults"], raw)


@dataclass(frozen=True, slots=True)
class FaultRuleState:
    name: str
    provider: str | None
    matched: int
    remaining: int | None
    outcome: str

    @classmethod
    def of(cls, raw: dict[str, Any]) -> FaultRuleState:
        return cls(raw["name"], raw.get("provider"), raw.get("matched", 0), raw.get("remaining"),
                   raw.get("outcome", ""))


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    name: str
    source: str
    loaded_at: datetime
    faults: list[FaultRuleState]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> ScenarioInfo:
        return cls(raw["name"], raw.get("source", ""), _instant(raw["loadedAt"]),
                   [FaultRuleState.of(f) for f in raw.get("faults") or ()], raw)


@dataclass(frozen=True, slots=True)
class ScenarioRemoved:
    session: str
    name: str
    removed_faults: int
    # what the scenario seeded and the session keeps (DELETE removes fault rules only)
    kept: dict[str, int]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> ScenarioRemoved:
        return cls(raw["session"], raw["name"], raw["removedFaults"], dict(raw.get("kept") or {}),
                   raw)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request the session received (or a webhook it sent, kind "callback") and the answer.
    `status` 0: a network fault kept the answer from going out whole."""

    id: int
    at: datetime
    kind: str
    provider: str | None
    operation: str | None
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str
    status: int
    response_headers: dict[str, str]
    response_body: str
    duration_ms: float
    warnings: list[str]
    fault: dict[str, Any] | None
    # a list page may cut long bodies; request(id) gives the entry whole
    body_truncated: bool = False
    response_body_truncated: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> JournalEntry:
        return cls(
            id=raw["id"], at=_instant(raw["at"]), kind=raw.get("kind", "request"),
            provider=raw.get("provider"), operation=raw.get("operation"), method=raw["method"],
            path=raw["path"], query=raw.get("query", ""), headers=dict(raw.get("headers") or {}),
            body=raw.get("body", ""), status=raw["status"],
            response_headers=dict(raw.get("responseHeaders") or {}),
            response_body=raw.get("responseBody", ""), duration_ms=raw.get("durationMs", 0.0),
            warnings=list(raw.get("warnings") or ()), fault=raw.get("fault"),
            body_truncated=bool(raw.get("bodyTruncated")),
            response_body_truncated=bool(raw.get("responseBodyTruncated")), raw=raw)

    def json(self) -> Any:
        """The request body parsed as JSON (ValueError when it is not JSON)."""
        return json.loads(self.body)

    def response_json(self) -> Any:
        return json.loads(self.response_body)

    @property
    def finished(self) -> bool:
        """False while the sandbox is still answering it (no status, no duration yet)."""
        return self.status != 0 or self.fault is not None or self.duration_ms > 0


@dataclass(frozen=True, slots=True)
class JournalPage:
    session: str
    total: int
    requests: list[JournalEntry]
    # the cursor for the next, older page (pass it as before=...), None on the last page
    next: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, raw: dict[str, Any]) -> JournalPage:
        return cls(raw["session"], raw["total"], [JournalEntry.of(e) for e in raw["requests"]],
                   raw.get("next"), raw)


# -- the calls, once for both clients ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None
    # a dict scenario has no lines of its own: its problems are named by key path alone
    unlined_source: str | None = None


def _scenario_body(scenario: Mapping[str, Any] | str | bytes | os.PathLike[str]
                   ) -> tuple[bytes, str]:
    """(the document's bytes, its source name for error lines)."""
    if isinstance(scenario, Mapping):
        # one key per line: a problem's line number points at the key it names
        return json.dumps(scenario, default=str).encode(), DICT_SOURCE
    if isinstance(scenario, bytes):
        return scenario, "<test>"
    if is_scenario_path(scenario):
        path = Path(scenario)
        return path.read_bytes(), str(path)
    if isinstance(scenario, str):
        return scenario.encode(), "<test>"
    raise TypeError("a scenario is a dict, YAML/JSON text or a path to a .yaml/.yml/.json file, "
                    f"not {type(scenario).__name__}")


def is_scenario_path(scenario: object) -> bool:
    """A one-line string naming a scenario file is a path; any other string is the document."""
    return isinstance(scenario, os.PathLike) or (
        isinstance(scenario, str) and "\n" not in scenario
        and scenario.lower().endswith(_SCENARIO_SUFFIXES))


def _advance_units(delta: timedelta | None, units: Mapping[str, float]) -> dict[str, float]:
    moved = dict(units)
    if delta is not None:
        moved["seconds"] = moved.get("seconds", 0) + delta.total_seconds()
    return moved


def _query(provider: str | None, status: int | None, operation: str | None, limit: int | None,
           before: int | None) -> dict[str, Any]:
    return {k: v for k, v in (("provider", provider), ("status", status),
                              ("operation", operation), ("limit", limit), ("before", before))
            if v is not None}


class _Calls:
    """Every admin call as data: what to send and how to read the answer."""

    @staticmethod
    def health() -> _Call[Health]:
        return _Call("GET", "/__admin/health", Health.of)

    @staticmethod
    def reset() -> _Call[None]:
        return _Call("POST", "/__admin/reset", lambda _body: None)

    @staticmethod
    def load_scenario(scenario: Mapping[str, Any] | str | bytes | os.PathLike[str]
                      ) -> _Call[ScenarioLoaded]:
        data, source = _scenario_body(scenario)
        return _Call("POST", "/__admin/scenarios", ScenarioLoaded.of, content=data,
                     headers={"Content-Type": "application/yaml", "X-Scenario-Source": source},
                     unlined_source=source if source == DICT_SOURCE else None)

    @staticmethod
    def scenarios() -> _Call[list[ScenarioInfo]]:
        return _Call("GET", "/__admin/scenarios",
                     lambda body: [ScenarioInfo.of(s) for s in body["scenarios"]])

    @staticmethod
    def unload_scenario(name: str) -> _Call[ScenarioRemoved]:
        return _Call("DELETE", f"/__admin/scenarios/{quote(name, safe='')}", ScenarioRemoved.of)

    @staticmethod
    def requests(provider: str | None, status: int | None, operation: str | None,
                 limit: int | None, before: int | None) -> _Call[JournalPage]:
        return _Call("GET", "/__admin/requests", JournalPage.of,
                     params=_query(provider, status, operation, limit, before))

    @staticmethod
    def request(entry_id: int) -> _Call[JournalEntry]:
        return _Call("GET", f"/__admin/requests/{int(entry_id)}", JournalEntry.of)

    @staticmethod
    def clear_requests() -> _Call[int]:
        return _Call("DELETE", "/__admin/requests", lambda body: int(body["cleared"]))

    @staticmethod
    def clock() -> _Call[Clock]:
        return _Call("GET", "/__admin/clock", Clock.of)

    @staticmethod
    def freeze(now: datetime | str) -> _Call[Clock]:
        text = now.isoformat() if isinstance(now, datetime) else now
        return _Call("PUT", "/__admin/clock", Clock.of, json={"now": text})

    @staticmethod
    def advance(units: dict[str, float]) -> _Call[Clock]:
        return _Call("POST", "/__admin/clock/advance", Clock.of, json=units)

    @staticmethod
    def reset_clock() -> _Call[Clock]:
        return _Call("DELETE", "/__admin/clock", Clock.of)

    @staticmethod
    def metrics() -> _Call[str]:
        return _Call("GET", "/__admin/metrics", str)

    @staticmethod
    def optty_outcome(order_reference: str, status: str, extra: Mapping[str, Any]
                      ) -> _Call[dict[str, Any]]:
        from urllib.parse import quote

        return _Call("POST", f"/__admin/optty/orders/{quote(order_reference, safe='')}/outcome",
                     dict, json={"status": status, **extra})


def _answer(call: _Call[T], response: httpx.Response) -> T:
    __tracebackhide__ = True
    try:
        payload = response.json() if response.content else None
    except ValueError:
        payload = response.text
    if response.status_code >= 400:
        if call.unlined_source and isinstance(payload, dict) and payload.get("problems"):
            prefix = re.compile(re.escape(call.unlined_source) + r":\d+: ")
            payload = {**payload, "problems": [prefix.sub("", str(p), count=1)
                                               for p in payload["problems"]]}
        raise SandboxError(response.status_code, payload, f"sandbox {call.method} {call.path}")
    return call.parse(response.text if call.parse is str else payload)


class _Base:
    def __init__(self, base_url: str, session: str | None, admin_token: str | None,
                 timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.admin_token = admin_token if admin_token is not None else os.environ.get(
            ADMIN_TOKEN_ENV) or None
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.session is not None:
            headers[SESSION_HEADER] = self.session
        if self.admin_token:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        return headers

    def _unreachable(self, exc: httpx.TransportError) -> SandboxUnreachable:
        reason = str(exc) or type(exc).__name__
        return SandboxUnreachable(self.base_url, reason)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url} session={self.session or 'default'}>"


class SandboxClient(_Base):
    """The admin API of one sandbox session (the `default` session when none is named).

        client = SandboxClient("http://127.0.0.1:8080", session="t1")
        client.load_scenario("scenarios/drills/provider-outage.yaml")
        client.assert_requests(operation="createRefund", status=201, count=1)

    `admin_token` defaults to $MOCK_SERVER_ADMIN_TOKEN. Refusals raise SandboxError; no answer
    at all raises SandboxUnreachable."""

    def __init__(self, base_url: str, *, session: str | None = None,
                 admin_token: str | None = None, timeout: float = 30.0,
                 http: httpx.Client | None = None) -> None:
        super().__init__(base_url, session, admin_token, timeout)
        # trust_env off: an HTTP(S)_PROXY in the environment must not catch loopback calls
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout, trust_env=False)

    def for_session(self, session: str) -> SandboxClient:
        """The same sandbox, another session (sharing this client's connections)."""
        return SandboxClient(self.base_url, session=session, admin_token=self.admin_token,
                             timeout=self.timeout, http=self._http)

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: _Call[T]) -> T:
        __tracebackhide__ = True
        try:
            response = self._http.request(
                call.method, self.base_url + call.path, params=call.params, json=call.json,
                content=call.content, headers={**self._headers(), **(call.headers or {})})
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return _answer(call, response)

    # -- health, reset ----------------------------------------------------------------------

    def health(self) -> Health:
        return self._run(_Calls.health())

    def healthy(self) -> bool:
        """True when the sandbox answers its health probe with status ok."""
        try:
            return self.health().status == "ok"
        except (SandboxError, KeyError, TypeError):
            return False

    def reset(self) -> None:
        """Back to the startup world: seed re-applied; refunds, faults, journal, clock cleared."""
        self._run(_Calls.reset())

    # -- scenarios --------------------------------------------------------------------------

    def load_scenario(self, scenario: Mapping[str, Any] | str | bytes | os.PathLike[str]
                      ) -> ScenarioLoaded:
        """Seeds the session and adds fault rules: a dict (the document), YAML/JSON text, or a
        path to a .yaml/.yml/.json file. A bad document raises SandboxError listing every
        `source:line: problem`, and nothing of it is applied."""
        __tracebackhide__ = True
        return self._run(_Calls.load_scenario(scenario))

    def scenarios(self) -> list[ScenarioInfo]:
        return self._run(_Calls.scenarios())

    def unload_scenario(self, name: str) -> ScenarioRemoved:
        """Removes that scenario's fault rules; what it seeded stays (see `.kept`)."""
        return self._run(_Calls.unload_scenario(name))

    # -- journal ----------------------------------------------------------------------------

    def requests(self, *, provider: str | None = None, status: int | None = None,
                 operation: str | None = None, limit: int | None = None,
                 before: int | None = None) -> JournalPage:
        """One page of the journal, newest first; `page.next` is the `before` of the next."""
        return self._run(_Calls.requests(provider, status, operation, limit, before))

    def iter_requests(self, *, provider: str | None = None, status: int | None = None,
                      operation: str | None = None, page_size: int = 500
                      ) -> Iterator[JournalEntry]:
        """Every matching entry, newest first, a page at a time."""
        before: int | None = None
        while True:
            page = self.requests(provider=provider, status=status, operation=operation,
                                 limit=page_size, before=before)
            yield from page.requests
            if page.next is None or not page.requests:
                return
            before = page.next

    def request(self, entry_id: int) -> JournalEntry:
        """One entry whole (its bodies uncut)."""
        return self._run(_Calls.request(entry_id))

    def clear_requests(self) -> int:
        return self._run(_Calls.clear_requests())

    def assert_requests(self, *, count: int | None = None, at_least: int | None = None,
                        provider: str | None = None, operation: str | None = None,
                        method: str | None = None, path: str | None = None,
                        status: int | None = None, headers: Mapping[str, str] | None = None,
                        body: Any = None, query: str | None = None,
                        journal: Sequence[JournalEntry] | None = None) -> list[JournalEntry]:
        """Like WireMock's verify: the session received `count` requests (exactly; default at
        least one) that match every criterion given: `path` a glob, `headers` by name (any
        case, globs on values), `body` a partial match of the JSON body (keys not given are not
        compared). Raises AssertionError naming the nearest requests and what differed in each;
        returns the matching entries, oldest first."""
        __tracebackhide__ = True
        wanted = RequestMatch(provider=provider, operation=operation, method=method, path=path,
                              status=status, headers=headers, body=body, query=query)
        entries = list(journal) if journal is not None else list(self.iter_requests())
        matched, report = mismatch_report(wanted, entries, count=count, at_least=at_least)
        if report is not None:
            raise AssertionError(report)
        return matched

    # -- clock ------------------------------------------------------------------------------

    def clock(self) -> Clock:
        return self._run(_Calls.clock())

    def now(self) -> datetime:
        return self.clock().now

    def freeze(self, now: datetime | str) -> Clock:
        """Stops the session's clock at `now` (a datetime, or ISO 8601; no offset means UTC)."""
        return self._run(_Calls.freeze(now))

    def advance(self, delta: timedelta | None = None, **units: float) -> Clock:
        """Moves the session's clock forward: advance(days=121), advance(timedelta(...))."""
        return self._run(_Calls.advance(_advance_units(delta, units)))

    def reset_clock(self) -> Clock:
        """Back to real time."""
        return self._run(_Calls.reset_clock())

    # -- metrics ----------------------------------------------------------------------------

    def optty_outcome(self, order_reference: str, status: str, **extra: Any) -> dict[str, Any]:
        """The shopper's step for an Optty order without a browser: status SUCCESSFUL,
        DECLINED, CANCELLED, ERROR or PENDING (extra: finalStatus, after, reason, merchantId).
        Returns the outcome, with the redirect URL the shopper's page would send them to."""
        return self._run(_Calls.optty_outcome(order_reference, status, extra))

    def metrics(self) -> str:
        """The server's metrics in the Prometheus text format (all sessions together)."""
        return self._run(_Calls.metrics())


class AsyncSandboxClient(_Base):
    """SandboxClient for asyncio code: the same calls, awaited.

        async with AsyncSandboxClient(url, session="t1") as client:
            await client.load_scenario({...})
            page = await client.requests(operation="createRefund")"""

    def __init__(self, base_url: str, *, session: str | None = None,
                 admin_token: str | None = None, timeout: float = 30.0,
                 http: httpx.AsyncClient | None = None) -> None:
        super().__init__(base_url, session, admin_token, timeout)
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, trust_env=False)

    def for_session(self, session: str) -> AsyncSandboxClient:
        return AsyncSandboxClient(self.base_url, session=session, admin_token=self.admin_token,
                                  timeout=self.timeout, http=self._http)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSandboxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, call: _Call[T]) -> T:
        __tracebackhide__ = True
        try:
            response = await self._http.request(
                call.method, self.base_url + call.path, params=call.params, json=call.json,
                content=call.content, headers={**self._headers(), **(call.headers or {})})
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return _answer(call, response)

    async def health(self) -> Health:
        return await self._run(_Calls.health())

    async def healthy(self) -> bool:
        try:
            return (await self.health()).status == "ok"
        except (SandboxError, KeyError, TypeError):
            return False

    async def reset(self) -> None:
        await self._run(_Calls.reset())

    async def load_scenario(self, scenario: Mapping[str, Any] | str | bytes | os.PathLike[str]
                            ) -> ScenarioLoaded:
        __tracebackhide__ = True
        return await self._run(_Calls.load_scenario(scenario))

    async def scenarios(self) -> list[ScenarioInfo]:
        return await self._run(_Calls.scenarios())

    async def unload_scenario(self, name: str) -> ScenarioRemoved:
        return await self._run(_Calls.unload_scenario(name))

    async def requests(self, *, provider: str | None = None, status: int | None = None,
                       operation: str | None = None, limit: int | None = None,
                       before: int | None = None) -> JournalPage:
        return await self._run(_Calls.requests(provider, status, operation, limit, before))

    async def iter_requests(self, *, provider: str | None = None, status: int | None = None,
                            operation: str | None = None, page_size: int = 500
                            ) -> AsyncIterator[JournalEntry]:
        before: int | None = None
        while True:
            page = await self.requests(provider=provider, status=status, operation=operation,
                                       limit=page_size, before=before)
            for entry in page.requests:
                yield entry
            if page.next is None or not page.requests:
                return
            before = page.next

    async def request(self, entry_id: int) -> JournalEntry:
        return await self._run(_Calls.request(entry_id))

    async def clear_requests(self) -> int:
        return await self._run(_Calls.clear_requests())

    async def assert_requests(self, *, count: int | None = None, at_least: int | None = None,
                              provider: str | None = None, operation: str | None = None,
                              method: str | None = None, path: str | None = None,
                              status: int | None = None,
                              headers: Mapping[str, str] | None = None, body: Any = None,
                              query: str | None = None) -> list[JournalEntry]:
        __tracebackhide__ = True
        wanted = RequestMatch(provider=provider, operation=operation, method=method, path=path,
                              status=status, headers=headers, body=body, query=query)
        entries = [entry async for entry in self.iter_requests()]
        matched, report = mismatch_report(wanted, entries, count=count, at_least=at_least)
        if report is not None:
            raise AssertionError(report)
        return matched

    async def clock(self) -> Clock:
        return await self._run(_Calls.clock())

    async def now(self) -> datetime:
        return (await self.clock()).now

    async def freeze(self, now: datetime | str) -> Clock:
        return await self._run(_Calls.freeze(now))

    async def advance(self, delta: timedelta | None = None, **units: float) -> Clock:
        return await self._run(_Calls.advance(_advance_units(delta, units)))

    async def reset_clock(self) -> Clock:
        return await self._run(_Calls.reset_clock())

    async def optty_outcome(self, order_reference: str, status: str,
                            **extra: Any) -> dict[str, Any]:
        return await self._run(_Calls.optty_outcome(order_reference, status, extra))

    async def metrics(self) -> str:
        return await self._run(_Calls.metrics())
