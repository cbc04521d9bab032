"""How a serving process uses Python's cyclic garbage collector.

Reference counting frees almost everything a request makes; the cyclic collector is only needed
for the rare cycle. Left to its defaults it walks every tracked object of the process in a full
collection whenever the long-lived objects grew by a quarter, which under load is a pause of
tens of milliseconds every few thousand requests (the journal's 10,000 entries alone take ~10 ms)
and the whole of the p99 budget. So `mock-server serve`:

- collects once and freezes what start-up made (modules, specs, the startup world): no later
  collection walks it again;
- keeps the young collections (cheap: only what the last requests made), but takes the full
  collections off the allocation counter and runs one every `interval` seconds instead, so cyclic
  garbage that got old is still freed, at a known and rare moment.

The ledger helps from its side: what it stores per refund is made of tuples the collector stops
tracking (core/ledger.py), so a million stored refunds cost a full collection nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mock_server.app import SandboxApp

FULL_COLLECTION_INTERVAL = 60.0
# the young generations as CPython sets them; the oldest never triggers on its own
YOUNG_THRESHOLDS = (700, 10)
NEVER = 2**31 - 1


class CollectorPolicy:
    def __init__(self, interval: float = FULL_COLLECTION_INTERVAL) -> None:
        self.interval = interval
        self.full_collections = 0
        self._previous: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._previous = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(*YOUNG_THRESHOLDS, NEVER)
        self._task = asyncio.get_running_loop().create_task(self._collect_periodically())

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

    def collect(self) -> None:
        gc.collect()
        self.full_collections += 1

    async def _collect_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.collect()


def install(app: SandboxApp, interval: float = FULL_COLLECTION_INTERVAL) -> CollectorPolicy:
    """Applies the policy for the lifetime of `app` (its lifespan start-up and shutdown)."""
    policy = CollectorPolicy(interval)
    app.startup_hooks.append(policy.start)

    async def stop() -> None:
        await policy.stop()

    app.shutdown_hooks.append(stop)
    return policy
