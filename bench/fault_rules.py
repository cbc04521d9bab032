"""Time per request with many fault rules loaded: in the loaded session (a path no rule names)
and in a clean one. In-process through the ASGI app; prints one line per case.

    .venv/bin/python bench/fault_rules.py [RULES]
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
import sys
import time
from typing import Any

from mock_server.app import create_app
from mock_server.settings import Settings

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sessions import call  # noqa: E402


async def measure(rules: int) -> None:
    settings = Settings()
    if any(f.name == "max_fault_rules" for f in dataclasses.fields(Settings)):
        settings = dataclasses.replace(settings, max_fault_rules=rules,
                                       max_scenario_bytes=64 * 1024 * 1024,
                                       max_body_bytes=64 * 1024 * 1024)
    else:
        settings = dataclasses.replace(settings, max_body_bytes=64 * 1024 * 1024)
    app: Any = create_app(settings)
    doc = json.dumps({"name": "many", "faults": [
        {"name": f"r{i}", "match": {"provider": "afterpay", "method": "POST",
                                    "path": f"/v2/payments/{i}/refund"},
         "respond": {"status": 503}} for i in range(rules)]}).encode()
    started = time.perf_counter()
    status = await call(app, "POST", "/__admin/scenarios",
                        {"x-sandbox-session": "loaded", "content-type": "application/json"}, doc)
    took = (time.perf_counter() - started) * 1000
    sys.stdout.write(f"load {rules} rules: {status} in {took:.0f} ms\n")
    for session in ("loaded", "clean"):
        times = []
        for _ in range(300):
            t = time.perf_counter()
            await call(app, "GET", "/ping", {"x-sandbox-session": session})
            times.append((time.perf_counter() - t) * 1000)
        p50 = statistics.median(times)
        sys.stdout.write(f"GET /ping in the {session} session: p50 {p50:.3f} ms\n")


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
