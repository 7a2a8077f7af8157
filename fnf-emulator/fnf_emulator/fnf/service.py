"""The Serverless Workflow service the emulator's HTTP server hosts (``core.Service``, name "fnf")."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fnf_emulator import limits
from fnf_emulator.core import MNSSender, Request, Response, ServiceError
from fnf_emulator.fnf import api, console
from fnf_emulator.fnf.definitions import DefinitionError, parse_definition
from fnf_emulator.fnf.engine import RUNNING, Engine, Execution, format_time
from fnf_emulator.fnf.program import Flow
from fnf_emulator.fnf.store import Store
from fnf_emulator.fnf.throttle import ActionThrottle
from fnf_emulator.identities import Identities

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")
EXECUTION_MODES = ("Standard", "Express")
SYNC_WAIT_SLACK_SECONDS = 10
"""StartSyncExecution waits for the execution's end: at most 5 minutes, plus this."""
DEFAULT_LIST_LIMIT = 100
"""Page size when Limit is not given (*unconfirmed*)."""
DEFAULT_HISTORY_LIMIT = 1000
"""History page size when Limit is not given (*unconfirmed*)."""
CONSOLE_PREFIX = "/console"


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise ServiceError(400, "MissingRequiredParams", f"The parameter {name} is required.")
    return value


def _check_name(value: str, what: str) -> str:
    if not NAME_RE.match(value):
        raise ServiceError(
            400,
            "InvalidArgument",
            f"{what} {value!r} is invalid: use 1..{limits.FNF_MAX_NAME_CHARS} letters, digits, '_' or '-', "
            "starting with a letter or '_'.",
        )
    return value


def _int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise ServiceError(400, "InvalidArgument", f"{name} must be an integer, got {raw!r}.") from None
    if not lo <= value <= hi:
        raise ServiceError(400, "InvalidArgument", f"{name} must be {lo}..{hi}, got {value}.")
    return value


def _json_object(text: str, what: str, limit: int = limits.FNF_MAX_OUTPUT_BYTES) -> dict[str, Any]:
    # 400 EntityTooLarge over the limit and 400 InvalidArgument for non-objects are *unconfirmed*.
    if len(text.encode()) > limit:
        raise ServiceError(400, "EntityTooLarge", f"{what} is {len(text.encode())} bytes, more than {limit}.")
    try:
        value = json.loads(text)
    except ValueError as err:
        raise ServiceError(400, "InvalidArgument", f"{what} is not valid JSON: {err}.") from None
    if not isinstance(value, dict):
        raise ServiceError(
            400, "InvalidArgument", f"{what} must be a JSON object, got {type(value).__name__}."
        )
    return value


class FnFService:
    """Serverless Workflow (2019-03-15) over the RPC wire format, with an FDL engine and a console."""

    name = "fnf"

    def __init__(
        self,
        mns: MNSSender,
        access_keys: Mapping[str, str],
        sts_tokens: Mapping[str, str] | None = None,
        data_dir: str | None = None,
        throttle: bool = False,
        identities: Identities | None = None,
    ) -> None:
        self._identities = identities or Identities(access_keys, sts_tokens)
        self._store = Store(data_dir)
        self.engine = Engine(self._store, mns)
        self._throttle = ActionThrottle() if throttle else None
        self._flows: dict[str, dict[str, Any]] = {f["Name"]: f for f in self._store.load_flows()}
        self._parsed: dict[str, tuple[tuple[str, str], Flow]] = {}
        self._actions: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "CreateFlow": self._create_flow,
            "UpdateFlow": self._update_flow,
            "DescribeFlow": self._describe_flow,
            "DeleteFlow": self._delete_flow,
            "ListFlows": self._list_flows,
            "StartExecution": self._start_execution,
            "StartSyncExecution": self._start_sync_execution,
            "StopExecution": self._stop_execution,
            "DescribeExecution": self._describe_execution,
            "ListExecutions": self._list_executions,
            "GetExecutionHistory": self._get_execution_history,
            "ReportTaskSucceeded": self._report_task_succeeded,
            "ReportTaskFailed": self._report_task_failed,
        }

    # ----------------------------------------------------------------------------- core.Service
    def operation(self, request: Request) -> str:
        if _is_console(request.path):
            return "Console"
        action = dict(parse_qsl(request.query)).get("Action") or request.headers.get("x-acs-action")
        return action or "Unknown"

    def handle(self, request: Request) -> Response:
        if _is_console(request.path):
            return console.render(self, request)
        rid = api.new_request_id()
        try:
            if request.path not in ("", "/"):
                raise ServiceError(404, "InvalidAction.NotFound", f"No API at path {request.path}.")
            if len(request.body) + len(request.query) > limits.FNF_MAX_REQUEST_BYTES:
                raise ServiceError(
                    400, "EntityTooLarge", f"The request is larger than {limits.FNF_MAX_REQUEST_BYTES} bytes."
                )
            params = api.params_of(request)
            api.verify_signature(request, params, self._identities, time.time())
            action = params.get("Action", "")
            handler = self._actions.get(action)
            if handler is None:
                raise ServiceError(400, "ActionNotSupported", f"The action {action!r} is not supported.")
            if self._throttle is not None and not self._throttle.allow(action):
                raise ServiceError(
                    429, "ResourceThrottled", f"The request of {action} was throttled; retry later."
                )
            body = handler(params)
        except ServiceError as err:
            return api.error_response(err, rid)
        body["RequestId"] = rid
        return api.json_response(200, body, rid)

    def error_response(self, request: Request, error: ServiceError) -> Response:
        return api.error_response(error)

    def reset(self) -> None:
        with self.engine.lock:
            self.engine.reset()
            self._store.clear()
            self._flows.clear()
            self._parsed.clear()
            if self._throttle is not None:
                self._throttle.reset()

    def close(self) -> None:
        self.engine.close()
        with self.engine.lock:
            self._store.close()

    # ----------------------------------------------------------------------------- helpers
    def flows(self) -> list[dict[str, Any]]:
        with self.engine.lock:
            return sorted(self._flows.values(), key=lambda f: f["Name"])

    def flow(self, name: str) -> dict[str, Any]:
        flow = self._flows.get(name)
        if flow is None:
            raise ServiceError(404, "FlowNotExists", f"Flow {name} does not exist.")
        return flow

    def execution(self, flow: str, name: str) -> Execution:
        self.flow(flow)
        ex = self.engine.executions.get((flow, name))
        if ex is None:
            raise ServiceError(404, "ExecutionNotExists", f"Execution {name} of flow {flow} does not exist.")
        return ex

    def executions(self, flow: str) -> list[Execution]:
        with self.engine.lock:
            return sorted(
                (e for (f, _), e in self.engine.executions.items() if f == flow),
                key=lambda e: (e.started, e.name),
            )

    def _parse(self, definition: str, mode: str) -> Flow:
        try:
            parsed = parse_definition(definition, mode)
        except DefinitionError as err:
            # The code of an invalid definition is *unconfirmed* (InvalidArgument).
            raise ServiceError(400, "InvalidArgument", f"The flow definition is invalid: {err}") from None
        if mode == "Express":
            waiting = [s.name for s in parsed.steps.values() if s.waits]
            if waiting:
                raise ServiceError(
                    400,
                    "InvalidArgument",
                    f"step {waiting[0]!r}: waitForCallback needs ExecutionMode Standard (Express lasts 5 minutes).",
                )
        return parsed

    def _parsed_flow(self, flow: dict[str, Any]) -> Flow:
        key = (flow["Definition"], flow["ExecutionMode"])
        cached = self._parsed.get(flow["Name"])
        if cached is None or cached[0] != key:
            cached = (key, parse_definition(flow["Definition"], flow["ExecutionMode"]))
            self._parsed[flow["Name"]] = cached
        return cached[1]

    @staticmethod
    def _page(
        items: list[Any], key: Callable[[Any], str], params: Mapping[str, str], limit: int
    ) -> tuple[list[Any], str | None]:
        token = params.get("NextToken") or ""
        start = 0
        if token:
            keys = [key(i) for i in items]
            if token not in keys:
                raise ServiceError(400, "InvalidArgument", "NextToken is invalid or expired.")
            start = keys.index(token)
        page = items[start : start + limit]
        following = items[start + limit : start + limit + 1]
        return page, (key(following[0]) if following else None)

    # ----------------------------------------------------------------------------- flows
    def _create_flow(self, p: dict[str, str]) -> dict[str, Any]:
        name = _check_name(_required(p, "Name"), "Flow name")
        definition = _required(p, "Definition")
        if p.get("Type", "FDL") not in ("FDL", ""):
            raise ServiceError(400, "InvalidArgument", f"Type must be FDL, got {p['Type']!r}.")
        mode = p.get("ExecutionMode") or "Standard"
        if mode not in EXECUTION_MODES:
            raise ServiceError(
                400, "InvalidArgument", f"ExecutionMode must be Standard or Express, got {mode!r}."
            )
        self._parse(definition, mode)
        environment = _environment(p)
        with self.engine.lock:
            if name in self._flows:
                raise ServiceError(409, "FlowAlreadyExists", f"Flow {name} already exists.")
            now = format_time(time.time())
            flow: dict[str, Any] = {
                "Name": name,
                "Id": str(uuid.uuid4()),
                "Definition": definition,
                "Description": p.get("Description", ""),
                "Type": "FDL",
                "RoleArn": p.get("RoleArn", ""),
                "CreatedTime": now,
                "LastModifiedTime": now,
                "ExecutionMode": mode,
            }
            if environment is not None:
                flow["Environment"] = environment
            if p.get("ExternalStorageLocation"):
                flow["ExternalStorageLocation"] = p["ExternalStorageLocation"]
            self._flows[name] = flow
            self._store.save_flow(flow)
            log.info("Created flow %s", name)
            return dict(flow)

    def _update_flow(self, p: dict[str, str]) -> dict[str, Any]:
        name = _required(p, "Name")
        with self.engine.lock:
            flow = dict(self.flow(name))
            mode = p.get("ExecutionMode") or flow["ExecutionMode"]
            if mode not in EXECUTION_MODES:
                raise ServiceError(
                    400, "InvalidArgument", f"ExecutionMode must be Standard or Express, got {mode!r}."
                )
            if p.get("Definition") or mode != flow["ExecutionMode"]:
                self._parse(p.get("Definition") or flow["Definition"], mode)
                flow["Definition"] = p.get("Definition") or flow["Definition"]
            for key in ("Description", "RoleArn"):
                if key in p:
                    flow[key] = p[key]
            flow["ExecutionMode"] = mode
            flow["LastModifiedTime"] = format_time(time.time())
            self._flows[name] = flow
            self._store.save_flow(flow)
            return dict(flow)

    def _describe_flow(self, p: dict[str, str]) -> dict[str, Any]:
        with self.engine.lock:
            return dict(self.flow(_required(p, "Name")))

    def _delete_flow(self, p: dict[str, str]) -> dict[str, Any]:
        name = _required(p, "Name")
        with self.engine.lock:
            self.flow(name)
            # Running executions of a deleted flow are dropped with it (*unconfirmed*).
            self.engine.drop_flow(name)
            del self._flows[name]
            self._parsed.pop(name, None)
            self._store.delete_flow(name)
            return {}

    def _list_flows(self, p: dict[str, str]) -> dict[str, Any]:
        limit = _int_param(p, "Limit", DEFAULT_LIST_LIMIT, 1, limits.FNF_MAX_LIST_LIMIT)
        page, token = self._page(self.flows(), lambda f: f["Name"], p, limit)
        body: dict[str, Any] = {"Flows": [dict(f) for f in page]}
        if token:
            body["NextToken"] = token
        return body

    # ----------------------------------------------------------------------------- executions
    def _start_execution(self, p: dict[str, str]) -> dict[str, Any]:
        flow_name = _required(p, "FlowName")
        name = p.get("ExecutionName") or str(uuid.uuid4())
        if p.get("ExecutionName"):
            _check_name(name, "Execution name")
        with self.engine.lock:
            flow = self.flow(flow_name)
            parsed = self._parsed_flow(flow)
            if flow["ExecutionMode"] == "Express" and parsed.language == "cloudflow":
                # CloudFlow runs Express flows synchronously only (*unconfirmed* error code).
                raise ServiceError(
                    400,
                    "InvalidArgument",
                    f"Flow {flow_name} has ExecutionMode Express: start it with StartSyncExecution.",
                )
            existing = self.engine.executions.get((flow_name, name))
            if existing is not None:
                if existing.status == RUNNING:
                    return existing.describe()
                raise ServiceError(
                    400, "ExecutionAlreadyExists", f"Execution {name} already exists and has ended."
                )
            ex = self._start(p, flow, parsed, name)
            log.info("Started execution %s of flow %s", name, flow_name)
            return ex.describe()

    def _start(self, p: dict[str, str], flow: dict[str, Any], parsed: Flow, name: str) -> Execution:
        input_text = p.get("Input") or "{}"
        limit = limits.CLOUDFLOW_MAX_STATE_BYTES if parsed.language == "cloudflow" else limits.FNF_MAX_OUTPUT_BYTES
        _json_object(input_text, "Input", limit)
        running = sum(1 for e in self.engine.executions.values() if e.status == RUNNING)
        if running >= 10_000:
            raise ServiceError(400, "ExecutionLimitExceeded", "Too many running executions (10,000).")
        return self.engine.start(
            flow["Name"],
            flow["Definition"],
            parsed,
            name,
            input_text,
            p.get("CallbackFnFTaskToken"),
            role_arn=flow.get("RoleArn", ""),
            mode=flow["ExecutionMode"],
            # Flow versions and aliases are not emulated: a Qualifier is recorded, not resolved
            # (*unconfirmed*).
            qualifier=p.get("Qualifier", ""),
        )

    def _start_sync_execution(self, p: dict[str, str]) -> dict[str, Any]:
        flow_name = _required(p, "FlowName")
        given = p.get("ExecutionName")
        if given:
            _check_name(given, "Execution name")
        # {ExecutionName}:{UUID}, or a generated name (documented); names need not be unique.
        name = f"{given}:{uuid.uuid4()}" if given else str(uuid.uuid4())
        with self.engine.lock:
            flow = self.flow(flow_name)
            if flow["ExecutionMode"] != "Express":
                # *unconfirmed* error code
                raise ServiceError(
                    400,
                    "InvalidArgument",
                    f"Flow {flow_name} has ExecutionMode {flow['ExecutionMode']}: StartSyncExecution runs "
                    "Express flows only (use StartExecution).",
                )
            ex = self._start(p, flow, self._parsed_flow(flow), name)
        self.engine.wait_until_done(ex, limits.CLOUDFLOW_EXPRESS_MAX_SECONDS + SYNC_WAIT_SLACK_SECONDS)
        with self.engine.lock:
            out = ex.describe()
        out.pop("FlowDefinition", None)
        out.pop("Input", None)
        return out

    def _stop_execution(self, p: dict[str, str]) -> dict[str, Any]:
        flow, name = _required(p, "FlowName"), _required(p, "ExecutionName")
        with self.engine.lock:
            ex = self.execution(flow, name)
            if ex.status != RUNNING:
                raise ServiceError(
                    400, "ExecutionAlreadyCompleted", f"Execution {name} has already completed."
                )
            self.engine.stop(ex, p.get("Error") or None, p.get("Cause") or None)
            return ex.describe()

    def _describe_execution(self, p: dict[str, str]) -> dict[str, Any]:
        flow, name = _required(p, "FlowName"), _required(p, "ExecutionName")
        wait = _int_param(p, "WaitTimeSeconds", 0, 0, limits.FNF_MAX_DESCRIBE_WAIT_SECONDS)
        with self.engine.lock:
            ex = self.execution(flow, name)
        if wait:
            self.engine.wait_until_done(ex, wait)
        with self.engine.lock:
            return ex.describe()

    def _list_executions(self, p: dict[str, str]) -> dict[str, Any]:
        flow = _required(p, "FlowName")
        limit = _int_param(p, "Limit", DEFAULT_LIST_LIMIT, 1, limits.FNF_MAX_LIST_LIMIT)
        with self.engine.lock:
            self.flow(flow)
            items = self.executions(flow)
            status = p.get("Status")
            if status:
                items = [e for e in items if e.status == status]
            prefix = p.get("ExecutionNamePrefix")
            if prefix:
                items = [e for e in items if e.name.startswith(prefix)]
            if p.get("Qualifier"):
                items = [e for e in items if e.qualifier == p["Qualifier"]]
            if p.get("MapRunName"):
                # Distributed Map runs are not emulated, so no execution belongs to one (*unconfirmed*).
                items = []
            for key, keep in (
                ("StartedTimeBegin", lambda a, b: a >= b),
                ("StartedTimeEnd", lambda a, b: a <= b),
            ):
                if p.get(key):
                    bound = _parse_time(p[key], key)
                    items = [e for e in items if keep(e.started, bound)]
            page, token = self._page(items, lambda e: e.name, p, limit)
            described = [e.describe() for e in page]
            if p.get("MetadataOnly", "").lower() == "true":
                # Names, status and times only: no definition, input or output (*unconfirmed* set).
                for d in described:
                    for key in ("FlowDefinition", "Input", "Output"):
                        d.pop(key, None)
            body: dict[str, Any] = {"Executions": described}
        if token:
            body["NextToken"] = token
        return body

    def _get_execution_history(self, p: dict[str, str]) -> dict[str, Any]:
        flow, name = _required(p, "FlowName"), _required(p, "ExecutionName")
        limit = _int_param(p, "Limit", DEFAULT_HISTORY_LIMIT, 1, limits.FNF_MAX_HISTORY_LIMIT)
        with self.engine.lock:
            events = list(self.execution(flow, name).events)
        page, token = self._page(events, lambda e: str(e["EventId"]), p, limit)
        body: dict[str, Any] = {"Events": [dict(e) for e in page]}
        if token:
            body["NextToken"] = token
        return body

    def _report_task_succeeded(self, p: dict[str, str]) -> dict[str, Any]:
        token = _required(p, "TaskToken")
        output = _json_object(p.get("Output") or "{}", "Output", self.engine.report_limit(token))
        return {"EventId": self.engine.report(token, output=output)}

    def _report_task_failed(self, p: dict[str, str]) -> dict[str, Any]:
        token = _required(p, "TaskToken")
        error = _required(p, "Error")
        cause = p.get("Cause", "")
        if len(error) > limits.FNF_MAX_ERROR_CHARS:
            raise ServiceError(
                400,
                "InvalidArgument",
                f"Error is {len(error)} characters, more than {limits.FNF_MAX_ERROR_CHARS}.",
            )
        if len(cause) > limits.FNF_MAX_CAUSE_CHARS:
            raise ServiceError(
                400,
                "InvalidArgument",
                f"Cause is {len(cause)} characters, more than {limits.FNF_MAX_CAUSE_CHARS}.",
            )
        return {"EventId": self.engine.report(token, error=error, cause=cause)}


def _environment(p: Mapping[str, str]) -> dict[str, Any] | None:
    """CreateFlow's Environment (JSON ``{"Variables": [{"Name", "Value"}]}``), kept and shown as given."""
    raw = p.get("Environment")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as err:
        raise ServiceError(400, "InvalidArgument", f"Environment is not valid JSON: {err}.") from None
    if not isinstance(value, dict):
        raise ServiceError(400, "InvalidArgument", "Environment must be a JSON object with Variables.")
    return value


def _is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def _parse_time(text: str, what: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ServiceError(
            400, "InvalidArgument", f"{what} must be an ISO 8601 time, got {text!r}."
        ) from None
