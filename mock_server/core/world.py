"""The startup world and the sessions copied from it; every piece of state belongs to a session."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mock_server.core.clock import SessionClock, TimeSource, real_time
from mock_server.core.faults import FaultRule, rules_from
from mock_server.core.ids import IdSource
from mock_server.core.journal import Journal
from mock_server.core.ledger import InMemoryLedger, Ledger
from mock_server.core.metrics import Metrics
from mock_server.core.scenarios import Scenario, ScenarioError
from mock_server.settings import Settings

DEFAULT_SESSION = "default"
SESSION_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ProviderModel(Protocol):
    """What a provider gives the world: its per-session state and how scenarios seed it."""

    name: str
    error_codes: frozenset[str]

    def new_state(self, session: Session) -> Any: ...

    def check_seed(self, session: Session, scenario: Scenario) -> list[str]:
        """Problems ("source:line: text") that applying the scenario would meet; [] when fine."""

    def apply_seed(self, session: Session, scenario: Scenario) -> dict[str, int]:
        """Seeds the session (only called after check_seed found nothing); returns counts."""


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

    def state(self, provider: str) -> Any:
        return self.states[provider]

    @property
    def faults(self) -> list[FaultRule]:
        return [rule for loaded in self.scenarios for rule in loaded.faults]


class World:
    """Holds the parsed startup scenarios and builds each named session from them on first use."""

    def __init__(self, settings: Settings, providers: Sequence[ProviderModel],
                 startup: Sequence[Scenario], *, time_source: TimeSource = real_time,
                 ledger_factory: Callable[[], Ledger] = InMemoryLedger) -> None:
        self.settings = settings
        self.providers = list(providers)
        self.startup = list(startup)
        self.time_source = time_source
        self._ledger_factory = ledger_factory
        # GET /__admin/metrics: counted across sessions, kept across resets
        self.metrics = Metrics()
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.on_session_created: list[Callable[[Session], None]] = []
        # Building the default session now makes a startup scenario that cannot be applied
        # (say, a payment of an unknown merchant) fail at start-up, not on the first request.
        self.session(DEFAULT_SESSION)

    @property
    def error_codes(self) -> dict[str, frozenset[str]]:
        return {p.name: p.error_codes for p in self.providers}

    def session(self, name: str) -> Session:
        found = self._sessions.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._sessions.get(name)
            if found is None:
                found = self._build(name)
                self._sessions[name] = found
        for hook in self.on_session_created:
            hook(found)
        return found

    def reset(self, name: str) -> Session:
        with self._lock:
            fresh = self._build(name)
            self._sessions[name] = fresh
        for hook in self.on_session_created:
            hook(fresh)
        return fresh

    def replace_startup(self, startup: Sequence[Scenario]) -> None:
        """Makes `startup` the world that new (and reset) sessions copy, once a session built
        from it shows it applies; else raises ScenarioError and keeps the current one."""
        with self._lock:
            current = self.startup
            self.startup = list(startup)
            try:
                self._build(DEFAULT_SESSION)  # a trial build, thrown away
            except ScenarioError:
                self.startup = current
                raise

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def discard(self, name: str) -> bool:
        """Forgets a session (the pytest fixture's teardown: a long test run keeps no dead
        worlds); the next request naming it starts again from the startup world."""
        if name == DEFAULT_SESSION:
            return False
        with self._lock:
            return self._sessions.pop(name, None) is not None

    def _ledger(self) -> Ledger:
        ledger = self._ledger_factory()
        if isinstance(ledger, InMemoryLedger):
            ledger.on_refund = self.metrics.ledger_refund
        return ledger

    def _build(self, name: str) -> Session:
        session = Session(
            name=name,
            settings=self.settings,
            clock=SessionClock(self.time_source),
            ids=IdSource(self.settings.seed, name),
            ledger=self._ledger(),
            journal=Journal(self.settings.journal_size),
            fault_chances=IdSource(self.settings.seed, f"{name}/faults"),
        )
        for provider in self.providers:
            session.states[provider.name] = provider.new_state(session)
        for scenario in self.startup:
            self.load(session, scenario)
        return session

    def load(self, session: Session, scenario: Scenario) -> LoadedScenario:
        """Applies a scenario whole, or raises ScenarioError and leaves the session untouched."""
        with session.lock:
            problems: list[str] = []
            for provider in self.providers:
                problems.extend(provider.check_seed(session, scenario))
            faults = rules_from(scenario)
            if problems:
                raise ScenarioError(problems)
            seeded: dict[str, int] = {}
            for provider in self.providers:
                seeded.update(provider.apply_seed(session, scenario))
            # a scenario loaded again under the same name replaces the earlier one's fault rules
            session.scenarios = [s for s in session.scenarios if s.scenario.name != scenario.name]
            loaded = LoadedScenario(scenario, session.clock.now(), seeded, faults)
            session.scenarios.append(loaded)
            return loaded

    def unload(self, session: Session, name: str) -> LoadedScenario | None:
        with session.lock:
            for index, loaded in enumerate(session.scenarios):
                if loaded.scenario.name == name:
                    del session.scenarios[index]
                    return loaded
        return None
