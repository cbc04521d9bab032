"""What journaling one request costs (Journal.record + finish), now and at another commit.

    .venv/bin/python bench/journal_write.py [--against 6d14b25] [--count 20000]

A typical Afterpay refund: six request headers with Basic credentials, a 90-byte body, a
130-byte answer. Best of five runs; the collector is off so that only the journal is timed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEADERS = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"client/1.0"),
           (b"accept", b"application/json"), (b"content-type", b"application/json"),
           (b"authorization", b"Basic MTAwMTAxMzgyOnNhbmRib3gtc2VjcmV0LWtleQ=="),
           (b"content-length", b"90")]
BODY = (b'{"requestId":"r-1","amount":{"amount":"10.00","currency":"AUD"},'
        b'"merchantReference":"m-1"}')
ANSWER = (b'{\n  "amount" : {\n    "amount" : "10.00",\n    "currency" : "AUD"\n  },\n'
          b'  "refundId" : "1934419",\n  "refundedAt" : "2026-11-22T10:00:00.000Z"\n}')
ANSWER_HEADERS = [(b"http-correlation-id", b"abcdefghijklmnopqrstuvwxyz"),
                  (b"content-length", b"130"), (b"content-type", b"application/json")]


def _at(revision: str) -> ModuleType:
    source = subprocess.run(["git", "show", f"{revision}:mock_server/core/journal.py"],
                            capture_output=True, text=True, check=True, cwd=ROOT).stdout
    spec = importlib.util.spec_from_loader("journal_at_" + revision, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, f"{revision}:journal.py", "exec"), module.__dict__)  # noqa: S102
    return module


def _time(module: Any, count: int) -> float:
    now = datetime.now(UTC)
    journal = module.Journal(10_000)
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(count):
            entry = journal.record(at=now, provider="afterpay", operation="createRefund",
                                   method="POST", path="/v2/payments/100101785223/refund",
                                   query="", headers=HEADERS, body=BODY)
            module.finish(entry, status=201, headers=ANSWER_HEADERS, body=ANSWER,
                          duration_ms=1.0)
        best = min(best, (time.perf_counter() - began) / count)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="6d14b25")
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args(argv)
    from mock_server.core import journal
    gc.disable()
    for name, module in ((args.against, _at(args.against)), ("now", journal)):
        print(f"{name}: {_time(module, args.count):.2f} us per journaled request")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
