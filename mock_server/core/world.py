"""The startup world and the sessions copied from it; every piece of state belongs to a session."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mock_server.core import snapshot
from mock_server.core.clock import SessionClock, TimeSource, real_time
from mock_server.core.faults import FaultIndex, FaultRule, rules_from
from mock_server.core.ids import IdSource
from mock_server.core.journal import Journal
from mock_server.core.ledger import InMemoryLedger, Ledger
from mock_server.core.ledger_log import LoggedLedger, decode_ops, encode_ops
from mock_server.core.metrics import Metrics
from mock_server.core.scenarios import Scenario, ScenarioError
from mock_server.core.sessionrecords import SessionRecords, dead_here
from mock_server.core.sessionstore import FaultCounters
from mock_server.settings import Settings

DEFAULT_SESSION = "default"
SESSION_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

log = logging.getLogger("mock_server.sessions")


class SessionLimit(Exception):
    """--max-sessions are in use and none of them is idle: no room for a new session."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} sessions exist (--max-sessions) and none is idle")
        self.limit = limit


class TooManyRules(Exception):
    """Loading a scenario would give the session more fault rules than --max-fault-rules."""


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).digest()


class SharedStore(Protocol):
    """A store that holds every session's state for all the processes serving from it
    (core.stores.Store for sqlite: and redis://)."""

    owner: str

    def records(self, name: str) -> SessionRecords: ...

    def fault_counters(self, namespace: str) -> FaultCounters: ...

    def forget(self, namespace: str) -> None: ...

    def journal(self, namespace: str, settings: Any) -> Journal: ...

    def session_names(self) -> list[str]: ...


# how long a process may hold a session's lock before another may take it (a process killed
# while it held it leaves the lock behind for this long); far beyond any request's own time
LOCK_LEASE_SECONDS = 120.0
# a session's lock held by another process is asked for again after this long, doubling
_LOCK_RETRY_FIRST = 0.0005
_LOCK_RETRY_MAX = 0.002
# a request refused the lock asks for it for this long (renewed at each try): the holder gives
# it back at its next commit, and nobody else takes it first
_WANT_SECONDS = 5 * _LOCK_RETRY_MAX
# the lock kept for this process's next request of a session at most this many times in a row
# (then given back, so that a process that does not ask, such as a background task, gets in),
# and for at most this long when no request of it comes
KEEP_MAX = 16
KEEP_SECONDS = 0.002


class ProviderModel(Protocol):
    """What a provider gives the world: its per-session state and how scenarios seed it."""

    name: str
    error_codes: frozenset[str]

    def new_state(self, session: Session) -> Any: ...

    def check_seed(self, session: Session, scenario: Scenario) -> list[str]:
        """Problems ("source:line: text") that applying the scenario would meet; [] when fine."""

    def apply_seed(self, session: Session, scenario: Scenario) -> dict[str, int]:
        """Seeds the session (only called after check_seed found nothing); returns counts."""

    # optional: `shareable(state) -> bool`, whether sessions may read this state of the startup
    # world without a copy of their own (false while it has work pending, e.g. callbacks)


@dataclass(slots=True)
class LoadedScenario:
    scenario: Scenario
    loaded_at: datetime
    seeded: dict[str, int]
    faults: list[FaultRule]


@dataclass(slots=True)
class Session:
    name: str
    settings: Settings
    clock: SessionClock
    ids: IdSource
    ledger: Ledger
    journal: Journal
    states: dict[str, Any] = field(default_factory=dict)
    scenarios: list[LoadedScenario] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # draws for fault rules' `probability`: seeded like `ids`, but apart from them, so adding a
    # probabilistic rule does not change the ids a session hands out
    fault_chances: IdSource = field(default_factory=lambda: IdSource(None, ""))
    # the wall clock's time of the last request that used the session (or of its creation)
    last_used: datetime | None = None
    # time.monotonic() of that request (idle time and least-recently-used order)
    used_at: float = 0.0
    # requests using the session right now; a session in use is never evicted
    active: int = 0
    # copy-on-write: until a request writes, `states`, `ledger` and `scenarios` are the startup
    # world's (`template`), read-only; World.materialise gives the session its own copy
    template: Template | None = None
    # opt-in protection: the sha256 of the token the session was created with
    token: bytes | None = None
    # where the fault rules count, when a store shared by processes holds them (None: each
    # rule counts in itself, this process only)
    fault_counters: FaultCounters | None = None
    _fault_index: FaultIndex | None = None
    # a store shared by processes (World's shared mode): the session's record there, the
    # snapshot version this process holds (-1: none yet), the generation whose ledger,
    # counters and journal are the session's, and the lock that keeps this process's own
    # requests of the session one at a time
    records: SessionRecords | None = None
    version: int = -1
    generation: str = ""
    alock: asyncio.Lock | None = None
    # whether this process holds the session's lock in the store right now
    held: bool = False
    # held between requests: kept for this process's next request of the session (for a
    # moment after a commit, see World.commit), how many requests in a row it was kept for,
    # and the timer that gives it back when no request came
    kept: bool = False
    handovers: int = 0
    keep_timer: asyncio.TimerHandle | None = None
    # the snapshot's parts as this process last wrote or read them, and their versions
    parts: dict[str, bytes] = field(default_factory=dict)
    part_versions: dict[str, int] = field(default_factory=dict)
    # what the scenarios part was pickled from (they change only when scenarios load)
    seeds_of: list[LoadedScenario] | None = None
    seeds_count: int = 0
    # whether the request may have changed the provider models (the pipeline clears it for an
    # operation its surface declares leaves them alone: `keeps_models`), so that part is
    # pickled again
    models_dirty: bool = True
    # the ledger in the store: the size of its last checkpoint (the `ledger` part) and of the
    # ops this process knows were stored after it (a new checkpoint once they outgrow it)
    checkpoint_bytes: int = 0
    log_bytes: int = 0

    def state(self, provider: str) -> Any:
        return self.states[provider]

    @property
    def shared(self) -> bool:
        return self.template is not None

    @property
    def faults(self) -> list[FaultRule]:
        return [rule for loaded in self.scenarios for rule in loaded.faults]

    def fault_index(self) -> FaultIndex:
        """The session's fault rules indexed by provider, method and path (built on first use
        after a change)."""
        index = self._fault_index
        if index is None:
            index = self._fault_index = FaultIndex(self.faults)
        return index

    def faults_changed(self) -> None:
        self._fault_index = None

    def accepts(self, token: str | None) -> bool:
        """Whether an admin request carrying `token` may act on this session."""
        if self.token is None:
            return True
        return token is not None and hmac.compare_digest(token_digest(token), self.token)


@dataclass(slots=True)
class Template:
    """The startup world, built once, that new sessions read until they write: the scenarios,
    a session seeded from them, the instant it was seeded at and the ids it drew from."""

    startup: list[Scenario]
    session: Session
    instant: datetime
    ids: IdSource


class World:
    """Holds the parsed startup scenarios and builds each named session from them on first use.

    Sessions are bounded: beyond --max-sessions the least recently used idle one is evicted,
    and one idle for --session-idle-ttl is expired (`expire_idle`). A new session costs little:
    it reads the startup world (copy-on-write) until a request writes to it (`materialise`)."""

    def __init__(self, settings: Settings, providers: Sequence[ProviderModel],
                 startup: Sequence[Scenario], *, time_source: TimeSource = real_time,
                 ledger_factory: Callable[[], Ledger] = InMemoryLedger,
                 fault_counters: Callable[[str], FaultCounters] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 store: SharedStore | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.providers = list(providers)
        self.startup = list(startup)
        self.time_source = time_source
        self.monotonic = monotonic
        self._ledger_factory = ledger_factory
        self._fault_counters = fault_counters  # session name -> its counters in a store
        # GET /__admin/metrics: counted across sessions, kept across resets
        self.metrics = Metrics()
        # least recently used first
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self.on_session_created: list[Callable[[Session], None]] = []
        self.evicted = 0  # sessions evicted for room (--max-sessions)
        self.expired = 0  # sessions expired after --session-idle-ttl
        self._template: Template | None = None
        # shared mode: every session's state is in `store`, which other processes share; a
        # request holds its session's lock there from start to end (see `enter`)
        self.store = store
        self.wall = wall
        # Building the default session now makes a startup scenario that cannot be applied
        # (say, a payment of an unknown merchant) fail at start-up, not on the first request.
        self.session(DEFAULT_SESSION)
        self._template = self._make_template(self.startup)

    @property
    def shared(self) -> bool:
        return self.store is not None

    @property
    def error_codes(self) -> dict[str, frozenset[str]]:
        return {p.name: p.error_codes for p in self.providers}

    def session(self, name: str) -> Session:
        """The named session, created if need be, with a world of its own (safe to change)."""
        found = self.acquire(name)[0]
        if found.template is not None:
            self.materialise(found)
        if self.store is not None:
            self.hold(found)
            self.leave(found, local=False)
        return found

    def acquire(self, name: str) -> tuple[Session, bool]:
        """The named session and whether this call created it; a new one may still read the
        startup world (see `materialise`). Raises SessionLimit when there is no room."""
        found = self._sessions.get(name)
        if found is not None:
            return found, False
        with self._lock:
            found = self._sessions.get(name)
            if found is not None:
                return found, False
            self._make_room()
            found = self._new(name)
            self._sessions[name] = found
        for hook in self.on_session_created:
            hook(found)
        return found, True

    def touch(self, session: Session) -> None:
        """A request uses the session: it becomes the most recently used."""
        session.last_used = self.time_source()
        session.used_at = self.monotonic()
        with self._lock:
            if self._sessions.get(session.name) is session:
                self._sessions.move_to_end(session.name)
            # else discarded or reset meanwhile: the request still finishes on it

    def reset(self, name: str) -> Session:
        if self.store is not None:
            found = self._sessions.get(name)
            if found is not None and found.records is not None and found.version >= 0:
                self._regenerate(found)  # the caller holds its lock (a request on it)
                return found
        with self._lock:
            old = self._sessions.get(name)
            fresh = self._new(name)
            if old is not None:
                fresh.token = old.token
                fresh.last_used, fresh.used_at = old.last_used, old.used_at
            self._sessions[name] = fresh
        for hook in self.on_session_created:
            hook(fresh)
        return fresh

    def replace_startup(self, startup: Sequence[Scenario]) -> None:
        """Makes `startup` the world that new (and reset) sessions copy, once a session built
        from it shows it applies; else raises ScenarioError and keeps the current one."""
        template = self._make_template(list(startup))  # raises ScenarioError
        with self._lock:
            self.startup = list(startup)
            self._template = template

    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def discard(self, name: str) -> bool:
        """Forgets a session (the pytest fixture's teardown: a long test run keeps no dead
        worlds); the next request naming it starts again from the startup world."""
        if name == DEFAULT_SESSION:
            return False
        if self.store is not None:
            found = self.acquire(name)[0]
            self.hold(found)
            generation = found.generation
            assert found.records is not None
            found.records.delete(self.store.owner)
            found.held = False
            if generation:
                self.store.forget(generation)
        with self._lock:
            return self._sessions.pop(name, None) is not None

    def _ledger(self) -> Ledger:
        # shared mode: the session's copy, its changes logged for the store (core/ledger_log.py)
        ledger = LoggedLedger(self.wall) if self.store is not None else self._ledger_factory()
        if isinstance(ledger, InMemoryLedger):
            ledger.on_refund = self.metrics.ledger_refund
        return ledger

    # -- shared mode: a store holds every session --------------------------------------------

    async def enter(self, session: Session) -> bool:
        """Takes the session for one request: this process's other requests of it wait, and so
        do other processes' (the lock in the store); then brings it up to date with what they
        left (the snapshot, when its version moved). True when this made the session (it was
        in no snapshot)."""
        alock = session.alock
        if alock is None:
            alock = session.alock = asyncio.Lock()
        await alock.acquire()
        try:
            if session.kept:
                # the last request kept the store's lock for this one: nobody wrote meanwhile
                session.kept = False
                session.models_dirty = True
                return False
            version = self._try_lock(session, want=_WANT_SECONDS)
            delay = _LOCK_RETRY_FIRST
            while version is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _LOCK_RETRY_MAX)
                version = self._try_lock(session, want=_WANT_SECONDS)
            try:
                return self._refresh(session, version)
            except BaseException:
                self._let_go(session)
                raise
        except BaseException:
            if alock.locked():
                alock.release()
            raise

    def hold(self, session: Session) -> bool:
        """`enter` for code off the event loop (start-up, commands, a test's teardown): waits
        for the store's lock by sleeping this thread."""
        session.kept = False  # kept for a request of this process: this step takes it over
        version = self._try_lock(session, want=_WANT_SECONDS)
        delay = _LOCK_RETRY_FIRST
        while version is None:
            time.sleep(delay)
            delay = min(delay * 2, _LOCK_RETRY_MAX)
            version = self._try_lock(session, want=_WANT_SECONDS)
        try:
            return self._refresh(session, version)
        except BaseException:
            self._let_go(session)
            raise

    def try_hold(self, session: Session) -> bool:
        """Takes the session only when nobody holds it now (a background task's turn: it comes
        back later); brings it up to date. False when it was busy."""
        alock = session.alock
        if alock is not None and alock.locked():
            return False
        # a lock kept for a request of this process is this process's: this step takes it
        # over (and gives it back at its `leave`); a refused one does not ask for the lock
        session.kept = False
        version = self._try_lock(session)
        if version is None:
            return False
        try:
            self._refresh(session, version)
        except BaseException:
            self._let_go(session)
            raise
        return True

    @contextlib.asynccontextmanager
    async def paused(self, session: Session) -> AsyncIterator[None]:
        """Within `enter`: gives the session back (its changes saved) for a while, then takes
        it again, up to date."""
        self.leave(session)
        try:
            yield
        finally:
            await self.enter(session)

    def current(self, session: Session) -> bool:
        """Whether this process holds the session as the store has it now (one read)."""
        return session.records is None or session.records.version() == session.version

    def adopt(self) -> int:
        """Reads every session the store holds that this process has not (its background work,
        such as callbacks falling due, then runs here too); returns how many it read."""
        assert self.store is not None
        read = 0
        for name in self.store.session_names():
            if name in self._sessions or not SESSION_NAME.match(name):
                continue
            try:
                found = self.acquire(name)[0]
            except SessionLimit:
                break
            if self.try_hold(found):
                self.leave(found, local=False)
                read += 1
        return read

    def leave(self, session: Session, *, keep: bool = True, local: bool = True) -> None:
        """Ends `enter` (`hold`, `try_hold`: local=False): what the request changed is saved as
        the session's snapshot (only when it changed), then the lock is given back.
        `keep=False`: a session this request made and did not use is not kept."""
        assert self.store is not None and session.records is not None
        try:
            if not session.held or session.kept:
                # committed: saved, and given back (or kept for this process's next request of
                # the session) before the answer went out
                return
            if not keep and not session.parts:
                # made by this request, refused before any use: it never existed
                generation, session.generation = session.generation, ""
                session.version = -1
                self._let_go(session)
                if generation:
                    self.store.forget(generation)
                return
            self._release(session)
        finally:
            alock = session.alock
            if local and alock is not None and alock.locked():
                alock.release()

    async def commit(self, session: Session) -> None:
        """Within `enter`: saves what the request changed and gives the session back in the
        store now, before its answer goes out (an answer the client saw is never lost with the
        process; the session's next request, anywhere, need not wait for the sending).
        What the request does after (sending, its journal entry) needs no session.

        Under load the store's lock is kept in the same step for this process's next request
        of the session (saved all the same), so that one needs no step to take it: for at most
        `keep_seconds` (given back then if no request came), KEEP_MAX requests in a row, and
        only while no other process asks for the lock (then given back at once). That step is
        awaited: the loop serves other requests while the store answers (still holding this
        session: its other requests wait)."""
        if not session.held:
            return
        if self.keep_seconds <= 0 or session.handovers >= KEEP_MAX:
            self._release(session)
            return
        assert self.store is not None and session.records is not None
        changed, ops = self._outgoing(session)
        session.held = session.kept = False
        journal = session.journal
        try:
            # the next request's journal id taken in the same step (none when not kept)
            version, kept, reserved = await session.records.akeep(
                self.store.owner, changed or None, ops, self.wall(), LOCK_LEASE_SECONDS,
                session.generation if journal.in_store else None)
        except asyncio.CancelledError:
            # whether the store took it is unknown: read all of it again next time, and give
            # the lock back if it is still this process's
            session.version, session.part_versions = -1, {}
            with contextlib.suppress(Exception):
                session.records.release(self.store.owner, None)
            raise
        journal.reserve(reserved)
        session.held = session.kept = kept
        session.handovers = session.handovers + 1 if kept else 0
        self._saved(session, changed, ops, version)
        if kept:
            if session.keep_timer is not None:
                session.keep_timer.cancel()
            session.keep_timer = asyncio.get_running_loop().call_later(
                self.keep_seconds, self._give_back_kept, session)

    # how long commit keeps a session's lock for this process's next request (0: never, the
    # default: only a server whose loop runs until its shutdown, which gives kept locks back,
    # keeps them; mock_server.cli.serve sets KEEP_SECONDS)
    keep_seconds = 0.0

    def _give_back_kept(self, session: Session) -> None:
        """A lock kept for a request of this process that did not come (none runs now) is
        given back in the store."""
        session.keep_timer = None
        alock = session.alock
        if session.kept and not (alock is not None and alock.locked()):
            try:
                self._let_go(session)
            except Exception:  # noqa: BLE001 - its lease runs out instead
                log.exception("session %s: the store failed", session.name)
                session.held = session.kept = False

    def give_back_kept(self) -> int:
        """Gives back every lock kept for a next request (the shutdown); how many."""
        given = 0
        for session in self.sessions():
            if session.kept:
                if session.keep_timer is not None:
                    session.keep_timer.cancel()
                self._give_back_kept(session)
                given += 1
        return given

    def _release(self, session: Session) -> None:
        assert self.store is not None and session.records is not None
        changed, ops = self._outgoing(session)
        session.held = session.kept = False
        session.handovers = 0
        session.journal.reserve(None)
        version = session.records.release(self.store.owner, changed or None, ops)
        self._saved(session, changed, ops, version)

    def _outgoing(self, session: Session) -> tuple[dict[str, bytes], bytes | None]:
        """What to store of the session: the parts that changed, and the ledger's ops."""
        changed = self._changed_parts(session)
        return changed, self._ledger_changes(session, changed)

    def _saved(self, session: Session, changed: dict[str, bytes], ops: bytes | None,
               version: int) -> None:
        """The store holds `changed` and `ops` at `version`."""
        session.version = version
        for name in changed:
            session.part_versions[name] = version
        if "ledger" in changed:
            session.checkpoint_bytes, session.log_bytes = len(changed.pop("ledger")), 0
            session.parts["ledger"] = _CHECKPOINTED
        elif ops is not None:
            session.log_bytes += len(ops)
        session.parts.update(changed)

    def _ledger_changes(self, session: Session, changed: dict[str, bytes]) -> bytes | None:
        """What the request changed of the session's money, to store with its snapshot: the
        ops it logged, or the whole ledger (a checkpoint, into `changed`) when the session has
        none in the store yet or the ops stored since the last one outgrew it (so a reader
        replays at most about as much as the checkpoint holds)."""
        ledger = session.ledger
        if not isinstance(ledger, LoggedLedger):
            return None
        ops = ledger.take_ops()
        if "ledger" not in session.parts or session.log_bytes > max(
                CHECKPOINT_MIN_BYTES, session.checkpoint_bytes):
            changed["ledger"] = snapshot.dumps("ledger", ledger)
            return None
        return encode_ops(ops) if ops else None

    def _try_lock(self, session: Session, *, want: float = 0.0) -> int | None:
        assert self.store is not None and session.records is not None
        records, now = session.records, self.wall()
        version = records.acquire(self.store.owner, now, LOCK_LEASE_SECONDS, want=want)
        if version is None:
            # a holder killed with the lock (a restart on the same machine): no lease to wait
            holder = records.holder(now)
            if holder is not None and dead_here(holder):
                log.warning("session %s: its lock was held by %s, a process no longer "
                            "running; taken over", session.name, holder)
                version = records.acquire(self.store.owner, now, LOCK_LEASE_SECONDS,
                                          steal=holder)
        session.held = version is not None
        return version

    def _let_go(self, session: Session) -> None:
        assert self.store is not None and session.records is not None
        if session.kept:
            session.journal.reserve(None)  # taken for a request that did not come
        session.held = session.kept = False
        session.handovers = 0
        session.records.release(self.store.owner, None)

    def _refresh(self, session: Session, version: int) -> bool:
        session.models_dirty = True
        if version == session.version:
            return False
        assert session.records is not None
        found = session.records.load(session.part_versions, session.version)
        if found is None:
            self._regenerate(session)
            return True
        session.version, parts, ops = found
        self._restore(session, {name: data for name, (_v, data) in parts.items()})
        ledger = session.ledger
        assert isinstance(ledger, LoggedLedger)
        ledger.take_ops()  # nothing of this process is unsaved: the holder saves at release
        for data in ops:
            ledger.replay(decode_ops(data))
            session.log_bytes += len(data)
        for name, (part_version, data) in parts.items():
            session.parts[name] = _CHECKPOINTED if name == "ledger" else data
            session.part_versions[name] = part_version
        return False

    def _bind(self, session: Session, generation: str) -> None:
        """Makes `generation` the session's: a ledger of its own (seeded, or read from the
        snapshot's `ledger` part), its fault counters and journal."""
        assert self.store is not None
        session.generation = generation
        session.ledger = self._ledger()
        session.fault_counters = self.store.fault_counters(generation)
        session.journal = self.store.journal(generation, self.settings)

    def _regenerate(self, session: Session) -> None:
        """The session made anew from the startup world in a generation of its own (its first
        use anywhere, or a reset); what the old generation held in the store is dropped."""
        assert self.store is not None and session.records is not None
        old = session.generation
        number = session.records.sequence("generation", 0)
        self._bind(session, f"{session.name}#{number}")
        session.states = {}
        session.scenarios = []
        session.ids = IdSource(self.settings.seed, session.name)
        session.fault_chances = IdSource(self.settings.seed, f"{session.name}/faults")
        session.clock.restore((timedelta(0), None))
        # nothing saved of this generation yet: `leave` saves all of it
        session.parts, session.part_versions = {}, {}
        self._seed(session, self.startup)
        session.faults_changed()
        if old and old != session.generation:
            self.store.forget(old)

    def _changed_parts(self, session: Session) -> dict[str, bytes]:
        """The snapshot's parts that differ from what this process last wrote or read."""
        parts = session.parts
        changed: dict[str, bytes] = {}
        if "seeds" not in parts or session.seeds_of is not session.scenarios \
                or session.seeds_count != len(session.scenarios):
            changed["seeds"] = snapshot.dumps("seeds", session.scenarios)
            session.seeds_of, session.seeds_count = session.scenarios, len(session.scenarios)
        if session.models_dirty or "states" not in parts:
            changed["states"] = snapshot.dumps("states", session.states)
        changed["small"] = snapshot.dumps("small", {
            "generation": session.generation, "ids": session.ids,
            "chances": session.fault_chances, "clock": session.clock.state(),
            "token": session.token})
        return {name: data for name, data in changed.items() if parts.get(name) != data}

    def _restore(self, session: Session, parts: dict[str, bytes]) -> None:
        """Takes the parts another process changed (all of them on a first read)."""
        assert self.store is not None
        where = f"session {session.name!r}"
        if "small" in parts:
            small = snapshot.loads(parts["small"], "small", where=where)
            if small["generation"] != session.generation:
                self._bind(session, small["generation"])
            session.ids = small["ids"]
            session.fault_chances = small["chances"]
            session.clock.restore(small["clock"])
            session.token = small["token"]
        if "states" in parts:
            session.states = snapshot.loads(parts["states"], "states", where=where)
        if "ledger" in parts:
            ledger = snapshot.loads(parts["ledger"], "ledger", where=where)
            ledger.on_refund, ledger.wall = self.metrics.ledger_refund, self.wall
            session.ledger = ledger
            session.checkpoint_bytes, session.log_bytes = len(parts["ledger"]), 0
        if "seeds" in parts or "small" in parts:
            if "seeds" in parts:
                session.scenarios = snapshot.loads(parts["seeds"], "seeds", where=where)
                session.seeds_of, session.seeds_count = session.scenarios, len(session.scenarios)
            for loaded in session.scenarios:
                for rule in loaded.faults:
                    rule.counters = session.fault_counters
            session.faults_changed()

    def forget_new(self, session: Session) -> bool:
        """Drops a session that the request just ending created, when nothing else uses it: a
        rejected request (401, unknown route, ...) leaves no session behind."""
        with self._lock:
            if (session.active or session.name == DEFAULT_SESSION
                    or self._sessions.get(session.name) is not session):
                return False
            del self._sessions[session.name]
            return True

    # -- bounds -----------------------------------------------------------------------------

    def _idle(self, session: Session) -> bool:
        if session.active or session.name == DEFAULT_SESSION:
            return False
        if session.template is not None:
            return True
        return all(self._shareable(provider, session) for provider in self.providers)

    def _shareable(self, provider: ProviderModel, session: Session) -> bool:
        check = getattr(provider, "shareable", None)
        return check is None or bool(check(session.states.get(provider.name)))

    def _make_room(self) -> None:
        """Called with the lock held, before a session is added."""
        limit = self.settings.max_sessions
        if len(self._sessions) < limit:
            return
        for name, candidate in self._sessions.items():  # least recently used first
            if self._idle(candidate):
                del self._sessions[name]
                self.evicted += 1
                log.info("session %s evicted: least recently used of %d (--max-sessions %d)",
                         name, limit, limit)
                return
        raise SessionLimit(limit)

    def expire_idle(self) -> int:
        """Forgets the sessions idle for longer than --session-idle-ttl; returns how many."""
        ttl = self.settings.session_idle_ttl
        if ttl is None:
            return 0
        cutoff = self.monotonic() - ttl.total_seconds()
        gone: list[str] = []
        with self._lock:
            for name, candidate in list(self._sessions.items()):
                if name == DEFAULT_SESSION:
                    continue  # never expires
                if candidate.used_at > cutoff:
                    break  # the rest were used more recently
                if self._idle(candidate):
                    del self._sessions[name]
                    gone.append(name)
            self.expired += len(gone)
        for name in gone:
            log.info("session %s expired: idle for more than %s (--session-idle-ttl)", name,
                     _duration_text(ttl.total_seconds()))
        return len(gone)

    # -- building ---------------------------------------------------------------------------

    def _new(self, name: str) -> Session:
        if self.store is not None:
            session = self._shell(name)
            session.records = self.store.records(name)
            session.fault_counters = None
            return session  # made or read from the store when a request enters it
        template = self._template
        if template is None:
            return self._build(name)
        session = self._shell(name)
        session.template = template
        session.states = template.session.states
        session.ledger = template.session.ledger
        session.scenarios = template.session.scenarios
        return session

    def _shell(self, name: str) -> Session:
        return Session(
            name=name,
            settings=self.settings,
            clock=SessionClock(self.time_source),
            ids=IdSource(self.settings.seed, name),
            ledger=_NO_LEDGER,
            journal=Journal.for_settings(self.settings),
            fault_chances=IdSource(self.settings.seed, f"{name}/faults"),
            last_used=self.time_source(),
            used_at=self.monotonic(),
            fault_counters=None if self._fault_counters is None else self._fault_counters(name),
        )

    def _make_template(self, startup: list[Scenario]) -> Template | None:
        """The startup world new sessions share; None when it cannot be shared (fault rules
        count per session, callbacks are per session): sessions then get a copy at once."""
        session = self._shell("<startup>")
        if self.store is not None:
            # shared mode: sessions are made in the store; this only shows the startup world
            # applies (a ScenarioError now, not at the first request)
            self._seed(session, startup)
            return None
        instant = self.time_source()
        # seeded at one instant, as each session's own copy will be (World.materialise)
        session.clock = SessionClock(lambda: instant)
        ids = session.ids.fork()
        self._seed(session, startup)  # raises ScenarioError
        shareable = not session.faults and all(self._shareable(provider, session)
                                                for provider in self.providers)
        return Template(startup, session, instant, ids) if shareable else None

    def materialise(self, session: Session) -> None:
        """Gives a session still reading the startup world its own copy, exactly as it read it:
        seeded at the instant, and with the ids, the shared one was."""
        with session.lock:
            template = session.template
            if template is None:
                return
            clock, ids = session.clock, session.ids
            session.clock = SessionClock(lambda: template.instant)
            session.ids = template.ids.fork()
            session.template = None
            session.states = {}
            session.scenarios = []
            try:
                self._seed(session, template.startup)  # it seeded the template: it applies
            finally:
                session.clock, session.ids = clock, ids
            session.faults_changed()

    def _build(self, name: str) -> Session:
        session = self._shell(name)
        self._seed(session, self.startup)
        return session

    def _seed(self, session: Session, startup: Sequence[Scenario]) -> None:
        session.ledger = self._ledger()
        for provider in self.providers:
            session.states[provider.name] = provider.new_state(session)
        for scenario in startup:
            self.load(session, scenario)

    def load(self, session: Session, scenario: Scenario) -> LoadedScenario:
        """Applies a scenario whole, or raises ScenarioError and leaves the session untouched."""
        with session.lock:
            if session.template is not None:
                self.materialise(session)
            problems: list[str] = []
            for provider in self.providers:
                problems.extend(provider.check_seed(session, scenario))
            faults = rules_from(scenario)
            limit = self.settings.max_fault_rules
            kept = sum(len(s.faults) for s in session.scenarios
                       if s.scenario.name != scenario.name)
            if kept + len(faults) > limit:
                problems.append(f"{scenario.source}:{scenario.line_of('faults')}: the session "
                                f"would have {kept + len(faults)} fault rules; at most {limit} "
                                "are allowed (--max-fault-rules)")
            if problems:
                raise ScenarioError(problems)
            seeded: dict[str, int] = {}
            for provider in self.providers:
                seeded.update(provider.apply_seed(session, scenario))
            counters = session.fault_counters
            if counters is not None:
                # the new rules count from zero (a reload, or a reset session's first load)
                counters.forget([rule.key for rule in faults] + [
                    rule.key for s in session.scenarios if s.scenario.name == scenario.name
                    for rule in s.faults])
                for rule in faults:
                    rule.counters = counters
            # a scenario loaded again under the same name replaces the earlier one's fault rules
            session.scenarios = [s for s in session.scenarios if s.scenario.name != scenario.name]
            loaded = LoadedScenario(scenario, session.clock.now(), seeded, faults)
            session.scenarios.append(loaded)
            session.faults_changed()
            return loaded

    def unload(self, session: Session, name: str) -> LoadedScenario | None:
        with session.lock:
            if session.template is not None:
                self.materialise(session)
            for index, loaded in enumerate(session.scenarios):
                if loaded.scenario.name == name:
                    del session.scenarios[index]
                    session.faults_changed()
                    if session.fault_counters is not None:
                        session.fault_counters.forget(rule.key for rule in loaded.faults)
                    return loaded
        return None


def _duration_text(seconds: float) -> str:
    return f"{seconds:g}s"


# what a session still reading the startup world has before World._new shares the world's
_NO_LEDGER: Ledger = InMemoryLedger()
# the ledger's ops stored since its last checkpoint may grow to the checkpoint's size, or this
CHECKPOINT_MIN_BYTES = 256 * 1024
# what `Session.parts` keeps of the `ledger` part (its bytes are not compared, only rewritten)
_CHECKPOINTED = b"<checkpoint>"
