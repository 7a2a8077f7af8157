"""CloudFlow flow definitions (``Type: StateMachine``, ``SpecVersion: v1``): front end and data flow.

:func:`build_state_machine` validates a loaded definition and compiles it into a
:class:`~.program.Flow` (the engine's form, shared with FDL), or raises :class:`CloudFlowError`
naming the state and the field; every expression is parsed here, once. :class:`CloudFlowSemantics`
is how data moves at run time: a state's input is the previous state's output, reshaped by its
``InputConstructor``; its output is its result (a task's result, a Parallel's ``Branch0``...,
a Map's ``Items``, else its input), reshaped by its ``OutputConstructor``; ``GlobalConstructor``
merges into ``$Global``.

States: Pass, Task (``MNS:SendMessage`` to a queue is run; any other action is accepted and fails
at run time), Choice, Parallel, Map (inline), Wait, Succeed (ends its scope), Fail (ends the
execution).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from fnf_emulator import limits
from fnf_emulator.fnf.expressions import (
    MISSING,
    Expression,
    ExpressionError,
    Template,
    compile_template,
    parse_expression,
    truthy,
)
from fnf_emulator.fnf.paths import json_size
from fnf_emulator.fnf.program import (
    Abort,
    CatchRule,
    DefinitionError,
    Flow,
    RetryRule,
    StateError,
    Step,
)

if TYPE_CHECKING:
    from fnf_emulator.fnf.engine import Execution

TYPE = "StateMachine"
SPEC_VERSIONS = ("v1",)
STATE_TYPES = ("Pass", "Task", "Choice", "Parallel", "Map", "Wait", "Succeed", "Fail")
KIND_OF = {
    "Pass": "pass",
    "Task": "task",
    "Choice": "choice",
    "Parallel": "parallel",
    "Map": "foreach",
    "Wait": "wait",
    "Succeed": "pass",  # a Pass that ends its scope (the engine's "succeed" ends the execution)
    "Fail": "fail",
}
TASK_MODES = ("RequestComplete", "WaitForSystemCallback", "WaitForCustomCallback")
MNS_SEND_MESSAGE = "MNS:SendMessage"

EXPRESSION_ERROR = "FnF.ExpressionEvaluationFailed"
"""A constructor, condition or computed field that cannot be evaluated at run time (*unconfirmed*)."""
INVALID_PARAMETERS_ERROR = "FnF.InvalidParameters"
"""A task's computed Parameters are not acceptable (a priority out of range...) (*unconfirmed*)."""
INVALID_COLLECTION_ERROR = "FnF.InvalidCollection"
"""A Map whose ItemsPath is not an array (*unconfirmed*, as for FDL's foreach)."""
ACTION_NOT_EMULATED_ERROR = "Emulator.ActionNotSupported"
"""A task whose action the emulator does not run (FC:InvokeFunction, HTTP:Request, MNS topics...).
The service would run it; the emulator fails the task with this error so the flow can catch it."""
DATA_LIMIT_ERROR = "FnF.DataSizeLimitExceeded"
"""A state's input or output over 64 KiB, or a global over its limit: the execution fails, not
catchable (*unconfirmed* name)."""

MNS_ARN = re.compile(
    r"^acs:mns:(?P<region>[A-Za-z0-9\-]*):(?P<account>[0-9A-Za-z*]*):/"
    r"(?P<kind>queues|topics)/(?P<name>[A-Za-z0-9][A-Za-z0-9\-]{0,255})/messages$"
)
ACTION = re.compile(r"^[A-Za-z0-9]+:[A-Za-z0-9]+$")

_COMMON = {"Name", "Type", "Description", "InputConstructor", "OutputConstructor", "GlobalConstructor"}
_FLOW = {"Next", "End"}
_ERRORS = {"Retry", "Catch"}
_FIELDS: dict[str, set[str]] = {
    "Pass": _COMMON | _FLOW,
    "Task": _COMMON | _FLOW | _ERRORS | {"Action", "TaskMode", "Parameters", "Timeout", "Timeout.$"},
    "Choice": {"Name", "Type", "Description", "InputConstructor", "Branches", "Default"},
    "Parallel": _COMMON | _FLOW | _ERRORS | {"Branches"},
    "Map": _COMMON
    | _FLOW
    | _ERRORS
    | {"ItemsPath", "Processor", "MaxConcurrency", "MaxConcuccency", "ProcessorConfig"},
    "Wait": _COMMON | _FLOW | {"Seconds", "Seconds.$"},
    "Succeed": {"Name", "Type", "Description", "InputConstructor", "OutputConstructor", "GlobalConstructor"},
    "Fail": {"Name", "Type", "Description", "Code", "Detail"},
}
_DISTRIBUTED = {"ItemReader", "ItemBatcher", "ItemConstructor", "ResultWriter"}
_MNS_PARAMETERS = {"resourceArn", "message", "priority", "delaySeconds", "messageTag", "messageAttributes"}

_NO_OUTPUT = frozenset({"Input", "Context", "Global"})
_WITH_OUTPUT = frozenset({"Input", "Output", "Context", "Global"})


class CloudFlowError(DefinitionError):
    """An invalid CloudFlow definition; the message names the state and the field."""


# --------------------------------------------------------------------------------------- front end
def _integer(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CloudFlowError(f"{where} must be an integer {lo}..{hi}, got {json.dumps(value)}")
    return value


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise CloudFlowError(f"{where} must be a number {lo:g}..{hi:g}, got {json.dumps(value)}")
    return float(value)


def _errors(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(e, str) and e for e in value):
        raise CloudFlowError(f"{where} must be a non-empty list of error names (e.g. [FnF.ALL])")
    return tuple(value)


def _template(raw: Any, where: str, roots: frozenset[str]) -> Template:
    if not isinstance(raw, dict):
        raise CloudFlowError(
            f"{where} must be a mapping of keys to values (keys ending in .$ hold expressions)"
        )
    try:
        template = compile_template(raw, where)
    except ExpressionError as err:
        raise CloudFlowError(str(err)) from None
    _check_roots(template.roots, where, roots)
    return template


def _expression(raw: Any, where: str, roots: frozenset[str] = _NO_OUTPUT) -> Expression:
    try:
        expr = parse_expression(raw)
    except ExpressionError as err:
        raise CloudFlowError(f"{where}: {err}") from None
    _check_roots(expr.roots, where, roots)
    return expr


def _check_roots(used: frozenset[str], where: str, allowed: frozenset[str]) -> None:
    if "Item" in used:
        raise CloudFlowError(f"{where}: $Item is only for a distributed Map's ItemConstructor (not emulated)")
    if "Output" in used and "Output" not in allowed:
        raise CloudFlowError(f"{where}: $Output exists only in an OutputConstructor or GlobalConstructor")


class _Builder:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.steps: dict[str, Step] = {}
        self.lists: dict[str, list[str]] = {}
        self.starts: dict[str, str | None] = {}

    def scope(self, raw: dict[str, Any], list_id: str, where: str) -> str:
        """``StartAt`` + ``States`` of the flow, a Parallel branch or a Map processor."""
        states = raw.get("States")
        if not isinstance(states, list) or not states:
            raise CloudFlowError(f"{where}: field 'States' must be a non-empty list of states")
        ids: list[str] = []
        by_name: dict[str, Step] = {}
        nexts: dict[str, list[tuple[str, str]]] = {}
        for i, raw_state in enumerate(states):
            step, targets = self.state(raw_state, f"{list_id}/{i}", f"{where} States[{i}]")
            if step.name in by_name:
                raise CloudFlowError(f"state {step.name!r}: duplicate state name in {where}")
            by_name[step.name] = step
            nexts[step.name] = targets
            ids.append(step.id)
        start = raw.get("StartAt")
        if not isinstance(start, str) or not start:
            raise CloudFlowError(f"{where}: field 'StartAt' is required (the name of the first state)")
        if start not in by_name:
            raise CloudFlowError(
                f"{where}: field 'StartAt' names no state ({start!r}); states: {', '.join(by_name)}"
            )
        for name, targets in nexts.items():
            for field, target in targets:
                if target not in by_name:
                    raise CloudFlowError(
                        f"state {name!r}: field {field!r} names no state in its scope ({target!r}); "
                        f"states: {', '.join(by_name)}"
                    )
            step = by_name[name]
            if step.next is not None:  # the builder left the name there; the engine wants the id
                step.next = by_name[step.next].id
        self._check_exits(by_name, nexts, where)
        self.lists[list_id] = ids
        self.starts[list_id] = by_name[start].id
        return list_id

    @staticmethod
    def _check_exits(by_name: dict[str, Step], nexts: dict[str, list[tuple[str, str]]], where: str) -> None:
        """Every state must be able to reach the end of its scope (no loop without a way out)."""
        can_end = {n for n, s in by_name.items() if s.next is None and s.kind != "choice"}
        changed = True
        while changed:
            changed = False
            for name, targets in nexts.items():
                if name not in can_end and any(t in can_end for _, t in targets):
                    can_end.add(name)
                    changed = True
        stuck = [n for n in by_name if n not in can_end]
        if stuck:
            raise CloudFlowError(
                f"{where}: states {', '.join(map(repr, stuck))} loop with no way to an End, Succeed or Fail state"
            )

    def state(self, raw: Any, sid: str, where: str) -> tuple[Step, list[tuple[str, str]]]:
        if not isinstance(raw, dict):
            raise CloudFlowError(f"{where} must be a mapping with Type and Name")
        name = raw.get("Name")
        if not isinstance(name, str) or not name.strip():
            raise CloudFlowError(f"{where}: field 'Name' is required (a non-empty string)")
        label = f"state {name!r}"
        stype = raw.get("Type")
        if stype not in STATE_TYPES:
            raise CloudFlowError(
                f"{label}: field 'Type' must be one of {', '.join(STATE_TYPES)}, got {stype!r}"
            )
        if stype == "Map" and _DISTRIBUTED & set(raw):
            raise CloudFlowError(
                f"{label}: a distributed Map ({', '.join(sorted(_DISTRIBUTED & set(raw)))}) is not emulated; "
                "use an inline Map (ItemsPath and Processor)"
            )
        unknown = set(raw) - _FIELDS[stype]
        if unknown:
            raise CloudFlowError(
                f"{label}: unknown field(s) {sorted(unknown)} for a {stype} state "
                f"(fields: {', '.join(sorted(_FIELDS[stype]))})"
            )
        step = Step(id=sid, type=stype, name=name, kind=KIND_OF[stype])
        targets: list[tuple[str, str]] = []
        if "InputConstructor" in raw:
            step.input_template = _template(raw["InputConstructor"], f"{label}: InputConstructor", _NO_OUTPUT)
        if "OutputConstructor" in raw:
            step.output_template = _template(
                raw["OutputConstructor"], f"{label}: OutputConstructor", _WITH_OUTPUT
            )
        if "GlobalConstructor" in raw:
            step.global_template = _template(
                raw["GlobalConstructor"], f"{label}: GlobalConstructor", _WITH_OUTPUT
            )
        if stype in ("Pass", "Task", "Parallel", "Map", "Wait"):
            end = raw.get("End", False)
            if not isinstance(end, bool):
                raise CloudFlowError(f"{label}: field 'End' must be true or false")
            nxt = raw.get("Next")
            if nxt is not None and (not isinstance(nxt, str) or not nxt):
                raise CloudFlowError(f"{label}: field 'Next' must be a state name")
            if end and nxt is not None:
                raise CloudFlowError(f"{label}: give either 'Next' or 'End: true', not both")
            if not end and nxt is None:
                raise CloudFlowError(f"{label}: field 'Next' (a state name) or 'End: true' is required")
            step.end = end
            step.next = nxt  # resolved to an id by scope()
            if nxt is not None:
                targets.append(("Next", nxt))
        getattr(self, "_" + stype.lower())(step, raw, label, targets)
        for i, rule in enumerate(step.catch):
            targets.append((f"Catch[{i}].Next", rule.goto))
        self.steps[sid] = step
        return step, targets

    # states
    def _pass(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        pass

    def _succeed(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        step.end = True

    def _fail(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        detail = raw.get("Detail")
        if not isinstance(detail, str) or not detail:
            raise CloudFlowError(f"{label}: field 'Detail' is required (a string saying what failed)")
        code = raw.get("Code", "")
        if not isinstance(code, str):
            raise CloudFlowError(f"{label}: field 'Code' must be a string")
        step.error, step.cause = code, detail

    def _wait(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        if ("Seconds" in raw) == ("Seconds.$" in raw):
            raise CloudFlowError(f"{label}: a Wait state needs exactly one of 'Seconds' or 'Seconds.$'")
        if "Seconds" in raw:
            hi = (
                limits.CLOUDFLOW_MAX_WAIT_SECONDS_EXPRESS
                if self.mode == "Express"
                else limits.CLOUDFLOW_MAX_WAIT_SECONDS_STANDARD
            )
            step.duration = float(
                _integer(raw["Seconds"], f"{label}: field 'Seconds' ({self.mode} mode)", 1, hi)
            )
        else:
            step.duration_expr = _expression(raw["Seconds.$"], f"{label}: field 'Seconds.$'")

    def _task(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        action = raw.get("Action")
        if not isinstance(action, str) or not ACTION.match(action):
            raise CloudFlowError(
                f"{label}: field 'Action' is required, as <Service>:<API> (e.g. MNS:SendMessage), got {action!r}"
            )
        step.action = action
        mode = raw.get("TaskMode", "RequestComplete")
        if mode not in TASK_MODES:
            raise CloudFlowError(
                f"{label}: field 'TaskMode' must be one of {', '.join(TASK_MODES)}, got {mode!r}"
            )
        step.task_mode = mode
        step.waits = mode != "RequestComplete"
        step.pattern = mode
        if "Parameters" in raw:
            step.parameters = _template(raw["Parameters"], f"{label}: Parameters", _NO_OUTPUT)
        if action == MNS_SEND_MESSAGE:
            self._mns(step, raw, label)
        if "Timeout" in raw and "Timeout.$" in raw:
            raise CloudFlowError(f"{label}: give either 'Timeout' or 'Timeout.$', not both")
        if "Timeout" in raw:
            timeout = _integer(
                raw["Timeout"], f"{label}: field 'Timeout'", 0, limits.CLOUDFLOW_MAX_TASK_TIMEOUT_SECONDS
            )
            step.timeout_seconds = float(timeout) or None  # 0: no timeout
        elif "Timeout.$" in raw:
            step.timeout_expr = _expression(raw["Timeout.$"], f"{label}: field 'Timeout.$'")
        self._errors_of(step, raw, label)

    def _mns(self, step: Step, raw: dict[str, Any], label: str) -> None:
        params = raw.get("Parameters")
        if not isinstance(params, dict):
            raise CloudFlowError(
                f"{label}: field 'Parameters' is required for MNS:SendMessage (resourceArn, message)"
            )
        keys = {k[:-2] if k.endswith(".$") else k for k in params}
        unknown = keys - _MNS_PARAMETERS
        if unknown:
            raise CloudFlowError(
                f"{label}: Parameters has unknown field(s) {sorted(unknown)} for MNS:SendMessage "
                f"(fields: {', '.join(sorted(_MNS_PARAMETERS))})"
            )
        for key in ("resourceArn", "message"):
            if key not in keys:
                raise CloudFlowError(f"{label}: field 'Parameters.{key}' is required for MNS:SendMessage")
        arn = params.get("resourceArn")
        if arn is not None:
            if not isinstance(arn, str) or not MNS_ARN.match(arn):
                raise CloudFlowError(
                    f"{label}: field 'Parameters.resourceArn' must look like "
                    f"acs:mns:REGION:ACCOUNT:/queues/NAME/messages, got {arn!r}"
                )
            step.resource_arn = arn
            m = MNS_ARN.match(arn)
            assert m is not None
            if m.group("kind") == "queues":
                step.queue_name = m.group("name")
        for key, lo, hi in (
            ("priority", limits.MNS_MIN_PRIORITY, limits.MNS_MAX_PRIORITY),
            ("delaySeconds", 0, limits.MNS_MAX_DELAY_SECONDS),
        ):
            if key in params:
                _integer(params[key], f"{label}: field 'Parameters.{key}'", lo, hi)
        if step.task_mode == "WaitForSystemCallback":
            raise CloudFlowError(
                f"{label}: field 'TaskMode' WaitForSystemCallback does not apply to MNS:SendMessage "
                "(use RequestComplete or WaitForCustomCallback)"
            )

    def _errors_of(self, step: Step, raw: dict[str, Any], label: str) -> None:
        retry = raw.get("Retry", [])
        if not isinstance(retry, list):
            raise CloudFlowError(f"{label}: field 'Retry' must be a list of rules")
        for i, rule in enumerate(retry):
            w = f"{label}: Retry[{i}]"
            if not isinstance(rule, dict):
                raise CloudFlowError(f"{w} must be a mapping")
            known = {
                "Errors",
                "Description",
                "MaxAttempts",
                "IntervalSeconds",
                "BackoffRate",
                "MaxBackoffSeconds",
            }
            if set(rule) - known:
                raise CloudFlowError(f"{w} has unknown field(s) {sorted(set(rule) - known)}")
            for key in ("MaxAttempts", "IntervalSeconds"):
                if key not in rule:
                    raise CloudFlowError(f"{w}.{key} is required")
            top = limits.CLOUDFLOW_MAX_RETRY_INTERVAL_SECONDS
            step.retry.append(
                RetryRule(
                    errors=_errors(rule.get("Errors"), f"{w}.Errors"),
                    interval_seconds=_number(rule["IntervalSeconds"], f"{w}.IntervalSeconds", 0, top),
                    max_interval_seconds=_number(
                        rule.get("MaxBackoffSeconds", top), f"{w}.MaxBackoffSeconds", 0, top
                    ),
                    max_attempts=_integer(rule["MaxAttempts"], f"{w}.MaxAttempts", 0, 1_000_000),
                    multiplier=_number(rule.get("BackoffRate", 1), f"{w}.BackoffRate", 1, 1_000),
                )
            )
        catch = raw.get("Catch", [])
        if not isinstance(catch, list):
            raise CloudFlowError(f"{label}: field 'Catch' must be a list of rules")
        for i, rule in enumerate(catch):
            w = f"{label}: Catch[{i}]"
            if not isinstance(rule, dict):
                raise CloudFlowError(f"{w} must be a mapping")
            known = {"Errors", "Description", "Next", "OutputConstructor"}
            if set(rule) - known:
                raise CloudFlowError(f"{w} has unknown field(s) {sorted(set(rule) - known)}")
            nxt = rule.get("Next")
            if not isinstance(nxt, str) or not nxt:
                raise CloudFlowError(f"{w}.Next is required (a state in the same scope)")
            output = None
            if "OutputConstructor" in rule:
                output = _template(rule["OutputConstructor"], f"{w}.OutputConstructor", _NO_OUTPUT)
            step.catch.append(CatchRule(_errors(rule.get("Errors"), f"{w}.Errors"), nxt, output))

    def _choice(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        branches = raw.get("Branches")
        if not isinstance(branches, list) or not branches:
            raise CloudFlowError(f"{label}: field 'Branches' must be a non-empty list of {{Condition, Next}}")
        for i, branch in enumerate(branches):
            w = f"{label}: Branches[{i}]"
            if not isinstance(branch, dict) or set(branch) - {"Condition", "Next", "Description"}:
                raise CloudFlowError(f"{w} must be a mapping with Condition and Next")
            if "Condition" not in branch:
                raise CloudFlowError(f"{w}.Condition is required")
            cond = _expression(branch["Condition"], f"{w}.Condition")
            nxt = branch.get("Next")
            if not isinstance(nxt, str) or not nxt:
                raise CloudFlowError(f"{w}.Next is required (a state name)")
            step.choices.append((cond, None, nxt))
            targets.append((f"Branches[{i}].Next", nxt))
        default = raw.get("Default")
        if not isinstance(default, str) or not default:
            raise CloudFlowError(
                f"{label}: field 'Default' is required (the state to run when no Condition holds)"
            )
        step.default = (None, default)
        targets.append(("Default", default))

    def _parallel(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        branches = raw.get("Branches")
        if not isinstance(branches, list) or not branches:
            raise CloudFlowError(f"{label}: field 'Branches' must be a non-empty list of {{StartAt, States}}")
        if len(branches) > limits.CLOUDFLOW_MAX_PARALLEL_BRANCHES:
            raise CloudFlowError(
                f"{label}: {len(branches)} branches, more than {limits.CLOUDFLOW_MAX_PARALLEL_BRANCHES}"
            )
        for i, branch in enumerate(branches):
            w = f"{label}: Branches[{i}]"
            if not isinstance(branch, dict) or set(branch) - {"StartAt", "States"}:
                raise CloudFlowError(f"{w} must be a mapping with StartAt and States")
            step.branches.append(self.scope(branch, f"{step.id}/b{i}", w))
        self._errors_of(step, raw, label)

    def _map(self, step: Step, raw: dict[str, Any], label: str, targets: list[tuple[str, str]]) -> None:
        if "ItemsPath" not in raw:
            raise CloudFlowError(f"{label}: field 'ItemsPath' is required (an expression giving an array)")
        step.items_expr = _expression(raw["ItemsPath"], f"{label}: field 'ItemsPath'")
        config = raw.get("ProcessorConfig")
        if config is not None and (
            not isinstance(config, dict) or config.get("ExecutionMode") not in (None, "Inline")
        ):
            raise CloudFlowError(
                f"{label}: field 'ProcessorConfig' selects a distributed Map, which is not emulated"
            )
        processor = raw.get("Processor")
        if not isinstance(processor, dict) or set(processor) - {"StartAt", "States"}:
            raise CloudFlowError(
                f"{label}: field 'Processor' is required (a mapping with StartAt and States)"
            )
        if "MaxConcurrency" in raw and "MaxConcuccency" in raw:
            raise CloudFlowError(f"{label}: give MaxConcurrency once (MaxConcuccency is the same field)")
        top = limits.CLOUDFLOW_MAX_MAP_CONCURRENCY
        for key in ("MaxConcurrency", "MaxConcuccency"):
            if key in raw:
                step.max_concurrency = _integer(raw[key], f"{label}: field {key!r}", 1, top)
        step.max_concurrency = step.max_concurrency or top
        step.iteration = self.scope(processor, f"{step.id}/it", f"{label}: Processor")
        self._errors_of(step, raw, label)


def build_state_machine(raw: Any, mode: str = "Standard") -> Flow:
    """Validate and compile a loaded CloudFlow definition; ``mode`` is the flow's ExecutionMode."""
    if not isinstance(raw, dict):
        raise CloudFlowError(
            "the flow definition must be a mapping with Type, SpecVersion, StartAt and States"
        )
    if raw.get("Type") != TYPE:
        raise CloudFlowError(f"field 'Type' must be {TYPE}, got {raw.get('Type')!r}")
    if raw.get("SpecVersion") not in SPEC_VERSIONS:
        raise CloudFlowError(
            f"field 'SpecVersion' must be one of {', '.join(SPEC_VERSIONS)}, got {raw.get('SpecVersion')!r}"
        )
    known = {"Type", "Name", "SpecVersion", "StartAt", "States", "Description"}
    if set(raw) - known:
        raise CloudFlowError(
            f"the flow has unknown field(s) {sorted(set(raw) - known)} (fields: {', '.join(sorted(known))})"
        )
    if "Name" in raw and not isinstance(raw["Name"], str):
        raise CloudFlowError("field 'Name' must be a string (the flow's name)")
    builder = _Builder(mode)
    builder.scope(raw, "root", "the flow")
    if mode == "Express":
        for step in builder.steps.values():
            if step.waits:
                raise CloudFlowError(
                    f"state {step.name!r}: field 'TaskMode' {step.task_mode} needs ExecutionMode Standard "
                    "(an Express flow runs RequestComplete tasks only, for at most 5 minutes)"
                )
    return Flow(
        version=str(raw["SpecVersion"]),
        steps=builder.steps,
        lists=builder.lists,
        starts=builder.starts,
        semantics=SEMANTICS,
        language="cloudflow",
    )


def is_state_machine(raw: Any) -> bool:
    """Whether a loaded definition is CloudFlow's (by its shape: ``Type``, ``StartAt``, ``States``)."""
    if not isinstance(raw, dict):
        return False
    return raw.get("Type") == TYPE or bool(
        {"StartAt", "States", "SpecVersion"} & set(raw) and "steps" not in raw
    )


# --------------------------------------------------------------------------------------- run time
def context(
    ex: Execution,
    step: Step,
    frame: dict[str, Any] | None,
    *,
    inp: Any = MISSING,
    output: Any = MISSING,
    token: str | None = None,
) -> dict[str, Any]:
    """``$Context``: ``Execution.{Name, Input, RoleArn}``, ``Current.{Name, Input, Output, Error,
    RetryCount, TaskToken}`` (each Current field only where it exists)."""
    current: dict[str, Any] = {"Name": step.name}
    if inp is MISSING and frame is not None:
        inp = frame.get("input", MISSING)
    if inp is not MISSING:
        current["Input"] = inp
    if output is not MISSING:
        current["Output"] = output
    if frame is not None:
        if frame.get("error"):
            current["Error"] = dict(frame["error"])
        current["RetryCount"] = sum(frame.get("retries", {}).values())
        token = token or frame.get("token")
    else:
        current["RetryCount"] = 0
    if token:
        current["TaskToken"] = token
    return {
        "Execution": {"Name": ex.name, "Input": json.loads(ex.input), "RoleArn": ex.role_arn},
        "Current": current,
    }


def _evaluate(what: str, step: Step, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ExpressionError as err:
        raise StateError(EXPRESSION_ERROR, f"state {step.name}: {what}: {err}") from None


def _holds(cond: Any, env: dict[str, Any]) -> bool:
    return truthy(cond.evaluate(env))


def _check_size(value: Any, what: str, step: Step) -> None:
    size = json_size(value)
    if size > limits.CLOUDFLOW_MAX_STATE_BYTES:
        raise Abort(
            DATA_LIMIT_ERROR,
            f"state {step.name}: its {what} is {size} bytes, more than {limits.CLOUDFLOW_MAX_STATE_BYTES}",
        )


class CloudFlowSemantics:
    """CloudFlow data flow (see the module docstring); the engine calls these."""

    max_report_bytes = limits.CLOUDFLOW_MAX_REPORT_OUTPUT_BYTES
    succeed_ends_execution = False
    records_local = False

    def begin(self, ex: Execution) -> dict[str, Any]:
        return dict(json.loads(ex.input))

    def scope_local(self, inp: Any) -> Any:
        return inp  # the input of the scope's first state

    def _env(
        self, ex: Execution, step: Step, frame: dict[str, Any] | None, inp: Any, **ctx: Any
    ) -> dict[str, Any]:
        env = {"Input": inp, "Context": context(ex, step, frame, inp=inp, **ctx), "Global": ex.globals}
        if "output" in ctx:
            env["Output"] = ctx["output"]
        return env

    def step_input(self, ex: Execution, scope: dict[str, Any], step: Step, token: str | None) -> Any:
        base = scope["local"]
        if step.input_template is None:
            inp = base
        else:
            template = step.input_template
            env = self._env(ex, step, None, base, token=token)
            inp = _evaluate("InputConstructor", step, lambda: template.render(env))
        _check_size(inp, "input", step)
        return inp

    def chosen(self, ex: Execution, step: Step, frame: dict[str, Any]) -> int | None:
        env = self._env(ex, step, frame, frame["input"])
        for i, (cond, _, _) in enumerate(step.choices):
            if _evaluate(f"Branches[{i}].Condition", step, partial(_holds, cond, env)):
                return i
        return None

    def items(self, ex: Execution, step: Step, frame: dict[str, Any]) -> Any:
        expr = step.items_expr
        assert expr is not None
        env = self._env(ex, step, frame, frame["input"])
        items = _evaluate("ItemsPath", step, lambda: expr.evaluate(env))
        if not isinstance(items, list):
            what = "null" if items is None else f"a {type(items).__name__}"
            raise StateError(
                INVALID_COLLECTION_ERROR,
                f"Map state {step.name}: ItemsPath {expr.text} is {what}, not an array",
            )
        return items

    def iteration_input(self, step: Step, inp: Any, item: Any, index: int) -> Any:
        return item  # each element is its iteration's input (a non-object element as is: *unconfirmed*)

    def wait_until(self, ex: Execution, step: Step, frame: dict[str, Any], now: float) -> float:
        if step.duration is not None:
            return now + step.duration
        expr = step.duration_expr
        assert expr is not None
        env = self._env(ex, step, frame, frame["input"])
        seconds = _evaluate("Seconds.$", step, lambda: expr.evaluate(env))
        hi = (
            limits.CLOUDFLOW_MAX_WAIT_SECONDS_EXPRESS
            if ex.mode == "Express"
            else limits.CLOUDFLOW_MAX_WAIT_SECONDS_STANDARD
        )
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= hi:
            raise StateError(
                EXPRESSION_ERROR,
                f"state {step.name}: Seconds.$ ({expr.text}) gave {json.dumps(seconds)}, not an integer 1..{hi} "
                f"({ex.mode} mode)",
            )
        return now + seconds

    def message(
        self, ex: Execution, step: Step, frame: dict[str, Any], token: str | None
    ) -> tuple[str, str, int, int]:
        if step.action != MNS_SEND_MESSAGE:
            raise StateError(
                ACTION_NOT_EMULATED_ERROR,
                f"state {step.name}: the emulator does not run action {step.action} (it runs MNS:SendMessage "
                "to MNS queues)",
            )
        template = step.parameters
        assert template is not None
        env = self._env(ex, step, frame, frame["input"], token=token)
        params = _evaluate("Parameters", step, lambda: template.render(env))
        arn = params.get("resourceArn")
        m = MNS_ARN.match(arn) if isinstance(arn, str) else None
        if m is None:
            raise StateError(
                INVALID_PARAMETERS_ERROR,
                f"state {step.name}: Parameters.resourceArn {arn!r} is not acs:mns:REGION:ACCOUNT:/queues/NAME/messages",
            )
        if m.group("kind") == "topics":
            raise StateError(
                ACTION_NOT_EMULATED_ERROR,
                f"state {step.name}: MNS topics are not emulated ({arn}); use a queue",
            )
        # The body is sent as raw text, not base64, and the token is in it only where the flow put
        # it with a .$ key (both *unconfirmed*).
        body = params.get("message")
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        values = {}
        for key, default, lo, hi in (
            ("priority", limits.MNS_DEFAULT_PRIORITY, limits.MNS_MIN_PRIORITY, limits.MNS_MAX_PRIORITY),
            ("delaySeconds", 0, 0, limits.MNS_MAX_DELAY_SECONDS),
        ):
            value = params.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise StateError(
                    INVALID_PARAMETERS_ERROR,
                    f"state {step.name}: Parameters.{key} must be an integer {lo}..{hi}, got {json.dumps(value)}",
                )
            values[key] = value
        return m.group("name"), text, values["priority"], values["delaySeconds"]

    def sent(self, message_id: str, body: str) -> Any:
        # The result of a sent message (*unconfirmed* shape: SendMessage's response fields).
        return {"MessageId": message_id, "MessageBodyMD5": hashlib.md5(body.encode()).hexdigest().upper()}

    def task_timeout(self, ex: Execution, step: Step, frame: dict[str, Any]) -> float | None:
        if step.timeout_expr is None:
            return step.timeout_seconds
        expr = step.timeout_expr
        env = self._env(ex, step, frame, frame["input"])
        value = _evaluate("Timeout.$", step, lambda: expr.evaluate(env))
        top = limits.CLOUDFLOW_MAX_TASK_TIMEOUT_SECONDS
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise StateError(
                EXPRESSION_ERROR,
                f"state {step.name}: Timeout.$ ({expr.text}) gave {json.dumps(value)}, not an integer 0..{top}",
            )
        return float(value) or None

    def combine(self, step: Step, results: list[Any]) -> Any:
        if step.type == "Parallel":
            return {f"Branch{i}": r for i, r in enumerate(results)}
        return {"Items": results}

    def output(self, ex: Execution, step: Step, frame: dict[str, Any], result: Any) -> Any:
        # Without an OutputConstructor a task's output is its result (*unconfirmed*), a Parallel's
        # its branches', a Map's its items', and any other state's its input.
        raw = frame["input"] if result is None else result
        out = raw
        env = self._env(ex, step, frame, frame["input"], output=raw)
        if step.output_template is not None:
            template = step.output_template
            out = _evaluate("OutputConstructor", step, lambda: template.render(env))
        if step.global_template is not None:
            gtemplate = step.global_template
            update = _evaluate("GlobalConstructor", step, lambda: gtemplate.render(env))
            for key, value in update.items():
                if len(key.encode()) > limits.CLOUDFLOW_MAX_GLOBAL_KEY_BYTES:
                    raise Abort(
                        DATA_LIMIT_ERROR, f"state {step.name}: global key {key[:40]!r}... is too long"
                    )
                if json_size(value) > limits.CLOUDFLOW_MAX_GLOBAL_VALUE_BYTES:
                    raise Abort(
                        DATA_LIMIT_ERROR,
                        f"state {step.name}: global {key!r} is more than {limits.CLOUDFLOW_MAX_GLOBAL_VALUE_BYTES} bytes",
                    )
            ex.globals.update(update)  # $Global = merge($Global, GlobalConstructor(...))
        _check_size(out, "output", step)
        return out

    def absorb(self, scope: dict[str, Any], output: Any) -> None:
        scope["local"] = output  # the next state's input

    def caught(
        self, ex: Execution, step: Step, frame: dict[str, Any], rule: CatchRule, scope: dict[str, Any]
    ) -> None:
        # Without the rule's OutputConstructor, the failed state's input goes on (*unconfirmed*).
        out = frame["input"]
        if rule.output is not None:
            template = rule.output
            env = self._env(ex, step, frame, frame["input"])
            try:
                out = template.render(env)
            except ExpressionError as err:
                raise Abort(EXPRESSION_ERROR, f"state {step.name}: Catch OutputConstructor: {err}") from None
        scope["local"] = out

    def flow_output(self, ex: Execution, local: Any) -> Any:
        size = json_size(local)
        if size > limits.CLOUDFLOW_MAX_STATE_BYTES:
            raise Abort(
                DATA_LIMIT_ERROR,
                f"the flow output is {size} bytes, more than {limits.CLOUDFLOW_MAX_STATE_BYTES}",
            )
        return local

    def fail_info(self, ex: Execution, step: Step, frame: dict[str, Any]) -> tuple[str, str]:
        return step.error, step.cause


SEMANTICS = CloudFlowSemantics()
