"""Fault injection for the emulator's admin API (``/_emulator/faults``).

A rule, as JSON::

    {"service": "mns" | "fnf" | "sts",    # default: the service of the port it was posted to
     "operation": "ReceiveMessage",       # the service's operation name; "*" or absent: every operation
     "status": 500, "code": "InternalError", "message": "...",   # answer with this error ...
     "drop_connection": false,            # ... or close the connection without an answer
     "latency_ms": 0,                     # wait this long first (alone: a slow but correct answer)
     "times": 2 | "probability": 0.3}     # fire the next N matching requests, or each with probability p

A rule with neither ``times`` nor ``probability`` fires on every matching request until it is
deleted. Rules are tried in the order they were added; the first that fires wins. A rule whose
``times`` are used up disappears.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

_FIELDS = {
    "service",
    "operation",
    "status",
    "code",
    "message",
    "drop_connection",
    "latency_ms",
    "times",
    "probability",
}


@dataclass
class FaultRule:
    id: int
    service: str
    operation: str = "*"
    status: int | None = None
    code: str | None = None
    message: str = "Injected fault."
    drop_connection: bool = False
    latency_ms: int = 0
    times: int | None = None
    probability: float | None = None

    def matches(self, service: str, operation: str) -> bool:
        return self.service == service and self.operation in ("*", operation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fault:
    """What to do to one request: wait ``latency_ms``, then drop it, answer an error, or go on."""

    latency_ms: int
    drop_connection: bool
    status: int | None
    code: str | None
    message: str


def _number(spec: dict[str, Any], key: str, kind: type, low: float, high: float | None = None) -> Any:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ValueError(f"fault rule field {key!r} must be a {kind.__name__}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"fault rule field {key!r} must be between {low} and {high}, got {value!r}")
    return kind(value)


class FaultInjector:
    """The active fault rules of one emulator (both services). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any], default_service: str) -> FaultRule:
        """Validate and add one rule; raises ValueError naming the bad field."""
        if not isinstance(spec, dict):
            raise ValueError(f"a fault rule must be a JSON object, got {spec!r}")
        unknown = set(spec) - _FIELDS
        if unknown:
            raise ValueError(f"unknown fault rule fields {sorted(unknown)}; known: {sorted(_FIELDS)}")
        service = spec.get("service", default_service)
        if service not in ("mns", "fnf", "sts"):
            raise ValueError(f"fault rule field 'service' must be 'mns', 'fnf' or 'sts', got {service!r}")
        operation = spec.get("operation") or "*"
        if not isinstance(operation, str):
            raise ValueError(f"fault rule field 'operation' must be a string, got {operation!r}")
        status = _number(spec, "status", int, 400, 599) if spec.get("status") is not None else None
        code = spec.get("code")
        if code is not None and not isinstance(code, str):
            raise ValueError(f"fault rule field 'code' must be a string, got {code!r}")
        message = spec.get("message", "Injected fault.")
        if not isinstance(message, str):
            raise ValueError(f"fault rule field 'message' must be a string, got {message!r}")
        drop = spec.get("drop_connection", False)
        if not isinstance(drop, bool):
            raise ValueError(f"fault rule field 'drop_connection' must be true or false, got {drop!r}")
        latency = _number(spec, "latency_ms", int, 0, 600_000) if "latency_ms" in spec else 0
        times = _number(spec, "times", int, 1) if spec.get("times") is not None else None
        probability = (
            _number(spec, "probability", float, 0, 1) if spec.get("probability") is not None else None
        )
        if times is not None and probability is not None:
            raise ValueError("a fault rule takes 'times' or 'probability', not both")
        if status is None and code is not None:
            raise ValueError("fault rule field 'code' needs a 'status'")
        if status is not None and drop:
            raise ValueError(
                "a fault rule either answers an error ('status') or drops the connection, not both"
            )
        if status is None and not drop and not latency:
            raise ValueError("a fault rule needs 'status', 'drop_connection' or 'latency_ms'")
        if status is not None and code is None:
            code = "InternalError" if status >= 500 else "InvalidArgument"
        with self._lock:
            rule = FaultRule(
                id=next(self._ids),
                service=service,
                operation=operation,
                status=status,
                code=code,
                message=message,
                drop_connection=drop,
                latency_ms=latency,
                times=times,
                probability=probability,
            )
            self._rules.append(rule)
        return rule

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def fire(self, service: str, operation: str) -> Fault | None:
        """The fault for this request, if a rule fires (using up one of its ``times``)."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(service, operation):
                    continue
                if rule.probability is not None and random.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                return Fault(rule.latency_ms, rule.drop_connection, rule.status, rule.code, rule.message)
        return None
