"""The money ledger: one atomic check-and-record refund step per order, plus idempotency records."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

AccountKey = tuple[str, str, str]  # (provider, merchant id, order id)
IdempotencyKey = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class RefundEntry:
    refund_id: str
    amount: Decimal
    at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)
    # an asynchronous refund that finally failed gives its money back
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A response kept for idempotent replay, byte for byte."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fingerprint: str
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


@dataclass(slots=True)
class _Account:
    currency: str
    captured: Decimal
    refunded: Decimal
    refunds: list[RefundEntry]


class InMemoryLedger(Ledger):
    def __init__(self) -> None:
        # One lock for the whole session's ledger: cheaper than a lock per account under asyncio
        # (where it is never contended) and still atomic per account when tests use threads.
        self._lock = threading.Lock()
        self._accounts: dict[AccountKey, _Account] = {}
        self._answers: dict[IdempotencyKey, StoredAnswer | InFlight] = {}

    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = ()) -> None:
        entries = list(refunds)
        refunded = sum((e.amount for e in entries if not e.reversed), Decimal(0))
        if refunded > captured:
            raise RefundExceeded(captured - refunded)
        with self._lock:
            self._accounts[key] = _Account(currency, captured, refunded, entries)

    def view(self, key: AccountKey) -> AccountView | None:
        with self._lock:
            account = self._accounts.get(key)
            if account is None:
                return None
            return AccountView(account.currency, account.captured, account.refunded,
                               tuple(account.refunds))

    def claim(self, key: IdempotencyKey, now: datetime) -> StoredAnswer | InFlight | None:
        with self._lock:
            held = self._answers.get(key)
            if isinstance(held, StoredAnswer) and held.expires_at is not None \
                    and held.expires_at <= now:
                held = None
            if held is not None:
                return held
            self._answers[key] = IN_FLIGHT
            return None

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
            account.refunds.append(entry)
            account.refunded += amount
            if idempotency_key is not None and answer is not None:
                self._answers[idempotency_key] = answer
            return entry

    def settle(self, key: AccountKey, refund_id: str, details: Mapping[str, Any],
               reverse: bool = False) -> RefundEntry:
        with self._lock:
            account = self._accounts[key]
            for index, entry in enumerate(account.refunds):
                if entry.refund_id == refund_id:
                    updated = replace(entry, details={**entry.details, **details},
                                      reversed=entry.reversed or reverse)
                    if reverse and not entry.reversed:
                        account.refunded -= entry.amount
                    account.refunds[index] = updated
                    return updated
            raise UnknownAccount(refund_id)

    def stats(self) -> Mapping[str, int]:
        with self._lock:
            return {
                "accounts": len(self._accounts),
                "refunds": sum(len(a.refunds) for a in self._accounts.values()),
                "idempotencyRecords": len(self._answers),
            }
