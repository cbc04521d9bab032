"""Where the bundled specs, default world and schemas live, installed or in the source tree."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # An installed wheel carries openapi/ and scenarios/ inside the package (see pyproject's
    # package-dir); a source checkout or an editable install keeps them at the repository top.
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


def spec_path(name: str) -> Path:
    return _data_dir("openapi") / f"{name}.yaml"


def default_scenario_path() -> Path:
    return _data_dir("scenarios") / "default.yaml"


def schema_path(name: str) -> Path:
    return _PACKAGE / "schemas" / name
