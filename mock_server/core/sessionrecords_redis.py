"""Session records in the Redis server that holds the ledger: the snapshot's parts, their
versions and the session's version in one hash, the lock a key with an expiry, every step that
checks and changes one Lua script; keys carry the session's hash tag (`rms:{<session>}:...`)
like the ledger's."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any

from mock_server.core.journal_store import redis_sequence_key
from mock_server.core.sessionrecords import PARTS, Loaded, LockLost, Parts

# KEYS: snapshot hash, lock, the wish for the lock; ARGV: owner, lease in milliseconds, a dead
# holder to take over from ('' for none), how long a refused owner asks for the lock in
# milliseconds ('' for not at all)
_ACQUIRE = """
local holder = redis.call('GET', KEYS[2])
if holder ~= ARGV[1] then
  local wanter = redis.call('GET', KEYS[3])
  local busy = holder and holder ~= ARGV[3]
  if busy or (wanter and wanter ~= ARGV[1]) then
    if ARGV[4] ~= '' and (not wanter or wanter == ARGV[1]) then
      redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[4])
    end
    return -1
  end
  if wanter then redis.call('DEL', KEYS[3]) end
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
"""

# KEYS: snapshot hash, lock, ledger ops, the wish for the lock, a journal's id counter ('pass');
# ARGV: owner, mode ('keep', 'save', 'release', 'delete', or 'pass': saved, and the lock kept
# for the owner's next request unless another owner asks for it), the ledger's ops ('' for
# none), the lease in milliseconds ('pass'), '1' to take the journal's next id when the lock is
# kept ('pass'), then part name, data pairs. The ops are stored at the version this step makes, each
# member prefixed with its version (members stay unique); a `ledger` part (a checkpoint) drops
# the ops before it. Returns the version (-1: the lock was not the owner's); 'pass' returns
# {version, 1 when still held else 0, the id or 0}.
_FINISH = """
local held = redis.call('GET', KEYS[2]) == ARGV[1]
local mode = ARGV[2]
if mode == 'pass' and not held then return -1 end
if mode ~= 'keep' and not (mode == 'pass' and ARGV[3] == '' and #ARGV < 6) then
  if not held then return -1 end
  local version = redis.call('HINCRBY', KEYS[1], 'v', 1)
  if mode == 'delete' then
    local fields = redis.call('HKEYS', KEYS[1])
    for _, field in ipairs(fields) do
      if field ~= 'v' then redis.call('HDEL', KEYS[1], field) end
    end
    redis.call('DEL', KEYS[3])
  else
    redis.call('HSET', KEYS[1], 'data', '1')
    for i = 6, #ARGV, 2 do
      if ARGV[i] == 'ledger' then redis.call('DEL', KEYS[3]) end
      redis.call('HSET', KEYS[1], 'p:' .. ARGV[i], ARGV[i + 1], 'pv:' .. ARGV[i], version)
    end
    if ARGV[3] ~= '' then
      redis.call('ZADD', KEYS[3], version, version .. ':' .. ARGV[3])
    end
  end
end
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if mode == 'pass' then
  local wanter = redis.call('GET', KEYS[4])
  if wanter and wanter ~= ARGV[1] then
    redis.call('DEL', KEYS[2])
    return {version, 0, 0}
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  if ARGV[5] == '1' then return {version, 1, redis.call('INCR', KEYS[5])} end
  return {version, 1, 0}
end
if held and mode ~= 'save' then redis.call('DEL', KEYS[2]) end
return version
"""

# KEYS: snapshot hash, ledger ops; ARGV: the reader's version, then part name, the reader's
# version of it ('' for none) pairs. Returns false (no snapshot) or {version, {name, version,
# data, ...}, {ops newer than the reader's version and the ledger part's}}: one round trip.
_LOAD = """
if not redis.call('HGET', KEYS[1], 'data') then return false end
local after = tonumber(ARGV[1])
local parts = {}
for i = 2, #ARGV, 2 do
  local pv = redis.call('HGET', KEYS[1], 'pv:' .. ARGV[i])
  if pv then
    if ARGV[i] == 'ledger' and tonumber(pv) > after then after = tonumber(pv) end
    if pv ~= ARGV[i + 1] then
      table.insert(parts, ARGV[i])
      table.insert(parts, pv)
      table.insert(parts, redis.call('HGET', KEYS[1], 'p:' .. ARGV[i]))
    end
  end
end
local ops = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. after, '+inf')
return {redis.call('HGET', KEYS[1], 'v') or '0', parts, ops}
"""

# KEYS: sequences hash; ARGV: name, start
_SEQUENCE = """
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
"""


class AsyncLink:
    """The steps a request awaits (its commit), sent with redis-py's asyncio client (its hiredis
    parser): one connection per event loop, one step at a time on it, so the loop serves other
    requests while one waits for Redis. A connection that failed, or whose step was cancelled
    (its answer would still come), is dropped and made again."""

    def __init__(self, url: str, client: Any) -> None:
        self._url = url
        self._client = client  # the blocking client: loads a script Redis does not know
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                               tuple[Any, asyncio.Lock]] = \
            weakref.WeakKeyDictionary()

    async def evalsha(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        from redis.asyncio import ConnectionPool
        from redis.exceptions import NoScriptError

        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None:
            link = self._links[loop] = (ConnectionPool.from_url(self._url).make_connection(),
                                        asyncio.Lock())
        connection, lock = link
        async with lock:
            for attempt in (1, 2):
                try:
                    await connection.send_command("EVALSHA", script.sha, len(keys), *keys,
                                                  *args)
                    return await connection.read_response()
                except NoScriptError:
                    if attempt == 2:
                        raise
                    self._client.script_load(script.script)  # Redis restarted: load it again
                except BaseException:
                    self._links.pop(loop, None)
                    loop.create_task(connection.disconnect(nowait=True))
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def session_names(client: Any) -> list[str]:
    names = set()
    for key in client.scan_iter(match="rms:{*}:snap", count=1000):
        text = key.decode()
        if client.hexists(key, "data"):
            names.add(text[len("rms:{"):text.rindex("}")])
    return sorted(names)


class RedisSessionRecords:
    def __init__(self, client: Any, namespace: str, link: AsyncLink | None = None) -> None:
        self._redis = client
        self._link = link
        self._snap = f"rms:{{{namespace}}}:snap"
        self._lock = f"rms:{{{namespace}}}:lock"
        self._seq = f"rms:{{{namespace}}}:seq"
        self._ops = f"rms:{{{namespace}}}:ops"
        self._want = f"rms:{{{namespace}}}:want"
        self._acquire = client.register_script(_ACQUIRE)
        self._finish_script = client.register_script(_FINISH)
        self._load = client.register_script(_LOAD)
        self._next = client.register_script(_SEQUENCE)

    def version(self) -> int:
        return int(self._redis.hget(self._snap, "v") or 0)

    def load(self, have: Mapping[str, int], since: int = -1) -> Loaded | None:
        args: list[Any] = [since]
        for part in PARTS:
            held = have.get(part)
            args += [part, "" if held is None else str(held)]
        found = self._load(keys=[self._snap, self._ops], args=args)
        if not found:
            return None
        version, flat, ops = found
        parts = {flat[i].decode(): (int(flat[i + 1]), bytes(flat[i + 2]))
                 for i in range(0, len(flat), 3)}
        return int(version), parts, [bytes(op).split(b":", 1)[1] for op in ops]

    def acquire(self, owner: str, now: float, lease: float, *,
                steal: str | None = None, want: float = 0.0) -> int | None:
        version = int(self._acquire(keys=[self._snap, self._lock, self._want],
                                    args=[owner, max(int(lease * 1000), 1), steal or "",
                                          max(int(want * 1000), 1) if want > 0 else ""]))
        return None if version < 0 else version

    def holder(self, now: float) -> str | None:
        found = self._redis.get(self._lock)
        return None if found is None else found.decode()

    def _finish_call(self, owner: str, mode: str, parts: Parts | None, ops: bytes | None,
                     lease: float, reserve: str | None) -> tuple[list[str], list[Any]]:
        args: list[Any] = [owner, mode, ops or b"", max(int(lease * 1000), 1),
                           "1" if reserve else ""]
        for name, data in (parts or {}).items():
            if name not in PARTS:
                raise ValueError(f"unknown snapshot part {name!r}")
            args += [name, data]
        counter = redis_sequence_key(reserve) if reserve else self._ops  # (unused then)
        return [self._snap, self._lock, self._ops, self._want, counter], args

    @staticmethod
    def _finished(owner: str, found: Any) -> Any:
        if not isinstance(found, list) and int(found) < 0:
            raise LockLost(owner)
        return found if isinstance(found, list) else int(found)

    def _finish(self, owner: str, mode: str, parts: Parts | None = None,
                ops: bytes | None = None, lease: float = 0.0, reserve: str | None = None) -> Any:
        keys, args = self._finish_call(owner, mode, parts, ops, lease, reserve)
        return self._finished(owner, self._finish_script(keys=keys, args=args))

    def save(self, owner: str, parts: Parts, ops: bytes | None = None) -> int:
        return self._finish(owner, "save", parts, ops)

    def release(self, owner: str, parts: Parts | None, ops: bytes | None = None) -> int:
        return self._finish(owner, "release" if parts or ops else "keep", parts, ops)

    def keep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
             lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        version, kept, reserved = self._finish(owner, "pass", parts, ops, lease, reserve)
        return int(version), bool(kept), int(reserved) if kept and reserve else None

    async def akeep(self, owner: str, parts: Parts | None, ops: bytes | None, now: float,
                    lease: float, reserve: str | None = None) -> tuple[int, bool, int | None]:
        if self._link is None:
            return self.keep(owner, parts, ops, now, lease, reserve)
        keys, args = self._finish_call(owner, "pass", parts, ops, lease, reserve)
        version, kept, reserved = self._finished(
            owner, await self._link.evalsha(self._finish_script, keys, args))
        return int(version), bool(kept), int(reserved) if kept and reserve else None

    def delete(self, owner: str) -> int:
        return self._finish(owner, "delete")

    def sequence(self, name: str, start: int) -> int:
        return int(self._next(keys=[self._seq], args=[name, start]))
