"""Flow Definition Language of the previous service (FDL ``version: v1`` / ``v1beta1``).

:func:`parse_flow` turns the YAML (or JSON) text into a :class:`~.program.Flow` whose steps carry
parsed mappings, paths and conditions, or raises :class:`FDLError` with a message naming the step
and the field that is wrong; :class:`FDLSemantics` is how data moves between its steps (``$input``,
``$local``, mappings), for the engine.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml

from fnf_emulator import limits
from fnf_emulator.fnf.conditions import ConditionError, parse_condition
from fnf_emulator.fnf.paths import (
    MISSING,
    PathError,
    apply_mappings,
    json_size,
    merged,
    parse_mappings,
    parse_path,
)
from fnf_emulator.fnf.program import (
    ALL_ERRORS,
    TASK_TIMEOUT_ERROR,
    Abort,
    CatchRule,
    DefinitionError,
    Flow,
    RetryRule,
    StateError,
    Step,
)
from fnf_emulator.limits import MNS_MAX_DELAY_SECONDS, MNS_MAX_PRIORITY, MNS_MIN_PRIORITY

if TYPE_CHECKING:
    from fnf_emulator.fnf.engine import Execution

__all__ = ["ALL_ERRORS", "TASK_TIMEOUT_ERROR", "FDLError", "FDLSemantics", "Flow", "Step", "parse_flow"]

VERSIONS = ("v1", "v1beta1")
STEP_TYPES = ("task", "pass", "choice", "parallel", "foreach", "wait", "succeed", "fail")
PATTERNS = ("requestResponse", "sync", "waitForCallback")
DATA_LIMIT_ERROR = "FnF.DataSizeLimitExceeded"
"""Error name when a step's input + output + local pass 32 KiB (*unconfirmed* name)."""
INVALID_COLLECTION_ERROR = "FnF.InvalidCollection"
"""A foreach whose collection is not an array (*unconfirmed* name)."""

MNS_QUEUE_ARN = re.compile(
    r"^acs:mns:[A-Za-z0-9\-]*:[0-9A-Za-z]*:/queues/([A-Za-z0-9][A-Za-z0-9\-]{0,255})/messages$"
)

_COMMON = {"type", "name", "end", "inputMappings", "outputMappings", "description"}
_FIELDS: dict[str, set[str]] = {
    "task": _COMMON
    | {"resourceArn", "pattern", "timeoutSeconds", "serviceParams", "errorMappings", "retry", "catch"},
    "pass": _COMMON,
    "choice": _COMMON | {"choices", "default"},
    "parallel": _COMMON | {"branches"},
    "foreach": _COMMON | {"iterationMapping", "steps"},
    "wait": _COMMON | {"duration", "timestamp"},
    "succeed": _COMMON,
    "fail": _COMMON | {"error", "cause"},
}


LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when available (much faster), else the pure-Python one."""


class FDLError(DefinitionError):
    """An invalid flow definition; the message names the step and field."""


def _number(value: Any, where: str, *, minimum: float = 0, maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FDLError(f"{where} must be a number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise FDLError(f"{where} must be {bound}, got {value!r}")
    return float(value)


def _errors(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(e, str) and e for e in value):
        raise FDLError(f"{where} must be a non-empty list of error names (e.g. [FnF.ALL])")
    return tuple(value)


class _Builder:
    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.lists: dict[str, list[str]] = {}

    def steps_list(self, raw: Any, list_id: str, where: str, *, required: bool = True) -> str:
        if raw is None and not required:
            raw = []
        if not isinstance(raw, list):
            raise FDLError(f"{where}: steps must be a list")
        ids: list[str] = []
        names: set[str] = set()
        for i, raw_step in enumerate(raw):
            step = self.step(raw_step, f"{list_id}/{i}", f"{where} steps[{i}]")
            if step.name in names:
                raise FDLError(f"step {step.name!r}: duplicate step name at the same level ({where})")
            names.add(step.name)
            ids.append(step.id)
        self.lists[list_id] = ids
        for i, sid in enumerate(ids):  # each step is followed by the next one, unless it ends its list
            step = self.steps[sid]
            step.next = None if step.end or i + 1 == len(ids) else ids[i + 1]
        # gotos must name a sibling in this list
        for sid in ids:
            step = self.steps[sid]
            targets = [c.goto for c in step.catch] + [g for _, _, g in step.choices if g]
            if step.default and step.default[1]:
                targets.append(step.default[1])
            for target in targets:
                if target not in names:
                    raise FDLError(
                        f"step {step.name!r}: goto {target!r} is not a step at the same level "
                        f"(siblings: {sorted(names)})"
                    )
        return list_id

    def step(self, raw: Any, sid: str, where: str) -> Step:
        if not isinstance(raw, dict):
            raise FDLError(f"{where} must be a mapping with type and name")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise FDLError(f"{where}: field 'name' is required (a non-empty string)")
        label = f"step {name!r}"
        stype = raw.get("type")
        if stype not in STEP_TYPES:
            raise FDLError(f"{label}: field 'type' must be one of {', '.join(STEP_TYPES)}, got {stype!r}")
        unknown = set(raw) - _FIELDS[stype]
        if unknown:
            raise FDLError(f"{label}: unknown field(s) {sorted(unknown)} for a {stype} step")
        end = raw.get("end", False)
        if not isinstance(end, bool):
            raise FDLError(f"{label}: field 'end' must be true or false")
        try:
            step = Step(
                id=sid,
                type=stype,
                name=name,
                end=end,
                input_mappings=parse_mappings(raw["inputMappings"], f"{label}: inputMappings")
                if "inputMappings" in raw
                else None,
                output_mappings=parse_mappings(raw["outputMappings"], f"{label}: outputMappings")
                if "outputMappings" in raw
                else None,
            )
        except PathError as err:
            raise FDLError(str(err)) from None
        getattr(self, "_" + stype)(step, raw, label)
        self.steps[sid] = step
        return step

    def _pass(self, step: Step, raw: dict[str, Any], label: str) -> None:
        pass

    def _succeed(self, step: Step, raw: dict[str, Any], label: str) -> None:
        pass

    def _fail(self, step: Step, raw: dict[str, Any], label: str) -> None:
        for key in ("error", "cause"):
            value = raw.get(key, "")
            if not isinstance(value, str):
                raise FDLError(f"{label}: field {key!r} must be a string")
            setattr(step, key, value)

    def _wait(self, step: Step, raw: dict[str, Any], label: str) -> None:
        if ("duration" in raw) == ("timestamp" in raw):
            raise FDLError(f"{label}: a wait step needs exactly one of 'duration' or 'timestamp'")
        if "duration" in raw:
            step.duration = _number(raw["duration"], f"{label}: field 'duration'", maximum=31_536_000)
        else:
            ts = raw["timestamp"]
            try:
                text = ts if isinstance(ts, str) else ts.isoformat()
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except (AttributeError, ValueError):
                raise FDLError(f"{label}: field 'timestamp' must be an RFC 3339 time, got {ts!r}") from None
            if parsed.tzinfo is None:
                raise FDLError(f"{label}: field 'timestamp' needs a time zone (e.g. 2030-01-01T00:00:00Z)")
            step.timestamp = parsed.timestamp()

    def _task(self, step: Step, raw: dict[str, Any], label: str) -> None:
        arn = raw.get("resourceArn")
        if not isinstance(arn, str) or not arn:
            raise FDLError(f"{label}: field 'resourceArn' is required")
        m = MNS_QUEUE_ARN.match(arn)
        if not m:
            if arn.startswith("acs:fc:"):
                what = "Function Compute functions"
            elif arn.startswith("acs:mns:") and "/topics/" in arn:
                what = "MNS topics"
            elif arn.startswith("acs:fnf:"):
                what = "subflows"
            else:
                what = "this resource type"
            raise FDLError(
                f"{label}: field 'resourceArn' {arn!r} is not supported by the emulator ({what} are not "
                "emulated); use an MNS queue: acs:mns:::/queues/<queue>/messages"
            )
        step.resource_arn = arn
        step.queue_name = m.group(1)
        pattern = raw.get("pattern", "requestResponse")
        if pattern not in ("requestResponse", "waitForCallback"):
            raise FDLError(
                f"{label}: field 'pattern' must be requestResponse or waitForCallback for an MNS queue, "
                f"got {pattern!r}"
            )
        step.pattern = pattern
        step.waits = pattern == "waitForCallback"
        if "timeoutSeconds" in raw:
            step.timeout_seconds = _number(
                raw["timeoutSeconds"], f"{label}: field 'timeoutSeconds'", minimum=0.001
            )
        params = raw.get("serviceParams")
        if not isinstance(params, dict):
            raise FDLError(
                f"{label}: field 'serviceParams' is required for an MNS queue (MessageBody, Priority)"
            )
        unknown = set(params) - {"MessageBody", "Priority", "DelaySeconds"}
        if unknown:
            raise FDLError(f"{label}: serviceParams has unknown field(s) {sorted(unknown)}")
        if "MessageBody" not in params:
            raise FDLError(f"{label}: field 'serviceParams.MessageBody' is required")
        if "Priority" not in params:
            raise FDLError(f"{label}: field 'serviceParams.Priority' is required (1..16)")
        for key, lo, hi in (
            ("Priority", MNS_MIN_PRIORITY, MNS_MAX_PRIORITY),
            ("DelaySeconds", 0, MNS_MAX_DELAY_SECONDS),
        ):
            if key not in params:
                continue
            value = params[key]
            if isinstance(value, str) and value.startswith("$"):
                try:
                    parse_path(value)
                except PathError as err:
                    raise FDLError(f"{label}: serviceParams.{key}: {err}") from None
            elif isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise FDLError(
                    f"{label}: field 'serviceParams.{key}' must be an integer {lo}..{hi}, got {value!r}"
                )
        body = params["MessageBody"]
        if isinstance(body, str) and body.startswith("$") and body != "$":
            try:
                parse_path(body)
            except PathError as err:
                raise FDLError(f"{label}: serviceParams.MessageBody: {err}") from None
        step.service_params = dict(params)
        if "errorMappings" in raw:
            try:
                step.error_mappings = parse_mappings(raw["errorMappings"], f"{label}: errorMappings")
            except PathError as err:
                raise FDLError(str(err)) from None
            for i, em in enumerate(step.error_mappings):
                if (
                    em.path is None
                    or em.path.root != "local"
                    or em.path.parts not in (("error",), ("cause",))
                ):
                    raise FDLError(f"{label}: errorMappings[{i}].source must be $local.error or $local.cause")
        retry = raw.get("retry", [])
        if not isinstance(retry, list):
            raise FDLError(f"{label}: field 'retry' must be a list")
        for i, rule in enumerate(retry):
            w = f"{label}: retry[{i}]"
            if not isinstance(rule, dict):
                raise FDLError(f"{w} must be a mapping")
            unknown = set(rule) - {
                "errors",
                "intervalSeconds",
                "maxIntervalSeconds",
                "maxAttempts",
                "multiplier",
            }
            if unknown:
                raise FDLError(f"{w} has unknown field(s) {sorted(unknown)}")
            attempts = rule.get("maxAttempts", 3)
            if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
                raise FDLError(f"{w}.maxAttempts must be a non-negative integer, got {attempts!r}")
            step.retry.append(
                RetryRule(
                    errors=_errors(rule.get("errors"), f"{w}.errors"),
                    interval_seconds=_number(
                        rule.get("intervalSeconds", 1), f"{w}.intervalSeconds", maximum=86_400
                    ),
                    max_interval_seconds=_number(
                        rule.get("maxIntervalSeconds", 86_400), f"{w}.maxIntervalSeconds", maximum=86_400
                    ),
                    max_attempts=attempts,
                    multiplier=_number(rule.get("multiplier", 2), f"{w}.multiplier", minimum=1),
                )
            )
        catch = raw.get("catch", [])
        if not isinstance(catch, list):
            raise FDLError(f"{label}: field 'catch' must be a list")
        for i, rule in enumerate(catch):
            w = f"{label}: catch[{i}]"
            if not isinstance(rule, dict):
                raise FDLError(f"{w} must be a mapping")
            unknown = set(rule) - {"errors", "goto"}
            if unknown:
                raise FDLError(f"{w} has unknown field(s) {sorted(unknown)}")
            goto = rule.get("goto")
            if not isinstance(goto, str) or not goto:
                raise FDLError(f"{w}.goto is required (a step at the same level)")
            step.catch.append(CatchRule(_errors(rule.get("errors"), f"{w}.errors"), goto))

    def _choice(self, step: Step, raw: dict[str, Any], label: str) -> None:
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise FDLError(f"{label}: field 'choices' must be a non-empty list")
        for i, choice in enumerate(choices):
            w = f"{label}: choices[{i}]"
            if not isinstance(choice, dict):
                raise FDLError(f"{w} must be a mapping with condition and steps or goto")
            unknown = set(choice) - {"condition", "steps", "goto"}
            if unknown:
                raise FDLError(f"{w} has unknown field(s) {sorted(unknown)}")
            if "condition" not in choice:
                raise FDLError(f"{w}.condition is required")
            try:
                cond = parse_condition(choice["condition"])
            except ConditionError as err:
                raise FDLError(f"{w}.condition: {err}") from None
            list_id, goto = self._branch(choice, f"{step.id}/c{i}", w)
            step.choices.append((cond, list_id, goto))
        if "default" in raw and raw["default"] is not None:
            default = raw["default"]
            if not isinstance(default, dict):
                raise FDLError(f"{label}: field 'default' must be a mapping with steps and/or goto")
            unknown = set(default) - {"steps", "goto"}
            if unknown:
                raise FDLError(f"{label}: default has unknown field(s) {sorted(unknown)}")
            step.default = self._branch(default, f"{step.id}/d", f"{label}: default")

    def _branch(self, raw: dict[str, Any], list_id: str, where: str) -> tuple[str | None, str | None]:
        goto = raw.get("goto")
        if goto is not None and (not isinstance(goto, str) or not goto):
            raise FDLError(f"{where}.goto must be a step name")
        list_ref = self.steps_list(raw["steps"], list_id, where) if raw.get("steps") is not None else None
        return list_ref, goto

    def _parallel(self, step: Step, raw: dict[str, Any], label: str) -> None:
        branches = raw.get("branches")
        if not isinstance(branches, list) or not branches:
            raise FDLError(f"{label}: field 'branches' must be a non-empty list of {{steps}}")
        for i, branch in enumerate(branches):
            if not isinstance(branch, dict) or "steps" not in branch or set(branch) - {"steps"}:
                raise FDLError(f"{label}: branches[{i}] must be a mapping with only 'steps'")
            step.branches.append(
                self.steps_list(branch["steps"], f"{step.id}/b{i}", f"{label}: branches[{i}]")
            )

    def _foreach(self, step: Step, raw: dict[str, Any], label: str) -> None:
        mapping = raw.get("iterationMapping")
        if not isinstance(mapping, dict):
            raise FDLError(f"{label}: field 'iterationMapping' is required (collection, item, index)")
        unknown = set(mapping) - {"collection", "item", "index"}
        if unknown:
            raise FDLError(f"{label}: iterationMapping has unknown field(s) {sorted(unknown)}")
        try:
            step.collection = parse_path(str(mapping.get("collection", "")))
        except PathError as err:
            raise FDLError(f"{label}: iterationMapping.collection: {err}") from None
        item = mapping.get("item")
        if not isinstance(item, str) or not item:
            raise FDLError(f"{label}: iterationMapping.item is required (the key of the current element)")
        step.item = item
        index = mapping.get("index")
        if index is not None and (not isinstance(index, str) or not index):
            raise FDLError(f"{label}: iterationMapping.index must be a key name")
        step.index = index
        if "steps" not in raw:
            raise FDLError(f"{label}: field 'steps' is required")
        step.iteration = self.steps_list(raw["steps"], f"{step.id}/it", label)


def load_definition(text: str) -> Any:
    """The YAML (or JSON) of a definition, of either language; :class:`FDLError` if it is neither."""
    if not isinstance(text, str) or not text.strip():
        raise FDLError("the flow definition is empty")
    try:
        return yaml.load(text, Loader=LOADER)  # a safe loader (see LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FDLError(
            f"the flow definition is not valid YAML{where}: {getattr(err, 'problem', err)}"
        ) from None


def parse_flow(text: str) -> Flow:
    """Parse and validate an FDL definition (YAML or JSON text)."""
    return build_flow(load_definition(text))


def build_flow(raw: Any) -> Flow:
    """Validate and compile a loaded FDL definition."""
    if not isinstance(raw, dict):
        raise FDLError("the flow definition must be a mapping with version, type and steps")
    if raw.get("version") not in VERSIONS:
        raise FDLError(f"field 'version' must be one of {', '.join(VERSIONS)}, got {raw.get('version')!r}")
    if raw.get("type") != "flow":
        raise FDLError(f"field 'type' must be 'flow', got {raw.get('type')!r}")
    unknown = set(raw) - {
        "version",
        "type",
        "steps",
        "inputMappings",
        "outputMappings",
        "timeoutSeconds",
        "description",
    }
    if unknown:
        raise FDLError(f"the flow has unknown field(s) {sorted(unknown)}")
    if "steps" not in raw:
        raise FDLError("field 'steps' is required")
    builder = _Builder()
    builder.steps_list(raw["steps"], "root", "flow")
    try:
        flow = Flow(
            version=raw["version"],
            steps=builder.steps,
            lists=builder.lists,
            semantics=SEMANTICS,
            language="fdl",
            input_mappings=parse_mappings(raw["inputMappings"], "flow: inputMappings")
            if "inputMappings" in raw
            else None,
            output_mappings=parse_mappings(raw["outputMappings"], "flow: outputMappings")
            if "outputMappings" in raw
            else None,
        )
    except PathError as err:
        raise FDLError(str(err)) from None
    if "timeoutSeconds" in raw:
        flow.timeout_seconds = _number(raw["timeoutSeconds"], "flow: field 'timeoutSeconds'", minimum=0.001)
    return flow


def _context(ex: Execution, step: Step | None, token: str | None = None) -> dict[str, Any]:
    # The $context object's shape beyond execution.name and task.token is *unconfirmed*.
    from fnf_emulator.fnf.engine import format_time

    ctx: dict[str, Any] = {
        "execution": {
            "name": ex.name,
            "input": json.loads(ex.input),
            "startedTime": format_time(ex.started),
        },
        "flow": {"name": ex.flow},
    }
    if step is not None:
        ctx["step"] = {"name": step.name}
    if token is not None:
        ctx["task"] = {"token": token}
    return ctx


class FDLSemantics:
    """FDL data flow: a level's ``$input`` and ``$local``, mappings, ``$.x`` paths (see the module)."""

    max_report_bytes = limits.FNF_MAX_OUTPUT_BYTES
    succeed_ends_execution = True
    records_local = True

    def begin(self, ex: Execution) -> dict[str, Any]:
        inp = json.loads(ex.input)
        if ex.parsed.input_mappings is not None:
            inp = apply_mappings(ex.parsed.input_mappings, {"input": inp, "context": _context(ex, None)})
        return dict(inp)

    def scope_local(self, inp: Any) -> Any:
        return {}

    def step_input(self, ex: Execution, scope: dict[str, Any], step: Step, token: str | None) -> Any:
        if step.input_mappings is None:
            return merged(scope["input"], scope["local"])
        roots = {"input": scope["input"], "local": scope["local"], "context": _context(ex, step, token)}
        return apply_mappings(step.input_mappings, roots)

    def chosen(self, ex: Execution, step: Step, frame: dict[str, Any]) -> int | None:
        roots = {"input": frame["input"], "local": {}, "context": _context(ex, step)}
        for i, (cond, _, _) in enumerate(step.choices):
            if cond.evaluate(roots):
                return i
        return None

    def items(self, ex: Execution, step: Step, frame: dict[str, Any]) -> Any:
        assert step.collection is not None
        items = step.collection.get({"input": frame["input"], "local": {}, "context": _context(ex, step)})
        if not isinstance(items, list):
            what = "missing" if items is MISSING else f"a {type(items).__name__}"
            raise StateError(
                INVALID_COLLECTION_ERROR,
                f"foreach step {step.name}: {step.collection.text} is {what}, not an array",
            )
        return items

    def iteration_input(self, step: Step, inp: Any, item: Any, index: int) -> Any:
        extra: dict[str, Any] = {step.item: item}
        if step.index:
            extra[step.index] = index
        return merged(inp, extra)

    def wait_until(self, ex: Execution, step: Step, frame: dict[str, Any], now: float) -> float:
        return now + step.duration if step.duration is not None else float(step.timestamp or 0)

    def message(
        self, ex: Execution, step: Step, frame: dict[str, Any], token: str | None
    ) -> tuple[str, str, int, int]:
        inp = frame["input"]
        roots = {"input": inp, "local": {}, "context": _context(ex, step, token)}

        def resolve(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("$") and value != "$":
                found = parse_path(value).get(roots)
                return None if found is MISSING else found
            return value

        raw = step.service_params["MessageBody"]
        body = inp if raw == "$" else resolve(raw)
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        priority = resolve(step.service_params["Priority"])
        delay = resolve(step.service_params.get("DelaySeconds", 0))
        for key, value in (("Priority", priority), ("DelaySeconds", delay)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise StateError(
                    "FnF.InvalidServiceParams",
                    f"serviceParams.{key} of step {step.name} is not an integer: {value!r}",
                )
        return step.queue_name, text, priority, delay

    def sent(self, message_id: str, body: str) -> Any:
        return {"MessageId": message_id}  # $local of a sent message (*unconfirmed* shape)

    def task_timeout(self, ex: Execution, step: Step, frame: dict[str, Any]) -> float | None:
        return step.timeout_seconds

    def combine(self, step: Step, results: list[Any]) -> Any:
        return results

    def output(self, ex: Execution, step: Step, frame: dict[str, Any], result: Any) -> Any:
        local = {} if result is None else result
        if step.output_mappings is not None:
            roots = {"input": frame["input"], "local": local, "context": _context(ex, step)}
            out = apply_mappings(step.output_mappings, roots)
        elif step.kind in ("parallel", "foreach"):
            out = {}
        else:
            out = local if isinstance(local, dict) else {}
        size = json_size(frame["input"], out, local)
        if size > limits.FNF_MAX_OUTPUT_BYTES:
            raise Abort(
                DATA_LIMIT_ERROR,
                f"step {step.name}: input, output and local take {size} bytes, more than {limits.FNF_MAX_OUTPUT_BYTES}",
            )
        frame["local"] = local
        return out

    def absorb(self, scope: dict[str, Any], output: Any) -> None:
        scope["local"].update(output)

    def caught(
        self, ex: Execution, step: Step, frame: dict[str, Any], rule: CatchRule, scope: dict[str, Any]
    ) -> None:
        out: dict[str, Any] = {}
        if step.error_mappings:
            error = frame.get("error") or {}
            out = apply_mappings(
                step.error_mappings,
                {"local": {"error": error.get("Code", ""), "cause": error.get("Detail", "")}},
            )
        scope["local"].update(out)

    def flow_output(self, ex: Execution, local: Any) -> Any:
        flow = ex.parsed
        output = local
        if flow.output_mappings is not None:
            roots = {"input": ex.flow_input, "local": local, "context": _context(ex, None)}
            output = apply_mappings(flow.output_mappings, roots)
        if json_size(output) > limits.FNF_MAX_OUTPUT_BYTES:
            raise Abort(DATA_LIMIT_ERROR, f"the flow output is larger than {limits.FNF_MAX_OUTPUT_BYTES} bytes")
        return output

    def fail_info(self, ex: Execution, step: Step, frame: dict[str, Any]) -> tuple[str, str]:
        return step.error, step.cause


SEMANTICS = FDLSemantics()
