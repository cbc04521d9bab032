"""A session's fault rules counting in a store shared by processes: two worlds (as two serving
processes would hold) over one store fire a `times` rule that many times in all, and the
counts they report are the store's."""

from __future__ import annotations

import multiprocessing
from textwrap import dedent
from typing import Any

import pytest

from mock_server.app import create_app
from mock_server.core.faults import FaultRequest, choose
from mock_server.core.scenarios import parse_scenario
from mock_server.core.stores import open_store
from mock_server.core.world import World
from mock_server.settings import Settings

SCENARIO = """\
    name: flaky
    faults:
      - name: twice
        match: {provider: afterpay, method: GET, path: /v2/ping}
        times: 7
        after: 1
        respond: {status: 503}
    """
PING = FaultRequest("afterpay", "GET", "/v2/ping", {}, {}, b"")


def _world(url: str) -> World:
    app = create_app(Settings(), scenarios=[])
    scenario = parse_scenario(dedent(SCENARIO), "flaky.yaml", error_codes=app.world.error_codes)
    store = open_store(url)
    return World(Settings(), app.world.providers, [scenario],
                 fault_counters=store.fault_counters)


def _fired(world: World, session: str, requests: int) -> int:
    found = world.session(session)
    return sum(choose(found.fault_index().candidates(PING), PING, lambda: 0.0) is not None
               for _ in range(requests))


@pytest.fixture
def shared_store(store_url: str) -> str:
    if store_url == "memory":
        pytest.skip("the in-memory store is one process's")
    return store_url


def test_two_worlds_on_one_store_share_a_rules_times(shared_store: str, namespace: str) -> None:
    one, other = _world(shared_store), _world(shared_store)
    # each seeds the session itself (seeds are not stored yet), zeroing its rules' counters
    one.session(namespace), other.session(namespace)
    assert _fired(one, namespace, 1) == 0  # `after: 1` lets the first request through
    assert _fired(other, namespace, 3) == 3
    assert _fired(one, namespace, 10) == 4
    rule = other.session(namespace).faults[0]
    assert rule.to_json()["matched"] == 7 and rule.remaining == 0 and rule.spent
    # unloading forgets the counts; loading again starts from zero
    loaded = one.session(namespace).scenarios[0]
    one.unload(one.session(namespace), "flaky")
    assert open_store(shared_store).fault_counters(namespace).counts("flaky/twice") == (0, 0)
    one.load(one.session(namespace), loaded.scenario)
    assert _fired(one, namespace, 2) == 1


def _fire_in_process(url: str, session: str, start: Any, results: Any) -> None:
    world = _world(url)
    world.session(session)  # each process seeds the session itself (seeds are not stored yet)
    start.wait()  # all have seeded (and zeroed the counters) before any fires
    results.put(_fired(world, session, 10))


def test_processes_on_one_store_fire_a_rule_times_in_all(shared_store: str,
                                                          namespace: str) -> None:
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(4), context.Queue()
    workers = [context.Process(target=_fire_in_process,
                               args=(shared_store, namespace, start, results))
               for _ in range(3)]
    for process in workers:
        process.start()
    start.wait(timeout=120)
    fired = sum(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert fired == 7
