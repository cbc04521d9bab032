"""The import rule of docs/architecture.md ("Layers"), checked on the source: every import of
every module of mock_server, also those under `if TYPE_CHECKING:` and inside functions, read
with `ast` (nothing is imported to check it)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import mock_server

PACKAGE = Path(mock_server.__file__).resolve().parent

# lowest first: a module imports modules of its own layer or below, never above
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("mock_server", "mock_server.settings", "mock_server.resources",
                    "mock_server.logs", "mock_server.connections", "mock_server.healthcheck",
                    "mock_server.verify", "mock_server.schemas", "mock_server.workers")),
    ("core", ("mock_server.core",)),
    ("provider", ("mock_server.afterpay", "mock_server.optty")),
    # the built-in providers' list (the one registry entry a new provider adds)
    ("registry", ("mock_server.providers",)),
    ("admin", ("mock_server.admin",)),
    ("app", ("mock_server.app",)),
    ("entry", ("mock_server.__main__", "mock_server.cli", "mock_server.commands",
               "mock_server.client", "mock_server.testing", "mock_server.pytest_plugin",
               "mock_server.worker")),
)
# packages of one layer that must not import each other (a provider knows no other provider)
SEALED = ("mock_server.afterpay", "mock_server.optty")
# layers above the providers that still name none of them
BLIND = ("mock_server.admin",)


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module under `root` (the package directory of `package`) by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The project modules `name` imports anywhere in its source (module level, functions,
    `if TYPE_CHECKING:` blocks alike)."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known
                       else origin for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` names a.b.c; keep the longest project module it names
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = PACKAGE, package: str = "mock_server") -> dict[str, set[str]]:
    files = module_files(root, package)
    return {name: imports_of(name, path, files) for name, path in files.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:
        # iterative Tarjan: the graph's depth is not bounded by the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_one_cycle(graph, set(group), group[0]) for group in groups]


def _one_cycle(graph: Mapping[str, set[str]], group: set[str], start: str) -> list[str]:
    """The shortest path start -> ... -> start inside `group`."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & group):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")  # pragma: no cover - Tarjan says it is


def layer_of(name: str) -> tuple[int, str]:
    """(rank, the LAYERS prefix that names it), the longest prefix winning."""
    best: tuple[int, str] | None = None
    for rank, (_layer, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # the root package names itself only, not every module under it
            inside = name.startswith(prefix + ".") and prefix != "mock_server"
            if (name == prefix or inside) and (best is None or len(prefix) > len(best[1])):
                best = (rank, prefix)
    if best is None:
        raise LookupError(name)
    return best


def violations(graph: Mapping[str, set[str]]) -> list[str]:
    found: list[str] = []
    for name in sorted(graph):
        try:
            rank, prefix = layer_of(name)
        except LookupError:
            found.append(f"{name} is in no layer (add it to LAYERS in tests/unit/test_layers.py)")
            continue
        for target in sorted(graph[name]):
            try:
                target_rank, target_prefix = layer_of(target)
            except LookupError:
                continue  # reported as a module of its own
            if target_rank > rank:
                found.append(f"{name} ({LAYERS[rank][0]}) imports {target} "
                             f"({LAYERS[target_rank][0]}, a layer above)")
            elif (target_rank == rank and prefix in SEALED and target_prefix in SEALED
                  and prefix != target_prefix):
                found.append(f"{name} imports {target}: a provider imports no other provider")
            elif prefix in BLIND and target_prefix in SEALED:
                found.append(f"{name} imports {target}: the admin surface imports no provider "
                             "(a provider hands it its admin operations: Built.admin)")
    return found


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_every_import_goes_down_the_layers() -> None:
    found = violations(import_graph())
    assert not found, "imports against docs/architecture.md's layers:\n" + "\n".join(found)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # a type-only import, a function-level import, `from package import module`
    assert "mock_server.core.host" in graph["mock_server.optty.routes"]
    assert "mock_server.admin.routes" in graph["mock_server.app"]
    assert "mock_server.core.pipeline" in graph["mock_server.app"]


# --- the checker itself, on small made-up packages ---------------------------------------------

def _package(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "mock_server"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_type_only_cycle_is_named(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "core/__init__.py": "",
        "core/a.py": "from mock_server.core import b\n",
        "core/b.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from mock_server.core.c import C\n"),
        "core/c.py": "def f():\n    from . import a\n",
    })
    assert cycles(import_graph(root)) == [
        ["mock_server.core.a", "mock_server.core.b", "mock_server.core.c", "mock_server.core.a"]]


def test_core_importing_the_app_and_providers_importing_each_other_are_refused(
        tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "app.py": "",
        "core/__init__.py": "",
        "core/watch.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from mock_server.app import SandboxApp\n"),
        "afterpay/__init__.py": "",
        "afterpay/routes.py": "import mock_server.optty.models\n",
        "optty/__init__.py": "",
        "optty/models.py": "from ..core import watch\n",
    })
    graph = import_graph(root)
    assert violations(graph) == [
        "mock_server.afterpay.routes imports mock_server.optty.models: a provider imports no "
        "other provider",
        "mock_server.core.watch (core) imports mock_server.app (app, a layer above)",
    ]
    assert not cycles(graph)


def test_a_module_outside_the_layers_is_reported(tmp_path: Path) -> None:
    root = _package(tmp_path, {"extra.py": "import mock_server.settings\n", "settings.py": ""})
    assert violations(import_graph(root)) == [
        "mock_server.extra is in no layer (add it to LAYERS in tests/unit/test_layers.py)"]


@pytest.mark.parametrize("name,expected", [("mock_server.core.http", "core"),
                                           ("mock_server.optty", "provider"),
                                           ("mock_server", "foundation"),
                                           ("mock_server.cli", "entry")])
def test_layer_names(name: str, expected: str) -> None:
    assert LAYERS[layer_of(name)[0]][0] == expected
