"""`--watch`: polls the startup scenario files and reloads one when it changes (no new dependency).

A valid change replaces that file's seed and fault rules in the startup world, which new
sessions (and sessions reset from then on) copy; sessions already running keep their world, so a
test in flight never sees its ground move. An invalid change is refused with `file:line: what is
wrong` in the log, and the file's previous version stays in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from mock_server.core.scenarios import (
    Scenario,
    ScenarioError,
    parse_scenario,
    read_regular_file,
    scenario_files,
)
from mock_server.core.world import World

if TYPE_CHECKING:
    from mock_server.core.host import Host

log = logging.getLogger("mock_server.watch")

POLL_SECONDS = 1.0
_STILL_CHANGING = object()
Stamp = tuple[int, int, int]  # (mtime_ns, size, inode)


class ScenarioWatcher:
    """Compares each scenario file's stamp with the last poll's; one poll is one step."""

    def __init__(self, world: World, paths: Sequence[str],
                 error_codes: Mapping[str, Collection[str]] | None = None) -> None:
        self.world = world
        self.paths = [os.fspath(path) for path in paths]
        self.error_codes = error_codes if error_codes is not None else world.error_codes
        # the version of each file in use; a file refused at its last change keeps its old one
        self.loaded: dict[str, Scenario] = {s.source: s for s in world.startup}
        # the stamp of each file's version in use (or last refused): a change is a difference
        self.stamps: dict[str, Stamp | None] = {source: _stamp(source)
                                                for source in self._sources()}
        # what the last poll saw: a change is read only once a poll sees it again unchanged,
        # so a file still being written is not loaded half-way
        self.seen: dict[str, Stamp | None] = dict(self.stamps)

    def _sources(self) -> list[str]:
        found: list[str] = []
        for path in self.paths:
            # a directory is listed again at every poll: a file added to it is loaded
            found.extend(scenario_files(path))
        return list(dict.fromkeys(found))

    def poll(self) -> bool:
        """Reloads what changed and has stayed as it is since the previous poll (a file being
        written is left until it is complete); True when the startup world changed."""
        sources = self._sources()
        stamps = {source: _stamp(source) for source in sources}
        seen, self.seen = self.seen, dict(stamps)
        changed = [s for s in sources if stamps[s] != self.stamps.get(s)
                   and s in seen and seen[s] == stamps[s]]
        removed = [s for s in self.stamps if s not in stamps and s not in seen]
        if not changed and not removed:
            return False
        candidate = dict(self.loaded)
        for source in removed:
            # a file taken out of a watched directory takes its seed and rules with it
            candidate.pop(source, None)
            self.stamps.pop(source, None)
        refused: list[str] = []
        settling: list[str] = []
        for source in changed:
            read = self._read(source, stamps[source])
            if read is _STILL_CHANGING:
                settling.append(source)
                continue
            self.stamps[source] = stamps[source]
            if read is None:
                refused.append(source)
            else:
                assert isinstance(read, Scenario)
                candidate[source] = read
        changed = [s for s in changed if s not in settling]
        accepted = [s for s in changed if s not in refused]
        if not accepted and not removed:
            return False
        startup = [candidate[source] for source in sources if source in candidate]
        try:
            self.world.replace_startup(startup)
        except ScenarioError as err:
            self._refuse(", ".join(accepted + removed), err.problems)
            return False
        self.loaded = candidate
        for source in accepted:
            log.info("reloaded %s (scenario %r): new and reset sessions use it", source,
                     candidate[source].name)
        for source in removed:
            log.info("%s is gone: new and reset sessions no longer load it", source)
        return True

    def _read(self, source: str, stamp: Stamp | None) -> Scenario | object | None:
        try:
            data = read_regular_file(source)
        except OSError as exc:
            self._refuse(source, [f"{source}:1: cannot read: {exc.strerror or exc}"])
            return None
        after = _stamp(source)
        if after != stamp:
            # written to while it was read: read again once it has stayed the same for a poll
            self.seen[source] = after
            return _STILL_CHANGING
        try:
            return parse_scenario(data, source, error_codes=self.error_codes)
        except ScenarioError as err:
            self._refuse(source, err.problems)
            return None

    @staticmethod
    def _refuse(source: str, problems: Sequence[str]) -> None:
        log.error("reload of %s refused; the previous version stays in use", source)
        for problem in problems:
            log.error("%s", problem)

    async def run(self, interval: float = POLL_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the watcher must outlive one bad poll
                log.exception("scenario watch poll failed")


def install(app: Host, paths: Sequence[str], interval: float | None = None) -> None:
    """Runs a watcher for the life of the app (its ASGI lifespan)."""
    watcher = ScenarioWatcher(app.world, paths)
    task: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal task
        task = asyncio.get_running_loop().create_task(
            watcher.run(POLL_SECONDS if interval is None else interval))
        log.info("watching %s for changes", ", ".join(paths))

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.startup_hooks.append(start)
    app.shutdown_hooks.append(stop)


def _stamp(source: str) -> Stamp | None:
    try:
        stat = os.stat(source)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

