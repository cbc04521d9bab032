"""Where the sandbox spends a request: py-spy attached to the running server, summarised."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$")

# frames grouped into the parts of a request, first match wins (file path fragments)
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("access log (logging, mock_server/logs.py)", ("logging/", "mock_server/logs.py")),
    ("uvicorn + transport writes", ("uvicorn/", "asyncio/", "uvloop")),
    ("Starlette Response/Headers", ("starlette/",)),
    ("request validation (openapi)", ("mock_server/core/openapi.py",)),
    ("journal", ("mock_server/core/journal.py",)),
    ("JSON body parsing", ("json/", "mock_server/afterpay/requests.py")),
    ("response bodies (jackson)", ("mock_server/afterpay/jackson.py",)),
    ("ledger + refund rules", ("mock_server/core/ledger.py", "mock_server/afterpay/models.py")),
    ("ids (correlation ids, refund ids)", ("mock_server/core/ids.py", "random.py")),
    ("clock / timestamps", ("mock_server/core/clock.py",)),
    ("afterpay handlers + errors", ("mock_server/afterpay/",)),
    ("routing, sessions, context (app.py)", ("mock_server/app.py", "mock_server/core/")),
)


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else None


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> bool:
    tool = py_spy()
    if tool is None:
        return False
    done = subprocess.run([tool, "record", "-p", str(pid), "-d", str(max(1, round(seconds))),
                           "-r", str(rate), "-f", "raw", "-o", str(out)],
                          capture_output=True, text=True, timeout=seconds + 60, check=False)
    return done.returncode == 0 and out.exists()


def _part(frames: list[str]) -> str:
    """The request part a sample belongs to: decided by its innermost recognised frame."""
    if frames and frames[-1].startswith("Runner.run (asyncio/runners.py"):
        return "event loop itself (uvloop, native)"
    for frame in reversed(frames):
        found = _FRAME.match(frame)
        path = found.group("file") if found else frame
        for name, fragments in PARTS:
            if any(fragment in path for fragment in fragments):
                return name
    return "other"


def summarise(raw: Path, top: int = 12) -> list[str]:
    """Markdown: the share of samples per request part, and the heaviest functions."""
    parts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        parts[_part(frames)] += samples
        for frame in set(frames):
            if "mock_server/" in frame:
                inclusive[frame] += samples
    if not total:
        return ["(no samples)"]
    out = ["| part of the request | share of server CPU samples |", "|---|---:|"]
    out += [f"| {name} | {count / total:.0%} |" for name, count in parts.most_common()]
    out += ["", "| sandbox function (inclusive) | share |", "|---|---:|"]
    skip = ("SandboxApp.__call__", "SandboxApp._http", "SandboxApp._handle", "cli.py",
            "__main__.py")
    shown = 0
    for frame, count in inclusive.most_common():
        if any(name in frame for name in skip):
            continue
        out.append(f"| `{frame}` | {count / total:.0%} |")
        shown += 1
        if shown >= top:
            break
    return out
