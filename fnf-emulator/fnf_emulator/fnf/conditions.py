"""Choice conditions: a small, safe expression language (no ``eval``).

Grammar (lowest precedence first)::

    expr    := or
    or      := and ("||" and)*
    and     := not ("&&" not)*
    not     := "!" not | compare
    compare := operand (("==" | "!=" | ">" | ">=" | "<" | "<=") operand)?
    operand := path | string | number | true | false | null | "(" expr ")"

Paths are those of :mod:`.paths` (``$.status``, ``$input.items[0]``, ``$local.x``). Strings use
double (or single) quotes with backslash escapes. ``==``/``!=`` compare JSON values; ordering works
on two numbers or two strings and is false otherwise. A path alone is tested for truthiness.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fnf_emulator.fnf.paths import MISSING, Path, PathError, parse_path


class ConditionError(ValueError):
    """A condition that cannot be parsed."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>\|\||&&|==|!=|>=|<=|>|<|!|\(|\))
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<path>\$(?:[A-Za-z_]\w*)?(?:\.[A-Za-z_][\w\-]*|\[[^\]]*\])*)
      | (?P<word>[A-Za-z_]\w*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Node:
    kind: str
    value: Any = None
    left: Any = None
    right: Any = None


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConditionError(f"condition {text!r}: cannot read {text[pos:].strip()[:20]!r}")
        pos = m.end()
        if m.group("op"):
            tokens.append(("op", m.group("op")))
        elif m.group("str"):
            raw = m.group("str")
            body = raw[1:-1]
            if raw[0] == "'":
                body = body.replace('\\"', '"').replace('"', '\\"').replace("\\'", "'")
            try:
                tokens.append(("lit", json.loads('"' + body + '"')))
            except ValueError:
                raise ConditionError(f"condition {text!r}: bad string {raw}") from None
        elif m.group("num"):
            num = m.group("num")
            tokens.append(("lit", float(num) if any(c in num for c in ".eE") else int(num)))
        elif m.group("path"):
            try:
                tokens.append(("path", parse_path(m.group("path"))))
            except PathError as err:
                raise ConditionError(f"condition {text!r}: {err}") from None
        else:
            word = m.group("word")
            if word not in ("true", "false", "null"):
                raise ConditionError(
                    f"condition {text!r}: unknown word {word!r} (strings need quotes, paths start with $)"
                )
            tokens.append(("lit", {"true": True, "false": False, "null": None}[word]))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take_op(self, *ops: str) -> str | None:
        tok = self._peek()
        if tok and tok[0] == "op" and tok[1] in ops:
            self.pos += 1
            return str(tok[1])
        return None

    def parse(self) -> _Node:
        if not self.tokens:
            raise ConditionError("condition is empty")
        node = self._or()
        if self.pos != len(self.tokens):
            raise ConditionError(f"condition {self.text!r}: unexpected {self.tokens[self.pos][1]!r}")
        return node

    def _or(self) -> _Node:
        node = self._and()
        while self._take_op("||"):
            node = _Node("or", left=node, right=self._and())
        return node

    def _and(self) -> _Node:
        node = self._not()
        while self._take_op("&&"):
            node = _Node("and", left=node, right=self._not())
        return node

    def _not(self) -> _Node:
        if self._take_op("!"):
            return _Node("not", left=self._not())
        return self._compare()

    def _compare(self) -> _Node:
        node = self._operand()
        op = self._take_op("==", "!=", ">=", "<=", ">", "<")
        if op:
            node = _Node("cmp", value=op, left=node, right=self._operand())
        return node

    def _operand(self) -> _Node:
        tok = self._peek()
        if tok is None:
            raise ConditionError(f"condition {self.text!r}: ends too early")
        if tok == ("op", "("):
            self.pos += 1
            node = self._or()
            if not self._take_op(")"):
                raise ConditionError(f"condition {self.text!r}: missing ')'")
            return node
        if tok[0] == "op":
            raise ConditionError(f"condition {self.text!r}: unexpected {tok[1]!r}")
        self.pos += 1
        return _Node(tok[0], value=tok[1])


@dataclass(frozen=True)
class Condition:
    text: str
    _root: _Node

    def evaluate(self, roots: Mapping[str, Any]) -> bool:
        return _truthy(_eval(self._root, roots))


def parse_condition(text: Any) -> Condition:
    if not isinstance(text, str):
        raise ConditionError(f"condition must be a string, not {type(text).__name__}")
    return Condition(text, _Parser(text).parse())


def _truthy(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    return bool(value)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _eval(node: _Node, roots: Mapping[str, Any]) -> Any:
    kind = node.kind
    if kind == "lit":
        return node.value
    if kind == "path":
        path: Path = node.value
        return path.get(roots)
    if kind == "not":
        return not _truthy(_eval(node.left, roots))
    if kind == "and":
        return _truthy(_eval(node.left, roots)) and _truthy(_eval(node.right, roots))
    if kind == "or":
        return _truthy(_eval(node.left, roots)) or _truthy(_eval(node.right, roots))
    left: Any = _eval(node.left, roots)
    right: Any = _eval(node.right, roots)
    left = None if left is MISSING else left
    right = None if right is MISSING else right
    op = node.value
    if op in ("==", "!="):
        same = left == right if (_is_num(left) and _is_num(right)) or type(left) is type(right) else False
        return same if op == "==" else not same
    if not ((_is_num(left) and _is_num(right)) or (isinstance(left, str) and isinstance(right, str))):
        return False
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    return left <= right
