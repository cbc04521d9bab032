"""Journal watchers (the live stream's hook): told of finished entries, and only those replayed."""

from __future__ import annotations

from datetime import UTC, datetime

from mock_server.core.journal import Journal, JournalEntry, finish

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _record(journal: Journal, path: str = "/x") -> JournalEntry:
    return journal.record(at=NOW, provider="afterpay", operation=None, method="GET", path=path,
                          query="", headers=[], body=b"")


def test_announce_tells_every_watcher() -> None:
    journal = Journal()
    seen: list[tuple[str, int]] = []
    journal.watchers.append(lambda e: seen.append(("a", e.id)))
    journal.watchers.append(lambda e: seen.append(("b", e.id)))
    entry = _record(journal)
    journal.announce(entry)
    assert seen == [("a", entry.id), ("b", entry.id)]


def test_a_watcher_may_leave_while_being_told() -> None:
    journal = Journal()

    def once(entry: JournalEntry) -> None:
        journal.watchers.remove(once)

    journal.watchers.append(once)
    journal.announce(_record(journal))
    assert journal.watchers == []


def test_since_lists_finished_entries_after_an_id_oldest_first() -> None:
    journal = Journal()
    first, second, in_flight, third = (_record(journal, f"/{n}") for n in range(4))
    for entry in (first, second, third):
        finish(entry, status=200, headers=[], body=b"", duration_ms=0.5)
    assert [e.path for e in journal.since(first.id)] == ["/1", "/3"]
    assert journal.since(third.id) == []
    assert in_flight.status == 0
