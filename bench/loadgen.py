"""Load generators for bench/run.py: wrk with bench/refund.lua, or a built-in asyncio client."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).with_name("refund.lua")
REFUND_PATH = "/v2/payments/{order}/refund"
USER_AGENT = "refund-bench/1.0 (asyncio)"


@dataclass(frozen=True)
class Workload:
    """What every request of a phase looks like (the same for wrk and the asyncio client)."""

    mode: str  # "new", "replay" or "missing" (see refund.lua)
    authorization: str
    payments: int
    first_order: int
    run: str
    keys: int = 1000


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    non_2xx: int
    generator: str
    notes: list[str] = field(default_factory=list)
    cpu: Any = None  # procs.CpuWindow of the measured run

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def errors(self, expect_2xx: bool) -> int:
        """Requests that did not get the answer the phase expects (by status class)."""
        wrong = self.non_2xx if expect_2xx else self.requests - self.non_2xx
        return self.socket_errors + wrong


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, load: Workload, *, seconds: float, connections: int,
            threads: int) -> LoadResult:
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, math.ceil(seconds))}s",
        "--timeout", "5s", "-s", str(LUA_SCRIPT), base_url, "--",
        load.mode, str(load.payments), str(load.first_order), load.authorization, load.run,
        str(load.keys),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=False)
    found = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    data = json.loads(found.group(1))
    socket_errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    return LoadResult(
        requests=data["requests"], seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000,
        socket_errors=socket_errors, non_2xx=data["status"],
        generator=f"wrk -t{threads} -c{connections}")


# -- the built-in generator: used when wrk is not installed ------------------------------------

def _refund_body(request_id: str, reference: str) -> bytes:
    return (f'{{"requestId":"{request_id}","amount":{{"amount":"1.00","currency":"AUD"}},'
            f'"merchantReference":"{reference}"}}').encode()


class _Requests:
    """The same request sequence as refund.lua, one instance per connection."""

    def __init__(self, host: str, port: int, load: Workload, connection: int) -> None:
        self.load = load
        self.counter = 0
        self.run = f"{load.run}-c{connection}"
        self.head = (f"Host: {host}:{port}\r\nContent-Type: application/json\r\n"
                     f"Accept: application/json\r\nUser-Agent: {USER_AGENT}\r\n"
                     f"Authorization: {load.authorization}\r\n")

    def next(self) -> bytes:
        self.counter += 1
        load, n = self.load, self.counter
        if load.mode == "replay":
            key = n % load.keys
            order = load.first_order + key % load.payments
            body = _refund_body(f"replay-{key}", f"replay-ref-{key}")
        elif load.mode == "missing":
            order = load.first_order + load.payments + 1_000_000 + n % 1000
            body = _refund_body(f"{self.run}-{n}", f"ref-{self.run}-{n}")
        else:
            order = load.first_order + n % load.payments
            body = _refund_body(f"{self.run}-{n}", f"ref-{self.run}-{n}")
        return (f"POST {REFUND_PATH.format(order=order)} HTTP/1.1\r\n{self.head}"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _connection(host: str, port: int, load: Workload, index: int, deadline: float,
                      latencies: list[float], counts: dict[str, int]) -> None:
    requests = _Requests(host, port, load, index)
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(requests.next())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            status = int(head[9:12])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await asyncio.wait_for(reader.readexactly(length), 5)
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 400:
                counts["non_2xx"] += 1
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ValueError):
            counts["socket"] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index] * 1000


def run_asyncio(host: str, port: int, load: Workload, *, seconds: float,
                connections: int) -> LoadResult:
    """Keep-alive HTTP/1.1 clients, one request in flight per connection (like wrk)."""
    latencies: list[float] = []
    counts = {"non_2xx": 0, "socket": 0}

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(
            _connection(host, port, load, index, deadline, latencies, counts)
            for index in range(connections)))
        return time.perf_counter() - started

    try:
        import uvloop  # noqa: PLC0415 - optional: a faster client loop when installed
        elapsed = uvloop.run(main())
    except ImportError:
        elapsed = asyncio.run(main())
    latencies.sort()
    return LoadResult(
        requests=len(latencies), seconds=elapsed, p50_ms=_percentile(latencies, 50),
        p90_ms=_percentile(latencies, 90), p99_ms=_percentile(latencies, 99),
        max_ms=latencies[-1] * 1000 if latencies else 0.0,
        socket_errors=counts["socket"], non_2xx=counts["non_2xx"],
        generator=f"asyncio (built-in) -c{connections}",
        notes=["the built-in client shares the 2 cores with the server and is slower than "
               "wrk: its numbers are bounded by the generator, not the server"])


def drive(base_host: str, port: int, load: Workload, *, seconds: float, connections: int,
          threads: int, generator: str) -> LoadResult:
    if generator == "wrk":
        return run_wrk(f"http://{base_host}:{port}", load, seconds=seconds,
                       connections=connections, threads=threads)
    return run_asyncio(base_host, port, load, seconds=seconds, connections=connections)


def cpu_count() -> int:
    return os.cpu_count() or 1


def combine(results: list[LoadResult]) -> LoadResult:
    """Slices of one workload as one result: totals add up; p50 is the request-weighted mean
    of the slices' medians, p90/p99/max the worst slice's (conservative)."""
    requests = sum(r.requests for r in results)
    cpu = None
    windows = [r.cpu for r in results if r.cpu is not None]
    if windows:
        cpu = type(windows[0])(sum(w.wall for w in windows), sum(w.server for w in windows),
                               sum(w.generator for w in windows), sum(w.other for w in windows))
    return LoadResult(
        requests=requests, seconds=sum(r.seconds for r in results),
        p50_ms=sum(r.p50_ms * r.requests for r in results) / requests if requests else 0.0,
        p90_ms=max(r.p90_ms for r in results), p99_ms=max(r.p99_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        non_2xx=sum(r.non_2xx for r in results), generator=results[0].generator,
        notes=results[0].notes, cpu=cpu)
