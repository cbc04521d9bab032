"""How a serving process uses Python's cyclic garbage collector.

Reference counting frees almost everything a request makes; the cyclic collector is only needed
for the rare cycle. Left to its defaults it walks every tracked object of the process in a full
collection whenever the long-lived objects grew by a quarter, which under load is a pause of
tens of milliseconds every few thousand requests (the journal's 10,000 entries alone take ~10 ms)
and the whole of the p99 budget. So `mock-server serve`:

- collects once and freezes what start-up made (modules, specs, the startup world), at the
  first idle second rather than before the first request, so start-up stays short: no later
  collection walks it again;
- keeps the young collections (cheap: only what the last requests made), but takes the full
  collections off the allocation counter. One runs once the server has been idle (no request
  started) for a second and the last one is at least `interval` seconds old; under load that
  never pauses, it runs after `max_interval` seconds anyway. Cyclic garbage that got old is
  still freed, at a moment that costs no request anything (with a million refunds stored a
  full collection takes 0.2-0.3 s: the ledger's containers are walked even though what they hold
  is not tracked).

The ledger helps from its side: what it stores per refund is made of tuples the collector stops
tracking (core/ledger.py), so a million stored refunds cost a young collection nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mock_server.core.host import Host

FULL_COLLECTION_INTERVAL = 60.0
# under load without a pause, a full collection still runs this often
MAX_FULL_COLLECTION_INTERVAL = 600.0
# how often the server is looked at, and how long "idle" is
IDLE_CHECK_SECONDS = 1.0
# the young generations as CPython sets them; the oldest never triggers on its own
YOUNG_THRESHOLDS = (700, 10)
NEVER = 2**31 - 1


class CollectorPolicy:
    def __init__(self, requests_started: Callable[[], int],
                 interval: float = FULL_COLLECTION_INTERVAL,
                 max_interval: float = MAX_FULL_COLLECTION_INTERVAL,
                 check: float = IDLE_CHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.requests_started = requests_started
        self.interval = interval
        self.max_interval = max_interval
        self.check = check
        self.clock = clock
        self.full_collections = 0
        self.frozen = False
        self.last_full = clock()
        self._seen = requests_started()
        self._previous: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._previous = gc.get_threshold()
        gc.set_threshold(*YOUNG_THRESHOLDS, NEVER)
        self.last_full = self.clock()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._previous is not None:
            gc.set_threshold(*self._previous)
            gc.unfreeze()
            self._previous = None

    def tick(self) -> bool:
        """One look at the server: collects fully when that is due; True when it did."""
        seen = self.requests_started()
        idle = seen == self._seen
        self._seen = seen
        age = self.clock() - self.last_full
        if (idle and (age >= self.interval or not self.frozen)) or age >= self.max_interval:
            gc.collect()
            self.full_collections += 1
            self.last_full = self.clock()
            if not self.frozen:
                gc.freeze()  # what start-up made, now that its garbage is gone
                self.frozen = True
            return True
        return False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check)
            self.tick()


def install(app: Host, interval: float = FULL_COLLECTION_INTERVAL) -> CollectorPolicy:
    """Applies the policy for the lifetime of `app` (its lifespan start-up and shutdown)."""
    policy = CollectorPolicy(lambda: app.requests_started, interval)
    app.startup_hooks.append(policy.start)

    async def stop() -> None:
        await policy.stop()

    app.shutdown_hooks.append(stop)
    return policy
