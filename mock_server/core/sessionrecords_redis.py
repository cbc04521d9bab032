"""Session records in the Redis server that holds the ledger: the snapshot and its version in
one hash, the lock a key with an expiry, every step that checks and changes one Lua script;
keys carry the session's hash tag (`rms:{<session>}:...`) like the ledger's."""

from __future__ import annotations

from typing import Any

from mock_server.core.sessionrecords import LockLost

# KEYS: snapshot hash, lock; ARGV: owner, lease in milliseconds
_ACQUIRE = """
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
"""

# KEYS: snapshot hash, lock; ARGV: owner, mode ('keep', 'save' or 'delete'), data
_RELEASE = """
local held = redis.call('GET', KEYS[2]) == ARGV[1]
if ARGV[2] == 'commit' then
  if not held then return -1 end
  redis.call('HSET', KEYS[1], 'data', ARGV[3])
  return redis.call('HINCRBY', KEYS[1], 'v', 1)
end
if ARGV[2] ~= 'keep' then
  if not held then return -1 end
  redis.call('HINCRBY', KEYS[1], 'v', 1)
  if ARGV[2] == 'delete' then redis.call('HDEL', KEYS[1], 'data')
  else redis.call('HSET', KEYS[1], 'data', ARGV[3]) end
end
if held then redis.call('DEL', KEYS[2]) end
return tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
"""

# KEYS: sequences hash; ARGV: name, start
_SEQUENCE = """
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
"""


def session_names(client: Any) -> list[str]:
    names = set()
    for key in client.scan_iter(match="rms:{*}:snap", count=1000):
        text = key.decode()
        if client.hexists(key, "data"):
            names.add(text[len("rms:{"):text.rindex("}")])
    return sorted(names)


class RedisSessionRecords:
    def __init__(self, client: Any, namespace: str) -> None:
        self._redis = client
        self._snap = f"rms:{{{namespace}}}:snap"
        self._lock = f"rms:{{{namespace}}}:lock"
        self._seq = f"rms:{{{namespace}}}:seq"
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._next = client.register_script(_SEQUENCE)

    def version(self) -> int:
        return int(self._redis.hget(self._snap, "v") or 0)

    def load(self) -> tuple[int, bytes] | None:
        version, data = self._redis.hmget(self._snap, "v", "data")
        if data is None:
            return None
        return int(version or 0), bytes(data)

    def acquire(self, owner: str, now: float, lease: float) -> int | None:
        version = int(self._acquire(keys=[self._snap, self._lock],
                                    args=[owner, max(int(lease * 1000), 1)]))
        return None if version < 0 else version

    def _finish(self, owner: str, mode: str, data: bytes) -> int:
        version = int(self._release(keys=[self._snap, self._lock], args=[owner, mode, data]))
        if version < 0:
            raise LockLost(owner)
        return version

    def save(self, owner: str, data: bytes) -> int:
        return self._finish(owner, "commit", data)

    def release(self, owner: str, data: bytes | None) -> int:
        return self._finish(owner, "keep" if data is None else "save", data or b"")

    def delete(self, owner: str) -> int:
        return self._finish(owner, "delete", b"")

    def sequence(self, name: str, start: int) -> int:
        return int(self._next(keys=[self._seq], args=[name, start]))
