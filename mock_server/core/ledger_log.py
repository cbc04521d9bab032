"""A session's ledger when a store shared by processes holds the session: an in-process copy
(`InMemoryLedger`, so every check and read is the memory store's) that logs each change it
made as an op. The process holding the session writes the request's ops with the session's
snapshot in the store's one release step (core/sessionrecords.py); another process replays
them (`replay`) and holds the same ledger. Now and then the whole ledger is written instead
(a checkpoint: the snapshot's `ledger` part), and the ops before it are dropped.

Every op is plain data (keys, amounts, RefundEntry, StoredAnswer, instants) and every step is
deterministic given the ledger it is applied to, so replaying the ops of version v on the
ledger of version v - 1 gives the ledger of version v. The one step that depends on more than
its arguments, an idempotency claim (a claim whose process was killed before it answered is
free again after STALE_CLAIM_SECONDS of wall-clock time, as in the ledgers of
core/ledger_sqlite.py and core/ledger_redis.py), is logged as its effect."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from mock_server.core.ledger import (
    IN_FLIGHT,
    STALE_CLAIM_SECONDS,
    AccountKey,
    AccountView,
    IdempotencyKey,
    InFlight,
    InMemoryLedger,
    RefundEntry,
    StoredAnswer,
)
from mock_server.core.ledger_codec import FORMAT_VERSION, StoreFormatError

Op = tuple[Any, ...]


class LoggedLedger(InMemoryLedger):
    """`InMemoryLedger` whose changes are kept in `ops` until the session's holder writes them
    (`take_ops`)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.wall = wall
        # when each claim still in flight was taken (wall-clock seconds)
        self._claimed_at: dict[IdempotencyKey, float] = {}

    # -- the steps, each logged once it succeeded ---------------------------------------------

    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = (), *, authorised: Decimal | None = None,
             voided: Decimal = Decimal(0), references: Iterable[str] = ()) -> None:
        entries, taken = tuple(refunds), tuple(references)
        super().open(key, currency, captured, entries, authorised=authorised, voided=voided,
                     references=taken)
        self.ops.append(("open", (key, currency, captured, entries),
                         {"authorised": authorised, "voided": voided, "references": taken}))

    def claim(self, key: IdempotencyKey, now: datetime) -> StoredAnswer | InFlight | None:
        with self._lock:
            if self._answers.get(key) is IN_FLIGHT:
                claimed = self._claimed_at.get(key)
                if claimed is not None and self.wall() - claimed < STALE_CLAIM_SECONDS:
                    return IN_FLIGHT
                # its request never answered (its process was killed): the key is free again
                del self._answers[key]
        found = super().claim(key, now)
        if found is None:
            wall = self.wall()
            self._claimed_at[key] = wall
            self.ops.append(("claimed", key, wall))
        return found

    def release(self, key: IdempotencyKey) -> None:
        with self._lock:
            held = self._answers.get(key) is IN_FLIGHT
        super().release(key)
        if held:
            self._claimed_at.pop(key, None)
            self.ops.append(("release", key))

    def refund(self, key: AccountKey, entry: RefundEntry,
               idempotency_key: IdempotencyKey | None = None,
               answer: StoredAnswer | None = None, reference: str | None = None) -> RefundEntry:
        recorded = super().refund(key, entry, idempotency_key, answer, reference)
        self._stepped("refund", (key, entry, idempotency_key, answer, reference))
        return recorded

    def capture(self, key: AccountKey, amount: Decimal,
                idempotency_key: IdempotencyKey | None = None,
                answer: StoredAnswer | None = None) -> AccountView:
        view = super().capture(key, amount, idempotency_key, answer)
        self._stepped("capture", (key, amount, idempotency_key, answer))
        return view

    def void(self, key: AccountKey, amount: Decimal | None = None,
             idempotency_key: IdempotencyKey | None = None,
             answer: StoredAnswer | None = None) -> AccountView:
        view = super().void(key, amount, idempotency_key, answer)
        self._stepped("void", (key, amount, idempotency_key, answer))
        return view

    def _stepped(self, name: str, args: tuple[Any, ...]) -> None:
        """A refund, capture or void succeeded: its claim is answered, the step logged
        (its arguments: key, ..., idempotency key, answer, as `replay` applies them)."""
        self._answered(args[2], args[3])
        self.ops.append((name, args, None))

    def settle(self, key: AccountKey, refund_id: str, details: Mapping[str, Any],
               reverse: bool = False) -> RefundEntry:
        settled = super().settle(key, refund_id, details, reverse)
        self.ops.append(("settle", (key, refund_id, dict(details), reverse), None))
        return settled

    def _answered(self, idempotency_key: IdempotencyKey | None,
                  answer: StoredAnswer | None) -> None:
        if idempotency_key is not None and answer is not None:
            self._claimed_at.pop(idempotency_key, None)

    # -- across processes ---------------------------------------------------------------------

    def take_ops(self) -> list[Op]:
        """The ops logged since the last call (the holder writes them)."""
        ops, self.ops = self.ops, []
        return ops

    def replay(self, ops: Sequence[Op]) -> None:
        """Applies the ops another process logged (nothing is logged again; this process's
        metrics do not count them)."""
        told, self.on_refund = self.on_refund, None
        try:
            for op in ops:
                name = op[0]
                if name == "claimed":
                    _, key, wall = op
                    with self._lock:
                        self._answers[key] = IN_FLIGHT
                    self._claimed_at[key] = wall
                elif name == "release":
                    InMemoryLedger.release(self, op[1])
                    self._claimed_at.pop(op[1], None)
                elif name == "open":
                    InMemoryLedger.open(self, *op[1], **op[2])
                elif name in _REPLAYED:
                    getattr(InMemoryLedger, name)(self, *op[1])
                    if name != "settle":
                        self._answered(op[1][2], op[1][3])
                else:
                    raise StoreFormatError(f"a session's ledger log holds an unknown step "
                                           f"{name!r}; wipe it with `mock-server store wipe`")
        finally:
            self.on_refund = told

    # -- a checkpoint (the snapshot's `ledger` part) ------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"accounts": self._accounts, "answers": self._answers, "keys_of": self._keys_of,
                "references": self._references, "references_of": self._references_of,
                "claimed_at": self._claimed_at}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]  # a lock, no ops, no listener
        self._accounts = state["accounts"]
        self._answers = state["answers"]
        self._keys_of = state["keys_of"]
        self._references = state["references"]
        self._references_of = state["references_of"]
        self._claimed_at = state["claimed_at"]


_REPLAYED = frozenset({"refund", "capture", "void", "settle"})


def encode_ops(ops: Sequence[Op]) -> bytes:
    """One request's ops as bytes for the store (a pickle: the store is the sandbox's own)."""
    return pickle.dumps((FORMAT_VERSION, list(ops)), protocol=pickle.HIGHEST_PROTOCOL)


def decode_ops(data: bytes) -> list[Op]:
    """The ops `encode_ops` wrote; StoreFormatError (one line) when another version did."""
    try:
        version, ops = pickle.loads(data)
    except Exception as exc:  # noqa: BLE001 - any failure means another version wrote it
        raise StoreFormatError(f"the store holds a ledger log this sandbox cannot read "
                               f"({type(exc).__name__}); wipe it with `mock-server store "
                               "wipe`") from None
    if version != FORMAT_VERSION:
        raise StoreFormatError(f"the store holds a ledger log of format {version}; this "
                               f"sandbox reads format {FORMAT_VERSION} (wipe it with "
                               "`mock-server store wipe`)")
    return list(ops)
