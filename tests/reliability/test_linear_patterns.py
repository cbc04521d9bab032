"""Point: every regex that sees request data runs in linear time.

Each pattern, taken from the module that uses it and called the way that module calls it, is
run by a step-counting backtracking matcher (sre_steps) on adversarial inputs of 1 KiB, 16 KiB
and 1 MiB (further inputs of a pattern at the two smaller sizes), each with a budget of
STEPS_PER_CHAR steps per character. A pattern that needs more
than a constant number of steps per character fails on the small input, within its budget (no
test waits for a slow match, and none looks at a clock). The matchers written without a
pattern (Optty's Authorization split, fault-rule globs, the journal's JSON redaction) are counted
through the pieces they call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mock_server import logs
from mock_server.afterpay import jackson
from mock_server.afterpay import requests as afterpay_requests
from mock_server.app import create_app
from mock_server.core import faults, headervalue, money, redact, scenarios, world
from mock_server.optty import bodyparser, jsonparse
from mock_server.optty import models as optty_models
from mock_server.settings import Settings

from .sre_steps import OutOfSteps, steps

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
SIZES = (1024, 16 * 1024, MIB)
STEPS_PER_CHAR = 32

Text = Callable[[int], Any]  # size -> an adversarial text of about that size


def rep(unit: str | bytes, tail: str | bytes | None = None) -> Text:
    end = unit[:0] if tail is None else tail
    return lambda n: unit * (n // len(unit)) + end  # type: ignore[operator]


def assert_linear(pattern: re.Pattern[Any], mode: str, make: Text,
                  sizes: tuple[int, ...] = SIZES) -> None:
    for size in sizes:
        text = make(size)
        budget = STEPS_PER_CHAR * len(text) + 1000
        try:
            steps(pattern, mode, text, budget)
        except OutOfSteps:
            pytest.fail(f"{pattern.pattern!r} ({mode}) took more than {STEPS_PER_CHAR} steps "
                        f"a character on {len(text)} characters")


def _spec_patterns() -> list[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    for name in ("afterpay", "optty", "admin"):
        walk(yaml.safe_load((ROOT / "openapi" / f"{name}.yaml").read_text()))
    import json
    walk(json.loads((ROOT / "mock_server" / "schemas" / "scenario.schema.json").read_text()))
    return sorted(found)


def _route_patterns() -> list[tuple[str, re.Pattern[str]]]:
    app = create_app(Settings(seed=1))
    found = []
    for provider in app.providers:
        spec = provider.spec
        entries = {id(e): e for e in (*spec._wild, *(e for group in spec._by_first.values()
                                                     for e in group))}
        found += [(e.template, e.regex) for e in entries.values()]
        # Optty's Express-style routes: case-insensitive, optional trailing slash
        found += [(template, pattern) for pattern, template in getattr(spec, "_loose", [])]
    return found


# (id, pattern, how the module calls it, adversarial inputs)
CASES: list[tuple[str, re.Pattern[Any], str, list[Text]]] = [
    ("logs.secret-mask", logs._SECRETS, "sub",
     [rep("eyJ"), rep("eyJa."), lambda n: "eyJ" + "a" * n, rep("Bearer "),
      lambda n: "token" + " " * n, rep("token="), rep("a"), rep("/client_secret")]),
    ("logs.plain", logs._PLAIN, "match", [rep("a", " ")]),
    ("redact.jwt", redact.JWT, "sub", [rep("eyJ"), rep("eyJa."), lambda n: "eyJ" + "a" * n]),
    ("redact.jwt-bytes", redact.JWT_BYTES, "sub",
     [rep(b"eyJ"), rep(b"eyJa."), lambda n: b"eyJ" + b"a" * n]),
    ("redact.json-string-run", redact._JSON_STRING_RUN, "match", [rep(b"a", b'"')]),
    ("redact.json-scalar-run", redact._JSON_SCALAR_RUN, "match", [rep(b"1", b",")]),
    ("redact.json-space-run", redact._JSON_SPACE_RUN, "match", [rep(b" ", b":")]),
    ("redact.pair-value-run", redact._PAIR_VALUE_RUN, "match", [rep(b"a", b"&")]),
    ("redact.hint", redact.Redactor()._hint, "search", [rep(b"secre"), rep(b"eyeyeyj")]),
    ("headervalue.unsafe", headervalue._UNSAFE_BYTES, "search", [rep(b"a")]),
    ("optty.charset", bodyparser._CHARSET, "search",
     [rep("; charset=\""), lambda n: ";" + " " * n, rep("; charset = "), rep(";charset")]),
    ("optty.form-bracket", bodyparser._BRACKET, "sub", [rep("["), rep("[a"), rep("]")]),
    ("optty.bad-percent", bodyparser._BAD_PERCENT, "search", [rep("%41")]),
    ("optty.json-first-char", jsonparse._FIRST_CHAR, "match", [rep(" ")]),
    ("optty.json-surrogate", jsonparse._SURROGATE, "sub", [rep("a")]),
    ("afterpay.decimal", afterpay_requests._DECIMAL, "fullmatch",
     [rep("1", "x"), rep("1", ".x"), lambda n: "1." + "1" * n + "x"]),
    ("afterpay.jackson-escape", jackson._NEEDS_ESCAPE, "sub", [rep("a")]),
    ("money.text", money._MONEY_TEXT, "match", [rep("1", "x"), rep("1", ".1x")]),
    ("world.session-name", world.SESSION_NAME, "match", [rep("a")]),
    ("scenarios.duration", scenarios._DURATION, "match", [rep("1", "x"), lambda n: "1." + "1" * n]),
    ("scenarios.date-time", scenarios._DATE_TIME, "match", [rep("2026-11-01T")]),
    ("scenarios.identifier", scenarios._IDENTIFIER, "match", [rep("a", "!")]),
    ("scenarios.header-name", scenarios._HEADER_NAME, "match", [rep("a", " ")]),
    ("scenarios.header-value", scenarios._HEADER_VALUE, "match", [rep("a", "\n")]),
]

# PyYAML's implicit resolvers the scenario loader installs: run on every plain scalar
_RESOLVERS = {tag: regexp for found in scenarios._Loader.yaml_implicit_resolvers.values()
              for tag, regexp in found}
for _tag, _regexp in sorted(_RESOLVERS.items()):
    CASES.append((f"scenarios.yaml-{_tag.rsplit(':', 1)[-1]}", _regexp, "match",
                  [rep("1", "x"), lambda n: "1." + "1" * n + "x", rep("a")]))

# JSON Schema `pattern`s (jsonschema and core.openapi use re.search) of the specs and the
# scenario schema: request bodies and scenario documents are checked against them
GENERIC: list[Text] = [rep("1", "x"), rep("a", "\n"), lambda n: "0" * n + ".x", rep("a."),
                       rep("/")]
for _pattern in _spec_patterns():
    CASES.append((f"schema:{_pattern}", re.compile(_pattern), "search", GENERIC))

for _template, _regex in _route_patterns():
    CASES.append((f"route:{_template}:{_regex.pattern}", _regex, "match",
                  [lambda n: "/orders/" + "a" * n + "/refundx",
                   lambda n: "/v2/payments/" + "a" * n + "/x", rep("/")]))


# the same order in every process (pytest-xdist's workers must collect alike)
CASES.sort(key=lambda case: case[0])


@pytest.mark.parametrize(("pattern", "mode", "inputs"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_pattern_is_linear_on_1_mib_adversarial_input(pattern: re.Pattern[Any], mode: str,
                                                      inputs: list[Text]) -> None:
    # the first input at 1 KiB, 16 KiB and 1 MiB; the others at 1 KiB and 16 KiB, where a
    # pattern that is not linear already needs more steps a character than the budget allows
    assert_linear(pattern, mode, inputs[0])
    for make in inputs[1:]:
        assert_linear(pattern, mode, make, SIZES[:2])


def test_the_counting_catches_the_patterns_that_were_quadratic() -> None:
    # the patterns as they were: each must run out of its budget at 1 KiB already
    before = [
        (re.compile(f"([^{optty_models._JS_SPACE}]+)[{optty_models._JS_SPACE}]+"
                    f"([^{optty_models._JS_SPACE}]+)"), "search", rep("x")),
        (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*", re.I), "sub",
         rep("eyJ")),
        (re.compile(r"^([0-9]*[1-9][0-9]*(\.[0-9]{1,2})?|0+\.([1-9][0-9]?|0[1-9]))$"),
         "search", rep("1", "x")),
        (re.compile(".*a.*a.*b", re.DOTALL), "fullmatch", rep("a")),
    ]
    for pattern, mode, make in before:
        with pytest.raises(OutOfSteps):
            steps(pattern, mode, make(1024), STEPS_PER_CHAR * 1024 + 1000)


# -- matchers written by hand -----------------------------------------------------------------

class Counted:
    """A compiled pattern's stand-in that adds up the characters each call may look at."""

    def __init__(self, pattern: re.Pattern[Any], meter: list[int], budget: int) -> None:
        self.pattern, self.meter, self.budget = pattern, meter, budget

    def _count(self, text: Any, pos: int, endpos: int | None) -> None:
        self.meter[0] += (len(text) if endpos is None else endpos) - pos + 1
        if self.meter[0] > self.budget:
            raise OutOfSteps(f"more than {self.budget} characters looked at")

    def match(self, text: Any, pos: int = 0, endpos: int | None = None) -> Any:
        found = self.pattern.match(text, pos, *(() if endpos is None else (endpos,)))
        self.meter[0] += (found.end() - pos + 1) if found else 1
        if self.meter[0] > self.budget:
            raise OutOfSteps(f"more than {self.budget} characters looked at")
        return found

    def fullmatch(self, text: Any, pos: int = 0, endpos: int | None = None) -> Any:
        self._count(text, pos, endpos)
        return self.pattern.fullmatch(text, pos, *(() if endpos is None else (endpos,)))

    def search(self, text: Any, pos: int = 0, endpos: int | None = None) -> Any:
        self._count(text, pos, endpos)
        return self.pattern.search(text, pos, *(() if endpos is None else (endpos,)))


@pytest.mark.parametrize("body", [
    rep(b'"password":'), rep(b'"password":"\\'), rep(b'"password" : "x",'),
    rep(b'"password":1,'), lambda n: b'"password":"' + b"\\\"" * (n // 2),
    rep(b'"Password":["a"],'), rep(b"eyJ"), rep(b"eyJa."), rep(b"token="), rep(b"xtoken=a"),
    lambda n: b"password=" + b"a" * n,
], ids=["keys", "escapes", "pairs", "numbers", "one-long-string", "arrays", "jwt-starts",
        "jwt-pieces", "inline-pairs", "inner-names", "one-long-value"])
def test_json_redaction_reads_a_body_a_bounded_number_of_times(
        monkeypatch: pytest.MonkeyPatch, body: Text) -> None:
    clean = redact.Redactor()
    runs = {name: getattr(redact, name) for name in (
        "_JSON_STRING_RUN", "_JSON_SCALAR_RUN", "_JSON_SPACE_RUN", "_PAIR_VALUE_RUN")}
    for size in SIZES:
        text = body(size)
        # each name's pass may read the body once: names x length, times a small constant
        meter = [0]
        budget = 4 * (len(clean._json_keys) + len(clean._pair_keys)) * len(text) + 1000
        for name, pattern in runs.items():
            monkeypatch.setattr(redact, name, Counted(pattern, meter, budget))
        kept = clean.body(text)
        assert (b"eyJa.eyJa.eyJa" not in kept) and (b'"hunter' not in kept)


@pytest.mark.parametrize("pattern", ["*a*a*a*b", "/v2/*/refund*", "*?*?*", "a*", "*"])
def test_fault_globs_look_at_a_path_a_bounded_number_of_times(pattern: str) -> None:
    built = faults.glob(pattern)
    if isinstance(built, re.Pattern):  # were a glob one regex again, it would be counted too
        assert_linear(built, "fullmatch", rep("a"))
        return
    for size in SIZES:
        text = "a" * size
        glob = faults.Glob(pattern)
        meter = [0]
        budget = (len(pattern) + 2) * (2 * size + 10)
        glob._first = Counted(glob._first, meter, budget)  # type: ignore[assignment]
        glob._last = Counted(glob._last, meter, budget)  # type: ignore[assignment]
        glob._middle = [Counted(p, meter, budget) for p in glob._middle]  # type: ignore[misc]
        if glob._whole is not None:
            glob._whole = Counted(glob._whole, meter, budget)  # type: ignore[assignment]
        glob.fullmatch(text)


@pytest.mark.parametrize("header", ["x" * MIB, " " * MIB, "Bearer" + "\u3000" * MIB,
                                    "Bearer " + "x" * MIB, ("a " * (MIB // 2))])
def test_optty_authorization_is_split_without_a_pattern(header: str) -> None:
    # str.translate, lstrip and find: each one pass over the header, left to right
    found = optty_models.auth_header_parts(header)
    expected = header.split()[:2] if len(header.split()) >= 2 else None
    assert (list(found) if found else None) == expected
    assert not hasattr(optty_models, "_AUTH_HEADER")
