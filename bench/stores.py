"""The ledger's stores side by side, in one run: new refunds per second at the ledger (no HTTP),
one process, for memory, an SQLite file and a real redis-server on loopback; and with N
processes on one SQLite file and on one Redis, the refunds per second they make together.

    .venv/bin/python bench/stores.py                       # about half a minute
    .venv/bin/python bench/stores.py --refunds 5000 --processes 2

It starts redis-server itself (Debian's package; skipped when absent) with persistence off, so
the Redis row is the store's own cost; SQLite runs with WAL and synchronous=FULL (every refund on
disk before it returns). Each row reports refunds/s, p50 and p99 of one refund, and the ratio to
the memory store measured in the same run. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mock_server.core.ledger import RefundEntry, StoredAnswer  # noqa: E402
from mock_server.core.stores import open_store  # noqa: E402

NOW = datetime(2026, 11, 1, tzinfo=UTC)
KEY = ("afterpay", "100101382", "100101785223")


def _refunds(url: str, namespace: str, count: int, worker: int) -> list[float]:
    store = open_store(url)
    ledger = store.ledger(namespace)
    timings: list[float] = []
    for n in range(count):
        entry = RefundEntry(f"{worker}-{n}", Decimal("1.00"), NOW,
                            {"requestId": f"req-{worker}-{n}", "merchantReference": "m"})
        key = ("afterpay", "100101382", f"req-{worker}-{n}", "m")
        answer = StoredAnswer(201, (), b'{"refundId":"1"}', ("p", "1.00"), NOW)
        started = time.perf_counter()
        ledger.claim(key, NOW)
        # the refund id unique in the session, as the Afterpay model takes it
        ledger.refund(KEY, entry, key, answer, reference=f"afterpay:refundId:{worker}-{n}")
        timings.append(time.perf_counter() - started)
    store.close()
    return timings


def _worker(url: str, namespace: str, count: int, worker: int, start: Any, out: Any) -> None:
    start.wait()
    began = time.perf_counter()
    _refunds(url, namespace, count, worker)
    out.put(time.perf_counter() - began)


def one_process(url: str, count: int, label: str) -> dict[str, Any]:
    namespace = f"bench-{label}-{time.time_ns()}"
    store = open_store(url)
    store.ledger(namespace).open(KEY, "AUD", Decimal(count * 10))
    store.close()
    timings = _refunds(url, namespace, count, 0) if url != "memory" else None
    if timings is None:  # one ledger object: a memory store is per process
        ledger = open_store("memory").ledger(namespace)
        ledger.open(KEY, "AUD", Decimal(count * 10))
        timings = []
        for n in range(count):
            key = ("afterpay", "100101382", f"req-{n}", "m")
            started = time.perf_counter()
            ledger.claim(key, NOW)
            ledger.refund(KEY, RefundEntry(str(n), Decimal("1.00"), NOW, {"requestId": str(n)}),
                          key, StoredAnswer(201, (), b"{}", ("p",), NOW),
                          reference=f"afterpay:refundId:{n}")
            timings.append(time.perf_counter() - started)
    ordered = sorted(timings)
    return {"store": label, "processes": 1, "per_second": count / sum(timings),
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000}


def many_processes(url: str, count: int, processes: int, label: str) -> dict[str, Any]:
    namespace = f"bench-{label}-n-{time.time_ns()}"
    store = open_store(url)
    store.ledger(namespace).open(KEY, "AUD", Decimal(count * processes * 10))
    store.close()
    context = multiprocessing.get_context("fork")
    start, out = context.Event(), context.Queue()
    workers = [context.Process(target=_worker, args=(url, namespace, count, w, start, out))
               for w in range(processes)]
    for process in workers:
        process.start()
    began = time.perf_counter()
    start.set()
    for _ in workers:
        out.get(timeout=600)
    elapsed = time.perf_counter() - began
    for process in workers:
        process.join()
    return {"store": label, "processes": processes, "per_second": count * processes / elapsed,
            "p50_ms": float("nan"), "p99_ms": float("nan")}


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", workdir],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(500):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.01)
    return process, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refunds", type=int, default=3000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as workdir:
        rows.append(one_process("memory", args.refunds, "memory"))
        sqlite_url = f"sqlite:{workdir}/bench.db"
        rows.append(one_process(sqlite_url, args.refunds, "sqlite"))
        rows.append(many_processes(sqlite_url, args.refunds, args.processes, "sqlite"))
        redis_started = start_redis(workdir)
        if redis_started is not None:
            process, redis_url = redis_started
            try:
                rows.append(one_process(redis_url, args.refunds, "redis"))
                rows.append(many_processes(redis_url, args.refunds, args.processes, "redis"))
            finally:
                process.terminate()
                process.wait()
    memory = rows[0]["per_second"]
    print(f"{'store':8} {'procs':>5} {'refunds/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs memory':>9}")
    for row in rows:
        print(f"{row['store']:8} {row['processes']:>5} {row['per_second']:>10.0f} "
              f"{row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} {row['per_second'] / memory:>8.1%}")


if __name__ == "__main__":
    main()
