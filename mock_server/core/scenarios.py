"""Scenario documents: YAML or JSON, parsed with every node's line, validated, ready to apply."""

from __future__ import annotations

import difflib
import errno
import importlib
import json
import os
import re
import stat
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, Protocol

import yaml
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from mock_server.core.money import parse_amount

NodePath = tuple[str | int, ...]

FAULT_NAMES: frozenset[str] = frozenset(
    {"connection_reset", "empty_response", "malformed_body", "truncated_body", "slow_body"})

SCENARIO_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")


class ScenarioError(Exception):
    """A scenario document (or several) that cannot be used; one "SOURCE:LINE: what" per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))

    def __reduce__(self) -> tuple[type[ScenarioError], tuple[list[str]]]:
        # Exception pickles its args, i.e. the joined text, which would come back as a list of
        # characters; keep the problems whole for multiprocessing and test runners.
        return (ScenarioError, (self.problems,))


@dataclass(frozen=True)
class Scenario:
    name: str
    source: str
    document: dict[str, Any]
    lines: Mapping[NodePath, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, *path: str | int) -> int:
        """The line the node at path was written on, else its nearest parent's, else 1."""
        return _line_of(self.lines, path)

    def problem(self, path: tuple[str | int, ...], message: str) -> str:
        return f"{self.source}:{self.line_of(*path)}: {message}"


def parse_duration(text: str) -> timedelta:
    """Reads "250ms", "2s", "75s", "1m", "1h", "1d" (decimals allowed: "1.5s")."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 250ms, 2s, 1m, 1h or 1d)")
    unit = match.group(2)
    number = float(text[: match.start(2)])
    try:
        return timedelta(**{_DURATION_UNITS[unit]: number})
    except OverflowError as exc:
        raise ValueError(f"duration too long: {text!r}") from exc


def format_path(path: Sequence[str | int]) -> str:
    """A node's path as problems show it: shop.items[0].amount, body["a.b"]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def parse_scenario(text: str | bytes, source: str = "<request>", *,
                   error_codes: Mapping[str, Collection[str]] | None = None,
                   registry: ScenarioRegistry | None = None) -> Scenario:
    """Parses and validates one document; raises ScenarioError listing every problem, by line.

    The schema and the seed rules are the registry's (default: the built-in providers)."""
    registry = registry if registry is not None else _default_registry()
    builder = _Builder(source, registry)
    document = builder.parse(text)
    lines = builder.lines
    found: list[tuple[NodePath, str]] = list(_schema_problems(document, registry))
    found.extend(SeedChecks(document, lines, error_codes, registry).run())
    problems = list(builder.problems)
    problems.extend((_line_of(lines, path), message) for path, message in found)
    if problems:
        unique = list(dict.fromkeys(problems))
        unique.sort(key=lambda problem: problem[0])
        raise ScenarioError([f"{source}:{line}: {message}" for line, message in unique])
    name = document.get("name")
    return Scenario(name if isinstance(name, str) else _default_name(source), source, document,
                    lines)


def load_scenario_paths(paths: Sequence[str | os.PathLike[str]], *,
                        error_codes: Mapping[str, Collection[str]] | None = None,
                        registry: ScenarioRegistry | None = None) -> list[Scenario]:
    """Loads files and directories (their *.yaml, *.yml, *.json, recursively, by path) in order.

    Every file is read and checked before anything is refused, so one ScenarioError lists the
    problems of all of them.
    """
    scenarios: list[Scenario] = []
    problems: list[str] = []
    for given in paths:
        for source in _scenario_files(os.fspath(given), problems):
            try:
                data = read_regular_file(source)
            except OSError as exc:
                problems.append(f"{source}:1: cannot read: {exc.strerror or exc}")
                continue
            try:
                scenarios.append(parse_scenario(data, source, error_codes=error_codes,
                                                registry=registry))
            except ScenarioError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ScenarioError(problems)
    return scenarios


_NOT_REGULAR = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_regular_file(path: str) -> bytes:
    """The bytes of a regular file. Anything else (a FIFO, a device) is refused with an OSError
    saying what it is, without waiting for a writer or reading an endless stream: it is opened
    without blocking and looked at before a byte is read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a file")
            raise OSError(errno.EINVAL, f"not a regular file or a directory: {kind}", path)
        with os.fdopen(fd, "rb") as file:
            fd = -1
            return file.read()
    finally:
        if fd >= 0:
            os.close(fd)


# --- reading YAML with lines ------------------------------------------------------------------

_YAML_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_YAML_BASE_LOADER):  # type: ignore[misc,unused-ignore]
    # Plain scalars are resolved the YAML 1.2 / JSON way: no yes/no/on/off booleans, no octal or
    # sexagesimal numbers, no implicit timestamps (created: 2026-09-01T10:00:00Z stays a string),
    # and no .inf/.nan, which JSON cannot carry.
    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


for _tag, _regexp, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?[0-9]+$", "-+0123456789"),
    ("float", r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$", "-+.0123456789"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^<<$", "<"),
):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_regexp), list(_first))

_STR, _NULL, _BOOL, _INT, _FLOAT, _MERGE = (
    f"tag:yaml.org,2002:{name}" for name in ("str", "null", "bool", "int", "float", "merge"))

# Inside a provider's section the fields it names (ScenarioRules.text_fields), and the scenario's
# and faults' names, are text even when written as a bare number, exactly as written:
# `amount: 120.00` is "120.00" (a float would print 120.0), an id `100101382` is "100101382".

# Bounds what aliases may expand to ("billion laughs"): POST /__admin/scenarios takes documents
# from anyone who can reach the port.
_MAX_ALIAS_VALUES = 100_000
# Bounds how deeply collections may nest. libyaml's composer recurses in C, so a deep enough
# document ("[" * 30000) overflows the stack and kills the process, and its parser slows down
# quadratically with depth; a scenario needs a handful of levels.
_MAX_DEPTH = 64
_OPENS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSES = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


_OPENS_JSON = re.compile(r"\s*\{\s*(\"|\}|$)")


class _TooLarge(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _Builder:
    """Builds plain Python values from yaml's node tree, recording each node's line by path."""

    def __init__(self, source: str, registry: ScenarioRegistry | None = None) -> None:
        self.source = source
        self.registry = registry if registry is not None else _default_registry()
        self.lines: dict[NodePath, int] = {}
        self.problems: list[tuple[int, str]] = []
        self._built: set[int] = set()
        self._builds = 0
        self._active: set[int] = set()

    def parse(self, text: str | bytes) -> dict[str, Any]:
        self._check_json(text)
        try:
            self._check_depth(text)
            root = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            if "nesting depth" in (exc.problem or ""):
                # libyaml's scanner (PyYAML >= 6.0.4) has a depth limit of its own and may meet
                # it before _check_depth sees the parser's events: the same refusal, our words
                self._fail(line, "the document is nested too deeply")
            what = ", ".join(part for part in (exc.context, exc.problem) if part)
            self._fail(line, f"invalid YAML: {what}")
        except yaml.reader.ReaderError as exc:
            before = text[: exc.position]
            line = (before.count(b"\n") if isinstance(before, bytes) else before.count("\n")) + 1
            self._fail(line, f"invalid YAML: {exc.reason}")
        except RecursionError:
            self._fail(1, "the document is nested too deeply")
        except yaml.YAMLError as exc:
            self._fail(1, f"invalid YAML: {' '.join(str(exc).split())}")
        if not isinstance(root, yaml.MappingNode):
            self._fail(1, "a scenario document must be a mapping")
        self.lines[()] = _line(root)
        try:
            document = self._build(root, ())
        except _TooLarge as exc:
            self._fail(exc.line, f"aliases expand to more than {_MAX_ALIAS_VALUES} values")
        except RecursionError:
            self._fail(1, "the document is nested too deeply")
        assert isinstance(document, dict)
        return document

    def _check_json(self, text: str | bytes) -> None:
        """A JSON document (a .json file, or text that opens with `{"`) with a syntax error is
        reported as JSON, at JSON's line and column: YAML would misread most of those errors
        (a trailing comma, a missing quote) or place them elsewhere. Valid JSON goes on to be
        read as YAML (a superset), which records each value's line."""
        head = text[:64]
        if isinstance(head, bytes):
            head = head.decode("utf-8", errors="replace")
        # `{"` opens JSON; `{a: 1}` is a YAML flow mapping, read as YAML
        opens_json = _OPENS_JSON.match(head) is not None
        if not (opens_json or self.source.lower().endswith(".json")):
            return
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            self._fail(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
        except (ValueError, RecursionError):
            return  # not UTF-8, or nested too deeply: the YAML reader says which, and where

    def _check_depth(self, text: str | bytes) -> None:
        """Walks the parser's events (iterative, unlike the composer) and stops at the first
        collection nested deeper than _MAX_DEPTH, before any deep recursion can happen."""
        depth = 0
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, _OPENS):
                depth += 1
                if depth > _MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else 1
                    self._fail(line,
                               f"the document is nested too deeply (more than {_MAX_DEPTH} "
                               "levels)")
            elif isinstance(event, _CLOSES):
                depth -= 1

    def _fail(self, line: int, message: str) -> NoReturn:
        raise ScenarioError([f"{self.source}:{line}: {message}"])

    def _problem(self, node: yaml.Node, path: NodePath, message: str) -> None:
        where = format_path(path)
        self.problems.append((_line(node), f"{where}: {message}" if where else message))

    def _build(self, node: yaml.Node, path: NodePath) -> Any:
        key = id(node)
        if key in self._active:
            where = format_path(path)
            self.problems.append((_line_of(self.lines, path),
                                  f"{where}: an alias refers to the node that contains it"))
            return None
        self._builds += 1
        self._built.add(key)
        if self._builds - len(self._built) > _MAX_ALIAS_VALUES:
            # an alias carries no line of its own (yaml hands back the anchored node), so blame
            # the top-level field being built
            raise _TooLarge(_line_of(self.lines, path[:1]))
        self._active.add(key)
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                items = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = _line(item)
                    items.append(self._build(item, (*path, index)))
                return items
            assert isinstance(node, yaml.ScalarNode)
            return self._scalar(node, path)
        finally:
            self._active.discard(key)

    def _mapping(self, node: yaml.MappingNode, path: NodePath) -> dict[str, Any]:
        # Later pairs win; merged ("<<") pairs come first so the mapping's own keys override them.
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                pairs.extend(self._merged(value_node, path))
            else:
                own.append((key_node, value_node))
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in own:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, path, "a mapping key must be a string")
                continue
            first = seen.setdefault(key_node.value, key_node)
            if first is not key_node:
                self._problem(key_node, path, f"duplicate key {key_node.value!r} "
                                              f"(first at line {_line(first)})")
        chosen: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in [*pairs, *own]:
            if isinstance(key_node, yaml.ScalarNode):
                chosen[key_node.value] = (key_node, value_node)
        result: dict[str, Any] = {}
        for name, (key_node, value_node) in chosen.items():
            self.lines[(*path, name)] = _line(key_node)
            result[name] = self._build(value_node, (*path, name))
        return result

    def _merged(self, node: yaml.Node, path: NodePath) -> list[tuple[yaml.Node, yaml.Node]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        # In a list of merged mappings the earlier ones win, hence reversed (later pairs win).
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self._problem(node, path, "'<<' needs a mapping or a list of mappings")
                return []
            for key_node, value_node in source.value:
                if key_node.tag == _MERGE:
                    pairs.extend(self._merged(value_node, path))
                else:
                    pairs.append((key_node, value_node))
        return pairs

    def _scalar(self, node: yaml.ScalarNode, path: NodePath) -> Any:
        text: str = node.value
        tag = node.tag
        if tag == _STR:
            return text
        if tag in (_INT, _FLOAT) and not node.style and _keeps_text(path, self.registry):
            return text
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return {"true": True, "false": False}[text.lower()]
            if tag == _INT:
                return int(text)
            if tag == _FLOAT:
                return float(text)
        except (KeyError, ValueError):
            self._problem(node, path, f"{text!r} cannot be read as {tag}")
            return text
        self._problem(node, path, f"unsupported YAML tag {tag!r}")
        return text


def _keeps_text(path: NodePath, registry: ScenarioRegistry) -> bool:
    if path[-1] == "name":
        return len(path) == 1 or (len(path) == 3 and path[0] == "faults")
    return len(path) > 1 and path[0] in registry.names and path[-1] in registry.text_fields


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _line_of(lines: Mapping[NodePath, int], path: Sequence[str | int]) -> int:
    key = tuple(path)
    while True:
        line = lines.get(key)
        if line is not None:
            return line
        if not key:
            return 1
        key = key[:-1]


def _default_name(source: str) -> str:
    if source.startswith("<") and source.endswith(">"):
        return "scenario"
    return Path(source).stem or "scenario"


def scenario_files(source: str | os.PathLike[str]) -> list[str]:
    """The scenario files a path names: itself, or a directory's, in load order."""
    return _scenario_files(os.fspath(source), [])


def _scenario_files(source: str, problems: list[str]) -> list[str]:
    if not os.path.isdir(source):
        return [source]

    def unreadable(exc: OSError) -> None:
        problems.append(f"{exc.filename}:1: cannot read: {exc.strerror or exc}")

    found: list[tuple[tuple[str, ...], str]] = []
    for folder, subfolders, files in os.walk(source, onerror=unreadable):
        # hidden folders and files: .git, editor lock and swap files
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(SCENARIO_SUFFIXES):
                path = os.path.join(folder, name)
                found.append((Path(os.path.relpath(path, source)).parts, path))
    if not found and os.access(source, os.R_OK):
        # most likely a wrong directory; an empty world would fail later and less clearly
        problems.append(f"{source}:1: no scenario files (*.yaml, *.yml, *.json) in this directory")
    return [path for _, path in sorted(found)]


# --- validation -------------------------------------------------------------------------------

# the module whose `registry()` is the built-in list, used where no registry is given (a
# scenario read by `mock-server check`, `parse_scenario(text)`); named here once, imported late
DEFAULT_REGISTRY_MODULE = "mock_server.providers"


@dataclass(frozen=True)
class ScenarioRules:
    """What a scenario's section of this provider must satisfy beyond its schema fragment.

    text_fields: fields read as the text they were written with (`amount: 120.00` is "120.00").
    unique: (list, key, what): no two items of `section.list` share `key`.
    unique_refunds: (list, key, scope): refunds' `key` is unique across `section.list[*].refunds`
    within the scope the function returns for their owner.
    money: the rules on amounts (captured within the amount, refunds within what was captured).
    """

    text_fields: frozenset[str] = frozenset()
    unique: tuple[tuple[str, str, str], ...] = ()
    unique_refunds: tuple[tuple[str, str, Callable[[dict[str, Any]], object]], ...] = ()
    money: Callable[[SeedChecks, str, dict[str, Any]], Iterator[tuple[NodePath, str]]] | None = None

class ScenarioProvider(Protocol):
    """What the reader needs of one provider (core.providers.Provider has more)."""

    @property
    def name(self) -> str: ...

    @property
    def scenario_rules(self) -> ScenarioRules: ...


class ScenarioRegistry(Protocol):
    """What the reader needs of a registry: the composed schema, the provider sections and
    their rules (core.providers.Registry, built above this module, is one)."""

    @property
    def providers(self) -> Sequence[ScenarioProvider]: ...

    @property
    def names(self) -> Any: ...

    @property
    def text_fields(self) -> frozenset[str]: ...

    @property
    def scenario_schema(self) -> dict[str, Any]: ...


_default: ScenarioRegistry | None = None


def default_registry() -> ScenarioRegistry:
    """The built-in providers (`mock_server.providers.registry()`), loaded on first use by the
    module's name: the list of built-in providers sits above core, which never imports it."""
    global _default
    if _default is None:
        _default = importlib.import_module(DEFAULT_REGISTRY_MODULE).registry()
    return _default


def _default_registry() -> ScenarioRegistry:
    return default_registry()


_BASE_SCHEMA: dict[str, Any] = json.loads(
    (resources.files("mock_server.core") / "scenario.base.schema.json").read_text("utf-8"))

_DURATION = re.compile(_BASE_SCHEMA["$defs"]["duration"]["pattern"])
_DURATION_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours",
                   "d": "days"}
_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)  # type: ignore[untyped-decorator]
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        raise ValueError("is not an ISO 8601 date-time with Z or an offset "
                         "(e.g. 2026-09-01T10:00:00Z)")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"is not a valid date-time ({exc})") from exc
    return True


def _is_integer(checker: Any, instance: object) -> bool:
    # jsonschema counts 2.0 as an integer; `times: 2.0` would reach the fault engine as a float
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = validators.extend(  # type: ignore[no-untyped-call,unused-ignore]
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer))
_VALIDATORS: weakref.WeakKeyDictionary[ScenarioRegistry, Any] = weakref.WeakKeyDictionary()


def _validator(registry: ScenarioRegistry) -> Any:
    """One validator per registry (its composed schema), built on first use."""
    validator = _VALIDATORS.get(registry)
    if validator is None:
        validator = _Validator(registry.scenario_schema, format_checker=_FORMATS)
        _VALIDATORS[registry] = validator
    return validator

_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "object": "a mapping", "array": "a list",
               "null": "null"}


def _schema_problems(document: dict[str, Any],
                     registry: ScenarioRegistry) -> Iterator[tuple[NodePath, str]]:
    for error in _validator(registry).iter_errors(document):
        yield from _explain(error)


def _explain(error: ValidationError) -> Iterator[tuple[NodePath, str]]:
    """Rephrases one jsonschema error for a person; yields (path of the node to blame, message)."""
    path: NodePath = tuple(error.absolute_path)
    where = format_path(path)
    keyword = error.validator
    value: Any = error.validator_value
    schema: Any = error.schema if isinstance(error.schema, dict) else {}
    instance: Any = error.instance

    def said(message: str, at: NodePath = path) -> tuple[NodePath, str]:
        return at, f"{where}: {message}" if where else message

    if "propertyNames" in error.absolute_schema_path:
        # the failing instance is a key of the mapping at path; blame that key's line
        yield said(f"{_show(instance)} is not {schema.get('x-expected', 'a valid name')}",
                   (*path, str(instance)))
    elif keyword == "additionalProperties" and value is False and isinstance(instance, dict):
        known = list(schema.get("properties", {}))
        patterns = [re.compile(pattern) for pattern in schema.get("patternProperties", {})]
        for extra in instance:
            if extra not in known and not any(pattern.search(extra) for pattern in patterns):
                hint = difflib.get_close_matches(extra, known, n=1, cutoff=0.7)
                yield said(f"unknown field {extra!r}"
                           + (f" (did you mean {hint[0]!r}?)" if hint else ""), (*path, extra))
    elif keyword == "required" and isinstance(instance, dict):
        for name in value:
            if name not in instance:
                yield said(f"missing required field {name!r}")
    elif keyword in ("type", "pattern") and "x-expected" in schema:
        yield said(f"{_show(instance)} is not {schema['x-expected']}")
    elif keyword == "type":
        wanted = [value] if isinstance(value, str) else list(value)
        names = [_TYPE_NAMES.get(name, name) for name in wanted]
        expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        yield said(f"must be {expected}, not {_show(instance)}")
    elif keyword == "enum":
        known_values = ", ".join(sorted(str(each) for each in value))
        if "x-noun" in schema:
            yield said(f"unknown {schema['x-noun']} {_show(instance)} (known: {known_values})")
        else:
            yield said(f"{_show(instance)} is not one of: {known_values}")
    elif keyword == "format" and error.cause is not None:
        yield said(f"{_show(instance)} {error.cause}")
    elif keyword == "minLength":
        yield said("must not be empty" if value == 1 else f"must be at least {value} characters")
    elif keyword == "maxLength":
        yield said(f"must be at most {value} characters, not {len(instance)}")
    elif keyword == "minimum":
        yield said(f"must be at least {value}, not {_show(instance)}")
    elif keyword == "maximum":
        yield said(f"must be at most {value}, not {_show(instance)}")
    elif keyword == "exclusiveMinimum":
        yield said(f"must be more than {value}, not {_show(instance)}")
    elif keyword == "uniqueItems" and isinstance(instance, list):
        repeated = next(each for index, each in enumerate(instance) if each in instance[:index])
        yield said(f"lists {_show(repeated)} more than once")
    elif "x-message" in schema:
        yield said(schema["x-message"])
    else:
        yield said(error.message)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    return repr(value)


# --- checks the schema cannot express ---------------------------------------------------------

class SeedChecks:
    """Uniqueness, money that adds up, error codes; tolerant of shapes the schema refused.

    The providers' rules come from the registry (ScenarioRules); a provider's `money` rule is
    given this object and may use `refunds_within` and the module's `items` / `money` / `text`.
    """

    def __init__(self, document: dict[str, Any], lines: Mapping[NodePath, int],
                 error_codes: Mapping[str, Collection[str]] | None,
                 registry: ScenarioRegistry | None = None) -> None:
        self.document = document
        self.lines = lines
        self.error_codes = error_codes
        self.registry = registry if registry is not None else _default_registry()

    def run(self) -> Iterator[tuple[NodePath, str]]:
        providers = self.registry.providers
        faults = _items(self.document.get("faults"))
        for provider in providers:
            rules = provider.scenario_rules
            for section, key, what in rules.unique:
                yield from self._unique((provider.name, section), key, what)
            for section, key, scope in rules.unique_refunds:
                yield from self._unique_refunds((provider.name, section), key, scope)
        yield from self._unique(("faults",), "name", "fault name")
        for provider in providers:
            money_rule = provider.scenario_rules.money
            if money_rule is not None:
                yield from money_rule(self, provider.name,
                                      _mapping(self.document.get(provider.name)))
        for index, rule in faults:
            yield from self._fault(("faults", index), rule)

    def _unique(self, section: NodePath, key: str, what: str) -> Iterator[tuple[NodePath, str]]:
        first: dict[str, NodePath] = {}
        for index, item in _items(_at(self.document, section)):
            value = item.get(key)
            if not isinstance(value, str):
                continue
            here = (*section, index, key)
            if value in first:
                yield here, (f"{format_path(here)}: duplicate {what} {value!r} "
                             f"(first at line {_line_of(self.lines, first[value])})")
            else:
                first[value] = here

    def _unique_refunds(self, section: NodePath, key: str,
                        scope: Callable[[dict[str, Any]], object],
                        ) -> Iterator[tuple[NodePath, str]]:
        first: dict[tuple[object, str], NodePath] = {}
        for index, owner in _items(_at(self.document, section)):
            for number, refund in _items(owner.get("refunds")):
                value = refund.get(key)
                if not isinstance(value, str):
                    continue
                here = (*section, index, "refunds", number, key)
                seen = first.setdefault((scope(owner), value), here)
                if seen is not here:
                    yield here, (f"{format_path(here)}: duplicate {key} {value!r} "
                                 f"(first at line {_line_of(self.lines, seen)})")

    def refunds_within(self, at: NodePath, owner: dict[str, Any], captured: Decimal | None,
                       counts: Callable[[dict[str, Any]], bool] | None = None,
                       ) -> Iterator[tuple[NodePath, str]]:
        """The owner's refunds (those `counts` keeps: money given back) total no more than what
        was captured."""
        amounts = [_money(refund.get("amount")) for _, refund in _items(owner.get("refunds"))
                   if counts is None or counts(refund)]
        if captured is None or not amounts or None in amounts:
            return
        total = sum((amount for amount in amounts if amount is not None), Decimal(0))
        if total > captured:
            here = (*at, "refunds")
            yield here, (f"{format_path(here)}: refunds total {_text(total)}, more than the "
                         f"{_text(captured)} captured")

    def _fault(self, at: NodePath, rule: dict[str, Any]) -> Iterator[tuple[NodePath, str]]:
        match = _mapping(rule.get("match"))
        headers = _mapping(match.get("headers"))
        first: dict[str, str] = {}
        for name in headers:
            other = first.setdefault(name.lower(), name)
            if other != name:
                here = (*at, "match", "headers", name)
                yield here, (f"{format_path(here)}: repeats header {other!r} "
                             "(header names are case-insensitive)")
        respond = _mapping(rule.get("respond"))
        yield from self._respond_headers(at, _mapping(respond.get("headers")))
        code = respond.get("error")
        status = respond.get("status")
        if isinstance(code, str) and isinstance(status, int) and not isinstance(status, bool) \
                and status < 400:
            here = (*at, "respond", "status")
            yield here, (f"{format_path(here)}: an error needs an error status (400-599), "
                         f"not {status}")
        if self.error_codes is None or not isinstance(code, str):
            return
        provider = match.get("provider")
        if provider is None:
            # a rule for any provider must render its error in each provider's shape
            providers = sorted(self.error_codes)
        elif provider in self.error_codes:
            providers = [provider]
        else:
            return
        here = (*at, "respond", "error")
        for name in providers:
            known = self.error_codes[name]
            if code not in known:
                yield here, (f"{format_path(here)}: unknown error code {code!r} for {name} "
                             f"(known: {', '.join(sorted(known))})")


    @staticmethod
    def _respond_headers(at: NodePath, headers: dict[str, Any]
                         ) -> Iterator[tuple[NodePath, str]]:
        for name, value in headers.items():
            here = (*at, "respond", "headers", name)
            if name.lower() in _FRAMING_HEADERS:
                yield here, (f"{format_path(here)}: {name} is set by the sandbox from the body "
                             "(use a fault such as truncated_body to break the framing)")
            elif not _HEADER_NAME.match(name):
                yield here, f"{format_path(here)}: {name!r} is not a valid header name"
            elif isinstance(value, str) and not _HEADER_VALUE.match(value):
                yield here, (f"{format_path(here)}: a header value must be printable Latin-1 "
                             "text on one line")


_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\xa0-\xff]*$")


def _at(document: dict[str, Any], path: NodePath) -> Any:
    node: Any = document
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: object) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, dict)]


def _money(value: object) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_amount(value)
    except ValueError:
        return None


def _text(amount: Decimal) -> str:
    return f"{amount:.2f}"


# for the providers' money rules (ScenarioRules.money)
items = _items
money = _money
text = _text


def __getattr__(name: str) -> Any:
    # the built-in registry's schema, provider names and text fields, under their former names
    if name == "_SCHEMA":
        return _default_registry().scenario_schema
    if name == "PROVIDERS":
        return frozenset(_default_registry().names)
    if name == "_TEXT_FIELDS":
        return _default_registry().text_fields
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
