"""Seedable identifier sources, one per session, so test runs are reproducible."""

from __future__ import annotations

import random
import string
from array import array
from typing import Any
import threading
import zlib
from datetime import datetime

_LOWER_ALNUM = string.ascii_lowercase + string.digits
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
# KSUID: 4 bytes of seconds since this epoch, then 16 random bytes, in 27 base62 characters
_KSUID_EPOCH = 1_400_000_000
_KSUID_LENGTH = 27
# a random byte -> one of the 36 characters (bytes.translate: one C call for a whole id; the
# first four characters are drawn 8/256 of the time, the others 7/256, which no id's reader
# can tell from uniform)
_ALNUM_OF_BYTE = bytes(ord(_LOWER_ALNUM[b % len(_LOWER_ALNUM)]) for b in range(256))


class IdSource:
    """Random-looking but reproducible ids: the same seed and session name give the same ids."""

    def __init__(self, seed: int | None, session: str) -> None:
        # the generator (2.5 KB of state) is made on first use: most sessions draw no id
        self._seed = None if seed is None else (seed << 32) ^ zlib.crc32(session.encode())
        self._random: random.Random | None = None
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}

    @property
    def _rng(self) -> random.Random:
        rng = self._random
        if rng is None:
            rng = self._random = random.Random(self._seed)
        return rng

    def fork(self) -> IdSource:
        """A copy that draws the same ids from here on, apart from this one."""
        with self._lock:
            twin = IdSource.__new__(IdSource)
            twin._seed = self._seed
            twin._random = random.Random()
            twin._random.setstate(self._rng.getstate())
            twin._lock = threading.Lock()
            twin._counters = dict(self._counters)
            return twin

    # a snapshot (core/snapshot.py) writes the generator's state as 2.5 KB of bytes, not as 625
    # Python ints: a session's small part is written at every request of a shared store
    def __getstate__(self) -> dict[str, Any]:
        rng = self._random
        state = None
        if rng is not None:
            version, words, gauss = rng.getstate()
            state = (version, array("I", words).tobytes(), gauss)
        return {"seed": self._seed, "rng": state, "counters": self._counters}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._seed = state["seed"]
        self._lock = threading.Lock()
        self._counters = state["counters"]
        self._random = None
        if state["rng"] is not None:
            version, words, gauss = state["rng"]
            self._random = random.Random()
            self._random.setstate((version, tuple(array("I", words)), gauss))

    def hex(self, length: int) -> str:
        with self._lock:
            return f"{self._rng.getrandbits(length * 4):0{length}x}"

    def alnum(self, length: int) -> str:
        with self._lock:
            return self._rng.randbytes(length).translate(_ALNUM_OF_BYTE).decode("ascii")

    def ksuid(self, at: datetime) -> str:
        """A KSUID for the instant `at`: time-ordered, 27 characters of 0-9 A-Z a-z."""
        with self._lock:
            payload = self._rng.getrandbits(128)
        seconds = max(int(at.timestamp()) - _KSUID_EPOCH, 0) & 0xFFFFFFFF
        number = (seconds << 128) | payload
        chars = []
        for _ in range(_KSUID_LENGTH):
            number, digit = divmod(number, 62)
            chars.append(_BASE62[digit])
        return "".join(reversed(chars))

    def uuid(self) -> str:
        raw = self.hex(32)
        # version 4, RFC 4122 variant, so clients that parse UUIDs accept it
        raw = raw[:12] + "4" + raw[13:16] + "89ab"[int(raw[16], 16) % 4] + raw[17:]
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"

    def sequence(self, name: str, start: int) -> int:
        """Increasing numbers (e.g. a provider's refund ids) from a seeded starting point."""
        with self._lock:
            current = self._counters.get(name)
            if current is None:
                current = start + self._rng.randrange(1_000_000)
            current += 1
            self._counters[name] = current
            return current

    def chance(self) -> float:
        with self._lock:
            return self._rng.random()
