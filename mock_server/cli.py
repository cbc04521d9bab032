"""The `mock-server` command: `serve` the sandbox, `check` scenario files."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import timedelta
from typing import Any, NoReturn

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


def _public_url(text: str) -> str:
    from urllib.parse import urlsplit
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query \
            or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) base URL (e.g. http://sandbox.test:8080)")
    return text.strip().rstrip("/")


# flag -> (type, help); each is also read from MOCK_SERVER_<FLAG>
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
    "shutdown-timeout": (_duration, "on SIGTERM/SIGINT, how long in-flight requests and pending "
                                    "callbacks get to finish (default 5s)"),
    "public-url": (_public_url, "base URL browsers reach the sandbox at, for the shopper "
                                "pages in redirect URLs (default: the request's Host)"),
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
        elif flag == "scenario":
            serve.add_argument(f"--{flag}", action="append", default=None, metavar="PATH",
                               help=text)
        else:
            serve.add_argument(f"--{flag}", type=kind, default=None, help=text,
                               choices=_CHOICES.get(flag))
    check = commands.add_parser("check", help="validate scenario files; exit 1 on a bad one")
    check.add_argument("paths", nargs="+", metavar="PATH")
    return parser


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
    known = {f.name for f in fields(Settings)}
    return replace(Settings(), **{k: v for k, v in values.items() if k in known})


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"mock-server: error: {message}\n")
    raise SystemExit(EXIT_USAGE)


def _fail_lines(problems: Sequence[str]) -> NoReturn:
    # one line per problem, each saying what and where ("file:line: what")
    sys.stderr.writelines(f"mock-server: error: {problem}\n" for problem in problems)
    raise SystemExit(EXIT_USAGE)


def bind(host: str, port: int) -> socket.socket:
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (--host / MOCK_SERVER_HOST)")
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


def serve(settings: Settings, app: Any = None) -> int:
    import uvicorn

    from mock_server.app import create_app
    from mock_server.core.scenarios import ScenarioError
    from mock_server.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level,
                      secrets=(settings.admin_token, settings.jwt_secret))
    log = logging.getLogger("mock_server")
    if app is None:
        try:
            app = create_app(settings)
        except ScenarioError as err:
            _fail_lines(err.problems)
    from mock_server.core import gcpolicy
    gcpolicy.install(app)
    _batch_access_lines(app)
    sock = bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    log.info("refund-mock-server %s listening on http://%s:%s",
             __version__, f"[{host}]" if ":" in host else host, port)
    grace = settings.shutdown_timeout.total_seconds()
    # timeout_graceful_shutdown is annotated int; uvicorn hands it to asyncio.wait_for
    # proxy_headers off: nothing in the sandbox reads the client address or scheme, and uvicorn
    # would otherwise copy every request's headers into a dict to look for X-Forwarded-*
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                            proxy_headers=False,
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
    log.info("stopped%s", f" ({server.stopped_by})" if server.stopped_by else "")
    return 0


def check(paths: Sequence[str]) -> int:
    from mock_server.app import create_app
    from mock_server.core.scenarios import ScenarioError
    from mock_server.settings import Settings as _Settings

    try:
        # build the world these files describe, so references between documents are checked too
        app = create_app(_Settings(scenarios=tuple(paths)))
    except ScenarioError as err:
        sys.stdout.write(str(err) + "\n")
        return EXIT_BAD_FILE
    for loaded in app.world.session("default").scenarios:
        sys.stdout.write(f"{loaded.scenario.source}: ok ({loaded.scenario.name})\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.paths)
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
