"""The integrator's commands: `requests` (the journal in a terminal), drills, schema, check."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from mock_server.client import JournalEntry, SandboxClient

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
URL_ENV = "MOCK_SERVER_URL"
# how many entries `--follow` keeps waiting for (begun, not yet answered); older ones are given up
MAX_PENDING = 10_000


def default_url() -> str:
    return os.environ.get(URL_ENV) or (
        f"http://127.0.0.1:{os.environ.get('MOCK_SERVER_PORT') or '8080'}")


# -- mock-server requests ---------------------------------------------------------------------


def entry_line(entry: JournalEntry) -> str:
    """`2026-11-01T09:00:00.123Z #12 POST /v2/payments/1/refund 201 3.2ms afterpay createRefund`
    plus the fault rule that acted and any warning."""
    target = entry.path + (f"?{entry.query}" if entry.query else "")
    kind = "" if entry.kind == "request" else f" {entry.kind}"
    line = (f"{entry.raw.get('at', '')} #{entry.id}{kind} {entry.method} {json_safe(target)} "
            f"{entry.status} {entry.duration_ms:.1f}ms {entry.provider or '-'} "
            f"{entry.operation or '-'}")
    if entry.fault:
        line += f" fault={entry.fault.get('rule')}: {entry.fault.get('action')}"
    for warning in entry.warnings:
        line += f" warning={json.dumps(warning, ensure_ascii=False)}"
    return line


def json_safe(text: str) -> str:
    """A path as one terminal word: control characters and spaces escaped (JSON style)."""
    return text if text.isprintable() and " " not in text else json.dumps(text)[1:-1]


@dataclass
class Filters:
    provider: str | None = None
    status: int | None = None
    operation: str | None = None

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in (("provider", self.provider), ("status", self.status),
                                  ("operation", self.operation)) if v is not None}


class JournalTail:
    """What `--follow` prints next: each entry once, when the sandbox has answered it, in id
    order. Entries still being answered (a `delay` fault) are looked at again on later polls."""

    def __init__(self, client: SandboxClient, filters: Filters, page_size: int = 500) -> None:
        self.client = client
        self.filters = filters
        self.page_size = page_size
        self.seen = 0  # the highest id looked at
        self.pending: set[int] = set()

    def start(self, last: int) -> list[JournalEntry]:
        """The newest `last` entries (oldest first); following goes on from there."""
        page = self.client.requests(limit=max(last, 1), **self.filters.params())
        self.seen = max((e.id for e in page.requests), default=0)
        return self._take(reversed(page.requests[:last] if last else []))

    def poll(self) -> list[JournalEntry]:
        floor = min(self.pending, default=self.seen + 1)
        found: list[JournalEntry] = []
        before: int | None = None
        while True:
            page = self.client.requests(limit=self.page_size, before=before,
                                        **self.filters.params())
            found.extend(page.requests)
            if page.next is None or not page.requests or page.requests[-1].id <= floor:
                break
            before = page.next
        if found and found[0].id < self.seen and not self.pending:
            # the newest entry is older than what was seen: the session was reset, ids restart
            self.seen = 0
        if not found and self.seen:
            self.seen, self.pending = 0, set()  # cleared
        present = {e.id for e in found}
        # the walk went down to the oldest pending id: one it did not meet is gone (rotated out,
        # cleared), and waiting for it would be waiting forever
        self.pending &= present
        fresh = [e for e in reversed(found) if e.id > self.seen or e.id in self.pending]
        self.seen = max([self.seen, *present])
        return self._take(fresh)

    def _take(self, entries: Iterable[JournalEntry]) -> list[JournalEntry]:
        ready = []
        for entry in entries:
            if entry.finished:
                ready.append(entry)
                self.pending.discard(entry.id)
            elif len(self.pending) < MAX_PENDING:
                self.pending.add(entry.id)
        return ready


def sse_entries(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The `data:` of each `event: request` of an event stream (GET /__admin/requests/stream)."""
    event, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data and event == "request":
                try:
                    yield json.loads("\n".join(data))
                except ValueError:
                    pass
            event, data = "message", []
        elif line.startswith(":"):
            continue  # a comment: the stream's keep-alive
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def _stream(client: SandboxClient, filters: Filters, out: Callable[[JournalEntry], None]
            ) -> bool:
    """Follows GET /__admin/requests/stream; False when the server has no such stream."""
    import httpx

    from mock_server.client import JournalEntry

    http = httpx.Client(timeout=httpx.Timeout(10.0, read=None), trust_env=False)
    try:
        with http.stream("GET", f"{client.base_url}/__admin/requests/stream",
                         params=filters.params(),
                         headers={**client._headers(), "Accept": "text/event-stream"}) as answer:
            if answer.status_code in (404, 405, 406) or not answer.headers.get(
                    "content-type", "").startswith("text/event-stream"):
                return False
            if answer.status_code != 200:
                answer.read()
                from mock_server.client import SandboxError
                raise SandboxError(answer.status_code, _json_or_text(answer),
                                   "sandbox GET /__admin/requests/stream")
            for raw in sse_entries(answer.iter_lines()):
                out(JournalEntry.of(raw))
    finally:
        http.close()
    return True


def _json_or_text(answer: Any) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


def requests_command(args: Any, stdout: TextIO | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> int:
    from mock_server.client import SandboxClient, SandboxError

    stdout = stdout or sys.stdout

    filters = Filters(args.provider, args.status, args.operation)

    def out(entry: JournalEntry) -> None:
        assert stdout is not None
        stdout.write((json.dumps(entry.raw, ensure_ascii=False) if args.json
                      else entry_line(entry)) + "\n")
        stdout.flush()

    with SandboxClient(args.url or default_url(), session=args.session,
                       admin_token=args.admin_token) as client:
        try:
            tail = JournalTail(client, filters)
            for entry in tail.start(args.limit):
                out(entry)
            if not args.follow:
                return EXIT_OK
            if not args.poll and _stream(client, filters, out):
                return EXIT_OK
            while True:
                sleep(args.interval)
                for entry in tail.poll():
                    out(entry)
        except SandboxError as err:
            sys.stderr.write(f"mock-server: error: {err}\n")
            return EXIT_FAILED
        except KeyboardInterrupt:
            return EXIT_OK


# -- mock-server drills, schema ---------------------------------------------------------------


def drills_dir() -> Path:
    from mock_server.resources import default_scenario_path
    return default_scenario_path().parent / "drills"


def drills() -> dict[str, Path]:
    return {path.stem: path for path in sorted(drills_dir().glob("*.yaml"))}


def drill_summary(path: Path) -> str:
    """The first sentence of the drill's leading comment."""
    words: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        words.extend(line.lstrip("# ").split())
    text = " ".join(words).removeprefix("Drill:").strip()
    text = text[:1].upper() + text[1:]
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def drills_command(name: str | None, path_only: bool, stdout: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    found = drills()
    if name is None:
        width = max(map(len, found), default=0)
        for drill, path in found.items():
            stdout.write(f"{drill:<{width}}  {drill_summary(path)}\n{'':<{width}}  {path}\n")
        return EXIT_OK
    chosen = found.get(name.removesuffix(".yaml"))
    if chosen is None:
        sys.stderr.write(f"mock-server: error: no drill named {name!r}; the drills are: "
                         f"{', '.join(found)}\n")
        return EXIT_USAGE
    stdout.write(f"{chosen}\n" if path_only else chosen.read_text(encoding="utf-8"))
    return EXIT_OK


def schema_command(stdout: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    from mock_server.resources import schema_path
    stdout.write(schema_path("scenario.schema.json").read_text(encoding="utf-8"))
    return EXIT_OK


# -- mock-server check ------------------------------------------------------------------------


def check_command(paths: Sequence[str], *, startup: bool = False, world: Sequence[str] = (),
                  stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Checks scenario files as the server would take them: by default loaded at run time onto
    its startup world (POST /__admin/scenarios, the bundled default world unless --world), so
    the startup world's merchants may be used; with --startup, as `serve --scenario` takes them,
    the whole startup world by themselves."""
    from mock_server.app import create_app
    from mock_server.core.scenarios import ScenarioError, load_scenario_paths
    from mock_server.settings import Settings

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    if startup:
        stderr.write("checking as a startup world (serve --scenario " + " ".join(paths) + ")\n")
        try:
            app = create_app(Settings(scenarios=tuple(paths)))
        except ScenarioError as err:
            stdout.write(str(err) + "\n")
            return EXIT_FAILED
        for loaded in app.world.session("default").scenarios:
            stdout.write(f"{loaded.scenario.source}: ok ({loaded.scenario.name})\n")
        return EXIT_OK
    stderr.write("checking as loaded at run time onto "
                 + (f"the startup world of {' '.join(world)}" if world
                    else "the bundled default world")
                 + " (POST /__admin/scenarios); --startup checks them as serve --scenario\n")
    try:
        app = create_app(Settings(scenarios=tuple(world)))
    except ScenarioError as err:
        stdout.write(str(err) + "\n")
        return EXIT_FAILED
    try:
        scenarios = load_scenario_paths(list(paths), error_codes=app.world.error_codes,
                                        registry=app.registry)
    except ScenarioError as err:
        stdout.write(str(err) + "\n")
        return EXIT_FAILED
    session = app.world.session("check")
    problems: list[str] = []
    for scenario in scenarios:
        try:
            app.world.load(session, scenario)
        except ScenarioError as err:
            problems.extend(err.problems)
    if problems:
        stdout.write("\n".join(problems) + "\n")
        return EXIT_FAILED
    for scenario in scenarios:
        stdout.write(f"{scenario.source}: ok ({scenario.name})\n")
    return EXIT_OK
