"""JSON paths (``$input.a.b[0]``, ``$local[*].x``, ``$.x``) and FDL input/output mappings.

A path starts with a root: ``$input``, ``$local``, ``$context`` or ``$`` (the step input, as in
``$.hasMore``); then ``.key``, ``["key"]``, ``[index]`` or ``[*]`` (every element of an array).
Paths are parsed once (at CreateFlow, so a bad path is reported with its step) and evaluated
without ``eval``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROOTS = ("$input", "$local", "$context")

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")

MISSING: Any = object()
"""A path that leads nowhere (a missing key or index)."""


class PathError(ValueError):
    """A path that cannot be parsed."""


@dataclass(frozen=True)
class Path:
    text: str
    root: str
    """"input", "local" or "context" ("$" and "$input" both read the input)."""
    parts: tuple[str | int | None, ...]
    """Keys (str), indexes (int) or None for ``[*]``."""

    def get(self, roots: Mapping[str, Any]) -> Any:
        """The value at this path, ``MISSING`` when absent; ``[*]`` gives a list."""
        return _walk(roots.get(self.root, MISSING), self.parts)


def _walk(value: Any, parts: tuple[str | int | None, ...]) -> Any:
    for i, part in enumerate(parts):
        if value is MISSING:
            return MISSING
        if part is None:
            if not isinstance(value, list):
                return MISSING
            rest = parts[i + 1 :]
            out = [_walk(item, rest) for item in value]
            return [None if item is MISSING else item for item in out]
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                return MISSING
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                return MISSING
            value = value[part]
    return value


def is_reference(text: Any) -> bool:
    """Whether a mapping source is a reference (else it is a constant)."""
    if not isinstance(text, str):
        return False
    if text == "$" or text.startswith(("$.", "$[")):
        return True
    return any(text == r or text.startswith((r + ".", r + "[")) for r in ROOTS)


def parse_path(text: str) -> Path:
    """Parse a path; raise :class:`PathError` naming what is wrong."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathError(f"path {text!r} must start with $input, $local, $context or $")
    for root in (*ROOTS, "$"):
        if text == root or text.startswith((root + ".", root + "[")):
            rest = text[len(root) :]
            name = "input" if root in ("$", "$input") else root[1:]
            break
    else:
        raise PathError(f"path {text!r} must start with $input, $local, $context or $")
    parts: list[str | int | None] = []
    pos = 0
    while pos < len(rest):
        ch = rest[pos]
        if ch == ".":
            m = _KEY.match(rest, pos + 1)
            if not m:
                raise PathError(f"path {text!r}: expected a key name after '.' at offset {len(root) + pos}")
            parts.append(m.group(0))
            pos = m.end()
        elif ch == "[":
            end = rest.find("]", pos)
            if end < 0:
                raise PathError(f"path {text!r}: unclosed '['")
            inner = rest[pos + 1 : end].strip()
            if inner == "*":
                parts.append(None)
            elif re.fullmatch(r"-?\d+", inner):
                parts.append(int(inner))
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "\"'":
                parts.append(inner[1:-1])
            else:
                raise PathError(f"path {text!r}: bad subscript [{inner}]")
            pos = end + 1
        else:
            raise PathError(f"path {text!r}: unexpected {ch!r} at offset {len(root) + pos}")
    return Path(text, name, tuple(parts))


@dataclass(frozen=True)
class FieldMapping:
    target: str
    source: Any
    path: Path | None
    """Parsed source when it is a reference; None for a constant."""


def parse_mappings(raw: Any, where: str) -> list[FieldMapping]:
    """Validate a list of ``{target, source}``; ``where`` names the step and field for errors."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PathError(f"{where} must be a list of {{target, source}}")
    out: list[FieldMapping] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise PathError(f"{where}[{i}] must be a mapping with target and source")
        unknown = set(item) - {"target", "source"}
        if unknown:
            raise PathError(f"{where}[{i}] has unknown field(s) {sorted(unknown)}")
        target = item.get("target")
        if not isinstance(target, str) or not target:
            raise PathError(f"{where}[{i}].target must be a non-empty string")
        if "source" not in item:
            raise PathError(f"{where}[{i}].source is required")
        source = item["source"]
        path = None
        if is_reference(source):
            try:
                path = parse_path(source)
            except PathError as err:
                raise PathError(f"{where}[{i}].source: {err}") from None
        elif isinstance(source, str) and source.startswith("$"):
            raise PathError(
                f"{where}[{i}].source {source!r} is not a valid reference "
                "(use $input, $local, $context or $.key)"
            )
        out.append(FieldMapping(target, source, path))
    return out


def apply_mappings(mappings: list[FieldMapping], roots: Mapping[str, Any]) -> dict[str, Any]:
    """The object the mappings build; a reference that leads nowhere maps to null (*unconfirmed*)."""
    result: dict[str, Any] = {}
    for m in mappings:
        if m.path is None:
            value = m.source
        else:
            value = m.path.get(roots)
            if value is MISSING:
                value = None
        result[m.target] = value
    return result


def merged(base: Any, over: Any) -> dict[str, Any]:
    """``base`` updated with ``over`` (both treated as objects; non-objects contribute nothing)."""
    out: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    if isinstance(over, dict):
        out.update(over)
    return out


def json_size(*values: Any) -> int:
    return sum(len(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()) for v in values)
