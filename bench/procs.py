"""Server processes for bench/run.py: start, wait until healthy, read RSS, stop."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http(port: int, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh connection (no client library: nothing to import)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    return int(head_bytes[9:12]), payload


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(p) for p in task.read_text().split())
        except OSError:
            pass
    return found


def rss_bytes(pid: int, tree: bool = False) -> int:
    """Resident set size of a process (and, with tree, of all its descendants)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        if tree:
            pids.extend(_children(current))
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds spent by the whole machine (all cores) outside idle and iowait."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    return (sum(values) - values[3] - values[4]) / _TICK


def cpu_seconds(pid: int, tree: bool = False) -> float:
    """User plus system CPU seconds of a process (and, with tree, of its descendants)."""
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
        if tree:
            pids.extend(_children(current))
    return total


def own_cpu_seconds() -> float:
    """CPU seconds of this process plus its finished children (wrk runs are children)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class CpuWindow:
    """Who used the CPU while a phase ran: the server, the load generator, everyone else."""

    wall: float = 0.0
    server: float = 0.0
    generator: float = 0.0
    other: float = 0.0

    def describe(self) -> str:
        if not self.wall:
            return "-"
        return (f"server {self.server / self.wall:.2f}, generator "
                f"{self.generator / self.wall:.2f}, other processes "
                f"{self.other / self.wall:.2f} cores")


class CpuMeter:
    def __init__(self, pid: int, tree: bool = False) -> None:
        self.pid, self.tree = pid, tree
        self.start = (time.perf_counter(), machine_busy_seconds(), cpu_seconds(pid, tree),
                      own_cpu_seconds())

    def stop(self) -> CpuWindow:
        wall0, busy0, server0, own0 = self.start
        wall = time.perf_counter() - wall0
        busy = machine_busy_seconds() - busy0
        server = cpu_seconds(self.pid, self.tree) - server0
        own = own_cpu_seconds() - own0
        return CpuWindow(wall, server, own, max(0.0, busy - server - own))


def wait_until_quiet(limit_s: float, threshold_cores: float = 0.1) -> float:
    """Waits (at most limit_s) until other processes use less than threshold_cores for a
    second; returns the last background load seen, in cores."""
    deadline = time.perf_counter() + limit_s
    while True:
        busy0, own0, wall0 = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
        time.sleep(1.0)
        wall = time.perf_counter() - wall0
        load = max(0.0, (machine_busy_seconds() - busy0) - (own_cpu_seconds() - own0)) / wall
        if load < threshold_cores or time.perf_counter() >= deadline:
            return load


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    cold_start_s: float
    tree: bool = False  # count child processes too (npx -> node)
    ready: str = ""  # what the process said on its ready line (the growth helper's numbers)

    def rss(self) -> int:
        return rss_bytes(self.process.pid, self.tree)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not ended within `grace` seconds."""
        if self.process.poll() is None:
            # the server was started in its own process group, so this reaches npx's children too
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _probe_ok(port: int, path: str, check: Callable[[int, bytes], bool]) -> bool:
    try:
        status, body = http(port, "GET", path, timeout=1.0)
    except OSError:
        return False
    return check(status, body)


def health_ok(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    try:
        return json.loads(body).get("status") == "ok"
    except ValueError:
        return False


def any_answer(status: int, body: bytes) -> bool:
    return status > 0


def start(name: str, command: Sequence[str], port: int, *, probe_path: str,
          check: Callable[[int, bytes], bool] = health_ok, log_dir: Path,
          timeout: float = 60.0, tree: bool = False, cwd: Path | None = None,
          env: dict[str, str] | None = None, ready_line: str | None = None) -> Server:
    """Starts a server and times it until the probe answers (the cold start).

    With ready_line, the process first prints that line on stdout (the growth helper does, once
    its ledger is filled) and its cold start then includes the filling.
    """
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE if ready_line else log, stderr=log,
        start_new_session=True, cwd=cwd, env=env)
    server = Server(name, process, port, log_path, 0.0, tree)
    if ready_line is not None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            log.write(raw)
            log.flush()
            if line.startswith(ready_line):
                server.ready = line[len(ready_line):].strip()
                break
        else:
            server.stop()
            raise RuntimeError(f"{name} exited before it was ready:\n{server.log_tail()}")
    deadline = started + timeout
    while True:
        if _probe_ok(port, probe_path, check):
            server.cold_start_s = time.perf_counter() - started
            return server
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
        if time.perf_counter() > deadline:
            server.stop()
            raise RuntimeError(f"{name} was not healthy after {timeout:.0f}s:\n"
                               f"{server.log_tail()}")
        time.sleep(0.002)
