"""One worker of `mock-server serve --workers N` (`python -m mock_server.worker`, started by
mock_server.workers): serves with the parent's settings on the socket the parent handed over,
and stops when the parent is gone."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import sys

from mock_server.settings import Settings
from mock_server.workers import READY

log = logging.getLogger("mock_server")


def _worker_main(argv: list[str]) -> int:
    """One worker: `python -m mock_server.worker LISTEN_FD READY_FD INDEX COUNT`, the
    settings pickled on stdin (written by the parent, which alone starts workers)."""
    try:
        listen_fd, ready_fd, index, count = (int(a) for a in argv)
        size = int.from_bytes(_read_exactly(0, 8), "big")
        settings = pickle.loads(_read_exactly(0, size))  # noqa: S301 - the parent's own pipe
    except Exception:  # noqa: BLE001 - anything but the parent's settings: refused below
        settings = None
    if not isinstance(settings, Settings):
        sys.stderr.write("mock-server: error: a worker is started by `mock-server serve "
                         "--workers N`, not by hand\n")
        return 2
    sock = socket.socket(fileno=listen_fd)
    from mock_server import cli

    def ready() -> None:
        with contextlib.suppress(OSError):
            os.write(ready_fd, READY)
            os.close(ready_fd)
        _stop_when_the_parent_is_gone()

    return cli.serve(settings, sock=sock, worker=(index, count, ready))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _stop_when_the_parent_is_gone() -> None:
    """Called on the worker's running loop: when the parent's end of stdin closes (the parent
    exited, or was killed), the worker stops as on SIGTERM, so no orphan keeps the port."""
    import asyncio

    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            log.warning("the supervising process (pid %d) is gone: stopping", os.getppid())
            os.kill(os.getpid(), signal.SIGTERM)

    os.set_blocking(0, False)
    loop.add_reader(0, readable)


if __name__ == "__main__":  # pragma: no cover - run by the parent as a process
    try:
        raise SystemExit(_worker_main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl+C before the worker's server was up
        raise SystemExit(0) from None
