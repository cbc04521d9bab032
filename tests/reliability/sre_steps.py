"""A backtracking regex matcher that counts its steps, for the patterns of the `re` module.

CPython's `re` offers no way to count or bound the work of a match, and a wall-clock bound is no
test. This matcher walks the same parse tree (re._parser) with the same backtracking semantics
- greedy, lazy and possessive repeats, alternation, atomic groups, look-ahead and look-behind,
anchors - and counts one step per character examined and per position tried. It stops with
OutOfSteps as soon as a budget is spent, so a quadratic pattern fails quickly on a small input
instead of running for hours on a large one. `re` does at most the work counted here (its
optimisations only skip attempts), so a pattern that stays within c*n steps here is linear there.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from re import _constants as C  # noqa: N812 - the module's own name for them
from re import _parser as P  # noqa: N812

SINGLE = {C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY}
REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT}


class OutOfSteps(Exception):
    pass


class Machine:
    def __init__(self, pattern: re.Pattern[str] | re.Pattern[bytes], budget: int) -> None:
        self.pattern = pattern
        self.ignore_case = bool(pattern.flags & re.IGNORECASE)
        self.dotall = bool(pattern.flags & re.DOTALL)
        self.multiline = bool(pattern.flags & re.MULTILINE)
        self.unicode = isinstance(pattern.pattern, str)
        self.tree = P.parse(pattern.pattern, pattern.flags).data
        self.budget = budget
        self.steps = 0
        self.codes: list[int] = []
        self._known: dict[tuple[int, object, int], bool] = {}
        self._words: dict[int, bool] = {}
        self._first = self._can_start(self.tree)

    # -- counting ------------------------------------------------------------------------

    def tick(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > self.budget:
            raise OutOfSteps(f"more than {self.budget} steps")

    # -- characters ----------------------------------------------------------------------

    def _category(self, category: object, code: int) -> bool:
        char = chr(code)
        if category in (C.CATEGORY_DIGIT, C.CATEGORY_UNI_DIGIT):
            return char.isdecimal() if self.unicode else 48 <= code <= 57
        if category in (C.CATEGORY_NOT_DIGIT, C.CATEGORY_UNI_NOT_DIGIT):
            return not self._category(C.CATEGORY_DIGIT, code)
        if category in (C.CATEGORY_SPACE, C.CATEGORY_UNI_SPACE):
            return char.isspace() if self.unicode else char in " \t\n\r\v\f"
        if category in (C.CATEGORY_NOT_SPACE, C.CATEGORY_UNI_NOT_SPACE):
            return not self._category(C.CATEGORY_SPACE, code)
        if category in (C.CATEGORY_WORD, C.CATEGORY_UNI_WORD):
            return (char.isalnum() or char == "_") if self.unicode else (
                char.isascii() and (char.isalnum() or char == "_"))
        if category in (C.CATEGORY_NOT_WORD, C.CATEGORY_UNI_NOT_WORD):
            return not self._category(C.CATEGORY_WORD, code)
        raise NotImplementedError(category)

    def _one(self, op: object, av: object, code: int) -> bool:
        if op is C.LITERAL:
            return code == av
        if op is C.NOT_LITERAL:
            return code != av
        if op is C.ANY:
            return self.dotall or code != 10
        if op is C.IN:
            negate = False
            found = False
            for item_op, item_av in av:  # type: ignore[attr-defined]
                if item_op is C.NEGATE:
                    negate = True
                elif item_op is C.LITERAL:
                    found = found or code == item_av
                elif item_op is C.RANGE:
                    found = found or item_av[0] <= code <= item_av[1]
                elif item_op is C.CATEGORY:
                    found = found or self._category(item_av, code)
                else:
                    raise NotImplementedError(item_op)
            return found != negate
        raise NotImplementedError(op)

    def char_ok(self, op: object, av: object, code: int) -> bool:
        key = (id(av), op, code)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._char_ok(op, av, code)
        return known

    def _char_ok(self, op: object, av: object, code: int) -> bool:
        if self._one(op, av, code):
            return True
        if self.ignore_case:
            char = chr(code)
            for other in {char.lower(), char.upper()} - {char}:
                if len(other) == 1 and self._one(op, av, ord(other)):
                    return True
        return False

    def _word_at(self, pos: int) -> bool:
        if not 0 <= pos < len(self.codes):
            return False
        code = self.codes[pos]
        word = self._words.get(code)
        if word is None:
            word = self._words[code] = self._category(C.CATEGORY_WORD, code)
        return word

    def at_ok(self, where: object, pos: int) -> bool:
        n = len(self.codes)
        if where in (C.AT_BEGINNING, C.AT_BEGINNING_LINE):
            return pos == 0 or (self.multiline and self.codes[pos - 1] == 10)
        if where is C.AT_BEGINNING_STRING:
            return pos == 0
        if where in (C.AT_END, C.AT_END_LINE):
            if self.multiline and pos < n and self.codes[pos] == 10:
                return True
            return pos == n or (pos == n - 1 and self.codes[pos] == 10)
        if where is C.AT_END_STRING:
            return pos == n
        if where in (C.AT_BOUNDARY, C.AT_UNI_BOUNDARY):
            return self._word_at(pos - 1) != self._word_at(pos)
        if where in (C.AT_NON_BOUNDARY, C.AT_UNI_NON_BOUNDARY):
            return self._word_at(pos - 1) == self._word_at(pos)
        raise NotImplementedError(where)

    # -- matching ------------------------------------------------------------------------

    def m(self, seq: list, i: int, pos: int, k: Callable[[int], bool]) -> bool:
        self.steps += 1
        if self.steps > self.budget:
            raise OutOfSteps(f"more than {self.budget} steps")
        if i == len(seq):
            return k(pos)
        op, av = seq[i]
        codes = self.codes
        if op in SINGLE:
            if pos < len(codes) and self.char_ok(op, av, codes[pos]):
                return self.m(seq, i + 1, pos + 1, k)
            return False
        if op is C.AT:
            return self.at_ok(av, pos) and self.m(seq, i + 1, pos, k)
        if op is C.SUBPATTERN:
            sub = av[3].data
            return self.m(sub, 0, pos, lambda p: self.m(seq, i + 1, p, k))
        if op is C.BRANCH:
            for alternative in av[1]:
                if self.m(alternative.data, 0, pos, lambda p: self.m(seq, i + 1, p, k)):
                    return True
            return False
        if op is C.ATOMIC_GROUP:
            end = self.first_end(av.data, pos)
            return end is not None and self.m(seq, i + 1, end, k)
        if op in (C.ASSERT, C.ASSERT_NOT):
            direction, sub = av
            if direction == 1:
                found = self.first_end(sub.data, pos) is not None
            else:
                low, high = sub.getwidth()
                assert low == high, "look-behind of fixed width"
                start = pos - low
                found = start >= 0 and self.m(sub.data, 0, start, lambda p: p == pos)
            if found != (op is C.ASSERT):
                return False
            return self.m(seq, i + 1, pos, k)
        if op in REPEATS:
            return self.repeat(op, av, seq, i, pos, k)
        raise NotImplementedError(op)

    def first_end(self, seq: list, pos: int) -> int | None:
        ends: list[int] = []

        def take(p: int) -> bool:
            ends.append(p)
            return True
        return ends[0] if self.m(seq, 0, pos, take) else None

    def repeat(self, op: object, av: tuple, seq: list, i: int, pos: int,
               k: Callable[[int], bool]) -> bool:
        low, high, body = av
        n = len(self.codes)
        if high is C.MAXREPEAT:
            high = n + 1
        items = body.data
        if len(items) == 1 and items[0][0] in SINGLE:
            char_op, char_av = items[0]
            if op is C.MIN_REPEAT:  # lazy: one more character at a time
                end = pos
                while True:
                    if end - pos >= low:
                        self.tick()
                        if self.m(seq, i + 1, end, k):
                            return True
                    if end - pos >= high or end >= n:
                        return False
                    self.tick()
                    if not self.char_ok(char_op, char_av, self.codes[end]):
                        return False
                    end += 1
            run = 0
            limit = min(high, n - pos)
            while run < limit and self.char_ok(char_op, char_av, self.codes[pos + run]):
                run += 1
            self.tick(run + 1)
            if run < low:
                return False
            if op is C.POSSESSIVE_REPEAT:
                return self.m(seq, i + 1, pos + run, k)
            for end in range(pos + run, pos + low - 1, -1):  # greedy: give back one by one
                self.tick()
                if self.m(seq, i + 1, end, k):
                    return True
            return False
        if op is C.POSSESSIVE_REPEAT:
            count, at = 0, pos
            while count < high:
                end = self.first_end(items, at)
                if end is None or end == at:
                    break
                count, at = count + 1, end
            return count >= low and self.m(seq, i + 1, at, k)

        def more(count: int, at: int) -> bool:
            def after_body(p: int) -> bool:
                return p != at and more(count + 1, p)
            if op is C.MAX_REPEAT:
                if count < high and self.m(items, 0, at, after_body):
                    return True
                return count >= low and self.m(seq, i + 1, at, k)
            if count >= low and self.m(seq, i + 1, at, k):
                return True
            return count < high and self.m(items, 0, at, after_body)
        return more(0, pos)

    def _can_start(self, seq: list) -> Callable[[int], bool] | None:
        """A test every first character of a match passes (None: no such test known). Like
        re's own prefix check it only lets search skip positions; each still counts a step."""
        for op, av in seq:
            if op in SINGLE:
                return lambda code, op=op, av=av: self.char_ok(op, av, code)
            if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
                continue  # takes no character: the next item has the first one
            if op is C.SUBPATTERN:
                return self._can_start(av[3].data)
            if op is C.ATOMIC_GROUP:
                return self._can_start(av.data)
            if op is C.BRANCH:
                tests = [self._can_start(alt.data) for alt in av[1]]
                if any(t is None for t in tests):
                    return None
                return lambda code, tests=tests: any(t(code) for t in tests)  # type: ignore
            if op in REPEATS and av[0] >= 1:
                return self._can_start(av[2].data)
            return None
        return None

    # -- the ways `re` is called -----------------------------------------------------------

    def load(self, text: str | bytes) -> None:
        self.codes = list(text) if isinstance(text, bytes) else [ord(c) for c in text]

    def match(self, text: str | bytes, pos: int = 0, full: bool = False) -> int | None:
        self.load(text)
        n = len(self.codes)
        ends: list[int] = []

        def done(p: int) -> bool:
            if full and p != n:
                return False
            ends.append(p)
            return True
        return ends[0] if self.m(self.tree, 0, pos, done) else None

    def search(self, text: str | bytes, pos: int = 0) -> tuple[int, int] | None:
        self.load(text)
        return self._search_from(pos)

    def _search_from(self, pos: int) -> tuple[int, int] | None:
        ends: list[int] = []

        def done(p: int) -> bool:
            ends.append(p)
            return True
        first, codes, n = self._first, self.codes, len(self.codes)
        if (self.tree and self.tree[0][0] is C.AT and not self.multiline
                and self.tree[0][1] in (C.AT_BEGINNING, C.AT_BEGINNING_STRING)):
            # every later start fails at the anchor, one step each
            found = self.m(self.tree, 0, pos, done) if pos == 0 else False
            self.tick(n - pos)
            return (pos, ends[0]) if found else None
        verdicts: dict[int, bool] = {}
        for start in range(pos, n + 1):
            self.steps += 1
            if self.steps > self.budget:
                raise OutOfSteps(f"more than {self.budget} steps")
            if first is not None:
                if start == n:
                    continue
                code = codes[start]
                verdict = verdicts.get(code)
                if verdict is None:
                    verdict = verdicts[code] = first(code)
                if not verdict:
                    continue
            if self.m(self.tree, 0, start, done):
                return start, ends[0]
        return None

    def finditer(self, text: str | bytes) -> int:
        """Every match left to right, as re.sub / re.finditer find them; how many."""
        self.load(text)
        count, pos = 0, 0
        while pos <= len(self.codes):
            found = self._search_from(pos)
            if found is None:
                break
            count += 1
            pos = found[1] if found[1] > found[0] else found[1] + 1
        return count


def steps(pattern: re.Pattern[str] | re.Pattern[bytes], mode: str, text: str | bytes,
          budget: int) -> int:
    """The steps `pattern` takes on `text` called as `mode` (match, fullmatch, search, sub);
    raises OutOfSteps past `budget`."""
    machine = Machine(pattern, budget)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20_000))
    try:
        if mode == "match":
            machine.match(text)
        elif mode == "fullmatch":
            machine.match(text, full=True)
        elif mode == "search":
            machine.search(text)
        elif mode == "sub":
            machine.finditer(text)
        else:
            raise ValueError(mode)
    finally:
        sys.setrecursionlimit(old)
    return machine.steps
