"""The benchmark harness: the sandbox against design.md's performance budget, in one run.

    .venv/bin/python bench/run.py                 # the full run (about four minutes)
    .venv/bin/python bench/run.py --duration 5 --soak 10 --growth-refunds 200000   # quicker

It starts every server itself on loopback, drives it with wrk (bench/refund.lua) when wrk is
installed, else with a built-in asyncio client, and prints one table. Measured in the same run:
- the sandbox (`python -m mock_server serve`, default settings): cold start to a healthy
  /__admin/health (median of --cold-starts starts), idle RSS; then --payments payments seeded
  through POST /__admin/scenarios and three workloads: new refunds with fresh references,
  idempotent replays, refunds on unknown payments (404); a replay-heavy soak sampling RSS;
- a bare Starlette JSON endpoint under the same uvicorn (bench/baseline_app.py): the baseline;
- Prism 5.14.2 mocking openapi/afterpay.yaml, when Node's npx is present;
- growth: new refunds with 1,000 and with --growth-refunds refunds already stored
  (bench/prefilled.py), and the memory each stored refund takes.
Nothing here is a test: pytest never collects bench/.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import loadgen
import procs
import spy
from loadgen import LoadResult, Workload

ROOT = Path(__file__).resolve().parent.parent
PRISM_PACKAGE = "@stoplight/prism-cli@5.14.2"
MERCHANT_ID = "900000001"
SECRET = "bench-secret-key"
AUTHORIZATION = "Basic " + base64.b64encode(f"{MERCHANT_ID}:{SECRET}".encode()).decode()
FIRST_ORDER = 800_000_000_000
MB = 1024 * 1024

# design.md, "Performance budget"
BUDGET_BASELINE_SHARE = 0.5
BUDGET_PRISM_FACTOR = 4.0
BUDGET_P99_MS = 5.0
BUDGET_COLD_START_S = 0.5
BUDGET_IDLE_RSS_MB = 60.0
BUDGET_GROWTH_DROP = 0.10
SOAK_FLAT_MB = 5.0  # "flat": the soak's second half grows less than this
BUSY_CORES = 0.15  # other processes using more than this disturb a measurement
PHASES = ("baseline", "sandbox", "quiet", "prism", "growth")


@dataclass
class Row:
    target: str
    load: LoadResult | None = None
    expect_2xx: bool = True
    cold_start_s: float | None = None
    idle_rss: int | None = None
    rss_after: int | None = None
    note: str = ""

    def cells(self) -> list[str]:
        def mb(value: int | None) -> str:
            return f"{value / MB:.1f}" if value else "-"

        load = self.load
        return [
            self.target,
            f"{load.rps:,.0f}" if load else "not measured",
            f"{load.p50_ms:.2f}" if load else "-",
            f"{load.p99_ms:.2f}" if load else "-",
            f"{load.errors(self.expect_2xx)}/{load.requests:,}" if load else "-",
            f"{self.cold_start_s:.3f}" if self.cold_start_s is not None else "-",
            mb(self.idle_rss),
            mb(self.rss_after),
            f"{load.cpu.server / load.requests * 1e6:,.0f}" if load and load.cpu
            and load.requests else "-",
            f"{load.cpu.other / load.cpu.wall:.2f}" if load and load.cpu else "-",
        ]


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (what, value, verdict)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)

    def check(self, what: str, value: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "NOT MET")
        self.checks.append((what, value, verdict))

    def markdown(self, header: list[str]) -> str:
        out = list(header)
        out.append("")
        titles = ["target", "req/s", "p50 ms", "p99 ms", "errors", "cold start s",
                  "idle RSS MB", "RSS after MB", "server CPU us/req", "other CPU"]
        out.append("| " + " | ".join(titles) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(titles) - 1)) + "|")
        for row in self.rows:
            out.append("| " + " | ".join(row.cells()) + " |")
        out.append("")
        out.append("| budget (design.md) | measured | verdict |")
        out.append("|---|---|---|")
        for what, value, verdict in self.checks:
            out.append(f"| {what} | {value} | {verdict} |")
        if self.notes:
            out.append("")
            out.extend(f"- {note}" for note in self.notes)
        if self.profile:
            out += ["", "Profile of new refunds (py-spy, default settings):", ""]
            out += self.profile
        return "\n".join(out)


def log(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def bench_scenario(payments: int) -> dict[str, Any]:
    """A merchant and payments with captured amounts large enough that refunds keep succeeding."""
    return {
        "name": "bench",
        "afterpay": {
            "merchants": [{"merchantId": MERCHANT_ID, "secretKey": SECRET, "currency": "AUD"}],
            "payments": [
                {"id": str(FIRST_ORDER + i), "merchantId": MERCHANT_ID,
                 "amount": "1000000000.00", "merchantReference": f"bench-order-{i}"}
                for i in range(payments)
            ],
        },
    }


def seed(port: int, payments: int) -> float:
    """Loads bench_scenario into the sandbox's default session; seconds it took."""
    document = json.dumps(bench_scenario(payments)).encode()
    started = time.perf_counter()
    status, body = procs.http(port, "POST", "/__admin/scenarios", document,
                              {"Content-Type": "application/json"}, timeout=300)
    if status != 201:
        raise RuntimeError(f"seeding failed: {status} {body[:500]!r}")
    return time.perf_counter() - started


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.report = Report()
        self.generator = self._pick_generator()
        self.python = args.python or sys.executable

    def _pick_generator(self) -> str:
        wanted = self.args.generator
        if wanted == "wrk" and not loadgen.wrk_available():
            raise SystemExit("bench: --generator wrk, but wrk is not installed")
        if wanted == "auto":
            return "wrk" if loadgen.wrk_available() else "asyncio"
        return wanted

    # -- driving ---------------------------------------------------------------------------

    def drive(self, port: int, mode: str, seconds: float, run: str,
              payments: int | None = None) -> LoadResult:
        load = Workload(mode, AUTHORIZATION, payments or self.args.payments, FIRST_ORDER,
                        f"{run}-{int(time.time())}", keys=self.args.replay_keys)
        return loadgen.drive(procs.HOST, port, load, seconds=seconds,
                             connections=self.args.connections, threads=self.args.threads,
                             generator=self.generator)

    def phase(self, server: procs.Server, mode: str, run: str,
              payments: int | None = None) -> LoadResult:
        if self.args.warmup > 0:
            self.drive(server.port, mode, self.args.warmup, run + "-warmup", payments)
        return self.measure(server, mode, run, self.args.duration, payments)

    def measure(self, server: procs.Server, mode: str, run: str, seconds: float,
                payments: int | None = None) -> LoadResult:
        """One measured run; on a shared machine repeated (--retries) while other processes
        took more than BUSY_CORES, keeping the least disturbed attempt."""
        best: LoadResult | None = None
        for attempt in range(1 + max(0, self.args.retries)):
            if self.args.wait_idle > 0:
                load = procs.wait_until_quiet(self.args.wait_idle)
                if load >= BUSY_CORES:
                    log(f"  the machine is busy: other processes use {load:.2f} cores")
            meter = procs.CpuMeter(server.process.pid, server.tree)
            result = self.drive(server.port, mode, seconds, f"{run}-{attempt}", payments)
            result.cpu = meter.stop()
            other = result.cpu.other / result.cpu.wall if result.cpu.wall else 0.0
            log(f"  {run}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                f"p99 {result.p99_ms:.2f} ms, {result.requests:,} requests; CPU: "
                f"{result.cpu.describe()}")
            if best is None or other < best.cpu.other / best.cpu.wall:
                best = result
            if other < BUSY_CORES:
                break
        assert best is not None
        return best

    def journal_check(self, port: int, expected: int) -> str:
        """How many of the newest journal entries (at most the journal's size) got `expected`."""
        _, body = procs.http(port, "GET", "/__admin/requests?provider=afterpay&limit=1")
        total = json.loads(body)["total"]
        _, body = procs.http(port, "GET",
                             f"/__admin/requests?provider=afterpay&status={expected}&limit=1")
        matching = json.loads(body)["total"]
        return f"{matching:,}/{total:,} of the newest journal entries answered {expected}"

    # -- the sandbox -----------------------------------------------------------------------

    def sandbox_command(self, port: int) -> list[str]:
        return [self.python, "-m", "mock_server", "serve", "--port", str(port),
                "--seed", "7", *self.args.serve_flag]

    def sandbox(self) -> dict[str, Any]:
        colds = []
        server = None
        for attempt in range(self.args.cold_starts):
            if server is not None:
                server.stop()
            port = procs.free_port()
            server = procs.start(f"sandbox-{attempt}", self.sandbox_command(port), port,
                                 probe_path="/__admin/health", log_dir=self.workdir, cwd=ROOT)
            colds.append(server.cold_start_s)
        assert server is not None
        port = server.port
        try:
            time.sleep(0.5)
            idle = server.rss()
            cold = statistics.median(colds)
            log(f"sandbox: cold starts {', '.join(f'{c:.3f}' for c in colds)} s; "
                f"idle RSS {idle / MB:.1f} MB")
            seed_s = seed(port, self.args.payments)
            self.report.notes.append(
                f"sandbox seeded with {self.args.payments:,} payments through POST "
                f"/__admin/scenarios in {seed_s:.2f} s")

            # 404s and replays first: all three workloads then start from the same small ledger
            # (new refunds grow it as they run, by some 50,000 refunds a phase)
            missing = self.phase(server, "missing", "sandbox-404")
            missing_check = self.journal_check(port, 404)
            replay = self.phase(server, "replay", "sandbox-replay")
            replay_check = self.journal_check(port, 201)
            new = self.phase(server, "new", "sandbox-new")
            after_new = server.rss()
            new_check = self.journal_check(port, 201)
            soak = self.soak(server) if self.args.soak > 0 else None
            if self.args.profile:
                self.profile(server)
            self.report.notes.append(f"status check, new refunds: {new_check}; replays: "
                                     f"{replay_check}; unknown payments: {missing_check}")
        finally:
            server.stop()
        self.report.rows += [
            Row("sandbox: new refunds", new, True, cold, idle, after_new),
            Row("sandbox: idempotent replays", replay, True),
            Row("sandbox: unknown payment (404)", missing, False),
        ]
        return {"new": new, "replay": replay, "missing": missing, "cold": cold, "colds": colds,
                "idle": idle, "soak": soak}

    def profile(self, server: procs.Server) -> None:
        """New refunds once more, unmeasured, with py-spy sampling the server."""
        if spy.py_spy() is None:
            self.report.notes.append("profile: py-spy is not installed (pip install py-spy)")
            return
        raw = self.workdir / "profile.txt"
        result: list[LoadResult] = []
        load = threading.Thread(target=lambda: result.append(
            self.drive(server.port, "new", self.args.duration + 2, "sandbox-profile")))
        load.start()
        time.sleep(1)
        recorded = spy.record(server.process.pid, self.args.duration, raw)
        load.join()
        if recorded:
            self.report.profile = spy.summarise(raw)
            log("  profile recorded")
        else:
            self.report.notes.append("profile: py-spy could not attach to the server")

    def quiet(self) -> LoadResult:
        """New refunds with the access log off: what the per-request log line costs."""
        port = procs.free_port()
        server = procs.start("sandbox-quiet",
                             [*self.sandbox_command(port), "--log-level", "warning"], port,
                             probe_path="/__admin/health", log_dir=self.workdir, cwd=ROOT)
        try:
            seed(port, self.args.payments)
            result = self.phase(server, "new", "sandbox-quiet")
            after = server.rss()
        finally:
            server.stop()
        self.report.rows.append(Row("sandbox, --log-level warning: new refunds", result, True,
                                    server.cold_start_s, None, after))
        return result

    def soak(self, server: procs.Server) -> dict[str, Any]:
        """A long replay-heavy run: with the journal bounded, RSS must level off."""
        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample() -> None:
            started = time.perf_counter()
            while not stop.is_set():
                samples.append((time.perf_counter() - started, server.rss()))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        start_rss = server.rss()
        sampler.start()
        try:
            result = self.drive(server.port, "replay", self.args.soak, "sandbox-soak")
        finally:
            stop.set()
            sampler.join()
        half = [rss for at, rss in samples if at >= self.args.soak / 2] or [samples[-1][1]]
        mid_rss, end_rss = half[0], samples[-1][1]
        peak = max(rss for _, rss in samples)
        log(f"  soak: {result.requests:,} requests in {self.args.soak:.0f} s; RSS "
            f"{start_rss / MB:.1f} -> {mid_rss / MB:.1f} (half-way) -> {end_rss / MB:.1f} MB")
        return {"requests": result.requests, "rps": result.rps, "start": start_rss,
                "mid": mid_rss, "end": end_rss, "peak": peak,
                "errors": result.errors(True)}

    # -- the baseline and Prism ------------------------------------------------------------

    def baseline(self) -> LoadResult:
        port = procs.free_port()
        server = procs.start("baseline", [self.python, str(ROOT / "bench" / "baseline_app.py"),
                                          str(port)], port, probe_path="/health",
                             log_dir=self.workdir)
        return self.new_refunds_alone(server, "baseline", "bare Starlette JSON endpoint (baseline)")

    def new_refunds_alone(self, server: procs.Server, run: str, row: str) -> LoadResult:
        """Idle RSS, new refunds, RSS after; the server is stopped and gets its row."""
        try:
            time.sleep(0.5)
            idle = server.rss()
            result = self.phase(server, "new", run)
            after = server.rss()
        finally:
            server.stop()
        self.report.rows.append(Row(row, result, True, server.cold_start_s, idle, after))
        return result

    def prism(self) -> LoadResult | None:
        npx = shutil.which("npx")
        if self.args.no_prism or npx is None:
            self.report.rows.append(Row("Prism 5.14.2 (Node absent)" if npx is None
                                        else "Prism 5.14.2 (skipped)"))
            return None
        # fetch the package first, so the timed start is Prism's and not the download
        fetched = subprocess.run([npx, "-y", PRISM_PACKAGE, "--version"], capture_output=True,
                                 text=True, timeout=600, check=False)
        if fetched.returncode != 0:
            self.report.rows.append(Row("Prism 5.14.2 (could not be installed)"))
            self.report.notes.append(f"npx {PRISM_PACKAGE} failed: {fetched.stderr[-300:]}")
            return None
        port = procs.free_port()
        command = [npx, "-y", PRISM_PACKAGE, "mock", "-h", procs.HOST, "-p", str(port),
                   str(ROOT / "openapi" / "afterpay.yaml")]
        server = procs.start("prism", command, port, probe_path="/ping",
                             check=procs.any_answer, log_dir=self.workdir, tree=True,
                             timeout=120)
        return self.new_refunds_alone(server, "prism", "Prism 5.14.2 mock (npx + node)")

    # -- growth ----------------------------------------------------------------------------

    def growth_server(self, refunds: int, scenario: Path) -> procs.Server:
        port = procs.free_port()
        command = [self.python, str(ROOT / "bench" / "prefilled.py"), str(scenario),
                   str(refunds), "--", "--port", str(port), "--seed", "7",
                   *self.args.serve_flag]
        log(f"growth: filling a ledger with {refunds:,} refunds")
        return procs.start(f"growth-{refunds}", command, port, probe_path="/__admin/health",
                           log_dir=self.workdir, cwd=ROOT, ready_line="READY", timeout=900)

    def growth(self) -> dict[str, Any] | None:
        """The same load on a small and a large ledger, in alternating slices (ABAB...), so
        that other work on the machine weighs on both alike."""
        if self.args.growth_refunds <= 0:
            return None
        scenario = self.workdir / "growth-scenario.json"
        scenario.write_text(json.dumps(bench_scenario(self.args.payments)))
        sizes = (1_000, self.args.growth_refunds)
        servers: dict[int, procs.Server] = {}
        slices: dict[int, list[LoadResult]] = {size: [] for size in sizes}
        rounds = max(1, self.args.growth_rounds)
        try:
            for size in sizes:
                servers[size] = self.growth_server(size, scenario)
            for size in sizes:
                if self.args.warmup > 0:
                    self.drive(servers[size].port, "new", self.args.warmup, f"growth-{size}-w")
            for index in range(rounds):
                for size in sizes:
                    run = f"growth-{size}-{index}"
                    slices[size].append(self.measure(servers[size], "new", run,
                                                     self.args.duration / rounds))
            checks = {size: self.journal_check(servers[size].port, 201) for size in sizes}
            after = {size: servers[size].rss() for size in sizes}
        finally:
            for server in servers.values():
                server.stop()
        out: dict[str, Any] = {}
        for key, size in zip(("small", "large"), sizes, strict=True):
            server = servers[size]
            filled = json.loads(server.ready)
            result = loadgen.combine(slices[size])
            log(f"  growth, {size:,} stored: {result.rps:,.0f} req/s over {rounds} slices, "
                f"p99 {result.p99_ms:.2f} ms")
            gc_stats = _gc_stats(server)
            self.report.rows.append(Row(f"sandbox, {size:,} refunds stored: new refunds",
                                        result, True, None, filled["rssAfter"], after[size]))
            self.report.notes.append(f"status check, {size:,} stored: {checks[size]}")
            if gc_stats is not None:
                self.report.notes.append(
                    f"garbage collector with {size:,} refunds stored (warm-up and measured "
                    f"runs): {gc_stats['gcSeconds']:.2f} s of {gc_stats['cpuSeconds']:.2f} s "
                    f"CPU, {gc_stats['fullCollections']} full collections, longest pause "
                    f"{gc_stats['longestMs']:.0f} ms; max latency {result.max_ms:.0f} ms")
            out[key] = {"load": result, "filled": filled, "gc": gc_stats}
        return out

    # -- the whole run ---------------------------------------------------------------------

    def run(self) -> str:
        started = time.perf_counter()
        log(f"generator: {self.generator}; {self.args.duration:.0f} s per phase "
            f"(+{self.args.warmup:.0f} s warm-up), {self.args.connections} connections")
        only = set(self.args.only)
        base = self.baseline() if "baseline" in only else None
        sandbox = self.sandbox() if "sandbox" in only else None
        quiet = self.quiet() if "quiet" in only else None
        prism = self.prism() if "prism" in only else None
        growth = self.growth() if "growth" in only else None
        self.evaluate(base, sandbox, prism, growth)
        if quiet is not None and base is not None and base.rps:
            self.report.notes.append(
                f"with the access log off (--log-level warning) new refunds reach "
                f"{quiet.rps:,.0f} req/s = {quiet.rps / base.rps:.0%} of the baseline, "
                f"p99 {quiet.p99_ms:.2f} ms")
        header = self.header(time.perf_counter() - started)
        return self.report.markdown(header)

    def evaluate(self, base: LoadResult | None, sandbox: dict[str, Any] | None,
                 prism: LoadResult | None, growth: dict[str, Any] | None) -> None:
        if sandbox is None:
            self.evaluate_growth(growth)
            return
        check = self.report.check
        new: LoadResult = sandbox["new"]
        if base is not None and base.rps:
            share = new.rps / base.rps
            check("2. throughput >= 50% of the bare Starlette baseline",
                  f"{new.rps:,.0f} / {base.rps:,.0f} req/s = {share:.0%}",
                  share >= BUDGET_BASELINE_SHARE)
        else:
            check("2. throughput >= 50% of the bare Starlette baseline",
                  "baseline not measured", None)
        if prism is not None and prism.rps:
            factor = new.rps / prism.rps
            check("2. throughput >= 4x Prism 5.14.2",
                  f"{new.rps:,.0f} / {prism.rps:,.0f} req/s = {factor:.1f}x",
                  factor >= BUDGET_PRISM_FACTOR)
        else:
            check("2. throughput >= 4x Prism 5.14.2", "Prism not measured", None)
        check("2. p99 <= 5 ms (new refunds)", f"{new.p99_ms:.2f} ms",
              new.p99_ms <= BUDGET_P99_MS)
        check("2. cold start to a healthy /__admin/health <= 0.5 s",
              f"{sandbox['cold']:.3f} s (median of "
              f"{', '.join(f'{c:.3f}' for c in sandbox['colds'])})",
              sandbox["cold"] <= BUDGET_COLD_START_S)
        check("2. idle RSS <= 60 MB", f"{sandbox['idle'] / MB:.1f} MB",
              sandbox["idle"] / MB <= BUDGET_IDLE_RSS_MB)
        self.evaluate_growth(growth)
        self.evaluate_soak_and_replays(sandbox)
        self.report.data.update({
            "baseline_rps": base.rps if base else None,
            "prism_rps": prism.rps if prism else None,
            "sandbox_rps": new.rps, "sandbox_p50_ms": new.p50_ms, "sandbox_p99_ms": new.p99_ms,
            "cold_start_s": sandbox["cold"], "idle_rss_mb": sandbox["idle"] / MB,
            "replay_rps": sandbox["replay"].rps, "missing_rps": sandbox["missing"].rps,
            "soak": sandbox["soak"],
        })
        for note in new.notes:
            if note not in self.report.notes:
                self.report.notes.append(note)

    def evaluate_growth(self, growth: dict[str, Any] | None) -> None:
        check = self.report.check
        if growth is not None:
            small, large = growth["small"]["load"], growth["large"]["load"]
            filled = growth["large"]["filled"]
            ratio = large.rps / small.rps if small.rps else 0.0
            count = filled["refunds"]
            check(f"3. throughput with {count:,} refunds stored within 10% of with 1,000",
                  f"{large.rps:,.0f} / {small.rps:,.0f} req/s = {ratio:.0%} "
                  f"(p99 {large.p99_ms:.2f} vs {small.p99_ms:.2f} ms)",
                  ratio >= 1 - BUDGET_GROWTH_DROP)
            per_refund = (filled["rssAfter"] - filled["rssBefore"]) / count
            check("3. memory per stored refund (reported)",
                  f"{per_refund:,.0f} B by RSS over {count:,}; "
                  f"{filled['tracedBytesPerRefund']:,} B by tracemalloc", None)
            self.report.data["growth"] = {
                "small_rps": small.rps, "large_rps": large.rps, "small_p99_ms": small.p99_ms,
                "large_p99_ms": large.p99_ms, "large_max_ms": large.max_ms, "filled": filled}
        else:
            check("3. growth", "not measured", None)

    def evaluate_soak_and_replays(self, sandbox: dict[str, Any]) -> None:
        check = self.report.check
        new: LoadResult = sandbox["new"]
        soak = sandbox["soak"]
        if soak is not None:
            growth_mb = (soak["end"] - soak["mid"]) / MB
            check("3. memory flat under sustained load (replays, journal bounded)",
                  f"{soak['requests']:,} requests in {self.args.soak:.0f} s: RSS "
                  f"{soak['start'] / MB:.1f} -> {soak['mid'] / MB:.1f} (half-way) -> "
                  f"{soak['end'] / MB:.1f} MB (second half {growth_mb:+.1f} MB)",
                  growth_mb < SOAK_FLAT_MB)
        else:
            check("3. memory flat under sustained load", "not measured (--soak 0)", None)
        replay, missing = sandbox["replay"], sandbox["missing"]
        check("4. idempotent replays at least as fast as new refunds",
              f"{replay.rps:,.0f} vs {new.rps:,.0f} req/s; p99 {replay.p99_ms:.2f} vs "
              f"{new.p99_ms:.2f} ms", replay.rps >= new.rps)
        check("4. 404s at least as fast as new refunds",
              f"{missing.rps:,.0f} vs {new.rps:,.0f} req/s; p99 {missing.p99_ms:.2f} vs "
              f"{new.p99_ms:.2f} ms", missing.rps >= new.rps)

    def header(self, elapsed: float) -> list[str]:
        return [
            f"refund-mock-server benchmark, {time.strftime('%Y-%m-%d %H:%M')} "
            f"({elapsed:.0f} s in all)",
            "",
            f"- machine: {machine()}",
            f"- server stack: Python {platform.python_version()}, {server_stack(self.python)}",
            f"- load: {loadgen_description(self.generator)}, {self.args.connections} "
            f"connections, {self.args.duration:.0f} s per phase after "
            f"{self.args.warmup:.0f} s of warm-up; POST /v2/payments/{{orderId}}/refund with "
            f"valid bodies over {self.args.payments:,} seeded payments",
            "- errors: socket errors plus answers of the wrong status class (2xx expected, "
            "404 for unknown payments); RSS is the server process's (Prism: npx and node); "
            "server CPU us/req: the server's CPU time per answered request (what the "
            "throughput ratios follow when the machine is shared); other CPU: cores used by "
            "other processes on the machine during the phase (near 0 for a clean measurement)",
        ]


def _gc_stats(server: procs.Server) -> dict[str, Any] | None:
    """The GCSTATS line bench/prefilled.py prints when it stops."""
    if server.process.stdout is None:
        return None
    for line in server.process.stdout.read().decode(errors="replace").splitlines():
        if line.startswith("GCSTATS "):
            return dict(json.loads(line[len("GCSTATS "):]))
    return None


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
    except OSError:
        pass
    return f"{loadgen.cpu_count()} x {model}{memory}, {platform.system()} {platform.release()}"


def server_stack(python: str) -> str:
    probe = ("import importlib.metadata as m\n"
             "def v(n):\n"
             "    try: return m.version(n)\n"
             "    except m.PackageNotFoundError: return None\n"
             "u, h = v('uvloop'), v('httptools')\n"
             "print(f\"uvicorn {v('uvicorn')}, starlette {v('starlette')}, \""
             "f\"loop {'uvloop ' + u if u else 'asyncio'}, \""
             "f\"parser {'httptools ' + h if h else 'h11'}\")\n")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def loadgen_description(generator: str) -> str:
    if generator != "wrk":
        missing = "" if loadgen.wrk_available() else " (wrk not installed)"
        return f"built-in asyncio client{missing}"
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    version = (done.stdout or done.stderr).split("Copyright")[0].strip()
    return f"{version} with bench/refund.lua"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds measured per phase (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of unmeasured load before each phase (default 2)")
    parser.add_argument("--connections", type=int, default=32,
                        help="concurrent keep-alive connections (default 32)")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (default 1: the machine has 2 cores, one is the "
                             "server's)")
    parser.add_argument("--generator", choices=("auto", "wrk", "asyncio"), default="auto",
                        help="load generator (default: wrk when installed)")
    parser.add_argument("--payments", type=int, default=1000,
                        help="payments seeded and cycled through (default 1000)")
    parser.add_argument("--replay-keys", type=int, default=1000,
                        help="distinct idempotency keys replayed (default 1000)")
    parser.add_argument("--soak", type=float, default=30.0,
                        help="seconds of the replay-heavy soak that samples RSS (default 30)")
    parser.add_argument("--cold-starts", type=int, default=3,
                        help="sandbox starts timed; the median is reported (default 3)")
    parser.add_argument("--growth-refunds", type=int, default=1_000_000,
                        help="refunds stored for the growth run (default 1,000,000; 0 skips)")
    parser.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                        help="before each phase, wait up to this long for other processes to "
                             "go quiet (default 60; 0 does not wait)")
    parser.add_argument("--growth-rounds", type=int, default=5,
                        help="alternating slices per ledger size in the growth run; each is "
                             "--duration/rounds long, rounded up to whole seconds (default 5)")
    parser.add_argument("--retries", type=int, default=1,
                        help="measure a phase again (up to N more times) when other processes "
                             "used more than 0.15 cores during it; the least disturbed attempt "
                             "is kept (default 1)")
    parser.add_argument("--no-prism", action="store_true", help="skip Prism even with Node")
    parser.add_argument("--only", type=lambda text: [p for p in text.split(",") if p],
                        default=list(PHASES), metavar="PHASES",
                        help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    parser.add_argument("--profile", action="store_true",
                        help="after the measured phases, sample the sandbox with py-spy during "
                             "new refunds and print where the time goes")
    parser.add_argument("--python", help="interpreter that runs the servers (default: this one)")
    parser.add_argument("--serve-flag", action="append", default=[], metavar="FLAG",
                        help="extra flag for `mock-server serve`, repeatable "
                             "(e.g. --serve-flag=--log-level=warning)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = sorted(set(args.only) - set(PHASES))
    if unknown:
        raise SystemExit(f"bench: unknown phase(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(PHASES)}")
    with tempfile.TemporaryDirectory(prefix="refund-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        table = bench.run()
    sys.stdout.write(table + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.json:
        args.json.write_text(json.dumps(bench.report.data, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
