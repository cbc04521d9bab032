"""One contract for the session state beside the ledger, over memory, an SQLite file and a real
Redis server: fault-rule counters ("fire if count < times") and the queue of pending callbacks
(a delivery claimed by one deliverer at a time), between threads and between processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mock_server.core.sessionstore import (
    CallbackQueue,
    Claimed,
    FaultCounters,
    MemoryCallbackQueue,
    MemoryFaultCounters,
)
from mock_server.core.stores import open_store

CountersMaker = Callable[[], FaultCounters]
QueueMaker = Callable[[], CallbackQueue]


@pytest.fixture
def make_counters(store_url: str, namespace: str) -> CountersMaker:
    if store_url == "memory":
        shared = MemoryFaultCounters()
        return lambda: shared
    return lambda: open_store(store_url).fault_counters(namespace)


@pytest.fixture
def make_queue(store_url: str, namespace: str) -> QueueMaker:
    if store_url == "memory":
        shared = MemoryCallbackQueue()
        return lambda: shared
    return lambda: open_store(store_url).callbacks(namespace)


# -- fault-rule counters -----------------------------------------------------------------------

def test_a_rule_fires_times_then_is_spent(make_counters: CountersMaker) -> None:
    counters = make_counters()
    assert counters.counts("s/r") == (0, 0)
    assert [counters.see("s/r", 2) for _ in range(3)] == [1, 2, 3]
    assert [counters.fire("s/r", 2) for _ in range(3)] == [True, True, False]
    assert counters.see("s/r", 2) is None  # spent: not counted any more
    assert counters.counts("s/r") == (3, 2)
    assert all(counters.fire("s/unbounded", None) for _ in range(5))
    assert counters.counts("s/unbounded") == (0, 5)
    counters.forget(["s/r"])
    assert counters.counts("s/r") == (0, 0)
    assert counters.counts("s/unbounded") == (0, 5)
    assert make_counters().counts("s/unbounded") == (0, 5)  # another handle on the store


def test_fault_counters_of_sessions_are_apart(store_url: str, namespace: str) -> None:
    if store_url == "memory":
        pytest.skip("in-memory counters are one session's by construction")
    store = open_store(store_url)
    store.fault_counters(namespace).fire("s/r", 1)
    assert store.fault_counters(namespace + "-b").fire("s/r", 1)
    assert not store.fault_counters(namespace).fire("s/r", 1)


# -- the callback queue ------------------------------------------------------------------------

def test_a_due_callback_is_claimed_by_one_deliverer(make_queue: QueueMaker) -> None:
    queue = make_queue()
    queue.push("b", b"second", 20.0)
    queue.push("a", b"first", 10.0)
    assert queue.claim("w1", 5.0, 30.0) is None  # nothing due yet
    assert queue.claim("w1", 10.0, 30.0) == Claimed("a", b"first", 1)
    # held: another deliverer gets the next due one, or nothing
    assert queue.claim("w2", 15.0, 30.0) is None
    assert queue.claim("w2", 20.0, 30.0) == Claimed("b", b"second", 1)
    assert [(p.item, p.owner) for p in make_queue().pending()] == [("a", "w1"), ("b", "w2")]
    assert not queue.done("a", "w2")  # only the holder finishes it
    assert queue.done("a", "w1")
    assert not queue.done("a", "w1")
    assert [p.item for p in queue.pending()] == ["b"]


def test_a_lease_that_runs_out_passes_the_callback_on(make_queue: QueueMaker) -> None:
    queue = make_queue()
    queue.push("a", b"x", 0.0)
    assert queue.claim("dead", 1.0, 30.0) == Claimed("a", b"x", 1)
    assert queue.claim("w2", 30.9, 30.0) is None
    assert queue.claim("w2", 31.0, 30.0) == Claimed("a", b"x", 2)
    assert not queue.done("a", "dead")  # the first deliverer lost it
    assert not queue.later("a", "dead", 99.0)
    assert queue.later("a", "w2", 40.0)  # a retry, due later
    assert queue.claim("w3", 39.0, 30.0) is None
    assert queue.claim("w3", 40.0, 30.0) == Claimed("a", b"x", 3)
    queue.push("a", b"y", 50.0)  # queued again: a fresh item
    assert queue.claim("w4", 50.0, 30.0) == Claimed("a", b"y", 1)
    queue.clear()
    assert queue.pending() == []


# -- between processes -------------------------------------------------------------------------

@pytest.fixture
def shared_store(store_url: str) -> str:
    if store_url == "memory":
        pytest.skip("the in-memory store is one process's")
    return store_url


def _fire_many(url: str, namespace: str, start: Any, results: Any) -> None:
    counters = open_store(url).fault_counters(namespace)
    start.wait()
    results.put(sum(counters.fire("s/r", 50) for _ in range(30)))


def test_racing_processes_fire_a_rule_times_in_all(shared_store: str, namespace: str) -> None:
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_fire_many, args=(shared_store, namespace, start, results))
               for _ in range(4)]
    for process in workers:
        process.start()
    start.set()
    fired = sum(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert fired == 50
    assert open_store(shared_store).fault_counters(namespace).counts("s/r") == (0, 50)


def _deliver_all(url: str, namespace: str, worker: int, start: Any, results: Any) -> None:
    queue = open_store(url).callbacks(namespace)
    start.wait()
    delivered = []
    while (claimed := queue.claim(f"w{worker}", 100.0, 600.0)) is not None:
        if queue.done(claimed.item, f"w{worker}"):
            delivered.append(claimed.item)
    results.put(delivered)


def test_racing_deliverers_deliver_each_callback_once(shared_store: str, namespace: str) -> None:
    queue = open_store(shared_store).callbacks(namespace)
    for n in range(40):
        queue.push(f"cb-{n:02d}", b"{}", float(n))
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    workers = [context.Process(target=_deliver_all,
                               args=(shared_store, namespace, w, start, results))
               for w in range(4)]
    for process in workers:
        process.start()
    start.set()
    delivered = [item for _ in workers for item in results.get(timeout=120)]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert sorted(delivered) == [f"cb-{n:02d}" for n in range(40)]
    assert queue.pending() == []


# -- a state machine over each store, against a model ----------------------------------------

RULES = st.sampled_from(["s/a", "s/b"])
ITEMS = st.sampled_from(["i1", "i2", "i3"])
OWNERS = st.sampled_from(["w1", "w2"])


def _machine(counters: FaultCounters, queue: CallbackQueue) -> type[RuleBasedStateMachine]:
    class SessionState(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            counters.forget(["s/a", "s/b"])
            queue.clear()
            self.counts = {"s/a": [0, 0], "s/b": [0, 0]}
            self.times = {"s/a": 3, "s/b": None}
            self.now = 0.0
            # item -> [due, owner, lease until, attempts]
            self.items: dict[str, list[Any]] = {}

        @rule(name=RULES)
        def see(self, name: str) -> None:
            seen, matched = self.counts[name]
            spent = self.times[name] is not None and matched >= self.times[name]
            expected = None if spent else seen + 1
            if not spent:
                self.counts[name][0] += 1
            assert counters.see(name, self.times[name]) == expected

        @rule(name=RULES)
        def fire(self, name: str) -> None:
            matched = self.counts[name][1]
            expected = self.times[name] is None or matched < self.times[name]
            if expected:
                self.counts[name][1] += 1
            assert counters.fire(name, self.times[name]) is expected

        @rule(name=RULES)
        def forget(self, name: str) -> None:
            counters.forget([name])
            self.counts[name] = [0, 0]

        @rule(step=st.sampled_from([0.0, 1.0, 5.0]))
        def tick(self, step: float) -> None:
            self.now += step

        @rule(item=ITEMS, delay=st.sampled_from([0.0, 2.0]))
        def push(self, item: str, delay: float) -> None:
            queue.push(item, item.encode(), self.now + delay)
            self.items[item] = [self.now + delay, None, 0.0, 0]

        @rule(owner=OWNERS)
        def claim(self, owner: str) -> None:
            free = sorted((r[0], item) for item, r in self.items.items()
                          if r[0] <= self.now and (r[1] is None or r[2] <= self.now))
            got = queue.claim(owner, self.now, 3.0)
            if not free:
                assert got is None
                return
            item = free[0][1]
            record = self.items[item]
            record[1], record[2] = owner, self.now + 3.0
            record[3] += 1
            assert got == Claimed(item, item.encode(), record[3])

        @rule(item=ITEMS, owner=OWNERS)
        def done(self, item: str, owner: str) -> None:
            record = self.items.get(item)
            holds = record is not None and record[1] == owner
            assert queue.done(item, owner) is holds
            if holds:
                del self.items[item]

        @rule(item=ITEMS, owner=OWNERS)
        def later(self, item: str, owner: str) -> None:
            record = self.items.get(item)
            holds = record is not None and record[1] == owner
            assert queue.later(item, owner, self.now + 1.0) is holds
            if holds:
                record[0], record[1], record[2] = self.now + 1.0, None, 0.0

        @invariant()
        def agrees(self) -> None:
            for name, (seen, matched) in self.counts.items():
                assert counters.counts(name) == (seen, matched)
            assert [p.item for p in queue.pending()] == [
                item for _, item in sorted((r[0], i) for i, r in self.items.items())]

    return SessionState


def test_session_state_machine(make_counters: CountersMaker, make_queue: QueueMaker) -> None:
    machine = _machine(make_counters(), make_queue())
    machine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
    machine.TestCase().runTest()
