"""`mock-server serve --workers N`: N serving processes on one port, over one shared store.

The parent binds the port (so a busy port is one clear line, as with one process), then starts
each worker as `python -m mock_server.worker`, handing it a listening socket (an inherited
file descriptor) and the parsed settings (pickled, on the worker's stdin: the flags and the
environment are read once, by the parent, and every worker serves with exactly the same
settings, the drawn seed included). On Linux each worker gets a socket of its own on the one
port (SO_REUSEPORT) and the kernel spreads new connections evenly over them; elsewhere they
share one socket. The parent keeps the sockets open, so a replaced worker takes over its
predecessor's, with the connections waiting in it.

The first worker starts alone: a problem with the scenario files or the store is reported once,
and the startup world is seeded by one process; the others start once it serves. The parent
logs the listening line when all of them serve.

uvicorn's own supervisor (`uvicorn.run(..., workers=N)`) is not used: each of its workers builds
a plain `uvicorn.Server` from a pickled `uvicorn.Config`, so it cannot carry what `serve` adds
(the sandbox's graceful stop with its shutdown deadline, the connection limits' protocol class,
batched access lines, the GC policy). Here each worker runs `cli.serve` itself, as one process
would.

SIGTERM or SIGINT to the parent: it sends SIGTERM to every worker, each finishes its in-flight
requests and runs its shutdown hooks (pending Optty callbacks delivered or reported) within
--shutdown-timeout, and the parent exits 0 once every worker has exited 0 (1 otherwise; a
worker still running 10 s after its --shutdown-timeout is killed). A worker that dies while
serving is replaced; one that cannot start stops the whole server (exit code 2)."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from mock_server import __version__
from mock_server.settings import Settings

log = logging.getLogger("mock_server")

READY = b"R"
# how long a worker that ignores SIGTERM gets after --shutdown-timeout before it is killed
KILL_AFTER_S = 10.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class _Worker:
    index: int  # 1..N
    process: subprocess.Popen[bytes]
    ready_fd: int  # the read end of the pipe the worker says "ready" on
    ready: bool = False
    exit_code: int | None = field(default=None)


class Supervisor:
    """Starts, watches and stops the workers of one `serve --workers N`."""

    def __init__(self, settings: Settings, sockets: list[socket.socket]) -> None:
        self.settings = settings
        # one listening socket per worker (SO_REUSEPORT), or one shared by all of them
        self.sockets = sockets
        self.sock = sockets[0]
        self.count = settings.workers
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.stopping: str | None = None  # the signal's name, once one arrived
        self.kill_at: float | None = None
        self.failed_start = False
        self._pickled = pickle.dumps(settings)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- signals: each one wakes the loop through the wake-up pipe -------------------------

    def _install_signals(self) -> dict[int, Any]:
        def noop(sig: int, frame: Any) -> None:
            pass

        previous: dict[int, Any] = {sig: signal.signal(sig, noop)
                    for sig in (*_STOP_SIGNALS, signal.SIGCHLD)}
        self._previous_wakeup = signal.set_wakeup_fd(self._wake_w)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        return previous

    def _restore_signals(self, previous: dict[int, Any]) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _signals_arrived(self) -> list[int]:
        arrived: list[int] = []
        with contextlib.suppress(BlockingIOError):
            while True:
                data = os.read(self._wake_r, 512)
                if not data:
                    break
                arrived.extend(data)
        return arrived

    # -- workers -----------------------------------------------------------------------------

    def _start(self, index: int) -> _Worker:
        ready_r, ready_w = os.pipe()
        listen_fd = self.sockets[(index - 1) % len(self.sockets)].fileno()
        command = [sys.executable, "-m", "mock_server.worker", str(listen_fd), str(ready_w),
                   str(index), str(self.count)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                   pass_fds=(listen_fd, ready_w))
        os.close(ready_w)
        assert process.stdin is not None
        try:
            # the settings, then the pipe stays open: the worker stops when it reads its end
            # (this process is gone, even killed with SIGKILL)
            process.stdin.write(len(self._pickled).to_bytes(8, "big") + self._pickled)
            process.stdin.flush()
        except BrokenPipeError:  # it died at once; the loop sees its exit code
            pass
        worker = _Worker(index, process, ready_r)
        self.selector.register(ready_r, selectors.EVENT_READ, worker)
        log.debug("worker %d of %d started (pid %d)", index, self.count, process.pid)
        return worker

    def _forget_pipe(self, worker: _Worker) -> None:
        if worker.ready_fd < 0:  # closed already: its number may belong to another file now
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.ready_fd)
        with contextlib.suppress(OSError):
            os.close(worker.ready_fd)
        worker.ready_fd = -1

    def _reap(self) -> list[_Worker]:
        """The workers that have exited since the last look."""
        ended = []
        for worker in self.workers:
            if worker.exit_code is None and worker.process.poll() is not None:
                worker.exit_code = worker.process.returncode
                self._forget_pipe(worker)
                with contextlib.suppress(OSError):
                    assert worker.process.stdin is not None
                    worker.process.stdin.close()
                ended.append(worker)
        return ended

    def _signal_all(self, sig: int) -> None:
        for worker in self.workers:
            if worker.exit_code is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    def _begin_stop(self, name: str) -> None:
        self.stopping = name
        self.kill_at = (time.monotonic() + self.settings.shutdown_timeout.total_seconds()
                        + KILL_AFTER_S)
        running = [w for w in self.workers if w.exit_code is None]
        log.info("%s received: stopping %d worker(s)", name, len(running))
        self._signal_all(signal.SIGTERM)
        # the workers close theirs as they stop: the port then refuses new connections at once
        # instead of queueing them where nobody accepts any more
        for sock in self.sockets:
            sock.close()

    # -- the loop ----------------------------------------------------------------------------

    def _wait(self) -> None:
        """Until something happens: a signal, a worker ready, or (while stopping) the kill
        deadline."""
        timeout = None
        if self.kill_at is not None:
            timeout = max(self.kill_at - time.monotonic(), 0.0)
        for key, _ in self.selector.select(timeout):
            worker = key.data
            if worker is None:
                continue
            try:
                said = os.read(worker.ready_fd, 16)
            except OSError:
                said = b""
            if said.startswith(READY):
                worker.ready = True
            self._forget_pipe(worker)  # ready, or the pipe closed: nothing more to read
        for sig in self._signals_arrived():
            if sig in _STOP_SIGNALS:
                if self.stopping is None:
                    self._begin_stop(signal.Signals(sig).name)
                else:
                    # passed on as it came: a second Ctrl+C stops the workers at once, as it
                    # does one process; another SIGTERM changes nothing
                    self._signal_all(sig)

    def run(self) -> int:
        previous = self._install_signals()
        try:
            return self._run()
        finally:
            self._restore_signals(previous)
            for worker in self.workers:
                if worker.exit_code is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
                    worker.process.wait()
            self.selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> int:
        # the first worker alone: the startup world is seeded once, a bad file reported once
        self.workers.append(self._start(1))
        if not self._until_ready(self.workers):
            return self._stopped()
        self.workers.extend(self._start(i) for i in range(2, self.count + 1))
        if not self._until_ready(self.workers):
            return self._stopped()
        host, port = self.sock.getsockname()[:2]
        log.info("refund-mock-server %s listening on http://%s:%s with %d workers (pids %s)",
                 __version__, f"[{host}]" if ":" in host else host, port, self.count,
                 ", ".join(str(w.process.pid) for w in self.workers))
        while self.stopping is None:
            self._wait()
            for worker in self._reap():
                if self.stopping is not None:
                    break
                log.warning("worker %d (pid %d) exited with code %s while serving; starting "
                            "another", worker.index, worker.process.pid, worker.exit_code)
                replacement = self._start(worker.index)
                self.workers[self.workers.index(worker)] = replacement
                if not self._until_ready([replacement]):
                    return self._stopped()
        return self._stopped()

    def _until_ready(self, workers: list[_Worker]) -> bool:
        """True once all of `workers` serve; False when one exited first or a signal came (the
        others are then being stopped)."""
        while self.stopping is None:
            if all(w.ready for w in workers):
                return True
            self._wait()
            failed = [w for w in self._reap() if not w.ready]
            if failed:
                worker = failed[0]
                log.error("worker %d (pid %d) did not start (exit code %s): stopping",
                          worker.index, worker.process.pid, worker.exit_code)
                self.failed_start = True
                self._begin_stop("start-up failure")
                return False
        return False

    def _stopped(self) -> int:
        """Waits for every worker to exit (killing any left at the deadline); the exit code."""
        while True:
            self._reap()
            running = [w for w in self.workers if w.exit_code is None]
            if not running:
                break
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                for worker in running:
                    log.error("worker %d (pid %d) still running %.0fs after "
                              "--shutdown-timeout: killed", worker.index, worker.process.pid,
                              KILL_AFTER_S)
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
                    worker.process.wait()
                continue
            self._wait()
        for worker in self.workers:
            log.info("worker %d (pid %d) exited with code %s", worker.index,
                     worker.process.pid, worker.exit_code)
        if self.failed_start:
            return 2
        clean = all(w.exit_code == 0 for w in self.workers)
        log.info("stopped%s%s", f" ({self.stopping})" if self.stopping else "",
                 "" if clean else ": a worker did not stop cleanly")
        return 0 if clean else 1


def supervise(settings: Settings, sockets: list[socket.socket]) -> int:
    """Serves with settings.workers processes on `sockets` (one each, or one for all) until a
    signal stops them."""
    return Supervisor(settings, sockets).run()
