"""The session records' contract (core/sessionrecords.py), once over every store: the snapshot
and its version, the lock with its lease, the sequences."""

from __future__ import annotations

from typing import Any

import pytest

from mock_server.core.sessionrecords import LockLost, MemorySessionRecords
from mock_server.core.stores import open_store


@pytest.fixture
def records(store_url: str, namespace: str) -> Any:
    if store_url == "memory":
        shared = MemorySessionRecords()
        return lambda: shared
    return lambda: open_store(store_url).records(namespace)


def test_a_new_record_has_no_snapshot_and_version_zero(records: Any) -> None:
    one = records()
    assert one.version() == 0
    assert one.load({}) is None


def test_a_saved_snapshot_is_read_by_another_handle_with_its_version(records: Any) -> None:
    writer, reader = records(), records()
    assert writer.acquire("a", 100.0, 30.0) == 0
    version = writer.release("a", {"small": b"state one"})
    assert version > 0
    assert reader.version() == version
    assert reader.load({}) == (version, {"small": (version, b"state one")}, [])
    # a release that stores nothing leaves the version alone
    assert writer.acquire("a", 100.0, 30.0) == version
    assert writer.release("a", None) == version


def test_the_lock_keeps_a_second_holder_out_until_released(records: Any) -> None:
    one, two = records(), records()
    assert one.acquire("a", 100.0, 30.0) is not None
    assert two.acquire("b", 100.0, 30.0) is None
    assert one.acquire("a", 100.0, 30.0) is not None  # the holder's own again
    one.release("a", None)
    assert two.acquire("b", 100.0, 30.0) is not None


def test_only_the_holder_stores_a_snapshot(records: Any) -> None:
    one, two = records(), records()
    assert one.acquire("a", 100.0, 30.0) is not None
    with pytest.raises(LockLost):
        two.release("b", {"small": b"not mine"})
    with pytest.raises(LockLost):
        two.delete("b")
    assert one.load({}) is None
    one.release("a", {"small": b"mine"})
    assert two.load({}) is not None


def test_deleting_forgets_the_snapshot_and_moves_the_version_on(records: Any) -> None:
    one = records()
    one.acquire("a", 100.0, 30.0)
    saved = one.release("a", {"small": b"x"})
    one.acquire("a", 100.0, 30.0)
    deleted = one.delete("a")
    assert deleted > saved
    assert one.load({}) is None
    assert one.version() == deleted
    assert records().acquire("b", 100.0, 30.0) == deleted  # and the lock is free


def test_a_lease_that_ran_out_lets_another_holder_in(records: Any, store_url: str,
                                                     namespace: str) -> None:
    one, two = records(), records()
    if store_url.startswith("redis"):
        # Redis runs the lease on its own clock (the key's expiry): it is set to the lease,
        # and a lock key that expired is a free lock
        import redis

        client = redis.Redis.from_url(store_url)
        assert one.acquire("a", 0.0, 5.0) is not None
        key = f"rms:{{{namespace}}}:lock"
        assert 0 < client.pttl(key) <= 5000
        client.delete(key)  # what the expiry does when the lease runs out
    else:
        assert one.acquire("a", 100.0, 5.0) is not None
        assert two.acquire("b", 104.0, 5.0) is None
    assert two.acquire("b", 105.0, 5.0) is not None
    with pytest.raises(LockLost):
        one.release("a", {"small": b"too late"})


def test_sequences_count_on_from_their_start_across_handles(records: Any) -> None:
    one, two = records(), records()
    assert one.sequence("generation", 0) == 1
    assert two.sequence("generation", 0) == 2
    assert one.sequence("other", 100) == 101
    assert two.sequence("generation", 0) == 3


def test_saving_keeps_the_lock_and_moves_the_version_on(records: Any) -> None:
    one, two = records(), records()
    assert one.acquire("a", 100.0, 30.0) == 0
    first = one.save("a", {"small": b"one"})
    assert two.load({}) == (first, {"small": (first, b"one")}, [])
    assert two.acquire("b", 100.0, 30.0) is None  # still held
    with pytest.raises(LockLost):
        two.save("b", {"small": b"not mine"})
    second = one.save("a", {"small": b"two"})
    assert second > first
    assert one.release("a", None) == second
    assert two.acquire("b", 100.0, 30.0) == second


def test_parts_are_written_alone_and_read_only_when_newer(records: Any) -> None:
    one, two = records(), records()
    one.acquire("a", 100.0, 30.0)
    first = one.release("a", {"seeds": b"S", "states": b"M", "small": b"i1"})
    loaded = two.load({})
    assert loaded == (first, {"seeds": (first, b"S"), "states": (first, b"M"),
                              "small": (first, b"i1")}, [])
    held = {name: version for name, (version, _) in loaded[1].items()}
    one.acquire("a", 100.0, 30.0)
    second = one.release("a", {"small": b"i2"})  # a refund: only the ids moved
    assert two.load(held) == (second, {"small": (second, b"i2")}, [])
    assert two.load({}) == (second, {"seeds": (first, b"S"), "states": (first, b"M"),
                                     "small": (second, b"i2")}, [])


def test_ledger_ops_are_stored_with_their_release_and_read_after_the_reader_s_version(
        records: Any) -> None:
    one, two = records(), records()
    one.acquire("a", 100.0, 30.0)
    first = one.release("a", {"small": b"i1", "ledger": b"L1"})
    one.acquire("a", 100.0, 30.0)
    second = one.release("a", None, b"op\x00:two")  # money only: the version moves all the same
    assert second > first
    one.acquire("a", 100.0, 30.0)
    third = one.release("a", {"small": b"i3"}, b"op three")
    # a reader holding nothing: the checkpoint and every op after it, oldest first
    assert two.load({}) == (third, {"small": (third, b"i3"), "ledger": (first, b"L1")},
                            [b"op\x00:two", b"op three"])
    # a reader at the second version: only what came after
    assert two.load({"small": first, "ledger": first}, second) == (
        third, {"small": (third, b"i3")}, [b"op three"])
    assert two.load({"small": third, "ledger": first}, third) == (third, {}, [])


def test_a_checkpoint_drops_the_ops_before_it(records: Any) -> None:
    one, two = records(), records()
    one.acquire("a", 100.0, 30.0)
    first = one.release("a", {"small": b"i", "ledger": b"L1"})
    one.acquire("a", 100.0, 30.0)
    one.release("a", None, b"before")
    one.acquire("a", 100.0, 30.0)
    checkpoint = one.release("a", {"ledger": b"L2"})
    one.acquire("a", 100.0, 30.0)
    last = one.save("a", {}, b"after")
    # a reader that held the first checkpoint and its op reads the new one and what follows
    assert two.load({"small": first, "ledger": first}, first + 1) == (
        last, {"ledger": (checkpoint, b"L2")}, [b"after"])
    one.release("a", None)
    # deleted: nothing is left of the log either
    one.acquire("a", 100.0, 30.0)
    one.delete("a")
    assert two.load({}) is None
    one.acquire("a", 100.0, 30.0)
    again = one.release("a", {"small": b"new", "ledger": b"L"})
    assert two.load({}) == (again, {"small": (again, b"new"), "ledger": (again, b"L")}, [])


def test_ops_need_the_lock(records: Any) -> None:
    one, two = records(), records()
    one.acquire("a", 100.0, 30.0)
    with pytest.raises(LockLost):
        two.release("b", None, b"not mine")
    with pytest.raises(LockLost):
        two.save("b", {}, b"not mine")
    one.release("a", {"small": b"s", "ledger": b"L"})
    assert two.load({})[2] == []


def test_a_kept_lock_stays_its_holder_s_with_its_lease_renewed(records: Any) -> None:
    one, two = records(), records()
    assert one.acquire("a", 100.0, 30.0) == 0
    version, kept, _ = one.keep("a", {"small": b"s"}, b"op", 110.0, 30.0)
    assert kept and version > 0
    # renewed to 140: at 135 the lease still runs for everyone else
    assert two.acquire("b", 135.0, 30.0) is None
    assert one.acquire("a", 135.0, 30.0) == version  # its holder's next request
    # nothing to save: the version stays; no journal named: no id taken
    assert one.keep("a", None, None, 136.0, 30.0) == (version, True, None)
    with pytest.raises(LockLost):
        two.keep("b", None, None, 136.0, 30.0)


def test_a_wish_for_the_lock_is_served_before_anyone_else(records: Any) -> None:
    one, two, three = records(), records(), records()
    assert one.acquire("a", 100.0, 30.0) == 0
    assert two.acquire("b", 100.0, 30.0, want=5.0) is None  # b asks for it
    assert three.acquire("c", 100.0, 30.0, want=5.0) is None  # c asks too: b was first
    # the holder's keep gives the lock back for b
    version, kept, _ = one.keep("a", {"small": b"s"}, None, 101.0, 30.0)
    assert not kept
    assert one.acquire("a", 101.0, 30.0) is None  # not even its last holder takes it before b
    assert three.acquire("c", 101.0, 30.0) is None
    assert two.acquire("b", 101.0, 30.0) == version  # b's wish is served, and spent
    assert two.keep("b", None, None, 102.0, 30.0) == (version, True, None)
    two.release("b", None)
    assert one.acquire("a", 102.0, 30.0) == version


def test_a_wish_runs_out(records: Any) -> None:
    one, two = records(), records()
    one.acquire("a", 100.0, 30.0)
    assert two.acquire("b", 100.0, 30.0, want=0.5) is None
    one.release("a", None)
    assert one.acquire("a", 100.2, 30.0) is None  # b's wish still runs
    if type(one).__name__ == "RedisSessionRecords":
        return  # Redis's own clock runs the wish out (a key's expiry), not the caller's
    assert one.acquire("a", 100.6, 30.0) == 0  # b did not come back


def test_a_kept_lock_takes_the_next_id_of_the_journal_it_names(
        records: Any, store_url: str, namespace: str) -> None:
    one, two = records(), records()
    one.acquire("a", 100.0, 30.0)
    journal = f"{namespace}#1"
    first = one.keep("a", {"small": b"s"}, None, 100.0, 30.0, journal)
    second = one.keep("a", None, None, 100.0, 30.0, journal)
    if store_url == "memory":
        assert first[2] is None and second[2] is None  # no journal lives in it
        return
    assert (first[2], second[2]) == (1, 2)
    from mock_server.core.stores import open_store
    from mock_server.settings import Settings

    # the journal's own counter goes on after them: no id is given out twice
    assert open_store(store_url).journal(journal, Settings()).backend.next_id() == 3
    # a lock given back (another owner asks) takes no id
    two.acquire("b", 100.0, 30.0, want=5.0)
    assert one.keep("a", None, None, 100.0, 30.0, journal)[1:] == (False, None)
