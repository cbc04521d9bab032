"""Forced interleavings for race tests: no sleeps, no hoping that threads collide.

`ExclusionProbe` proves that a critical section excludes other threads. A thread inside the
section stays there until another thread has either been turned away by the section's lock (it
tried the lock and found it held) or has come inside too. With a working lock the first always
happens; with a broken one (a no-op, or a section that skips its lock) the second does, every
time, and is counted as an overlap. The last thread with work left waits for nobody.

It wraps what guards the section (a lock, or a stand-in with no `acquire`: then nothing is
turned away) and is entered from inside the section, from a step the section takes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Only a deadlock (a bug the probe would otherwise hang on) ever waits this long.
_DEADLOCK_GUARD_SECONDS = 60.0


class ExclusionProbe:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.overlaps = 0
        self.visits = 0
        self._cond = threading.Condition()
        self._inside: set[int] = set()
        self._turned_away: set[int] = set()
        self._done = 0

    # -- the guard -----------------------------------------------------------------------------

    def guard(self, inner: Any) -> _ProbedGuard:
        """What to put in place of the section's lock: it behaves as `inner` does."""
        return _ProbedGuard(self, inner)

    def _waiting(self, me: int, waiting: bool) -> None:
        with self._cond:
            if waiting:
                self._turned_away.add(me)
                self._cond.notify_all()
            else:
                self._turned_away.discard(me)

    # -- inside the section --------------------------------------------------------------------

    def inside(self) -> None:
        """Called from inside the critical section."""
        me = threading.get_ident()
        with self._cond:
            self.visits += 1
            if self._inside:
                self.overlaps += 1
            self._inside.add(me)
            self._cond.notify_all()
            met = self._cond.wait_for(
                lambda: bool(self._inside - {me}) or bool(self._turned_away - {me})
                or self._done >= self.workers - 1,
                timeout=_DEADLOCK_GUARD_SECONDS)
            self._inside.discard(me)
            if not met:
                raise AssertionError("the probe found no other thread: a deadlock")

    # -- the workers ---------------------------------------------------------------------------

    @contextmanager
    def worker(self) -> Iterator[None]:
        """Each worker thread runs its share inside this, so the others know when it is done."""
        try:
            yield
        finally:
            with self._cond:
                self._done += 1
                self._cond.notify_all()


class _ProbedGuard:
    def __init__(self, probe: ExclusionProbe, inner: Any) -> None:
        self._probe = probe
        self._inner = inner

    def __enter__(self) -> Any:
        acquire = getattr(self._inner, "acquire", None)
        if acquire is None:  # not a lock: it turns nobody away
            return self._inner.__enter__()
        if not acquire(blocking=False):
            me = threading.get_ident()
            self._probe._waiting(me, True)
            acquire()
            self._probe._waiting(me, False)
        return self

    def __exit__(self, *exc: object) -> Any:
        if getattr(self._inner, "release", None) is None:
            return self._inner.__exit__(*exc)
        self._inner.release()
        return None


def probe_ledger(ledger: Any, probe: ExclusionProbe) -> None:
    """Puts `probe` around an InMemoryLedger's lock and inside its atomic steps (refund,
    capture, void): each stops at the probe where it keeps its idempotent answer, after its
    check and its record, before it lets go of the lock."""
    ledger._lock = probe.guard(ledger._lock)
    keep = ledger._keep

    def probed_keep(*args: Any) -> None:
        probe.inside()
        keep(*args)

    ledger._keep = probed_keep

