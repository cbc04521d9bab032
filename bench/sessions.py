"""Memory per session: how much a new session costs when its first request reads, writes, or
is refused (401). In-process, through the ASGI app, no network; prints one line per case.

    .venv/bin/python bench/sessions.py [N]
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import sys
import tracemalloc
from typing import Any

from mock_server.app import create_app
from mock_server.settings import Settings

AUTH = "Basic " + base64.b64encode(b"100101382:sandbox-secret-key").decode()
BAD = "Basic " + base64.b64encode(b"100101382:wrong").decode()
UA = "bench/1.0 (Python; Merchant/100101382) https://merchant.example.com"


async def call(app: Any, method: str, path: str, headers: dict[str, str],
               body: bytes = b"") -> int:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await app(scope, receive, send)
    return int(sent[0]["status"])


CASES = {
    "read (GET payment)": ("GET", "/v2/payments/100101785223", AUTH, b""),
    "write (POST refund)": ("POST", "/v2/payments/100101785223/refund", AUTH,
                            json.dumps({"amount": {"amount": "1.00", "currency": "AUD"}}).encode()),
    "refused (401)": ("GET", "/v2/payments/100101785223", BAD, b""),
}


async def measure(n: int) -> None:
    for label, (method, path, auth, body) in CASES.items():
        app = create_app(Settings(max_sessions=n + 10) if hasattr(Settings, "max_sessions")
                         else Settings())
        headers = {"authorization": auth, "user-agent": UA, "content-type": "application/json",
                   "accept": "application/json"}
        await call(app, method, path, {**headers, "x-sandbox-session": "warm-up"}, body)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        statuses = set()
        for i in range(n):
            statuses.add(await call(app, method, path,
                                    {**headers, "x-sandbox-session": f"s-{i}"}, body))
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        sessions = len(app.world.sessions())
        sys.stdout.write(f"{label:22s} status {sorted(statuses)}  sessions {sessions:5d}  "
                         f"{grown / n / 1024:6.1f} KB per request's session\n")


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
