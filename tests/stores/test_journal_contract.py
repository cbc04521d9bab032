"""One contract for a session's request journal over memory, an SQLite file and a real Redis
server: the bounds, paging and filtering equal the in-memory Journal's on the same inputs;
entries finished through one journal object (one process) are read through another; ids are
unique and increasing across them; the file outlives its process, kill -9 included."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from mock_server.core import journal_store
from mock_server.core.journal import Journal, JournalEntry, finish
from mock_server.core.stores import open_store
from mock_server.settings import Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "sk_live_do_not_keep_me"

JournalMaker = Callable[..., Journal]


def _settings(**changes: Any) -> Settings:
    return dataclasses.replace(Settings(), **changes)


@pytest.fixture
def make_journal(store_url: str, namespace: str) -> JournalMaker:
    """Journals of one session on the test's store, each as a new process would open it; for
    the memory store, one shared object (one process is all it has)."""
    shared: dict[tuple[tuple[str, Any], ...], Journal] = {}

    def make(**changes: Any) -> Journal:
        if store_url == "memory":
            key = tuple(sorted(changes.items()))
            if key not in shared:
                shared[key] = open_store("memory").journal(namespace, _settings(**changes))
            return shared[key]
        return open_store(store_url).journal(namespace, _settings(**changes))

    return make


def _request(journal: Journal, n: int, *, provider: str = "afterpay", operation: str = "op",
             status: int = 201, body: bytes | None = None, answer: bytes | None = None,
             finished: bool = True) -> JournalEntry:
    entry = journal.record(
        at=NOW + timedelta(milliseconds=n), provider=provider, operation=operation,
        method="POST", path=f"/v2/{n}", query=f"n={n}",
        headers=[(b"authorization", f"Bearer {SECRET}".encode()), (b"x-n", str(n).encode())],
        body=body if body is not None else f'{{"n":{n}}}'.encode())
    if finished:
        entry.warnings = (f"note {n}",)
        if n % 3 == 0:
            entry.fault = {"rule": f"s/r{n}", "action": "answered 503"}
        finish(entry, status=status, headers=[(b"content-type", b"application/json")],
               body=answer if answer is not None else f'{{"done":{n}}}'.encode(),
               duration_ms=1.0 + n / 1000)
    return entry


def _shown(entries: list[JournalEntry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in entries]


def _same_inputs(journals: list[Journal], reference: Journal, inputs: list[dict[str, Any]]
                 ) -> None:
    """The same requests through the journals in turn, and through the reference."""
    for n, spec in enumerate(inputs, start=1):
        _request(journals[n % len(journals)], n, **spec)
        _request(reference, n, **spec)


def _pages(journal: Journal, **filters: Any) -> list[tuple[int, list[int], int | None]]:
    """Every page of the journal, walked with its cursors."""
    walked = []
    before = None
    for _ in range(100):
        total, entries, after = journal.page(limit=3, before=before, **filters)
        walked.append((total, [e.id for e in entries], after))
        if after is None:
            break
        before = after
    return walked


# -- one journal, then another on the same store -------------------------------------------

def test_an_entry_finished_through_one_is_read_through_another(
        make_journal: JournalMaker) -> None:
    first, second = make_journal(), make_journal()
    entry = _request(first, 3)
    found = second.get(entry.id)
    assert found is not None and found.to_json() == entry.to_json()
    assert found.fault == {"rule": "s/r3", "action": "answered 503"}
    assert found.warnings == ("note 3",)
    assert len(second) == 1 and second.query()[0] == 1
    assert [e.id for e in second.since(0)] == [entry.id]


def test_an_entry_not_finished_is_seen_by_its_own_process_only(
        store_kind: str, make_journal: JournalMaker) -> None:
    first, second = make_journal(), make_journal()
    _request(first, 1)
    open_entry = _request(first, 2, finished=False)
    assert [e.id for e in first.query()[1]] == [open_entry.id, 1]
    assert first.get(open_entry.id) is open_entry
    assert [e.id for e in first.since(0)] == [1]  # since: finished entries only
    if store_kind != "memory":
        assert len(first) == 2 and len(second) == 1
        assert second.get(open_entry.id) is None
        assert [e.id for e in second.query()[1]] == [1]
    finish(open_entry, status=200, headers=[], body=b"", duration_ms=2.0)
    assert [e.id for e in second.query()[1]] == [open_entry.id, 1]
    assert second.get(open_entry.id).to_json() == open_entry.to_json()  # type: ignore[union-attr]
    assert [e.id for e in second.since(1)] == [open_entry.id]


def test_ids_are_unique_and_increasing_across_journals(make_journal: JournalMaker) -> None:
    journals = [make_journal(), make_journal(), make_journal()]
    ids = [_request(journals[n % 3], n).id for n in range(12)]
    assert ids == sorted(ids) and len(set(ids)) == 12
    # and from threads of two journals at once
    found: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def work(journal: Journal) -> None:
        barrier.wait()
        for n in range(25):
            entry_id = _request(journal, n).id
            with lock:
                found.append(entry_id)

    threads = [threading.Thread(target=work, args=(journals[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 100 and min(found) > max(ids)


_RECORDER = """
import sys
from datetime import UTC, datetime
from mock_server.core.journal import finish
from mock_server.core.stores import open_store
from mock_server.settings import Settings
journal = open_store(sys.argv[1]).journal(sys.argv[2], Settings())
for n in range(int(sys.argv[3])):
    e = journal.record(at=datetime.now(UTC), provider="optty", operation="op", method="GET",
                       path="/x", query="", headers=[], body=b"")
    finish(e, status=200, headers=[], body=b"", duration_ms=1.0)
    print(e.id, flush=True)
"""


def test_ids_are_unique_across_processes(store_url: str, namespace: str) -> None:
    if store_url == "memory":
        pytest.skip("the memory store lives in one process")
    processes = [subprocess.Popen([sys.executable, "-c", _RECORDER, store_url, namespace, "40"],
                                  stdout=subprocess.PIPE, text=True) for _ in range(2)]
    ids = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        mine = [int(line) for line in out.split()]
        assert mine == sorted(mine)  # increasing within each process
        ids += mine
    assert sorted(ids) == list(range(1, 81))  # unique, none lost
    journal = open_store(store_url).journal(namespace, Settings())
    assert len(journal) == 80
    assert [e.id for e in journal.since(0)] == list(range(1, 81))


# -- the bounds, equal to the in-memory journal's ----------------------------------------------

def test_the_entry_bound_drops_the_oldest(make_journal: JournalMaker) -> None:
    journals = [make_journal(journal_size=3), make_journal(journal_size=3)]
    reference = Journal(3)
    for n in range(1, 8):  # held to the bound after every entry
        _request(journals[n % 2], n)
        _request(reference, n)
        for journal in journals:
            assert len(journal) == min(n, 3)
            assert _shown(journal.query(limit=10)[1]) == _shown(reference.query(limit=10)[1])
    for journal in journals:
        total, entries = journal.query(limit=10)
        assert total == 3 and len(journal) == 3
        assert [e.path for e in entries] == ["/v2/7", "/v2/6", "/v2/5"]
        assert _shown(entries) == _shown(reference.query(limit=10)[1])
        assert journal.get(4) is None and journal.get(5) is not None


def test_the_byte_bound_drops_the_oldest(make_journal: JournalMaker) -> None:
    # entries of about 1.3 KiB, a journal of at most 2 * (1 KiB + overhead) = 2.5 KiB: the
    # newest one or two stay, depending on their sizes (as the in-memory journal keeps them)
    limits = {"journal_entry_bytes": 1024, "journal_bytes": 1}
    journals = [make_journal(**limits), make_journal(**limits)]
    reference = Journal(entry_bytes=1024, max_bytes=1)
    inputs = [{"body": b"b" * (100 * n), "answer": b"a" * (60 * n)} for n in range(1, 12)]
    _same_inputs(journals, reference, inputs)
    expected = _shown(reference.query(limit=100)[1])
    assert 1 <= len(expected) < len(inputs)
    for journal in journals:
        assert _shown(journal.query(limit=100)[1]) == expected
        assert journal.bytes == reference.bytes <= reference.max_bytes


def test_the_newest_entry_stays_whatever_its_size(make_journal: JournalMaker) -> None:
    journal = make_journal(journal_entry_bytes=1024, journal_bytes=1, journal_size=1)
    for n in range(3):
        _request(journal, n, body=b"x" * 5000, answer=b"y" * 5000)
    assert [e.path for e in journal.query()[1]] == ["/v2/2"]


def test_an_entry_is_cut_to_its_budget(make_journal: JournalMaker) -> None:
    journal, other = make_journal(journal_entry_bytes=512), make_journal(journal_entry_bytes=512)
    reference = Journal(entry_bytes=512)
    big = {"body": b"q" * 4000, "answer": b"r" * 4000}
    _same_inputs([journal], reference, [big])
    read = other.get(1)
    assert read is not None
    shown = read.to_json()
    assert shown == reference.get(1).to_json()  # type: ignore[union-attr]
    assert shown["bodyTruncated"] and shown["bodyBytes"] == 4000
    assert shown["responseBodyTruncated"] and shown["responseBodyBytes"] == 4000
    assert len(read.raw_body) < 512 and len(read.raw_response_body) <= 512


def test_entries_never_finished_are_bounded_too(store_kind: str,
                                                make_journal: JournalMaker) -> None:
    journal = make_journal(journal_size=2)
    opened = [_request(journal, n, finished=False) for n in range(4)]
    assert [e.id for e in journal.query()[1]] == [opened[3].id, opened[2].id]
    assert opened[0].journal is None  # pushed out: its finish keeps nothing
    finish(opened[0], status=200, headers=[], body=b"", duration_ms=1.0)
    assert journal.get(opened[0].id) is None and len(journal) == 2


def test_secrets_are_out_before_the_entry_is_written(store_url: str, namespace: str) -> None:
    store = open_store(store_url)
    journal = store.journal(namespace, _settings(redact=("card",)))
    entry = journal.record(at=NOW, provider="afterpay", operation="op", method="POST",
                           path="/x", query=f"client_secret={SECRET}",
                           headers=[(b"authorization", SECRET.encode())],
                           body=f'{{"card":"{SECRET}"}}'.encode())
    finish(entry, status=400, headers=[(b"set-cookie", SECRET.encode())],
           body=f'{{"card":"{SECRET}"}}'.encode(), duration_ms=1.0)
    assert SECRET not in str(journal.get(entry.id).to_json())  # type: ignore[union-attr]
    if store_url.startswith("sqlite:"):
        store.close()
        raw = Path(store_url[len("sqlite:"):]).read_bytes()
        wal = Path(store_url[len("sqlite:"):] + "-wal")
        raw += wal.read_bytes() if wal.exists() else b""
        assert b"afterpay" in raw  # the entry is in the file
        assert SECRET.encode() not in raw
    elif store_url != "memory":
        client = store._handle
        for key in client.scan_iter(match=f"rms:{{{namespace}}}:journal*"):
            kind = client.type(key)
            values = (client.hvals(key) if kind == b"hash" else
                      client.zrange(key, 0, -1) if kind == b"zset" else [client.get(key)])
            assert all(SECRET.encode() not in bytes(v) for v in values)


# -- paging and filtering, equal to the in-memory journal's ------------------------------------

MIXED = [{"provider": p, "operation": o, "status": s}
         for p, o, s in [("afterpay", "createRefund", 201), ("optty", "refund", 200),
                         ("optty", "refund", 409), ("afterpay", "getPayment", 200),
                         ("portal", "page", 200), ("afterpay", "createRefund", 422),
                         ("optty", "getRefund", 404), ("afterpay", "createRefund", 201),
                         ("optty", "refund", 0), ("afterpay", "getPayment", 200),
                         ("afterpay", "createRefund", 201)]]


@pytest.mark.parametrize("filters", [
    {}, {"provider": "optty"}, {"provider": "afterpay", "status": 201},
    {"operation": "refund"}, {"status": 0}, {"status": 200, "operation": "getPayment"},
    {"provider": "nobody"}])
def test_pages_and_filters_are_the_in_memory_journals(
        make_journal: JournalMaker, filters: dict[str, Any]) -> None:
    journals = [make_journal(journal_size=9), make_journal(journal_size=9)]
    reference = Journal(9)
    _same_inputs(journals, reference, MIXED)
    expected_pages = _pages(reference, **filters)
    for journal in journals:
        assert _pages(journal, **filters) == expected_pages
        total, entries = journal.query(limit=4, **filters)
        assert (total, _shown(entries)) == (
            reference.query(limit=4, **filters)[0], _shown(reference.query(limit=4,
                                                                           **filters)[1]))
        assert _shown(journal.since(5)) == _shown(reference.since(5))
        assert journal.page(before=1, **filters)[1:] == ([], None)


def test_a_page_past_its_bytes_ends_with_a_cursor(
        store_kind: str, make_journal: JournalMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    from mock_server.admin.routes import PAGE_BYTES

    assert journal_store.PAGE_BYTES == PAGE_BYTES  # the admin API's cut
    if store_kind == "memory":
        pytest.skip("the in-memory journal's page is the admin API's to cut")
    monkeypatch.setattr(journal_store, "PAGE_BYTES", 3000)
    journal = make_journal()
    _request(journal, 1, finished=False)  # the oldest, seen by this process only
    for n in range(2, 9):
        _request(journal, n, body=b"z" * 1000)
    sizes = {e.id: e.size for e in journal.query(limit=100)[1]}
    total, entries, after = journal.page(limit=100)
    # the entry that takes the page past 3000 bytes is the last one
    assert total == 8 and after == entries[-1].id
    assert sum(sizes[e.id] for e in entries[:-1]) <= 3000 < sum(sizes[e.id] for e in entries)
    walked: list[int] = []
    before = None
    while True:
        total, entries, before = journal.page(limit=100, before=before)
        walked += [e.id for e in entries]
        if before is None:
            break
    assert walked == list(range(8, 0, -1))


def test_an_id_no_store_holds_names_no_entry(make_journal: JournalMaker) -> None:
    journal = make_journal()
    _request(journal, 1)
    for wanted in (0, -1, 2, 10**19, 2**63):
        assert journal.get(wanted) is None
    assert journal.since(10**19) == []
    assert [e.id for e in journal.page(before=10**19)[1]] == [1]


def test_clear_forgets_every_entry_and_ids_go_on(make_journal: JournalMaker) -> None:
    first, second = make_journal(), make_journal()
    for n in range(3):
        _request(first, n)
    opened = _request(first, 3, finished=False)
    if first is second:  # the memory store
        assert first.clear() == 4
    else:
        assert second.clear() == 3  # the store's
        assert first.clear() == 1  # its own entry not finished
    assert len(first) == len(second) == 0 and first.query() == (0, [])
    finish(opened, status=200, headers=[], body=b"", duration_ms=1.0)  # cleared: not kept
    assert len(second) == 0 and len(first) == 0
    assert _request(second, 9).id == 5  # the session's ids do not start again


def test_watchers_are_told_in_their_own_process(make_journal: JournalMaker) -> None:
    journal = make_journal()
    seen: list[int] = []
    journal.watchers.append(lambda entry: seen.append(entry.id))
    entry = _request(journal, 1)
    journal.announce(entry)
    assert seen == [entry.id]


# -- durability ------------------------------------------------------------------------------

def test_the_journal_outlives_its_store_handle(store_url: str, namespace: str) -> None:
    if store_url == "memory":
        pytest.skip("the memory store lives in one process")
    store = open_store(store_url)
    written = [_request(store.journal(namespace, Settings()), n).to_json() for n in range(4)]
    store.close()
    reopened = open_store(store_url).journal(namespace, Settings())
    assert _shown(list(reversed(reopened.query()[1]))) == written


_KILLED = """
import sys
from datetime import UTC, datetime
from mock_server.core.journal import finish
from mock_server.core.stores import open_store
from mock_server.settings import Settings
journal = open_store(sys.argv[1]).journal(sys.argv[2], Settings())
n = 0
while True:
    n += 1
    e = journal.record(at=datetime(2026, 1, 1, tzinfo=UTC), provider="afterpay",
                       operation="op", method="POST", path=f"/{n}", query="", headers=[],
                       body=b"%d" % n)
    finish(e, status=201, headers=[], body=b"answer %d" % n, duration_ms=1.0)
    print(e.id, flush=True)  # finished: from here on it must be in the store
"""


def test_every_finished_entry_is_kept_after_kill_9(store_url: str, namespace: str) -> None:
    if store_url == "memory":
        pytest.skip("the memory store lives in one process")
    process = subprocess.Popen([sys.executable, "-c", _KILLED, store_url, namespace],
                               stdout=subprocess.PIPE, text=True)
    finished = []
    assert process.stdout is not None
    for line in process.stdout:
        finished.append(int(line))
        if len(finished) == 30:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=30)
    finished += [int(line) for line in process.stdout.read().split()]
    assert process.returncode == -signal.SIGKILL
    journal = open_store(store_url).journal(namespace, Settings())
    for entry_id in finished:
        entry = journal.get(entry_id)
        assert entry is not None and entry.path == f"/{entry_id}"
        assert entry.raw_response_body == b"answer %d" % entry_id
    # an entry recorded, not finished, when the kill came is not in the store: nothing else is
    assert len(journal) in (len(finished), len(finished) + 1)


# -- a state machine: stored journals against the in-memory journal --------------------------

class _Against(RuleBasedStateMachine):
    """Two journals of one session in a store (two processes) and one in-memory journal, fed
    the same requests and clears: every read agrees."""

    url = "memory"

    @initialize(size=st.integers(1, 6), budget=st.sampled_from([1, 3000, 10**6]))
    def start(self, size: int, budget: int) -> None:
        namespace = f"sm{os.getpid()}-{next(_machines)}"
        limits = {"journal_size": size, "journal_entry_bytes": 512, "journal_bytes": budget}
        if self.url == "memory":
            one = open_store("memory").journal(namespace, _settings(**limits))
            self.journals = [one, one]
        else:
            self.journals = [open_store(self.url).journal(namespace, _settings(**limits))
                             for _ in range(2)]
        self.reference = Journal(size, entry_bytes=512, max_bytes=budget)
        self.n = 0

    @rule(which=st.integers(0, 1), spec=st.fixed_dictionaries({
        "provider": st.sampled_from(["afterpay", "optty"]),
        "operation": st.sampled_from(["a", "b"]),
        "status": st.sampled_from([0, 200, 201, 404]),
        "body": st.binary(max_size=700)}))
    def request(self, which: int, spec: dict[str, Any]) -> None:
        self.n += 1
        _request(self.journals[which], self.n, **spec)
        _request(self.reference, self.n, **spec)

    @rule(which=st.integers(0, 1))
    def clear(self, which: int) -> None:
        assert self.journals[which].clear() == self.reference.clear()

    @rule(which=st.integers(0, 1), provider=st.sampled_from([None, "afterpay", "optty"]),
          status=st.sampled_from([None, 0, 201]), operation=st.sampled_from([None, "a"]),
          limit=st.integers(1, 4), before=st.none() | st.integers(0, 30))
    def read(self, which: int, provider: str | None, status: int | None,
             operation: str | None, limit: int, before: int | None) -> None:
        journal = self.journals[which]
        filters = {"provider": provider, "status": status, "operation": operation}
        total, entries, after = journal.page(limit=limit, before=before, **filters)
        want_total, want, want_after = self.reference.page(limit=limit, before=before,
                                                           **filters)
        assert (total, _shown(entries), after) == (want_total, _shown(want), want_after)
        if entries:
            assert journal.get(entries[0].id).to_json() == entries[0].to_json()  # type: ignore

    @invariant()
    def same_length_and_bytes(self) -> None:
        if hasattr(self, "reference"):
            for journal in self.journals:
                assert len(journal) == len(self.reference)
                assert journal.bytes == self.reference.bytes
                assert _shown(journal.since(0)) == _shown(self.reference.since(0))


_machines = iter(range(1, 10**9))


def test_stored_journals_behave_as_the_in_memory_one(store_url: str) -> None:
    machine = type("Machine", (_Against,), {"url": store_url})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=25, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))


def test_a_callback_nobody_could_be_sent_is_kept_in_the_store(store_url: str,
                                                              namespace: str) -> None:
    """An Optty refund settled for a merchant without webhookUrl is journaled, never sent: it is
    finished as it is (no answer, no duration), so a store keeps it for every process."""
    from decimal import Decimal

    from mock_server.core.clock import SessionClock
    from mock_server.core.ids import IdSource
    from mock_server.core.ledger import InMemoryLedger, RefundEntry
    from mock_server.core.world import Session
    from mock_server.optty.webhooks import CallbackQueue, PendingRefund

    account = ("optty", "m-1", "ORD-1")
    journal = open_store(store_url).journal(namespace, Settings())
    session = Session(namespace, Settings(), SessionClock(lambda: NOW), IdSource(1, "s"),
                      InMemoryLedger(), journal)
    session.ledger.open(account, "AUD", Decimal("60.00"), [
        RefundEntry("rf-1", Decimal("25.00"), NOW, {"refundReference": "r-1"})])
    queue = CallbackQueue()
    queue.schedule(PendingRefund(
        due=NOW, account=account, refund_id="rf-1", merchant_id="m-1", order_reference="ORD-1",
        refund_reference="r-1", amount=Decimal("25.00"), currency="AUD", transaction_id="TX-1",
        final_status="SUCCESSFUL", url=None))
    queue.settle_due(session, NOW)
    other = journal if store_url == "memory" else open_store(store_url).journal(namespace,
                                                                                Settings())
    _, [entry] = other.query()
    assert entry.kind == "callback" and entry.status == 0 and entry.duration_ms == 0.0
    assert entry.warnings == ("REFUND_CALLBACK not delivered: merchant m-1 has no webhookUrl",)
    assert other.since(0) == []  # not an attempt that was answered: not streamed, as before


def test_a_store_file_from_before_the_journal_opens_with_an_empty_one(tmp_path: Path) -> None:
    """The journal's tables are new in format 1 files: a file written before them held no
    journal, which is what it reads as (the format needs no new version)."""
    from mock_server.core.ledger_sqlite import connect
    from mock_server.core.sessionstore_sqlite import prepare

    path = tmp_path / "older.db"
    db = connect(str(path))
    prepare(db)
    assert "journal" not in {name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    store = open_store(f"sqlite:{path}")
    journal = store.journal("s", Settings())
    assert len(journal) == 0 and journal.query() == (0, [])
    assert _request(journal, 1).id == 1
    assert store.info()["sessions"]["s"]["journalEntries"] == 1
