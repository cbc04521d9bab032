"""The stores side by side, in one run, through real servers: new Afterpay refunds per second
from `mock-server serve --store ...` on free loopback ports, for

    memory                       one process (the reference: every ratio is against it)
    sqlite:<tmp file>            one process; and --workers 2 on the same file
    redis://127.0.0.1:<port>/N   one process, --workers 2, and two separate servers on one Redis

    .venv/bin/python bench/stores.py                          # about a minute and a half
    .venv/bin/python bench/stores.py --duration 10 --connections 32
    .venv/bin/python bench/stores.py --ledger                 # the ledger alone, no HTTP

Each server starts with bench/run.py's bench world as its startup world (`--scenario`: 1,000
payments of 1,000,000,000.00, so refunds keep succeeding); every request is a new refund of
1.00 with a fresh requestId and merchantReference (idempotent, so each stores its answer),
payments cycled, sent by the built-in keep-alive asyncio client (bench/loadgen.py) at a fixed
concurrency. For the two-server row the connections are split evenly between the two ports.
redis-server (Debian's package) is started here with persistence off, so the Redis rows are
the store's own cost; each Redis row uses a database of its own. A row whose server refuses its
store at start-up prints "refused: <its one line>" instead of numbers. Each row: refunds/s,
p50 and p99 latency, the share of the memory row's refunds/s. Nothing here is a test.

The client runs on the same machine as the servers: on two cores it takes a good part of one,
so the absolute numbers are bounded by the machine, not by the sandbox; the ratios of rows
measured in the same run are what this reports.
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
# refunds cycle over this many payments, as bench/run.py's requests do: a refund reads its
# payment's refunds back (the view), so one payment taking all of them would measure that list
ACCOUNTS = 100
ACCOUNT_KEYS = [("afterpay", "100101382", str(100101785223 + n)) for n in range(ACCOUNTS)]


def _open_accounts(ledger: Any, total: int) -> None:
    for key in ACCOUNT_KEYS:
        ledger.open(key, "AUD", Decimal(total * 10))


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
        # what the Afterpay model does for a new idempotent refund: claim the key, read the
        # account (what is left), then the atomic refund step
        ledger.claim(key, NOW)
        ledger.view(ACCOUNT_KEYS[n % ACCOUNTS])
        # the refund id unique in the session, as the Afterpay model takes it
        ledger.refund(ACCOUNT_KEYS[n % ACCOUNTS], entry, key, answer,
                      reference=f"afterpay:refundId:{worker}-{n}")
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
    _open_accounts(store.ledger(namespace), count)
    store.close()
    timings = _refunds(url, namespace, count, 0) if url != "memory" else None
    if timings is None:  # one ledger object: a memory store is per process
        ledger = open_store("memory").ledger(namespace)
        _open_accounts(ledger, count)
        timings = []
        for n in range(count):
            key = ("afterpay", "100101382", f"req-{n}", "m")
            started = time.perf_counter()
            ledger.claim(key, NOW)
            ledger.view(ACCOUNT_KEYS[n % ACCOUNTS])
            entry = RefundEntry(str(n), Decimal("1.00"), NOW, {"requestId": str(n)})
            ledger.refund(ACCOUNT_KEYS[n % ACCOUNTS], entry, key,
                          StoredAnswer(201, (), b"{}", ("p",), NOW),
                          reference=f"afterpay:refundId:{n}")
            timings.append(time.perf_counter() - started)
    ordered = sorted(timings)
    return {"store": label, "processes": 1, "per_second": count / sum(timings),
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000}


def many_processes(url: str, count: int, processes: int, label: str) -> dict[str, Any]:
    namespace = f"bench-{label}-n-{time.time_ns()}"
    store = open_store(url)
    _open_accounts(store.ledger(namespace), count * processes)
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


LEDGER_DOC = """New refunds per second at the ledger (no HTTP), one process, for memory, an SQLite
file and a real redis-server on loopback; and with N processes on one SQLite file and on one
Redis, the refunds per second they make together (`--ledger`, `--refunds`, `--processes`).
SQLite runs with WAL and synchronous=FULL (every refund on disk before it returns)."""


def ledger_main(args: argparse.Namespace) -> None:
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
                before = redis_cpu(redis_url)
                rows.append(one_process(redis_url, args.refunds, "redis"))
                usec, commands = (a - b for a, b in zip(redis_cpu(redis_url), before,
                                                        strict=True))
                rows[-1]["redis"] = (f"Redis: {usec / args.refunds:.1f} us of its CPU and "
                                     f"{commands / args.refunds:.1f} commands (a script is "
                                     "one) per refund")
                rows.append(many_processes(redis_url, args.refunds, args.processes, "redis"))
            finally:
                process.terminate()
                process.wait()
    memory = rows[0]["per_second"]
    _say(f"{'store':8} {'procs':>5} {'refunds/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs memory':>9}")
    for row in rows:
        _say(f"{row['store']:8} {row['processes']:>5} {row['per_second']:>10.0f} "
              f"{row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} {row['per_second'] / memory:>8.1%}")
    for row in rows:
        if "redis" in row:
            _say(row["redis"])


def redis_cpu(url: str) -> tuple[float, int]:
    """CPU microseconds the Redis server has used (INFO cpu: its event loop, sockets and
    scripts), and the commands its clients sent (INFO stats), so far."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        cpu, stats = client.info("cpu"), client.info("stats")
    finally:
        client.close()
    return ((float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6,
            int(stats["total_commands_processed"]))


# -- through real servers (the default) ----------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen  # noqa: E402
import procs  # noqa: E402
from run import AUTHORIZATION, FIRST_ORDER, bench_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _log(text: str) -> None:
    sys.stderr.write(f"[stores {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def _refusal(server_log: Path) -> str | None:
    """The one line a server that refused to start said, if that is what it did."""
    try:
        lines = server_log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    said = [line for line in lines if line.startswith("mock-server: error: ")]
    return said[-1][len("mock-server: error: "):] if said else None


def start_servers(label: str, store: str, count: int, workers: int, workdir: Path,
                  scenario: Path) -> list[procs.Server] | str:
    """`count` servers on one store, each with `workers` processes; or why they refused."""
    servers: list[procs.Server] = []
    for index in range(count):
        port = procs.free_port()
        command = [sys.executable, "-m", "mock_server", "serve", "--port", str(port),
                   "--seed", "7", "--store", store, "--scenario", str(scenario),
                   "--workers", str(workers)]
        name = f"{label}-{index}".replace(" ", "_").replace("/", "_")
        try:
            servers.append(procs.start(name, command, port, probe_path="/__admin/health",
                                       log_dir=workdir, cwd=ROOT))
        except RuntimeError as exc:
            for server in servers:
                server.stop()
            refused = _refusal(workdir / f"{name}.log")
            if refused is not None:  # "--store URL: why": the why
                return f"refused: {refused.split(': ', 1)[-1]}"
            raise RuntimeError(f"{label}: {exc}") from None
    return servers


def drive(ports: list[int], run: str, seconds: float, connections: int,
          payments: int) -> loadgen.LoadResult:
    """New refunds from `connections` keep-alive connections spread evenly over `ports`."""
    import asyncio

    load = loadgen.Workload("new", AUTHORIZATION, payments, FIRST_ORDER, run)
    latencies: list[float] = []
    counts = {"non_2xx": 0, "socket": 0}

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(
            loadgen._connection(procs.HOST, ports[index % len(ports)], load, index, deadline,
                                latencies, counts)
            for index in range(connections)))
        return time.perf_counter() - started

    try:
        import uvloop
        elapsed = uvloop.run(main())
    except ImportError:
        elapsed = asyncio.run(main())
    latencies.sort()
    return loadgen.LoadResult(
        requests=len(latencies), seconds=elapsed, p50_ms=loadgen._percentile(latencies, 50),
        p90_ms=loadgen._percentile(latencies, 90), p99_ms=loadgen._percentile(latencies, 99),
        max_ms=latencies[-1] * 1000 if latencies else 0.0, socket_errors=counts["socket"],
        non_2xx=counts["non_2xx"], generator=f"asyncio -c{connections}")


def measure_row(label: str, store: str, count: int, workers: int, args: argparse.Namespace,
                workdir: Path, scenario: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"row": label, "store": store.split("/tmp")[0] or store,
                           "servers": count, "workers": workers}
    started = start_servers(label, store, count, workers, workdir, scenario)
    if isinstance(started, str):
        row["refused"] = started
        _log(f"{label}: {started}")
        return row
    ports = [server.port for server in started]
    try:
        tag = f"{label.replace(' ', '-')}-{time.time_ns()}"
        if args.warmup > 0:
            drive(ports, tag + "-warmup", args.warmup, args.connections, args.payments)
        before = redis_cpu(store) if store.startswith("redis") else None
        result = drive(ports, tag, args.duration, args.connections, args.payments)
        if before is not None and result.requests:
            usec, commands = (a - b for a, b in zip(redis_cpu(store), before, strict=True))
            row["redis_us"] = usec / result.requests
            row["redis_commands"] = commands / result.requests
    finally:
        for server in started:
            server.stop()
    row.update(per_second=result.rps, p50_ms=result.p50_ms, p99_ms=result.p99_ms,
               requests=result.requests, errors=result.errors(expect_2xx=True))
    _log(f"{label}: {result.rps:,.0f} refunds/s, p50 {result.p50_ms:.2f} ms, "
         f"p99 {result.p99_ms:.2f} ms, {result.requests:,} requests, "
         f"{row['errors']} errors")
    return row


def servers_main(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="refund-stores-") as tmp:
        workdir = Path(tmp)
        scenario = workdir / "bench-world.json"
        import json

        scenario.write_text(json.dumps(bench_scenario(args.payments)))
        plan: list[tuple[str, str, int, int]] = [
            ("memory", "memory", 1, 1),
            ("sqlite", f"sqlite:{workdir}/one.db", 1, 1),
            ("sqlite --workers 2", f"sqlite:{workdir}/workers.db", 1, 2),
        ]
        redis_started = start_redis(tmp)
        if redis_started is None:
            _log("redis-server is not installed: the Redis rows are skipped")
        else:
            base = redis_started[1].rsplit("/", 1)[0]
            plan += [("redis", f"{base}/0", 1, 1),
                     ("redis --workers 2", f"{base}/1", 1, 2),
                     ("redis, two servers", f"{base}/2", 2, 1)]
        try:
            for label, store, count, workers in plan:
                rows.append(measure_row(label, store, count, workers, args, workdir, scenario))
        finally:
            if redis_started is not None:
                redis_started[0].terminate()
                redis_started[0].wait()
    memory = rows[0].get("per_second") or float("nan")
    _say(f"new refunds, {args.connections} connections, {args.duration:.0f} s per row "
          f"(asyncio client on the same machine)\n")
    _say("| row | processes | refunds/s | p50 ms | p99 ms | vs memory | Redis CPU us / "
         "commands per refund |")
    _say("|---|---|---|---|---|---|---|")
    for row in rows:
        processes = row["servers"] * row["workers"]
        if "refused" in row:
            _say(f"| {row['row']} | {processes} | {row['refused']} | | | | |")
            continue
        errors = f" ({row['errors']} errors)" if row["errors"] else ""
        _say(f"| {row['row']} | {processes} | {row['per_second']:,.0f}{errors} | "
              f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['per_second'] / memory:.0%} | "
             + (f"{row['redis_us']:.0f} / {row['redis_commands']:.1f} |" if "redis_us" in row
                else "- |"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds measured per row (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load before each row (default 2)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--payments", type=int, default=1000,
                        help="payments seeded and cycled through (default 1000)")
    parser.add_argument("--ledger", action="store_true", help=LEDGER_DOC.split("\n\n")[0])
    parser.add_argument("--refunds", type=int, default=3000, help="--ledger: refunds per row")
    parser.add_argument("--processes", type=int, default=2,
                        help="--ledger: processes of the many-process rows")
    args = parser.parse_args()
    if args.ledger:
        ledger_main(args)
    else:
        servers_main(args)


if __name__ == "__main__":
    main()
