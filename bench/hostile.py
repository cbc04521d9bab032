"""Hostile clients against a real server on loopback: RSS and health-check latency per attack.

    .venv/bin/python bench/hostile.py [--scale 1.0]

Each attack runs against a fresh `mock-server serve`; while it runs, a thread asks
/__admin/health in a loop and the slowest answer is reported. Figures go to stdout as JSON
lines (docs/performance.md keeps the ones measured for each release).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import HOST, free_port, http, rss_bytes  # noqa: E402

OPTTY_FORM = b"client_id=sandbox-client&client_secret=sandbox-secret&grant_type=client_credentials&scope=api-user"


def start(extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "mock_server", "serve", "--port", str(port),
                                "--log-level", "warning", *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            if http(port, "GET", "/__admin/health", timeout=1.0)[0] == 200:
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


class HealthWatch(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.worst, self.stop_flag = port, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            began = time.perf_counter()
            try:
                http(self.port, "GET", "/__admin/health", timeout=60.0)
            except OSError:
                pass
            self.worst = max(self.worst, time.perf_counter() - began)
            time.sleep(0.02)


def raw(port: int, data: bytes, timeout: float = 60.0) -> bytes:
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        def send() -> None:
            try:
                sock.sendall(data)
            except OSError:
                pass  # the server answered and closed before all of it was sent
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


def status_of(reply: bytes) -> str:
    return reply[9:12].decode() if reply.startswith(b"HTTP/1.1") else f"no answer ({len(reply)}b)"


def big_headers(port: int, scale: float) -> dict[str, object]:
    size = int(20 * 1024 * 1024 * scale)
    statuses = []
    for i in range(5):
        statuses.append(status_of(raw(port, (
            f"GET /ping HTTP/1.1\r\nHost: x\r\nX-Sandbox-Session: h{i}\r\nX-Big: ").encode()
            + b"a" * size + b"\r\nConnection: close\r\n\r\n")))
    return {"header_bytes": size, "statuses": statuses}


def optty_auth(port: int, scale: float) -> dict[str, object]:
    value = "x" * int(32 * 1024 * scale)
    began = time.perf_counter()
    status, _ = http(port, "GET", "/orders/o-1", headers={"Authorization": value})
    return {"chars": len(value), "status": status,
            "seconds": round(time.perf_counter() - began, 3)}


def long_path(port: int, scale: float) -> dict[str, object]:
    path = "/token" + "eyJ" * int(32 * 1024 * scale / 3)
    began = time.perf_counter()
    status, _ = http(port, "GET", path)
    return {"chars": len(path), "status": status,
            "seconds": round(time.perf_counter() - began, 3)}


def journal_read(port: int, scale: float) -> dict[str, object]:
    count = max(1, int(300 * scale))
    body = b"{" + b" " * (1024 * 1024 - 2) + b"}"
    for _ in range(count):
        http(port, "POST", "/sessions/big/orders/o-1/refund", body,
             {"Content-Type": "application/json"})
    began = time.perf_counter()
    status, payload = http(port, "GET", f"/sessions/big/__admin/requests?limit={count}")
    return {"entries": count, "status": status, "answer_bytes": len(payload),
            "seconds": round(time.perf_counter() - began, 3)}


def header_injection(port: int, scale: float) -> dict[str, object]:
    scenario = (
        "name: crlf\noptty:\n  merchants:\n    - {merchantId: \"m\\r\\nX-Injected: 1\", "
        "clientId: c1, clientSecret: s1}\n  orders:\n    - {orderReference: r1, merchantId: "
        "\"m\\r\\nX-Injected: 1\", bnplProvider: AFTERPAY, amount: \"10.00\", currency: AUD, "
        "status: SUCCESSFUL}\n  providers:\n    AFTERPAY: {asyncRefunds: true}\n")
    loaded, text = http(port, "POST", "/sessions/crlf/__admin/scenarios", scenario.encode(),
                        {"Content-Type": "application/yaml"})
    if loaded != 201:
        return {"scenario": loaded, "answer": text.decode(errors="replace")[:300]}
    _, token = http(port, "POST", "/sessions/crlf/token",
                    b"client_id=c1&client_secret=s1&grant_type=client_credentials&scope=api-user",
                    {"Content-Type": "application/x-www-form-urlencoded"})
    bearer = json.loads(token)["access_token"]
    body = (b'{"refundReference":"rf1","refundAmount":{"amount":1,"currency":"AUD"},'
            b'"refundDescription":"x"}')
    reply = raw(port, (f"POST /sessions/crlf/orders/r1/refund HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {bearer}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
               + body)
    _, order = http(port, "GET", "/sessions/crlf/orders/r1",
                    headers={"Authorization": f"Bearer {bearer}"})
    return {"scenario": loaded, "refund": status_of(reply),
            "order_after": order.decode(errors="replace")[:200]}


def secrets_kept(port: int, scale: float) -> dict[str, object]:
    http(port, "POST", "/sessions/sec/token?client_secret=sandbox-secret", OPTTY_FORM,
         {"Content-Type": "application/x-www-form-urlencoded", "X-Api-Key": "k-123456"})
    _, journal = http(port, "GET", "/sessions/sec/__admin/requests")
    text = journal.decode()
    return {"client_secret_in_journal": text.count("sandbox-secret"),
            "jwt_in_journal": text.count("eyJ"), "x_api_key_in_journal": text.count("k-123456")}


ATTACKS: dict[str, Callable[[int, float], dict[str, object]]] = {
    "1-big-headers": big_headers, "2-optty-auth": optty_auth, "2-log-mask-path": long_path,
    "3-journal-read": journal_read, "4-header-injection": header_injection,
    "10-secrets": secrets_kept,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", action="append")
    args = parser.parse_args(argv)
    for name, attack in ATTACKS.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        extra = ["--log-level", "info"] if name == "2-log-mask-path" else []
        if name.startswith("2-"):
            # the pattern's own cost, not the header limit's refusal
            extra += ["--max-header-bytes", "4000000", "--max-header-field-bytes", "4000000"]
        process, port = start(extra)
        try:
            before = rss_bytes(process.pid)
            watch = HealthWatch(port)
            watch.start()
            try:
                result = attack(port, args.scale)
            except Exception as exc:  # noqa: BLE001 - reported as a figure
                result = {"error": f"{type(exc).__name__}: {exc}"}
            watch.stop_flag.set()
            watch.join(60)
            result.update(attack=name, rss_before_mb=round(before / 2**20, 1),
                          rss_after_mb=round(rss_bytes(process.pid) / 2**20, 1),
                          worst_health_s=round(watch.worst, 3))
            print(json.dumps(result), flush=True)  # noqa: T201 - a bench script's output
        finally:
            process.terminate()
            process.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
