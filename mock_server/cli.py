"""The `mock-server` command: `serve` the sandbox, `check` scenario files, read the journal."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

from mock_server import __version__
from mock_server.settings import Settings

ENV_PREFIX = "MOCK_SERVER_"
EXIT_BAD_FILE = 1
EXIT_USAGE = 2
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line saying what is wrong, no usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _duration(text: str) -> timedelta:
    from mock_server.core.scenarios import parse_duration
    try:
        return parse_duration(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (e.g. 250ms, 2s, 1m, 7d)") from None


def _public_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
            or parts.fragment or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http or https base URL (e.g. http://localhost:8080)")
    return text.rstrip("/")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _networks(text: str) -> tuple[str, ...]:
    from mock_server.core.targets import parse_networks
    try:
        return parse_networks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# flag -> (type, help); each is also read from MOCK_SERVER_<FLAG>
def _store_url(text: str) -> str:
    from mock_server.core.stores import StoreError, parse_store_url

    try:
        parse_store_url(text)
    except StoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


_SERVE_FLAGS: dict[str, tuple[Any, str]] = {
    "host": (str, "address to bind (default 127.0.0.1)"),
    "port": (_port, "port to bind (default 8080; 0 picks a free one)"),
    "scenario": (str, "scenario file or directory; repeatable (default: the bundled world). "
                      f"From the environment: paths separated by '{os.pathsep}'"),
    "seed": (_seed, "seed for ids and fault probabilities, for reproducible runs"),
    "strict": (bool, "refuse client mistakes the real APIs accept (e.g. missing User-Agent)"),
    "admin-token": (str, "require 'Authorization: Bearer T' on the admin API"),
    "jwt-secret": (str, "HS256 key for Optty tokens (default: the documented sandbox key)"),
    "watch": (bool, "reload scenario files when they change"),
    "log-format": (str, "access log format: text or json"),
    "log-level": (str, "debug, info, warning or error"),
    "idempotency-ttl": (_duration, "how long idempotent answers are kept (default 7d)"),
    "journal-size": (_positive_int, "request journal entries kept per session (default 10000)"),
    "max-body-bytes": (_positive_int, "largest request body accepted (default 1048576)"),
    "public-url": (_public_url, "base URL browsers reach the sandbox at, for the redirect URLs "
                                "of its shopper pages (default: the request's Host)"),
    "shutdown-timeout": (_duration, "on SIGTERM/SIGINT, how long in-flight requests and pending "
                                    "callbacks get to finish (default 5s)"),
    "max-sessions": (_positive_int, "sessions kept at most; beyond, the least recently used idle "
                                    "one is evicted (default 1000)"),
    "session-idle-ttl": (_duration, "forget a session unused for this long (default: never)"),
    "max-fault-rules": (_positive_int, "fault rules one session may hold (default 1000)"),
    "max-scenario-bytes": (_positive_int, "largest scenario document POSTed at run time "
                                          "(default 262144)"),
    "max-connections": (_positive_int, "open connections at most; beyond, the longest idle one "
                                       "is closed (default 1000)"),
    "keep-alive-timeout": (_duration, "close a connection idle for this long, before its first "
                                      "request or between requests (default 5s)"),
    "webhook-allow": (_networks, "networks callbacks may go to, comma-separated, or 'any' "
                                 "(default: loopback and private ranges)"),
    "max-header-bytes": (_positive_int, "largest request head accepted: request line and all "
                                        "header lines (default 65536)"),
    "max-header-field-bytes": (_positive_int, "largest single header line accepted "
                                              "(default 8192)"),
    "journal-entry-bytes": (_positive_int, "bytes one journal entry keeps of the request, and "
                                           "again of the answer (default 65536)"),
    "journal-bytes": (_positive_int, "bytes a session's journal keeps in all; oldest entries "
                                     "go first (default 67108864)"),
    "redact": (str, "a header, query or body field name whose value the journal never keeps; "
                    "repeatable, adds to the defaults. From the environment: names separated "
                    "by ','"),
    "store": (_store_url, "where session state lives: memory (the default), sqlite:PATH or "
                          "redis://HOST:PORT/DB; serving refuses the last two until they hold "
                          "all of it (`mock-server store` works on them)"),
    "workers": (_positive_int, "serving processes on the one port (default 1); more than one "
                               "needs a shared store (--store sqlite:PATH or redis://...)"),
}
_CHOICES = {"log-format": ("text", "json"), "log-level": ("debug", "info", "warning", "error")}


def _env_default(flag: str, kind: Any) -> Any:
    raw = os.environ.get(ENV_PREFIX + flag.upper().replace("-", "_"))
    if raw is None:
        return None
    if kind is bool:
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise argparse.ArgumentTypeError(
            f"{ENV_PREFIX}{flag.upper().replace('-', '_')}={raw!r} is not a boolean")
    if flag == "scenario":
        return [p for p in raw.split(os.pathsep) if p]
    if flag == "redact":
        return [n.strip() for n in raw.split(",") if n.strip()]
    try:
        return kind(raw)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"{ENV_PREFIX}{flag.upper().replace('-', '_')}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mock-server",
                     description="Offline sandbox for the Afterpay v2 and Optty refund APIs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = commands.add_parser("serve", help="run the sandbox")
    for flag, (kind, text) in _SERVE_FLAGS.items():
        if kind is bool:
            serve.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                               help=text)
        elif flag in ("scenario", "redact"):
            serve.add_argument(f"--{flag}", action="append", default=None, help=text,
                               metavar="PATH" if flag == "scenario" else "NAME")
        else:
            serve.add_argument(f"--{flag}", type=kind, default=None, help=text,
                               choices=_CHOICES.get(flag))
    check = commands.add_parser(
        "check", help="validate scenario files; exit 1 on a bad one",
        description="By default each file is checked as the server loads it at run time "
                    "(POST /__admin/scenarios) onto its startup world: the bundled default "
                    "world, or --world. --startup checks the files as serve --scenario takes "
                    "them: a whole startup world by themselves.")
    check.add_argument("paths", nargs="+", metavar="PATH")
    check.add_argument("--startup", action="store_true",
                       help="check them as the startup world (serve --scenario PATH...)")
    check.add_argument("--world", action="append", default=[], metavar="PATH",
                       help="the startup world to load them onto (default: the bundled one)")
    _requests_parser(commands)
    drills = commands.add_parser("drills", help="list the bundled fault drills, or print one")
    drills.add_argument("name", nargs="?", metavar="NAME")
    drills.add_argument("--path", action="store_true",
                        help="print the drill's installed path instead of its text")
    commands.add_parser("schema", help="print the scenario files' JSON Schema (for editors)")
    store = commands.add_parser(
        "store", help="inspect or wipe a store (sqlite:PATH, redis://HOST:PORT/DB)",
        description="info prints what the store holds (its format version, and per session "
                    "the accounts, refunds, idempotency records, fault counters and pending "
                    "callbacks) as JSON; wipe forgets all of it, also a store written in an "
                    "incompatible format.")
    store.add_argument("action", choices=("info", "wipe"))
    store.add_argument("url", type=_store_url, metavar="URL")
    return parser


def _status_filter(text: str) -> int:
    if not text.isdigit() or not (int(text) == 0 or 100 <= int(text) <= 599):
        raise argparse.ArgumentTypeError(f"{text!r} is not a status (0, or 100-599)")
    return int(text)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0.05-3600)")
    return value


def _requests_parser(commands: Any) -> None:
    tail = commands.add_parser("requests", help="the request journal in a terminal",
                               description="Prints a session's journal, oldest first, one line "
                                           "per request; --follow goes on as requests arrive.")
    tail.add_argument("--url", default=None,
                      help="the sandbox (default: $MOCK_SERVER_URL, else "
                           "http://127.0.0.1:$MOCK_SERVER_PORT or 8080)")
    tail.add_argument("--session", default=None, help="the session (default: default)")
    tail.add_argument("--provider", choices=("afterpay", "optty", "admin"), default=None)
    tail.add_argument("--status", type=_status_filter, default=None,
                      help="only this status (0: network faults)")
    tail.add_argument("--operation", default=None, help="only this operationId")
    tail.add_argument("--limit", type=_journal_limit, default=20,
                      help="how many of the newest entries to print first (default 20)")
    tail.add_argument("--follow", "-f", action="store_true",
                      help="keep printing requests as they are answered (Ctrl+C stops)")
    tail.add_argument("--poll", action="store_true",
                      help="with --follow: poll the journal instead of its event stream")
    tail.add_argument("--interval", type=_interval, default=0.5,
                      help="seconds between polls (default 0.5)")
    tail.add_argument("--json", action="store_true", help="one JSON entry per line")
    tail.add_argument("--admin-token", default=None, help="default: $MOCK_SERVER_ADMIN_TOKEN")


def _journal_limit(text: str) -> int:
    if not text.isdigit() or int(text) > 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 10000")
    return int(text)


def settings_from(args: argparse.Namespace) -> Settings:
    values: dict[str, Any] = {}
    for flag, (kind, _text) in _SERVE_FLAGS.items():
        attr = flag.replace("-", "_")
        value = getattr(args, attr, None)
        if value is None:
            value = _env_default(flag, kind)
        if value is None:
            continue
        if flag in _CHOICES and value not in _CHOICES[flag]:
            raise argparse.ArgumentTypeError(
                f"{ENV_PREFIX}{attr.upper()}={value!r} must be one of "
                f"{', '.join(_CHOICES[flag])}")
        values["scenarios" if flag == "scenario" else attr] = value
    if "scenarios" in values:
        values["scenarios"] = tuple(values["scenarios"])
    if "redact" in values:
        values["redact"] = tuple(values["redact"])
    known = {f.name for f in fields(Settings)}
    return replace(Settings(), **{k: v for k, v in values.items() if k in known})


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"mock-server: error: {message}\n")
    raise SystemExit(EXIT_USAGE)


def _fail_lines(problems: Sequence[str]) -> NoReturn:
    # one line per problem, each saying what and where ("file:line: what")
    sys.stderr.writelines(f"mock-server: error: {problem}\n" for problem in problems)
    raise SystemExit(EXIT_USAGE)


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (--host / MOCK_SERVER_HOST)")
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use (--port / MOCK_SERVER_PORT)"
        elif exc.errno == errno.EACCES:
            reason = "permission denied (--port / MOCK_SERVER_PORT; below 1024 needs privileges)"
        else:
            reason = f"{exc.strerror or exc} (--host / MOCK_SERVER_HOST)"
        _fail(f"cannot listen on {host}:{port}: {reason}")
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _server_class() -> type:
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn's server, with the sandbox's way of stopping: on SIGTERM/SIGINT, stop
        accepting, let in-flight requests finish, run the shutdown hooks (pending callbacks are
        delivered or reported), all within --shutdown-timeout; then exit 0."""

        def __init__(self, config: uvicorn.Config, app: Any, grace: float) -> None:
            super().__init__(config)
            self.sandbox = app
            self.grace = grace
            self.stopped_by: str | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                self.stopped_by = signal.Signals(sig).name
                self.sandbox.shutdown_deadline = time.monotonic() + self.grace
                logging.getLogger("mock_server").info(
                    "%s received: finishing %d request(s) in flight (at most %.1fs)",
                    self.stopped_by, len(self.server_state.tasks), self.grace)
            super().handle_exit(sig, frame)

    return _Server


def _after_stop(sig: int, frame: Any) -> None:
    """uvicorn raises the signal again once it has stopped, so that the default action ends the
    process; the sandbox has shut down cleanly by then and exits 0 instead."""


def _batch_access_lines(app: Any) -> None:
    """While the server's loop runs, access lines are written once per loop iteration."""
    import asyncio

    from mock_server.logs import batch_access_lines

    async def start() -> None:
        batch_access_lines(asyncio.get_running_loop())

    async def stop() -> None:
        batch_access_lines(None)

    app.startup_hooks.append(start)
    app.shutdown_hooks.append(stop)


# file descriptors kept free for what is not a client connection (the listening socket, logs,
# scenario files, outgoing callbacks)
_SPARE_FILES = 64


def _keep_locks(app: Any) -> None:
    """A served world over a shared store keeps a session's lock for a moment after each
    request (core.world.World.commit): this server's loop runs until its shutdown, which gives
    kept locks back, so no lock is left kept by a loop that no longer runs."""
    world = getattr(app, "world", None)
    if world is not None and world.store is not None:
        from mock_server.core.world import KEEP_SECONDS

        world.keep_seconds = KEEP_SECONDS


def _guarded_protocol(settings: Settings, log: logging.Logger, base: type) -> type:
    """The HTTP protocol `base` under the sandbox's connection limits (mock_server.connections),
    after the soft open-file limit has been raised to the hard one."""
    from mock_server.connections import ConnectionGuard, raise_open_file_limit

    limits = raise_open_file_limit()
    cap = settings.max_connections
    if limits is not None:
        before, after = limits
        if after != before:
            log.debug("open-file limit raised from %d to %d", before, after)
        if after - _SPARE_FILES < cap:
            cap = max(after - _SPARE_FILES, 1)
            log.warning("the open-file limit (%d) allows %d connections, not %d "
                        "(--max-connections)", after, cap, settings.max_connections)
    guard = ConnectionGuard(cap, settings.keep_alive_timeout.total_seconds())
    return guard.protocol(base)


def _check_workers(settings: Settings) -> None:
    """--workers N > 1 needs a store the N processes share (one clear line otherwise)."""
    from mock_server.core.stores import parse_store_url

    if settings.workers > 1 and not parse_store_url(settings.store).shared:
        _fail(f"--workers {settings.workers} needs a store the processes share: with --store "
              "memory each process would hold its own sessions (use --store sqlite:PATH or "
              "--store redis://HOST:PORT/DB, or --workers 1)")


def _open_store(settings: Settings) -> Any:
    """The store to serve from (None: memory, this process only); one line when it cannot."""
    from mock_server.core.stores import (
        StoreError,
        StoreFormatError,
        open_store,
        parse_store_url,
        refuse_serving,
    )

    try:
        url = parse_store_url(settings.store)
        refuse_serving(url)
        return None if url.kind == "memory" else open_store(settings.store)
    except (StoreError, StoreFormatError) as exc:
        _fail(f"--store {settings.store}: {exc}")


def _draw_seed(settings: Settings) -> tuple[Settings, bool]:
    if settings.seed is None:
        # a run without --seed is as reproducible as one with it, once its seed is known
        return replace(settings, seed=secrets.randbelow(2**31)), True
    return settings, False


def _log_seed(log: logging.Logger, settings: Settings, drawn: bool) -> None:
    if settings.seed is None:
        return
    if drawn:
        log.info("seed %d drawn for ids and fault probabilities; replay this run with "
                 "--seed %d (or MOCK_SERVER_SEED=%d)", settings.seed, settings.seed,
                 settings.seed)
    else:
        log.info("seed %d for ids and fault probabilities (--seed)", settings.seed)


def _serve_workers(settings: Settings) -> int:
    """--workers N: the parent checks the store, draws the seed, binds the port and supervises
    N worker processes (mock_server.workers)."""
    from mock_server.logs import configure_logging
    from mock_server.workers import supervise

    configure_logging(settings.log_format, settings.log_level,
                      secrets=(settings.admin_token, settings.jwt_secret))
    log = logging.getLogger("mock_server")
    store = _open_store(settings)  # reachable, of this format: said once, by the parent
    if store is not None:
        store.close()
    settings, drawn = _draw_seed(settings)
    sockets = _worker_sockets(settings)
    _log_seed(log, settings, drawn)
    try:
        return supervise(settings, sockets)
    finally:
        for sock in sockets:
            sock.close()


def _worker_sockets(settings: Settings) -> list[socket.socket]:
    """Where Linux balances connections over several listening sockets on one port
    (SO_REUSEPORT), one for each worker: workers sharing one socket take connections as they
    win the race to accept them, and under a burst of new connections one worker takes nearly
    all (measured: 16 of 16). Elsewhere one socket, shared."""
    if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
        return [bind(settings.host, settings.port)]
    # first without SO_REUSEPORT: a port another server holds (also one of --workers, whose
    # sockets would otherwise admit ours to their group) is refused as with one process
    probe = bind(settings.host, settings.port)
    port = probe.getsockname()[1]  # --port 0: the one the probe got
    probe.close()
    return [bind(settings.host, port, reuse_port=True) for _ in range(settings.workers)]


def serve(settings: Settings, app: Any = None, *, sock: socket.socket | None = None,
          worker: tuple[int, int, Any] | None = None) -> int:
    """Serves until SIGTERM/SIGINT. `sock`: an already listening socket (a worker's, from its
    parent); `worker`: (index, count, ready) when this process is one of --workers N, `ready`
    called once it serves."""
    import uvicorn

    from mock_server.app import create_app
    from mock_server.core.scenarios import ScenarioError
    from mock_server.logs import configure_logging

    if app is None and worker is None:
        _check_workers(settings)
        if settings.workers > 1:
            return _serve_workers(settings)
    configure_logging(settings.log_format, settings.log_level,
                      secrets=(settings.admin_token, settings.jwt_secret))
    log = logging.getLogger("mock_server")
    drawn = False
    store = None
    if app is None:
        from mock_server.core.stores import StoreFormatError

        store = _open_store(settings)
        if worker is None:
            settings, drawn = _draw_seed(settings)
        try:
            app = create_app(settings) if store is None else create_app(settings, store=store)
        except ScenarioError as err:
            _fail_lines(err.problems)
        except StoreFormatError as exc:
            _fail(f"--store {settings.store}: {exc}")
    from mock_server.core import gcpolicy
    gcpolicy.install(app)
    _batch_access_lines(app)
    _keep_locks(app)
    if worker is not None:
        _announce_ready(app, worker[2])
    if sock is None:
        sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    if worker is not None:
        log.info("worker %d of %d serving (pid %d)", worker[0], worker[1], os.getpid())
    elif settings.seed is not None:
        _log_seed(log, settings, drawn)
    if worker is None:
        log.info("refund-mock-server %s listening on http://%s:%s",
                 __version__, f"[{host}]" if ":" in host else host, port)
    from mock_server.core.protocol import uvicorn_options

    # the request head is bounded while it arrives (core.protocol), under the connection limits
    options = uvicorn_options(app)
    protocol = _guarded_protocol(settings, log, options.pop("http"))
    keep_alive = settings.keep_alive_timeout.total_seconds()
    grace = settings.shutdown_timeout.total_seconds()
    # timeout_graceful_shutdown is annotated int; uvicorn hands it to asyncio.wait_for
    # proxy_headers off: nothing in the sandbox reads the client address or scheme, and uvicorn
    # would otherwise copy every request's headers into a dict to look for X-Forwarded-*
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            proxy_headers=False, http=protocol, **options,
                            timeout_keep_alive=keep_alive,  # type: ignore[arg-type]
                            log_level=settings.log_level,
                            timeout_graceful_shutdown=grace)  # type: ignore[arg-type]
    server = _server_class()(config, app, grace)
    previous = {sig: signal.signal(sig, _after_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    except SystemExit:
        # uvicorn exits 3 when a start-up hook fails, after logging why
        _fail("the sandbox did not start: a start-up hook failed (see the log above)")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if store is not None:
            store.close()
    log.info("stopped%s", f" ({server.stopped_by})" if server.stopped_by else "")
    return 0


def _announce_ready(app: Any, ready: Any) -> None:
    """A worker tells its parent it serves once its start-up hooks have run."""

    async def announce() -> None:
        ready()

    app.startup_hooks.append(announce)


def check(paths: Sequence[str], *, startup: bool = False, world: Sequence[str] = ()) -> int:
    from mock_server.commands import check_command

    # the files are checked together, so references between documents are checked too
    return check_command(paths, startup=startup, world=world)


def store_command(action: str, url: str) -> int:
    from mock_server.core.stores import StoreError, StoreFormatError, open_store, wipe_store

    try:
        if action == "wipe":
            wiped = wipe_store(url)
            sys.stdout.write(f"{url}: wiped ({wiped})\n")
            return 0
        store = open_store(url, create=False)
        try:
            sys.stdout.write(json.dumps(store.info(), indent=2, sort_keys=True) + "\n")
        finally:
            store.close()
    except (StoreError, StoreFormatError) as exc:
        _fail(str(exc))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.paths, startup=args.startup, world=args.world)
    if args.command == "store":
        return store_command(args.action, args.url)
    if args.command in ("requests", "drills", "schema"):
        from mock_server import commands as tools
        if args.command == "requests":
            return tools.requests_command(args)
        if args.command == "drills":
            return tools.drills_command(args.name, args.path)
        return tools.schema_command()
    try:
        settings = settings_from(args)
    except argparse.ArgumentTypeError as exc:
        _fail(str(exc))
    try:
        return serve(settings)
    except KeyboardInterrupt:
        # Ctrl+C before the server was up: nothing was in flight, nothing to report
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
