"""CloudFlow expressions: ``$Input.a[0]``, ``$Input.status == "ready" && $Input.n > 1``, built-ins.

The grammar is a `lark` LALR grammar (below); every expression is parsed once, when the flow is
created, into a small tree of :class:`Node` objects, and evaluated by walking that tree (no
``eval``). Roots are ``$Input``, ``$Output``, ``$Context``, ``$Global`` and ``$Item``; paths
continue with ``.Key``, ``[index]`` or ``["key"]``. Literals: numbers, strings in double quotes,
single quotes or backticks, ``true``/``false``/``null``, arrays ``[...]`` and objects ``{...}``.
Operators, lowest precedence first: ``||``, ``&&``, prefix ``!``, the comparisons
``== != > >= < <=`` and ``in`` (an array holds a value, an object holds a key), prefix ``-``.

:class:`Template` compiles a constructor (``InputConstructor``, ``Parameters``, ...): a key that
ends in ``.$`` holds an expression and is written without the ``.$``; any other value is a
literal, searched for nested ``.$`` keys (*unconfirmed*: the documentation shows them one level
down, e.g. ``Parameters.message``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

ROOTS = ("Input", "Output", "Context", "Global", "Item")
MAX_FUNCTION_NESTING = 10
"""Built-in functions nest at most 10 deep (documented)."""

_GRAMMAR = r"""
?start: expr
?expr: expr "||" and_expr        -> or_
     | and_expr
?and_expr: and_expr "&&" not_expr -> and_
     | not_expr
?not_expr: "!" not_expr          -> not_
     | compare
?compare: unary CMP unary        -> compare
     | unary "in" unary          -> in_
     | unary
?unary: "-" unary                -> neg
     | postfix
?postfix: postfix "." NAME       -> attr
     | postfix "[" expr "]"      -> index
     | atom
?atom: ROOT                      -> root
     | NAME "(" [expr ("," expr)*] ")" -> call
     | DQ_STRING                 -> dq_string
     | SQ_STRING                 -> sq_string
     | BT_STRING                 -> bt_string
     | NUMBER                    -> number
     | "true"                    -> true
     | "false"                   -> false
     | "null"                    -> null
     | "[" [expr ("," expr)*] "]" -> array
     | "{" [pair ("," pair)*] "}" -> object
     | "(" expr ")"
pair: expr ":" expr
ROOT: /\$(Input|Output|Context|Global|Item)(?![A-Za-z0-9_])/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
CMP: "==" | "!=" | ">=" | "<=" | ">" | "<"
NUMBER: /\d+(\.\d+)?([eE][+-]?\d+)?/
DQ_STRING: /"(?:[^"\\]|\\.)*"/
SQ_STRING: /'(?:[^'\\]|\\.)*'/
BT_STRING: /`[^`]*`/
%import common.WS
%ignore WS
"""

_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=False)

_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")

MISSING: Any = object()
"""A path that leads nowhere; it evaluates to null (*unconfirmed*)."""


class ExpressionError(ValueError):
    """An expression that does not parse, or that cannot be evaluated."""


# --------------------------------------------------------------------------------------- tree
@dataclass(frozen=True)
class Node:
    op: str
    """lit, root, attr, index, call, not, neg, and, or, cmp, in, array, object."""
    value: Any = None
    args: tuple[Node, ...] = ()


@v_args(inline=True)
class _Build(Transformer[Token, Node]):
    def root(self, tok: Token) -> Node:
        return Node("root", str(tok)[1:])

    def attr(self, obj: Node, name: Token) -> Node:
        return Node("attr", str(name), (obj,))

    def index(self, obj: Node, idx: Node) -> Node:
        return Node("index", None, (obj, idx))

    def call(self, name: Token, *args: Node) -> Node:
        return Node("call", str(name), tuple(args))

    def dq_string(self, tok: Token) -> Node:
        return Node("lit", _string(str(tok)))

    def sq_string(self, tok: Token) -> Node:
        inner = str(tok)[1:-1].replace("\\'", "'").replace('"', '\\"')
        return Node("lit", _string('"' + inner + '"'))

    def bt_string(self, tok: Token) -> Node:
        return Node("lit", str(tok)[1:-1])

    def number(self, tok: Token) -> Node:
        text = str(tok)
        return Node("lit", float(text) if any(c in text for c in ".eE") else int(text))

    def true(self) -> Node:
        return Node("lit", True)

    def false(self) -> Node:
        return Node("lit", False)

    def null(self) -> Node:
        return Node("lit", None)

    def array(self, *items: Node) -> Node:
        return Node("array", None, tuple(items))

    def pair(self, key: Node, value: Node) -> Node:
        return Node("pair", None, (key, value))

    def object(self, *pairs: Node) -> Node:
        return Node("object", None, tuple(pairs))

    def not_(self, x: Node) -> Node:
        return Node("not", None, (x,))

    def neg(self, x: Node) -> Node:
        return Node("neg", None, (x,))

    def and_(self, a: Node, b: Node) -> Node:
        return Node("and", None, (a, b))

    def or_(self, a: Node, b: Node) -> Node:
        return Node("or", None, (a, b))

    def compare(self, a: Node, op: Token, b: Node) -> Node:
        return Node("cmp", str(op), (a, b))

    def in_(self, a: Node, b: Node) -> Node:
        return Node("in", None, (a, b))


def _string(quoted: str) -> str:
    try:
        value = json.loads(quoted)
    except ValueError:
        raise ExpressionError(f"bad string literal {quoted}") from None
    return str(value)


@dataclass(frozen=True)
class Expression:
    """A parsed expression; :meth:`evaluate` walks its tree."""

    text: str
    tree: Node

    @property
    def roots(self) -> frozenset[str]:
        found: set[str] = set()
        _collect_roots(self.tree, found)
        return frozenset(found)

    def evaluate(self, env: Mapping[str, Any]) -> Any:
        value = _eval(self.tree, env)
        return None if value is MISSING else value


def _collect_roots(node: Node, found: set[str]) -> None:
    if node.op == "root":
        found.add(node.value)
    for arg in node.args:
        _collect_roots(arg, found)


def _nesting(node: Node) -> int:
    inner = max((_nesting(a) for a in node.args), default=0)
    return inner + 1 if node.op == "call" else inner


def parse_expression(text: Any) -> Expression:
    """Parse ``text``; raise :class:`ExpressionError` saying where it stops making sense."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"an expression must be a non-empty string, got {text!r}")
    if _BARE_WORD.fullmatch(text.strip()) and text.strip() not in ("true", "false", "null"):
        raise ExpressionError(
            f"expression {text!r} does not parse: a bare word (quote a string, start a path with $Input, "
            "$Context or $Global)"
        )
    try:
        tree = _Build().transform(_PARSER.parse(text))
    except UnexpectedEOF:
        raise ExpressionError(f"expression {text!r} ends too early") from None
    except UnexpectedCharacters as err:
        raise ExpressionError(
            f"expression {text!r} does not parse at column {err.column}: unexpected {text[err.pos_in_stream or 0]!r}"
        ) from None
    except UnexpectedToken as err:
        if err.token.type == "$END":
            raise ExpressionError(f"expression {text!r} ends too early") from None
        raise ExpressionError(
            f"expression {text!r} does not parse at column {err.column}: unexpected {str(err.token)!r}"
        ) from None
    except UnexpectedInput as err:  # pragma: no cover - the two above are the ones LALR raises
        raise ExpressionError(f"expression {text!r} does not parse: {err}") from None
    except (LarkError, ExpressionError) as err:
        raise ExpressionError(f"expression {text!r} does not parse: {err}") from None
    _check_calls(tree, text)
    if _nesting(tree) > MAX_FUNCTION_NESTING:
        raise ExpressionError(
            f"expression {text!r} nests built-in functions more than {MAX_FUNCTION_NESTING} deep"
        )
    return Expression(text, tree)


def _check_calls(node: Node, text: str) -> None:
    if node.op == "call":
        spec = FUNCTIONS.get(node.value)
        if spec is None:
            raise ExpressionError(
                f"expression {text!r}: unknown function {node.value!r} (built-ins: {', '.join(sorted(FUNCTIONS))})"
            )
        lo, hi, _ = spec
        if len(node.args) < lo or (hi is not None and len(node.args) > hi):
            want = f"{lo}" if lo == hi else f"{lo}..{hi}" if hi is not None else f"at least {lo}"
            raise ExpressionError(
                f"expression {text!r}: {node.value}() takes {want} argument(s), got {len(node.args)}"
            )
    if node.op == "object":
        for pair in node.args:
            key = pair.args[0]
            if key.op != "lit" or not isinstance(key.value, str):
                raise ExpressionError(f"expression {text!r}: object keys must be strings")
    for arg in node.args:
        _check_calls(arg, text)


# --------------------------------------------------------------------------------------- evaluation
def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    # Type-strict: 1 is not "1", true is not 1 (*unconfirmed*).
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def truthy(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    return bool(value)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _same(a, b)
    if op == "!=":
        return not _same(a, b)
    if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False  # ordering of other types is false (*unconfirmed*)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    if op == "<":
        return bool(a < b)
    return bool(a <= b)


def _eval(node: Node, env: Mapping[str, Any]) -> Any:
    op = node.op
    if op == "lit":
        return node.value
    if op == "root":
        return env.get(node.value, MISSING)
    if op == "attr":
        obj = _eval(node.args[0], env)
        return obj.get(node.value, MISSING) if isinstance(obj, dict) else MISSING
    if op == "index":
        obj = _eval(node.args[0], env)
        idx = _eval(node.args[1], env)
        if isinstance(obj, list) and _is_num(idx) and int(idx) == idx and -len(obj) <= idx < len(obj):
            return obj[int(idx)]
        if isinstance(obj, dict) and isinstance(idx, str):
            return obj.get(idx, MISSING)
        return MISSING
    if op == "and":
        return truthy(_eval(node.args[0], env)) and truthy(_eval(node.args[1], env))
    if op == "or":
        return truthy(_eval(node.args[0], env)) or truthy(_eval(node.args[1], env))
    if op == "not":
        return not truthy(_eval(node.args[0], env))
    args = [_value(_eval(a, env)) for a in node.args if a.op != "pair"]
    if op == "neg":
        if not _is_num(args[0]):
            raise ExpressionError(f"cannot negate {args[0]!r}: not a number")
        return -args[0]
    if op == "cmp":
        return _compare(node.value, args[0], args[1])
    if op == "in":
        container = args[1]
        if isinstance(container, list):
            return any(_same(args[0], item) for item in container)
        if isinstance(container, dict):
            return isinstance(args[0], str) and args[0] in container
        return False
    if op == "array":
        return args
    if op == "object":
        return {p.args[0].value: _value(_eval(p.args[1], env)) for p in node.args}
    if op == "call":
        return FUNCTIONS[node.value][2](*args)
    raise ExpressionError(f"unknown node {op}")  # pragma: no cover


def _value(v: Any) -> Any:
    return None if v is MISSING else v


# --------------------------------------------------------------------------------------- built-ins
def _need(kind: type | tuple[type, ...], value: Any, fn: str, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ExpressionError(f"{fn}(): {what} must be {_kind_name(kind)}, got {json.dumps(value)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {list: "an array", dict: "an object", str: "a string", int: "an integer"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _format(template: Any, *args: Any) -> str:
    parts = _need(str, template, "format", "the template").split("{}")
    if len(parts) - 1 != len(args):
        raise ExpressionError(
            f"format(): the template has {len(parts) - 1} placeholder(s) but {len(args)} value(s) were given"
        )
    out = parts[0]
    for arg, rest in zip(args, parts[1:], strict=True):
        out += _text(arg) + rest
    return out


def _length(value: Any) -> int:
    return len(_need((list, dict, str), value, "length", "the argument"))


def _array_contains(array: Any, item: Any) -> bool:
    return any(_same(item, x) for x in _need(list, array, "arrayContains", "the first argument"))


def _array_unique(array: Any) -> list[Any]:
    out: list[Any] = []
    for x in _need(list, array, "arrayUnique", "the argument"):
        if not any(_same(x, y) for y in out):
            out.append(x)
    return out


def _split(text: Any, sep: Any) -> list[str]:
    _need(str, text, "split", "the first argument")
    _need(str, sep, "split", "the separator")
    if not sep:
        raise ExpressionError("split(): the separator must not be empty")
    return str(text).split(sep)


def _regex_match_string(pattern: Any, text: Any) -> bool:
    # Argument order (pattern, string), as Go's regexp.MatchString: *unconfirmed*.
    _need(str, pattern, "regexMatchString", "the pattern")
    _need(str, text, "regexMatchString", "the string")
    try:
        return re.search(pattern, text) is not None
    except re.error as err:
        raise ExpressionError(f"regexMatchString(): bad pattern {pattern!r}: {err}") from None


def _get(container: Any, key: Any) -> Any:
    if isinstance(container, list):
        _need(int, key, "get", "the index")
        if not -len(container) <= key < len(container):
            raise ExpressionError(f"get(): index {key} is out of range for an array of {len(container)}")
        return container[key]
    if isinstance(container, dict):
        _need(str, key, "get", "the key")
        return container.get(key)
    raise ExpressionError(
        f"get(): the first argument must be an array or an object, got {json.dumps(container)}"
    )


def _int_add(a: Any, b: Any) -> int:
    return int(_need(int, a, "intAdd", "the first argument")) + int(
        _need(int, b, "intAdd", "the second argument")
    )


def _random_int(lo: Any, hi: Any) -> int:
    # lo <= n < hi (*unconfirmed*: the documentation says "within a range").
    _need(int, lo, "randomInt", "the lower bound")
    _need(int, hi, "randomInt", "the upper bound")
    if hi <= lo:
        raise ExpressionError(f"randomInt(): the upper bound {hi} must be greater than the lower bound {lo}")
    return random.randrange(lo, hi)


def _to_array(*items: Any) -> list[Any]:
    return list(items)


def _map_keys(value: Any) -> list[str]:
    return list(_need(dict, value, "mapKeys", "the argument"))


def _map_values(value: Any) -> list[Any]:
    return list(_need(dict, value, "mapValues", "the argument").values())


def _json_merge(a: Any, b: Any) -> dict[str, Any]:
    out = dict(_need(dict, a, "jsonMerge", "the first argument"))
    out.update(_need(dict, b, "jsonMerge", "the second argument"))
    return out


def _string_to_json(text: Any) -> Any:
    try:
        return json.loads(_need(str, text, "stringToJson", "the argument"))
    except ValueError as err:
        raise ExpressionError(f"stringToJson(): not JSON: {err}") from None


def _json_to_string(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _to_base64(text: Any) -> str:
    return base64.b64encode(_need(str, text, "toBase64", "the argument").encode()).decode()


def _from_base64(text: Any) -> str:
    try:
        return base64.b64decode(_need(str, text, "fromBase64", "the argument"), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise ExpressionError(f"fromBase64(): {text!r} is not base64 of UTF-8 text") from None


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}


def _hash(text: Any, algorithm: Any) -> str:
    _need(str, text, "hash", "the input")
    name = _HASHES.get(str(algorithm))
    if name is None:
        raise ExpressionError(f"hash(): the algorithm must be one of {', '.join(_HASHES)}, got {algorithm!r}")
    return hashlib.new(name, text.encode()).hexdigest()


def _uuid() -> str:
    return str(uuid.uuid4())


FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Any]]] = {
    # name: (fewest arguments, most arguments or None, implementation)
    "format": (1, None, _format),
    "length": (1, 1, _length),
    "arrayContains": (2, 2, _array_contains),
    "arrayUnique": (1, 1, _array_unique),
    "split": (2, 2, _split),
    "regexMatchString": (2, 2, _regex_match_string),
    "get": (2, 2, _get),
    "intAdd": (2, 2, _int_add),
    "randomInt": (2, 2, _random_int),
    "toArray": (0, None, _to_array),
    "mapKeys": (1, 1, _map_keys),
    "mapValues": (1, 1, _map_values),
    "jsonMerge": (2, 2, _json_merge),
    "stringToJson": (1, 1, _string_to_json),
    "fromJSON": (1, 1, _string_to_json),
    "jsonToString": (1, 1, _json_to_string),
    "toJSON": (1, 1, _json_to_string),
    "toBase64": (1, 1, _to_base64),
    "fromBase64": (1, 1, _from_base64),
    "hash": (2, 2, _hash),
    "uuid": (0, 0, _uuid),
}
"""The built-in functions; names, arguments and results as the documentation's examples show."""


# --------------------------------------------------------------------------------------- templates
EXPRESSION_SUFFIX = ".$"


@dataclass(frozen=True)
class Template:
    """A constructor (or Parameters) with its ``.$`` values parsed; :meth:`render` builds the value."""

    raw: Any
    compiled: Any
    roots: frozenset[str]

    def render(self, env: Mapping[str, Any]) -> Any:
        return _render(self.compiled, env)


def _render(node: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(node, Expression):
        return node.evaluate(env)
    if isinstance(node, dict):
        return {k: _render(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, env) for v in node]
    return node


def compile_template(raw: Any, where: str) -> Template:
    """Compile a constructor; ``where`` (e.g. ``state 'A': InputConstructor``) starts every error."""
    roots: set[str] = set()

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ExpressionError(f"{where}: key {key!r} at {path or 'the top'} must be a string")
                if key.endswith(EXPRESSION_SUFFIX) and len(key) > len(EXPRESSION_SUFFIX):
                    name = key[: -len(EXPRESSION_SUFFIX)]
                    if not isinstance(item, str):
                        raise ExpressionError(
                            f"{where}.{path}{key}: a key ending in .$ holds an expression, not the literal "
                            f"{json.dumps(item)} (drop the .$ for a literal)"
                        )
                    try:
                        expr = parse_expression(item)
                    except ExpressionError as err:
                        raise ExpressionError(f"{where}.{path}{key}: {err}") from None
                    roots.update(expr.roots)
                    out[name] = expr
                else:
                    out[key] = walk(item, f"{path}{key}.")
            return out
        if isinstance(value, list):
            return [walk(item, f"{path}[{i}].") for i, item in enumerate(value)]
        return value

    return Template(raw, walk(raw, ""), frozenset(roots))


def compile_value(raw: Any, key: str, where: str) -> tuple[Any, Expression | None]:
    """A field that may come as ``Key`` (a literal) or ``Key.$`` (an expression): (literal, expression)."""
    if not isinstance(raw, str):
        raise ExpressionError(
            f"{where}: field {key}.$ holds an expression, not the literal {json.dumps(raw)}"
        )
    try:
        return None, parse_expression(raw)
    except ExpressionError as err:
        raise ExpressionError(f"{where}: field {key}.$: {err}") from None
