"""The money ledger: one atomic check-and-record refund step per order, plus idempotency records."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import chain
from typing import Any, NamedTuple

AccountKey = tuple[str, str, str]  # (provider, merchant id, order id)
IdempotencyKey = tuple[Hashable, ...]


# The in-memory ledger stores each refund, idempotent answer and key as a plain tuple of
# strings, numbers, Decimals and datetimes (a refund's details as a tuple of pairs): containers
# the garbage collector stops tracking once they survive a collection (only exact tuples holding
# no other container are, so not the NamedTuples handed out, nor a tuple holding a dict). A
# million stored refunds then add nothing to the objects a full collection walks, which keeps the
# collector's pauses, and with them the tail latency, flat as the ledger grows.
_NO_DETAILS: Mapping[str, Any] = {}


class RefundEntry(NamedTuple):
    refund_id: str
    amount: Decimal
    at: datetime
    # strings only (request references, status): kept untracked by the garbage collector
    details: Mapping[str, Any] = _NO_DETAILS
    # an asynchronous refund that finally failed gives its money back
    reversed: bool = False


class StoredAnswer(NamedTuple):
    """A response kept for idempotent replay, byte for byte."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    # what a replay is compared with (a tuple of strings, or a string): tells a repeat of the
    # original request from a different request under the same key
    fingerprint: Hashable
    expires_at: datetime | None


class InFlight:
    """The original request holding this idempotency key has not answered yet."""

    __slots__ = ()


IN_FLIGHT = InFlight()


@dataclass(frozen=True, slots=True)
class AccountView:
    currency: str
    captured: Decimal
    refunded: Decimal
    refunds: tuple[RefundEntry, ...]

    @property
    def remaining(self) -> Decimal:
        return self.captured - self.refunded


class RefundExceeded(Exception):
    """The refund asked for more than is left; nothing was recorded."""

    def __init__(self, remaining: Decimal) -> None:
        super().__init__(f"only {remaining} left to refund")
        self.remaining = remaining


class UnknownAccount(KeyError):
    pass


# Builds the refund and, when the request is idempotent, the answer to keep; called inside the
# atomic step with what will be left after the refund.
RefundBuilder = Callable[[Decimal], tuple[RefundEntry, StoredAnswer | None]]


class Ledger(ABC):
    """What a backend (in-memory now; SQLite or Redis later) must provide.

    `refund` is the one operation that must be atomic per account: check what is left, record the
    refund and store the idempotent answer, all or nothing.
    """

    @abstractmethod
    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = ()) -> None: ...

    @abstractmethod
    def view(self, key: AccountKey) -> AccountView | None: ...

    @abstractmethod
    def claim(self, key: IdempotencyKey, now: datetime) -> StoredAnswer | InFlight | None:
        """The stored answer, IN_FLIGHT, or None when the caller now holds the key."""

    @abstractmethod
    def release(self, key: IdempotencyKey) -> None:
        """Gives up a claim that ended without a stored answer (the request failed)."""

    @abstractmethod
    def refund(self, key: AccountKey, amount: Decimal, build: RefundBuilder,
               idempotency_key: IdempotencyKey | None = None) -> RefundEntry: ...

    @abstractmethod
    def settle(self, key: AccountKey, refund_id: str, details: Mapping[str, Any],
               reverse: bool = False) -> RefundEntry:
        """Finalises an asynchronous refund; `reverse` gives its money back (it failed)."""

    @abstractmethod
    def stats(self) -> Mapping[str, int]: ...


# RefundEntry and StoredAnswer as plain tuples (see above)
_Stored = tuple[Any, ...]


def _store(entry: RefundEntry) -> _Stored:
    # the details flattened to (name, value, name, value, ...): one tuple, not one per pair
    flat = tuple(chain.from_iterable(entry.details.items()))
    return (entry.refund_id, entry.amount, entry.at, flat, entry.reversed)


def _load(stored: _Stored) -> RefundEntry:
    refund_id, amount, at, flat, reversed_ = stored
    return RefundEntry(refund_id, amount, at, dict(zip(flat[::2], flat[1::2], strict=True)),
                       reversed_)


@dataclass(slots=True)
class _Account:
    currency: str
    captured: Decimal
    refunded: Decimal
    refunds: list[_Stored]


class InMemoryLedger(Ledger):
    def __init__(self) -> None:
        # One lock for the whole session's ledger: cheaper than a lock per account under asyncio
        # (where it is never contended) and still atomic per account when tests use threads.
        self._lock = threading.Lock()
        self._accounts: dict[AccountKey, _Account] = {}
        self._answers: dict[IdempotencyKey, _Stored | InFlight] = {}
        # told of each refund recorded (the server's metrics), after the ledger's lock
        self.on_refund: Callable[[AccountKey, str, Decimal], None] | None = None

    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = ()) -> None:
        entries = list(refunds)
        refunded = sum((e.amount for e in entries if not e.reversed), Decimal(0))
        if refunded > captured:
            raise RefundExceeded(captured - refunded)
        with self._lock:
            self._accounts[key] = _Account(currency, captured, refunded,
                                           [_store(e) for e in entries])

    def view(self, key: AccountKey) -> AccountView | None:
        with self._lock:
            account = self._accounts.get(key)
            if account is None:
                return None
            return AccountView(account.currency, account.captured, account.refunded,
                               tuple(map(_load, account.refunds)))

    def claim(self, key: IdempotencyKey, now: datetime) -> StoredAnswer | InFlight | None:
        with self._lock:
            held = self._answers.get(key)
            if held is None:
                self._answers[key] = IN_FLIGHT
                return None
            if isinstance(held, InFlight):
                return held
            answer = StoredAnswer._make(held)
            if answer.expires_at is not None and answer.expires_at <= now:
                self._answers[key] = IN_FLIGHT
                return None
            return answer

    def release(self, key: IdempotencyKey) -> None:
        with self._lock:
            if self._answers.get(key) is IN_FLIGHT:
                del self._answers[key]

    def refund(self, key: AccountKey, amount: Decimal, build: RefundBuilder,
               idempotency_key: IdempotencyKey | None = None) -> RefundEntry:
        with self._lock:
            account = self._accounts.get(key)
            if account is None:
                raise UnknownAccount(key)
            remaining = account.captured - account.refunded
            if amount > remaining:
                raise RefundExceeded(remaining)
            entry, answer = build(remaining - amount)
            account.refunds.append(_store(entry))
            account.refunded += amount
            if idempotency_key is not None and answer is not None:
                self._answers[idempotency_key] = tuple(answer)
            currency = account.currency
        if self.on_refund is not None:
            self.on_refund(key, currency, amount)
        return entry

    def settle(self, key: AccountKey, refund_id: str, details: Mapping[str, Any],
               reverse: bool = False) -> RefundEntry:
        with self._lock:
            account = self._accounts[key]
            for index, stored in enumerate(account.refunds):
                if stored[0] == refund_id:
                    entry = _load(stored)
                    updated = entry._replace(details={**entry.details, **details},
                                             reversed=entry.reversed or reverse)
                    if reverse and not entry.reversed:
                        account.refunded -= entry.amount
                    account.refunds[index] = _store(updated)
                    return updated
            raise UnknownAccount(refund_id)

    def stats(self) -> Mapping[str, int]:
        with self._lock:
            return {
                "accounts": len(self._accounts),
                "refunds": sum(len(a.refunds) for a in self._accounts.values()),
                "idempotencyRecords": len(self._answers),
            }
