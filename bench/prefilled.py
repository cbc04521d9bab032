"""`mock-server serve` with refunds already in the ledger, for the growth measurement.

`python bench/prefilled.py SCENARIO REFUNDS -- <serve flags>` loads the scenario into the default
session, records REFUNDS refunds through the Afterpay model (the same objects the HTTP path
stores: ledger entry plus idempotent answer), prints one line
`READY {"refunds": N, "rssBefore": .., "rssAfter": .., "tracedBytesPerRefund": ..}` and then
serves exactly as `mock-server serve` does. When the server stops it prints
`GCSTATS {...}`: what Python's cyclic garbage collector cost while it served.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import mock_server.app
from mock_server import cli
from mock_server.afterpay.requests import RefundRequest
from mock_server.core.scenarios import parse_scenario

TRACED_SAMPLE = 20_000  # refunds measured with tracemalloc before the rest are added untraced


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def prefill(app: Any, scenario_path: str, refunds: int) -> dict[str, Any]:
    world = app.world
    session = world.session("default")
    scenario = parse_scenario(Path(scenario_path).read_bytes(), scenario_path,
                              error_codes=world.error_codes)
    world.load(session, scenario)
    afterpay = next(p for p in app.providers if p.name == "afterpay")
    model = afterpay.model
    state = session.state("afterpay")
    merchant_id = scenario.document["afterpay"]["merchants"][0]["merchantId"]
    merchant = state.merchants[merchant_id]
    payments = [state.payments[str(p["id"])] for p in scenario.document["afterpay"]["payments"]]
    amount = Decimal("1.00")

    def add(start: int, stop: int) -> None:
        for i in range(start, stop):
            request = RefundRequest(amount, "AUD", f"prefill-{i}", f"prefill-ref-{i}", None)
            key = model.idempotency_key(merchant, request)
            model.refund(session, payments[i % len(payments)], request, key)

    gc.collect()
    before = _rss()
    sample = min(TRACED_SAMPLE, refunds)
    tracemalloc.start()
    traced_start = tracemalloc.get_traced_memory()[0]
    add(0, sample)
    traced = tracemalloc.get_traced_memory()[0] - traced_start
    tracemalloc.stop()
    add(sample, refunds)
    gc.collect()
    after = _rss()
    return {"refunds": refunds, "rssBefore": before, "rssAfter": after,
            "tracedBytesPerRefund": round(traced / sample) if sample else 0,
            "ledger": dict(session.ledger.stats())}


class GcWatch:
    """Times every collection (gc.callbacks) from the moment the server is ready."""

    def __init__(self) -> None:
        self.started_cpu = time.process_time()
        self.began = 0.0
        self.total = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self.longest = [0.0, 0.0, 0.0]
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
            return
        took = time.perf_counter() - self.began
        generation = info["generation"]
        self.total[generation] += took
        self.count[generation] += 1
        self.longest[generation] = max(self.longest[generation], took)

    def report(self) -> dict[str, Any]:
        cpu = time.process_time() - self.started_cpu
        return {"cpuSeconds": round(cpu, 3), "gcSeconds": round(sum(self.total), 3),
                "collections": self.count, "fullCollections": self.count[2],
                "longestFullMs": round(self.longest[2] * 1000, 1),
                "longestMs": round(max(self.longest) * 1000, 1)}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or "--" not in argv:
        sys.stderr.write(__doc__ or "")
        return 2
    scenario_path, refunds = argv[0], int(argv[1])
    serve_flags = argv[argv.index("--") + 1:]
    original = mock_server.app.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        report = prefill(app, scenario_path, refunds)
        watch = GcWatch()

        async def gc_report() -> None:
            # a shutdown hook: uvicorn ends the process with the signal that stopped it
            sys.stdout.write("GCSTATS " + json.dumps(watch.report()) + "\n")
            sys.stdout.flush()

        app.shutdown_hooks.append(gc_report)
        sys.stdout.write("READY " + json.dumps(report) + "\n")
        sys.stdout.flush()
        return app

    # cli.serve imports create_app from mock_server.app when it runs: serve the filled app
    mock_server.app.create_app = create_app
    return cli.main(["serve", *serve_flags])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
