"""The money ledger: per order, what was authorised, captured, voided and refunded, changed only
by atomic check-and-record steps (refund, capture, void), plus idempotency records.

Every atomic step takes plain data (the amount, the refund to record, the answer to keep) and
runs no caller's code inside it, so one SQL transaction or one Redis script can carry each."""

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
# an idempotency claim still in flight after this many seconds of wall-clock time was left by
# a process killed before it answered: the key is free again (the stores shared by processes)
STALE_CLAIM_SECONDS = 600.0
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

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _in_flight, ()  # one of it, in every process (a snapshot is compared with `is`)


IN_FLIGHT = InFlight()


def _in_flight() -> InFlight:
    return IN_FLIGHT


@dataclass(frozen=True, slots=True)
class AccountView:
    currency: str
    captured: Decimal
    refunded: Decimal
    refunds: tuple[RefundEntry, ...]
    # what the shopper's approval allows to be captured (equal to `captured` when the payment
    # was captured at once) and what of it was given up without capture
    authorised: Decimal = Decimal(0)
    voided: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        """What is left to refund."""
        return self.captured - self.refunded

    @property
    def open_to_capture(self) -> Decimal:
        return self.authorised - self.captured - self.voided


class RefundExceeded(Exception):
    """The refund asked for more than is left; nothing was recorded."""

    def __init__(self, remaining: Decimal) -> None:
        super().__init__(f"only {remaining} left to refund")
        self.remaining = remaining


class CaptureExceeded(Exception):
    """A capture or void asked for more than is open to capture; nothing was recorded."""

    def __init__(self, open_to_capture: Decimal) -> None:
        super().__init__(f"only {open_to_capture} open to capture")
        self.open_to_capture = open_to_capture


class UnknownAccount(KeyError):
    pass


class ReferenceTaken(Exception):
    """The refund's reference (a refund id that must be unique in the session) is already used
    by a refund of the ledger; nothing was recorded."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"{reference} is already used")
        self.reference = reference


class Ledger(ABC):
    """What a backend (in-memory now; SQLite or Redis later) must provide.

    `refund`, `capture` and `void` are atomic per account: check, record, and store the answer
    to replay under its idempotency key, all or nothing. They take plain data only.
    """

    @abstractmethod
    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = (), *, authorised: Decimal | None = None,
             voided: Decimal = Decimal(0), references: Iterable[str] = ()) -> None:
        """Opens (or replaces) an account; `authorised` defaults to `captured`. Replacing one
        forgets its refunds, the answers its steps stored and the references they took;
        `references` are taken for the opening refunds (ReferenceTaken when another account
        holds one)."""

    @abstractmethod
    def view(self, key: AccountKey) -> AccountView | None: ...

    @abstractmethod
    def claim(self, key: IdempotencyKey, now: datetime) -> StoredAnswer | InFlight | None:
        """The stored answer, IN_FLIGHT, or None when the caller now holds the key."""

    @abstractmethod
    def release(self, key: IdempotencyKey) -> None:
        """Gives up a claim that ended without a stored answer (the request failed)."""

    @abstractmethod
    def refund(self, key: AccountKey, entry: RefundEntry,
               idempotency_key: IdempotencyKey | None = None,
               answer: StoredAnswer | None = None, reference: str | None = None) -> RefundEntry:
        """Records `entry` if `reference` (when given) is used by no refund of the ledger (else
        ReferenceTaken) and what is left to refund covers its amount (else RefundExceeded);
        the reference is taken with the refund."""

    @abstractmethod
    def capture(self, key: AccountKey, amount: Decimal,
                idempotency_key: IdempotencyKey | None = None,
                answer: StoredAnswer | None = None) -> AccountView:
        """Captures `amount` if it is open to capture (else CaptureExceeded)."""

    @abstractmethod
    def void(self, key: AccountKey, amount: Decimal | None = None,
             idempotency_key: IdempotencyKey | None = None,
             answer: StoredAnswer | None = None) -> AccountView:
        """Voids `amount` of what is open to capture, or all of it when None (else
        CaptureExceeded)."""

    @abstractmethod
    def settle(self, key: AccountKey, refund_id: str, details: Mapping[str, Any],
               reverse: bool = False) -> RefundEntry:
        """Finalises an asynchronous refund; `reverse` gives its money back (it failed)."""

    @abstractmethod
    def stats(self) -> Mapping[str, int]: ...


def opening(captured: Decimal, refunds: Iterable[RefundEntry], authorised: Decimal | None,
            voided: Decimal) -> tuple[list[RefundEntry], Decimal, Decimal]:
    """What every store checks before it opens an account: (the refunds, what they refunded,
    what was authorised); RefundExceeded or CaptureExceeded when the totals do not add up."""
    entries = list(refunds)
    refunded = sum((e.amount for e in entries if not e.reversed), Decimal(0))
    if refunded > captured:
        raise RefundExceeded(captured - refunded)
    authorised = captured if authorised is None else authorised
    if captured + voided > authorised:
        raise CaptureExceeded(authorised - captured - voided)
    return entries, refunded, authorised


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
    authorised: Decimal
    voided: Decimal

    def view(self) -> AccountView:
        return AccountView(self.currency, self.captured, self.refunded,
                           tuple(map(_load, self.refunds)), self.authorised, self.voided)


class InMemoryLedger(Ledger):
    def __init__(self) -> None:
        # One lock for the whole session's ledger: cheaper than a lock per account under asyncio
        # (where it is never contended) and still atomic per account when tests use threads.
        self._lock = threading.Lock()
        self._accounts: dict[AccountKey, _Account] = {}
        self._answers: dict[IdempotencyKey, _Stored | InFlight] = {}
        # the idempotency keys whose answers an account's steps stored: a re-seeded account
        # forgets them with its refunds, so no replay returns a refund the account no longer has
        self._keys_of: dict[AccountKey, list[IdempotencyKey]] = {}
        # references taken (unique in the ledger), and the account that took each
        self._references: dict[str, AccountKey] = {}
        self._references_of: dict[AccountKey, list[str]] = {}
        # told of each refund recorded (the server's metrics), after the ledger's lock
        self.on_refund: Callable[[AccountKey, str, Decimal], None] | None = None

    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = (), *, authorised: Decimal | None = None,
             voided: Decimal = Decimal(0), references: Iterable[str] = ()) -> None:
        entries, refunded, authorised = opening(captured, refunds, authorised, voided)
        taken = list(dict.fromkeys(references))
        with self._lock:
            for reference in taken:
                holder = self._references.get(reference)
                if holder is not None and holder != key:
                    raise ReferenceTaken(reference)
            for forgotten in self._keys_of.pop(key, ()):
                self._answers.pop(forgotten, None)
            for released in self._references_of.pop(key, ()):
                self._references.pop(released, None)
            if taken:
                self._references_of[key] = taken
                self._references.update(dict.fromkeys(taken, key))
            self._accounts[key] = _Account(currency, captured, refunded,
                                           [_store(e) for e in entries], authorised, voided)

    def view(self, key: AccountKey) -> AccountView | None:
        with self._lock:
            account = self._accounts.get(key)
            return None if account is None else account.view()

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

    def refund(self, key: AccountKey, entry: RefundEntry,
               idempotency_key: IdempotencyKey | None = None,
               answer: StoredAnswer | None = None, reference: str | None = None) -> RefundEntry:
        with self._lock:
            account = self._account(key)
            if reference is not None and reference in self._references:
                raise ReferenceTaken(reference)
            remaining = account.captured - account.refunded
            if entry.amount > remaining:
                raise RefundExceeded(remaining)
            if reference is not None:
                self._references[reference] = key
                self._references_of.setdefault(key, []).append(reference)
            account.refunds.append(_store(entry))
            account.refunded += entry.amount
            self._keep(key, idempotency_key, answer)
            currency = account.currency
        if self.on_refund is not None:
            self.on_refund(key, currency, entry.amount)
        return entry

    def capture(self, key: AccountKey, amount: Decimal,
                idempotency_key: IdempotencyKey | None = None,
                answer: StoredAnswer | None = None) -> AccountView:
        with self._lock:
            account = self._account(key)
            open_to_capture = account.authorised - account.captured - account.voided
            if amount > open_to_capture:
                raise CaptureExceeded(open_to_capture)
            account.captured += amount
            self._keep(key, idempotency_key, answer)
            return account.view()

    def void(self, key: AccountKey, amount: Decimal | None = None,
             idempotency_key: IdempotencyKey | None = None,
             answer: StoredAnswer | None = None) -> AccountView:
        with self._lock:
            account = self._account(key)
            open_to_capture = account.authorised - account.captured - account.voided
            amount = open_to_capture if amount is None else amount
            if amount > open_to_capture:
                raise CaptureExceeded(open_to_capture)
            account.voided += amount
            self._keep(key, idempotency_key, answer)
            return account.view()

    def _account(self, key: AccountKey) -> _Account:
        account = self._accounts.get(key)
        if account is None:
            raise UnknownAccount(key)
        return account

    def _keep(self, key: AccountKey, idempotency_key: IdempotencyKey | None,
              answer: StoredAnswer | None) -> None:
        if idempotency_key is not None and answer is not None:
            self._answers[idempotency_key] = tuple(answer)
            self._keys_of.setdefault(key, []).append(idempotency_key)

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
