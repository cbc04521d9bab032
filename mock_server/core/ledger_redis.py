"""The ledger in Redis (`--store redis://HOST:PORT/DB`): every atomic step is one Lua script,
which Redis runs whole before any other command, so a check and its record are never split
across the processes (and machines) that share the server. One round trip per step.

Amounts travel as integer minor units (cents): the scripts compare and add integers, exact up to
2**53 cents; a larger amount is refused before it reaches Redis. Every key of one session
carries the session in a hash tag (`rms:{<session>}:...`), so a Redis Cluster keeps a session's
keys on one slot, where its scripts can reach them all."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from mock_server.core.ledger import (
    STALE_CLAIM_SECONDS,
    IN_FLIGHT,
    AccountKey,
    AccountView,
    CaptureExceeded,
    IdempotencyKey,
    InFlight,
    Ledger,
    ReferenceTaken,
    RefundEntry,
    RefundExceeded,
    StoredAnswer,
    UnknownAccount,
    opening,
)
from mock_server.core.ledger_codec import (
    FORMAT_VERSION,
    StoreFormatError,
    answer_json,
    entry_json,
    key_text,
    parse_answer,
    parse_entry,
)

MAX_CENTS = 2**53
_CENT = Decimal("0.01")
FORMAT_KEY = "rms:format"


def cents(amount: Decimal) -> int:
    value = amount / _CENT
    if value != value.to_integral_value() or abs(value) >= MAX_CENTS:
        raise ValueError(f"{amount} is not an amount the redis store keeps exactly")
    return int(value)


def _micros(moment: datetime | None) -> str:
    """An instant as whole microseconds since the epoch (exact, comparable in a script)."""
    if moment is None:
        return ""
    delta = moment - _EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _amount(raw: bytes | str) -> Decimal:
    return (Decimal(int(raw)) * _CENT).quantize(_CENT)


# KEYS: account, refunds, answer, keys-of, references (ref -> account), references-of;
# ARGV: cents, entry, answer, expires, reference ('' = none), account
_REFUND = """
local totals = redis.call('HMGET', KEYS[1], 'captured', 'refunded')
if not totals[1] then return {-1} end
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[5]) == 1 then return {-2} end
if tonumber(ARGV[1]) > tonumber(totals[1]) - tonumber(totals[2]) then
  return {0, totals[1], totals[2]}
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[5], ARGV[6])
  redis.call('SADD', KEYS[6], ARGV[5])
end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'refunded', ARGV[1])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], 'state', 'stored', 'answer', ARGV[3], 'expires', ARGV[4])
  redis.call('SADD', KEYS[4], KEYS[3])
end
return {1}
"""

# KEYS: account, answer, keys-of; ARGV: amount ('' = all that is open), field ('captured' or
# 'voided'), answer, expires
_CAPTURE_OR_VOID = """
local t = redis.call('HMGET', KEYS[1], 'authorised', 'captured', 'voided')
if not t[1] then return {-1} end
local open = tonumber(t[1]) - tonumber(t[2]) - tonumber(t[3])
local amount = open
if ARGV[1] ~= '' then amount = tonumber(ARGV[1]) end
if amount > open then return {0, t[1], t[2], t[3]} end
redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[1] ~= '' and ARGV[1] or string.format('%d', open))
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'state', 'stored', 'answer', ARGV[3], 'expires', ARGV[4])
  redis.call('SADD', KEYS[3], KEYS[2])
end
return {1}
"""

# KEYS: answer; ARGV: now (microseconds since the epoch), wall clock, stale
_CLAIM = """
local a = redis.call('HMGET', KEYS[1], 'state', 'claimed', 'answer', 'expires')
if a[1] == 'inflight' and tonumber(ARGV[2]) - tonumber(a[2]) < tonumber(ARGV[3]) then
  return {1}
end
if a[1] == 'stored' and (a[4] == '' or tonumber(a[4]) > tonumber(ARGV[1])) then
  return {2, a[3], a[4]}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'inflight', 'claimed', ARGV[2])
return {0}
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'state') == 'inflight' then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS: account, refunds, keys-of, references, references-of; ARGV: currency, authorised,
# captured, refunded, voided, account, how many references, references..., entries...
_OPEN = """
local count = tonumber(ARGV[7])
for i = 8, 7 + count do
  local holder = redis.call('HGET', KEYS[4], ARGV[i])
  if holder and holder ~= ARGV[6] then return {0, ARGV[i]} end
end
local released = redis.call('SMEMBERS', KEYS[5])
for _, ref in ipairs(released) do redis.call('HDEL', KEYS[4], ref) end
redis.call('DEL', KEYS[5])
for i = 8, 7 + count do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[6])
  redis.call('SADD', KEYS[5], ARGV[i])
end
local forgotten = redis.call('SMEMBERS', KEYS[3])
for _, key in ipairs(forgotten) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'currency', ARGV[1], 'authorised', ARGV[2], 'captured', ARGV[3],
           'refunded', ARGV[4], 'voided', ARGV[5])
for i = 8 + count, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
return {1}
"""

# KEYS: account, refunds; ARGV: refund id, details (JSON), reverse ('1'/'0')
_SETTLE = """
local entries = redis.call('LRANGE', KEYS[2], 0, -1)
for i, text in ipairs(entries) do
  local entry = cjson.decode(text)
  if entry['id'] == ARGV[1] then
    local details = cjson.decode(ARGV[2])
    for k, v in pairs(details) do entry['details'][k] = v end
    local was = entry['reversed']
    if ARGV[3] == '1' then entry['reversed'] = true end
    if ARGV[3] == '1' and not was then
      redis.call('HINCRBY', KEYS[1], 'refunded', -tonumber(ARGV[4]))
    end
    local updated = cjson.encode(entry)
    redis.call('LSET', KEYS[2], i - 1, updated)
    return {1, updated}
  end
end
return {0}
"""


class RedisLedger(Ledger):
    def __init__(self, client: Any, namespace: str) -> None:
        """`client`: a redis.Redis (bytes answers); `namespace`: the session."""
        self._redis = client
        self._prefix = f"rms:{{{namespace}}}:"
        self._scripts = {name: client.register_script(source) for name, source in (
            ("refund", _REFUND), ("capture_or_void", _CAPTURE_OR_VOID), ("claim", _CLAIM),
            ("release", _RELEASE), ("open", _OPEN), ("settle", _SETTLE))}

    @staticmethod
    def check_format(client: Any) -> None:
        """Marks an empty server with this format; refuses one written in another."""
        client.setnx(FORMAT_KEY, str(FORMAT_VERSION))
        found = client.get(FORMAT_KEY)
        if found is not None and found.decode() != str(FORMAT_VERSION):
            raise StoreFormatError(
                f"the redis store holds format {found.decode()}; this sandbox reads format "
                f"{FORMAT_VERSION} (wipe it with `mock-server store wipe`, or use another db)")

    def _keys(self, key: AccountKey) -> tuple[str, str, str]:
        text = key_text(key)
        return (f"{self._prefix}acct:{text}", f"{self._prefix}refunds:{text}",
                f"{self._prefix}keysof:{text}")

    def _reference_keys(self, key: AccountKey) -> list[str]:
        return [f"{self._prefix}refs", f"{self._prefix}refsof:{key_text(key)}"]

    def _answer_key(self, key: IdempotencyKey) -> str:
        return f"{self._prefix}answer:{key_text(key)}"

    # -- accounts ------------------------------------------------------------------------------

    def open(self, key: AccountKey, currency: str, captured: Decimal,
             refunds: Iterable[RefundEntry] = (), *, authorised: Decimal | None = None,
             voided: Decimal = Decimal(0), references: Iterable[str] = ()) -> None:
        entries, refunded, authorised = opening(captured, refunds, authorised, voided)
        account, refund_list, keys_of = self._keys(key)
        taken = list(dict.fromkeys(references))
        result = self._scripts["open"](
            keys=[account, refund_list, keys_of, *self._reference_keys(key)], args=[
                currency, cents(authorised), cents(captured), cents(refunded), cents(voided),
                key_text(key), len(taken), *taken, *(entry_json(e) for e in entries)])
        if result[0] == 0:
            raise ReferenceTaken(result[1].decode())

    def view(self, key: AccountKey) -> AccountView | None:
        account, refund_list, _ = self._keys(key)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hmget(account, "currency", "authorised", "captured", "refunded", "voided")
        pipe.lrange(refund_list, 0, -1)
        totals, entries = pipe.execute()
        if totals[0] is None:
            return None
        currency, authorised, captured, refunded, voided = totals
        return AccountView(currency.decode(), _amount(captured), _amount(refunded),
                           tuple(parse_entry(e) for e in entries), _amount(authorised),
                           _amount(voided))

    # -- the atomic steps ----------------------------------------------------------------------

    def _answer_args(self, idempotency_key: IdempotencyKey | None,
                     answer: StoredAnswer | None) -> tuple[str, list[str]]:
        if idempotency_key is None or answer is None:
            return f"{self._prefix}answer:-", ["", ""]
        return self._answer_key(idempotency_key), [answer_json(answer),
                                                   _micros(answer.expires_at)]

    def refund(self, key: AccountKey, entry: RefundEntry,
               idempotency_key: IdempotencyKey | None = None,
               answer: StoredAnswer | None = None, reference: str | None = None) -> RefundEntry:
        account, refund_list, keys_of = self._keys(key)
        answer_key, answer_args = self._answer_args(idempotency_key, answer)
        try:
            amount = cents(entry.amount)
        except ValueError:
            view = self.view(key)
            raise RefundExceeded(view.remaining if view else Decimal(0)) from None
        result = self._scripts["refund"](
            keys=[account, refund_list, answer_key, keys_of, *self._reference_keys(key)],
            args=[amount, entry_json(entry), *answer_args, reference or "", key_text(key)])
        if result[0] == -1:
            raise UnknownAccount(key)
        if result[0] == -2:
            assert reference is not None
            raise ReferenceTaken(reference)
        if result[0] == 0:
            raise RefundExceeded(_amount(result[1]) - _amount(result[2]))
        return entry

    def _capture_or_void(self, key: AccountKey, amount: Decimal | None, field: str,
                         idempotency_key: IdempotencyKey | None,
                         answer: StoredAnswer | None) -> AccountView:
        account, _, keys_of = self._keys(key)
        answer_key, answer_args = self._answer_args(idempotency_key, answer)
        try:
            units = "" if amount is None else str(cents(amount))
        except ValueError:
            view = self.view(key)
            raise CaptureExceeded(view.open_to_capture if view else Decimal(0)) from None
        result = self._scripts["capture_or_void"](keys=[account, answer_key, keys_of],
                                                  args=[units, field, *answer_args])
        if result[0] == -1:
            raise UnknownAccount(key)
        if result[0] == 0:
            raise CaptureExceeded(_amount(result[1]) - _amount(result[2]) - _amount(result[3]))
        view = self.view(key)
        assert view is not None
        return view

    def capture(self, key: AccountKey, amount: Decimal,
                idempotency_key: IdempotencyKey | None = None,
                answer: StoredAnswer | None = None) -> AccountView:
        return self._capture_or_void(key, amount, "captured", idempotency_key, answer)

    def void(self, key: AccountKey, amount: Decimal | None = None,
             idempotency_key: IdempotencyKey | None = None,
             answer: StoredAnswer | None = None) -> AccountView:
        return self._capture_or_void(key, amount, "voided", idempotency_key, answer)

    def settle(self, key: AccountKey, refund_id: str, details: Mapping[str, Any],
               reverse: bool = False) -> RefundEntry:
        import json

        account, refund_list, _ = self._keys(key)
        view = self.view(key)
        entry = next((e for e in view.refunds if e.refund_id == refund_id), None) if view else None
        if entry is None:
            raise UnknownAccount(refund_id)
        result = self._scripts["settle"](keys=[account, refund_list], args=[
            refund_id, json.dumps(dict(details)), "1" if reverse else "0", cents(entry.amount)])
        if result[0] == 0:
            raise UnknownAccount(refund_id)
        return parse_entry(result[1])

    # -- idempotency claims --------------------------------------------------------------------

    def claim(self, key: IdempotencyKey, now: datetime) -> StoredAnswer | InFlight | None:
        result = self._scripts["claim"](keys=[self._answer_key(key)], args=[
            _micros(now), repr(time.time()), STALE_CLAIM_SECONDS])
        if result[0] == 1:
            return IN_FLIGHT
        if result[0] == 2:
            expires = result[2].decode()
            return parse_answer(result[1], datetime.fromtimestamp(int(expires) / 1e6, UTC)
                                if expires else None)
        return None

    def release(self, key: IdempotencyKey) -> None:
        self._scripts["release"](keys=[self._answer_key(key)], args=[])

    def stats(self) -> Mapping[str, int]:
        counts = {"accounts": 0, "refunds": 0, "idempotencyRecords": 0}
        for name in self._redis.scan_iter(match=f"{self._prefix}*", count=1000):
            kind = name.decode()[len(self._prefix):].split(":", 1)[0]
            if kind == "acct":
                counts["accounts"] += 1
            elif kind == "refunds":
                counts["refunds"] += self._redis.llen(name)
            elif kind == "answer":
                counts["idempotencyRecords"] += 1
        return counts
