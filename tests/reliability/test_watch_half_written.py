"""`--watch` and a file being written: only a complete document that parses and validates is
ever loaded, never part of one."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from mock_server.app import create_app
from mock_server.core import watch
from mock_server.core.watch import ScenarioWatcher
from mock_server.resources import default_scenario_path
from mock_server.settings import Settings
from tests.conftest import ManualTime

RULES = 40


def rules_text(count: int) -> str:
    return "name: drills\nfaults:\n" + "".join(
        f"  - {{name: r{i}, match: {{path: /v2/r{i}}}, respond: {{status: 503}}}}\n"
        for i in range(count))


def bump(path: Path) -> None:
    """Moves the mtime on, as a clock a second later would."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


_probes = itertools.count()


def rule_counts(app: Any) -> int:
    """The fault rules a new session gets."""
    return sum(len(s.faults) for s in app.world.session(f"probe-{next(_probes)}").scenarios)


def test_a_file_written_in_pieces_is_loaded_only_whole(tmp_path: Path) -> None:
    drill = tmp_path / "drills.yaml"
    drill.write_text(rules_text(1))
    paths = (str(default_scenario_path()), str(drill))
    app = create_app(Settings(seed=7, scenarios=paths), time_source=ManualTime())
    watcher = ScenarioWatcher(app.world, paths)
    full = rules_text(RULES)
    seen: list[int] = []
    # a writer that flushes 21 rules, then the rest; every piece is valid YAML on its own
    cut = full.index("  - {name: r21,")
    with drill.open("w") as file:
        file.write(full[:cut])
        file.flush()
        bump(drill)
        watcher.poll()
        seen.append(rule_counts(app))
        file.write(full[cut:])
    bump(drill)
    for _ in range(3):
        watcher.poll()
        seen.append(rule_counts(app))
    assert seen == [1, 1, RULES, RULES]


def test_a_file_changed_while_it_is_read_is_read_again_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drill = tmp_path / "drills.yaml"
    drill.write_text(rules_text(1))
    paths = (str(default_scenario_path()), str(drill))
    app = create_app(Settings(seed=7, scenarios=paths), time_source=ManualTime())
    watcher = ScenarioWatcher(app.world, paths)
    drill.write_text(rules_text(21))
    bump(drill)
    assert watcher.poll() is False  # seen once: left to settle
    real_read = watch.read_regular_file
    writes = [rules_text(RULES)]

    def read_while_written(source: str) -> bytes:
        data = real_read(source)
        if writes:  # the writer goes on after the read began
            drill.write_text(writes.pop())
            bump(drill)
        return data

    monkeypatch.setattr(watch, "read_regular_file", read_while_written)
    assert watcher.poll() is False  # what was read is already stale: not loaded
    assert rule_counts(app) == 1
    assert watcher.poll() is True
    assert rule_counts(app) == RULES
