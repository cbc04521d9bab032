"""Fault-rule counters and pending callbacks in the Redis server that holds the ledger: each
operation that checks and changes is one Lua script (run whole, before any other command), and
every key carries the session's hash tag (`rms:{<session>}:...`), like the ledger's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mock_server.core.sessionstore import Claimed, Pending

# KEYS: the session's counters hash; ARGV: rule, times ('' = unbounded)
_SEE = """
local matched = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. '|m') or '0')
if ARGV[2] ~= '' and matched >= tonumber(ARGV[2]) then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1] .. '|s', 1)
"""

_FIRE = """
local matched = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. '|m') or '0')
if ARGV[2] ~= '' and matched >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1] .. '|m', 1)
return 1
"""

# KEYS: due (zset item -> due), payloads (hash), leases (hash item -> until), owners (hash),
# attempts (hash); ARGV: owner, now, lease. Looks at the 64 earliest due items at most: more
# than that many held at once by live deliverers is beyond what a session's callbacks reach.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 64)
for _, item in ipairs(due) do
  local until_ = tonumber(redis.call('HGET', KEYS[3], item) or '0')
  if until_ <= tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[3], item, tostring(tonumber(ARGV[2]) + tonumber(ARGV[3])))
    redis.call('HSET', KEYS[4], item, ARGV[1])
    local n = redis.call('HINCRBY', KEYS[5], item, 1)
    return {item, redis.call('HGET', KEYS[2], item), n}
  end
end
return false
"""

# KEYS: as for claim; ARGV: item, owner, new due ('' = delivered: remove it)
_FINISH = """
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""

_PUSH = """
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1
"""


def _times(times: int | None) -> str:
    return "" if times is None else str(times)


class RedisFaultCounters:
    def __init__(self, client: Any, namespace: str) -> None:
        self._redis = client
        self._key = f"rms:{{{namespace}}}:faults"
        self._see = client.register_script(_SEE)
        self._fire = client.register_script(_FIRE)

    def see(self, rule: str, times: int | None) -> int | None:
        seen = int(self._see(keys=[self._key], args=[rule, _times(times)]))
        return None if seen < 0 else seen

    def fire(self, rule: str, times: int | None) -> bool:
        return bool(self._fire(keys=[self._key], args=[rule, _times(times)]))

    def counts(self, rule: str) -> tuple[int, int]:
        seen, matched = self._redis.hmget(self._key, f"{rule}|s", f"{rule}|m")
        return int(seen or 0), int(matched or 0)

    def forget(self, rules: Iterable[str]) -> None:
        fields = [f"{rule}|{kind}" for rule in rules for kind in "sm"]
        if fields:
            self._redis.hdel(self._key, *fields)


class RedisCallbackQueue:
    def __init__(self, client: Any, namespace: str) -> None:
        self._redis = client
        prefix = f"rms:{{{namespace}}}:cb:"
        self._keys = [f"{prefix}{part}" for part in ("due", "payload", "lease", "owner", "n")]
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._push = client.register_script(_PUSH)

    def push(self, item: str, payload: bytes, due: float) -> None:
        self._push(keys=self._keys, args=[item, payload, repr(due)])

    def claim(self, owner: str, now: float, lease: float) -> Claimed | None:
        found = self._claim(keys=self._keys, args=[owner, repr(now), repr(lease)])
        if not found:
            return None
        item, payload, attempts = found
        return Claimed(item.decode(), bytes(payload), int(attempts))

    def done(self, item: str, owner: str) -> bool:
        return bool(self._finish(keys=self._keys, args=[item, owner, ""]))

    def later(self, item: str, owner: str, due: float) -> bool:
        return bool(self._finish(keys=self._keys, args=[item, owner, repr(due)]))

    def pending(self) -> list[Pending]:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrange(self._keys[0], 0, -1, withscores=True)
        pipe.hgetall(self._keys[3])
        due, owners = pipe.execute()
        rows = [Pending(item.decode(), float(score),
                        owners[item].decode() if item in owners else None)
                for item, score in due]
        return sorted(rows, key=lambda p: (p.due, p.item))

    def clear(self) -> None:
        self._redis.delete(*self._keys)
