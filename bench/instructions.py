"""Instructions per request, counted by valgrind (callgrind): the repeatable companion of run.py.

    python bench/instructions.py [--requests N] [--modes new,replay,missing]
                                 [--only sandbox,baseline]

Wall-clock throughput on a shared machine moves by a third from run to run (other tenants'
load, CPU frequency); the number of instructions a server executes per request does not. Each
server (the sandbox as `mock-server serve` runs it, and bench/baseline_app.py) is started under
`valgrind --tool=callgrind` twice; the first run answers `--warm-up` requests, the second that
many plus N, all sequential on one keep-alive connection, and the difference of the two totals
divided by N is what one request costs, start-up, seeding and shutdown cancelled out. The
ratio sandbox / baseline is the throughput ratio a machine with the same instructions per cycle
for both would show; in practice the sandbox's code runs at a lower rate than uvicorn's
(a wider working set), so the wall-clock ratio of run.py comes out somewhat lower.

Needs valgrind (Debian: apt-get install valgrind); takes about a minute per server.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import procs  # noqa: E402
from run import FIRST_ORDER, MERCHANT_ID, SECRET, seed  # noqa: E402

_COLLECTED = re.compile(r"Collected : (\d+)")


def _request(port: int, mode: str, i: int, tag: str) -> bytes:
    if mode == "missing":
        order = FIRST_ORDER + 2_000_000 + i % 1000
    else:
        order = FIRST_ORDER + i % 1000
    if mode == "replay":
        request_id, reference = f"replay-{i % 1000}", f"replay-ref-{i % 1000}"
    else:
        request_id, reference = f"{tag}-{i}", f"ref-{tag}-{i}"
    body = json.dumps({"requestId": request_id, "amount": {"amount": "1.00", "currency": "AUD"},
                       "merchantReference": reference}, separators=(",", ":")).encode()
    auth = base64.b64encode(f"{MERCHANT_ID}:{SECRET}".encode()).decode()
    head = (f"POST /v2/payments/{order}/refund HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
            "User-Agent: refund-bench/1.0 (instructions)\r\n"
            f"Authorization: Basic {auth}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _drive(port: int, mode: str, count: int) -> None:
    """`count` requests one after another on one keep-alive connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        buffered = b""
        for i in range(count):
            sock.sendall(_request(port, mode, i, "i"))
            while True:
                head, sep, rest = buffered.partition(b"\r\n\r\n")
                if sep:
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                    if len(rest) >= length:
                        status = int(head[9:12])
                        expected = status == 404 if mode == "missing" else status < 300
                        if not expected:
                            raise SystemExit(f"unexpected answer {status}: {rest[:200]!r}")
                        buffered = rest[length:]
                        break
                chunk = sock.recv(65536)
                if not chunk:
                    raise SystemExit("the server closed the connection")
                buffered += chunk


def _count(target: str, mode: str, requests: int, workdir: Path) -> int:
    port = procs.free_port()
    out = workdir / f"callgrind.{target}.{requests}"
    if target == "baseline":
        command = [sys.executable, str(HERE / "baseline_app.py"), str(port)]
        probe = "/health"
    else:
        command = [sys.executable, "-m", "mock_server", "serve", "--port", str(port),
                   "--seed", "7"]
        probe = "/__admin/health"
    server = procs.start(f"{target}-{requests}",
                         ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                          *command], port, probe_path=probe, log_dir=workdir, timeout=300,
                         cwd=HERE.parent)
    try:
        if target == "sandbox":
            seed(port, 1000)
        _drive(port, mode, requests)
    finally:
        server.stop(grace=300)  # valgrind writes its totals as the server exits
    found = _COLLECTED.search(server.log_path.read_text(errors="replace"))
    if found is None:
        raise SystemExit(f"no instruction count in {server.log_path}:\n{server.log_tail()}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests measured")
    parser.add_argument("--warm-up", type=int, default=500, help="requests in both runs")
    parser.add_argument("--modes", default="new",
                        help="the sandbox's workloads, of new, replay, missing (404)")
    parser.add_argument("--only", default="sandbox,baseline")
    args = parser.parse_args(argv)
    modes = [m for m in ("new", "replay", "missing") if m in args.modes.split(",")]
    if shutil.which("valgrind") is None:
        sys.stderr.write("valgrind is not installed (apt-get install valgrind)\n")
        return 2
    runs = [("sandbox", mode) for mode in modes if "sandbox" in args.only.split(",")]
    if "baseline" in args.only.split(","):
        runs.append(("baseline", "new"))
    per_request: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        for target, mode in runs:
            small = _count(target, mode, args.warm_up, Path(tmp))
            large = _count(target, mode, args.warm_up + args.requests, Path(tmp))
            per_request[target, mode] = cost = (large - small) / args.requests
            sys.stdout.write(f"{target} {mode}: {cost:,.0f} instructions per request "
                             f"({args.requests:,} requests after {args.warm_up:,})\n")
            sys.stdout.flush()
    new = per_request.get(("sandbox", "new"))
    base = per_request.get(("baseline", "new"))
    if new and base:
        sys.stdout.write(f"baseline / sandbox new refunds: {base / new:.0%} (the sandbox "
                         f"executes {new / base:.2f}x the baseline's instructions)\n")
    for mode in ("replay", "missing"):
        other = per_request.get(("sandbox", mode))
        if new and other:
            sys.stdout.write(f"sandbox {mode} / new refunds: {other / new:.0%} of the "
                             "instructions\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
