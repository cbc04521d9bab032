"""`mock-server store info|wipe URL` and `serve --store`: what a store holds, forgetting it (also
one of an incompatible format), and a serve that refuses, in one line, a store that cannot hold
all the session state yet."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from mock_server import cli
from mock_server.app import create_app
from mock_server.core.ledger import RefundEntry
from mock_server.core.ledger_codec import FORMAT_VERSION
from mock_server.core.stores import open_store
from mock_server.settings import Settings

KEY = ("afterpay", "100101382", "100101785223")


def _filled(path: Path) -> str:
    url = f"sqlite:{path}"
    store = open_store(url)
    ledger = store.ledger("s1")
    ledger.open(KEY, "AUD", Decimal("10"))
    ledger.refund(KEY, RefundEntry("1", Decimal("1"), datetime(2026, 1, 1, tzinfo=UTC)))
    store.callbacks("s2").push("cb", b"{}", 0.0)
    store.close()
    return url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_info_then_wipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _filled(tmp_path / "s.db")
    code, out, _ = _run(capsys, "store", "info", url)
    info = json.loads(out)
    assert code == 0 and info["store"] == "sqlite" and info["format"] == FORMAT_VERSION
    assert info["sessions"]["s1"]["refunds"] == 1
    assert info["sessions"]["s2"]["pendingCallbacks"] == 1
    code, out, _ = _run(capsys, "store", "wipe", url)
    assert code == 0 and out == f"{url}: wiped (2 session(s))\n"
    assert json.loads(_run(capsys, "store", "info", url)[1])["sessions"] == {}


def test_an_incompatible_format_is_refused_in_one_line_and_can_be_wiped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.db"
    url = _filled(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE name = 'format'")
    db.commit()
    db.close()
    code, out, err = _run(capsys, "store", "info", url)
    assert code == cli.EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and "format 99" in err and "store wipe" in err
    code, out, _ = _run(capsys, "store", "wipe", url)
    assert code == 0 and "another format" in out
    code, out, _ = _run(capsys, "store", "info", url)
    assert code == 0 and json.loads(out)["sessions"] == {}


@pytest.mark.parametrize(("argv", "expected"), [
    (["store", "info", "postgres://x"], "is not a store"),
    (["store", "info", "sqlite:/nonexistent/dir/x.db"], "no such store file"),
    (["store", "wipe", "memory"], "serving process"),
])
def test_bad_store_urls_get_one_line(argv: list[str], expected: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == cli.EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err


def test_serve_refuses_a_store_of_another_format_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('format', '0')")
    db.commit()
    db.close()
    code, _, err = _run(capsys, "serve", "--port", "0", "--store", f"sqlite:{path}")
    assert code == cli.EXIT_USAGE and err.count("\n") == 1 and "Traceback" not in err
    assert "format 0" in err and "store wipe" in err


def test_an_app_serves_from_a_file_store(tmp_path: Path) -> None:
    app = create_app(Settings(), store=open_store(f"sqlite:{tmp_path / 'y.db'}"))
    assert app.world.shared
    assert not create_app(Settings(), store=open_store("memory")).world.shared


def test_the_store_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_SERVER_STORE", "redis://127.0.0.1:1/0")
    assert cli.settings_from(cli.build_parser().parse_args(["serve"])).store == \
        "redis://127.0.0.1:1/0"
    monkeypatch.setenv("MOCK_SERVER_STORE", "nonsense")
    with pytest.raises(Exception, match="is not a store"):
        cli.settings_from(cli.build_parser().parse_args(["serve"]))
