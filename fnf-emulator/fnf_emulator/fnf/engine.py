"""The execution engine: runs FDL flows, one small state machine per execution.

State lives in *frames* (plain JSON, persisted after every change): a **scope** frame runs one list
of steps in order (the flow's steps, a chosen choice branch, a parallel branch, a foreach
iteration) and holds that level's ``input`` and ``local``; a **step** frame is a step in
progress. Compound steps start child scopes and finish when they end. Work inside an execution is
a queue of small transitions (no deep recursion), always under one lock; time is handled by one
scheduler thread with a heap of timers (waits, retries, task and flow timeouts), so a waiting
execution costs no thread and no CPU. Timers are part of the persisted state, so a restart re-arms
them; a step waiting for a callback keeps its token and keeps waiting.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fnf_emulator import limits
from fnf_emulator.core import MNSSender, ServiceError
from fnf_emulator.fnf import tokens
from fnf_emulator.fnf.fdl import ALL_ERRORS, TASK_TIMEOUT_ERROR, Flow, Step, parse_flow
from fnf_emulator.fnf.paths import MISSING, apply_mappings, json_size, merged, parse_path
from fnf_emulator.fnf.store import Store

log = logging.getLogger(__name__)

RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
STOPPED = "Stopped"
TIMED_OUT = "TimedOut"

DATA_LIMIT_ERROR = "FnF.DataSizeLimitExceeded"
"""Error name when a step's input + output + local pass 32 KiB (*unconfirmed* name)."""
FLOW_TIMEOUT_ERROR = "FnF.Timeout"
"""Error of an execution past the flow's timeoutSeconds (*unconfirmed* name)."""
INVALID_COLLECTION_ERROR = "FnF.InvalidCollection"
"""A foreach whose collection is not an array (*unconfirmed* name)."""


def format_time(ts: float | None) -> str | None:
    """``2019-01-01T01:01:01.001Z``."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class _Abort(Exception):
    """Fail the whole execution (limits), not catchable by the flow."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


@dataclass
class Execution:
    flow: str
    name: str
    id: str
    definition: str
    input: str
    status: str
    started: float
    parsed: Flow
    stopped: float | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    callback_token: str | None = None
    next_event_id: int = 1
    next_frame: int = 1
    frames: dict[str, dict[str, Any]] = field(default_factory=dict)
    timers: dict[str, dict[str, Any]] = field(default_factory=dict)
    flow_input: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    todo: deque[tuple[Callable[..., None], tuple[Any, ...]]] = field(default_factory=deque)

    _PERSISTED = (
        "flow",
        "name",
        "id",
        "definition",
        "input",
        "status",
        "started",
        "stopped",
        "output",
        "error",
        "cause",
        "callback_token",
        "next_event_id",
        "next_frame",
        "frames",
        "timers",
        "flow_input",
    )

    def record(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._PERSISTED}

    @classmethod
    def from_record(cls, rec: dict[str, Any], events: list[dict[str, Any]]) -> Execution:
        ex = cls(parsed=parse_flow(rec["definition"]), **{k: rec[k] for k in cls._PERSISTED})
        ex.events = events
        return ex

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Name": self.name,
            "FlowName": self.flow,
            "FlowDefinition": self.definition,
            "Input": self.input,
            "Status": self.status,
            "StartedTime": format_time(self.started),
        }
        if self.output is not None:
            out["Output"] = self.output
        if self.stopped is not None:
            out["StoppedTime"] = format_time(self.stopped)
        if self.error is not None:
            # Not in the SDK's response model (it ignores them); shown for people reading raw JSON.
            out["ErrorCode"] = self.error
            out["ErrorMessage"] = self.cause or ""
        return out


class Scheduler:
    """One thread, one heap of timers; callbacks run on that thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fnf-emulator-scheduler", daemon=True)
        self._thread.start()

    def call_at(self, due: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), fn))
            if self._heap[0][2] is fn:
                self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    now = time.time()
                    if self._heap and self._heap[0][0] <= now:
                        fn = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                else:
                    return
            try:
                fn()
            except Exception:
                log.exception("Serverless Workflow emulator timer failed")


class Engine:
    def __init__(self, store: Store, mns: MNSSender, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._mns = mns
        self._clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self.secret = store.token_secret()
        self.executions: dict[tuple[str, str], Execution] = {}
        self._scheduler = Scheduler()
        for rec in store.load_executions():
            try:
                ex = Execution.from_record(rec, store.load_events(rec["flow"], rec["name"]))
            except Exception:
                log.exception("Could not load execution %s of flow %s", rec.get("name"), rec.get("flow"))
                continue
            self.executions[(ex.flow, ex.name)] = ex
            if ex.status == RUNNING:
                log.info("Resuming execution %s of flow %s", ex.name, ex.flow)
                for tid, timer in ex.timers.items():
                    self._arm(ex, tid, timer["due"])

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # ----------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        self._scheduler.close()

    def reset(self) -> None:
        with self._lock:
            self._scheduler.clear()
            for ex in self.executions.values():
                if ex.status == RUNNING:  # wakes long polls on executions that no longer exist
                    ex.status = STOPPED
            self.executions.clear()
            self._changed.notify_all()

    def drop_flow(self, flow: str) -> None:
        with self._lock:
            for key in [k for k in self.executions if k[0] == flow]:
                ex = self.executions.pop(key)
                ex.status = STOPPED if ex.status == RUNNING else ex.status
                ex.frames.clear()
                ex.timers.clear()
            self._changed.notify_all()

    # ----------------------------------------------------------------------------- API entry points
    def start(
        self, flow: str, definition: str, parsed: Flow, name: str, input_text: str, callback_token: str | None
    ) -> Execution:
        with self._lock:
            ex = Execution(
                flow=flow,
                name=name,
                id=uuid.uuid4().hex,
                definition=definition,
                input=input_text,
                status=RUNNING,
                started=self._clock(),
                parsed=parsed,
                callback_token=callback_token,
            )
            self.executions[(flow, name)] = ex
            self._event(ex, "ExecutionStarted", detail={"input": json.loads(input_text)})
            self._timer(ex, "start", ex.started)
            self._persist(ex)
            return ex

    def stop(self, ex: Execution, error: str | None, cause: str | None) -> None:
        with self._lock:
            self._end(ex, STOPPED, error=error, cause=cause)
            self._persist(ex)

    def wait_until_done(self, ex: Execution, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while ex.status == RUNNING and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    def report(
        self,
        token: str,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> int:
        """Report a waiting task's result; return the TaskSucceeded/TaskFailed event id."""
        try:
            parts = tokens.parse_token(token)
        except tokens.TokenError as err:
            raise ServiceError(400, "InvalidArgument", f"The task token is invalid: {err}.") from None
        with self._lock:
            ex = self.executions.get((parts.flow_name, parts.execution_name))
            if ex is None or not tokens.verify(self.secret, parts, ex.id):
                raise ServiceError(
                    400, "InvalidArgument", "The task token is invalid: it was not issued by this service."
                )
            fid = (
                next((k for k, f in ex.frames.items() if f.get("waiting") == parts.event_id), None)
                if ex.status == RUNNING
                else None
            )
            if fid is None:
                raise ServiceError(
                    400, "TaskAlreadyCompleted", f"Task {parts.event_id} has already completed."
                )
            frame = ex.frames[fid]
            step = ex.parsed.steps[frame["step"]]
            frame["waiting"] = None
            for tid in [t for t, v in ex.timers.items() if v["frame"] == fid]:
                del ex.timers[tid]
            if error is None:
                eid = self._event(ex, "TaskSucceeded", step.name, frame["entered"], {"output": output})
                ex.todo.append((self._complete, (fid, output or {})))
            else:
                eid = self._event(
                    ex, "TaskFailed", step.name, frame["entered"], {"error": error, "cause": cause or ""}
                )
                ex.todo.append((self._task_failed, (fid, error, cause or "")))
            self._drive(ex)
            return eid

    # ----------------------------------------------------------------------------- plumbing
    def _persist(self, ex: Execution) -> None:
        if (ex.flow, ex.name) not in self.executions or self._closed:
            return
        self._store.save_execution(ex.record(), ex.pending)
        ex.pending = []

    def _event(
        self,
        ex: Execution,
        etype: str,
        step_name: str = "",
        schedule: int = 0,
        detail: dict[str, Any] | None = None,
        eid: int | None = None,
    ) -> int:
        if eid is None:
            eid = self._reserve(ex)
        ev = {
            "EventId": eid,
            "ScheduleEventId": schedule,
            "Type": etype,
            "StepName": step_name,
            "Time": format_time(self._clock()),
            "EventDetail": json.dumps(detail or {}, ensure_ascii=False),
        }
        ex.events.append(ev)
        ex.pending.append(ev)
        return eid

    def _reserve(self, ex: Execution) -> int:
        eid = ex.next_event_id
        if eid > limits.FNF_MAX_EVENTS_PER_EXECUTION and ex.status == RUNNING:
            raise _Abort(
                "FnF.EventLimitExceeded", f"the execution passed {limits.FNF_MAX_EVENTS_PER_EXECUTION} events"
            )
        ex.next_event_id += 1
        return eid

    def _new_frame(self, ex: Execution, frame: dict[str, Any]) -> str:
        fid = f"f{ex.next_frame}"
        ex.next_frame += 1
        ex.frames[fid] = frame
        return fid

    def _timer(self, ex: Execution, kind: str, due: float, frame: str = "", eid: int = 0) -> None:
        tid = f"t{ex.next_frame}"
        ex.next_frame += 1
        ex.timers[tid] = {"kind": kind, "due": due, "frame": frame, "eid": eid}
        self._arm(ex, tid, due)

    def _arm(self, ex: Execution, tid: str, due: float) -> None:
        key, ex_id = (ex.flow, ex.name), ex.id
        self._scheduler.call_at(due, lambda: self._fire(key, ex_id, tid))

    def _fire(self, key: tuple[str, str], ex_id: str, tid: str) -> None:
        with self._lock:
            ex = self.executions.get(key)
            if ex is None or ex.id != ex_id or ex.status != RUNNING or self._closed:
                return
            timer = ex.timers.pop(tid, None)
            if timer is None:
                return
            kind, fid = timer["kind"], timer["frame"]
            if kind == "start":
                ex.todo.append((self._begin, ()))
            elif kind == "flow_timeout":
                self._end(
                    ex,
                    TIMED_OUT,
                    error=FLOW_TIMEOUT_ERROR,
                    cause="The execution passed the flow's timeoutSeconds.",
                )
            elif fid not in ex.frames:
                return
            elif kind == "wait":
                ex.todo.append((self._complete, (fid, {})))
            elif kind == "retry":
                ex.todo.append((self._attempt, (fid,)))
            elif kind == "task_timeout" and ex.frames[fid].get("waiting") == timer["eid"]:
                frame = ex.frames[fid]
                frame["waiting"] = None
                step = ex.parsed.steps[frame["step"]]
                self._event(ex, "TaskTimedOut", step.name, frame["entered"], {"error": TASK_TIMEOUT_ERROR})
                ex.todo.append(
                    (self._task_failed, (fid, TASK_TIMEOUT_ERROR, f"The task of step {step.name} timed out."))
                )
            self._drive(ex)

    def _drive(self, ex: Execution) -> None:
        try:
            while ex.todo and ex.status == RUNNING:
                fn, args = ex.todo.popleft()
                fn(ex, *args)
        except _Abort as abort:
            self._end(ex, FAILED, error=abort.error, cause=abort.cause)
        except Exception as err:
            log.exception("Execution %s of flow %s failed inside the emulator", ex.name, ex.flow)
            self._end(ex, FAILED, error="FnF.InternalError", cause=f"emulator error: {err!r}")
        ex.todo.clear()
        self._persist(ex)

    def _context(self, ex: Execution, step: Step | None, token: str | None = None) -> dict[str, Any]:
        # The $context object's shape beyond execution.name and task.token is *unconfirmed*.
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

    def _end(
        self,
        ex: Execution,
        status: str,
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
    ) -> None:
        if ex.status != RUNNING:
            return
        etype = {
            SUCCEEDED: "ExecutionSucceeded",
            FAILED: "ExecutionFailed",
            STOPPED: "ExecutionStopped",
            TIMED_OUT: "ExecutionTimedOut",
        }[status]
        ex.status = status  # first: the terminal event is written even past the event limit
        if status == SUCCEEDED:
            ex.output = json.dumps(output if output is not None else {}, ensure_ascii=False)
            self._event(ex, etype, detail={"output": output})
        else:
            ex.error, ex.cause = error, cause
            self._event(ex, etype, detail={"error": error or "", "cause": cause or ""})
        ex.stopped = self._clock()
        ex.frames.clear()
        ex.timers.clear()
        ex.todo.clear()
        self._changed.notify_all()
        if ex.callback_token:
            self._scheduler.call_at(0, lambda: self._report_parent(ex))

    def _report_parent(self, ex: Execution) -> None:
        """StartExecution(CallbackFnFTaskToken=...): report the parent's task when this one ends."""
        try:
            if ex.status == SUCCEEDED:
                self.report(ex.callback_token or "", output=json.loads(ex.output or "{}"))
            else:
                self.report(
                    ex.callback_token or "",
                    error=ex.error or f"FnF.Execution{ex.status}",
                    cause=ex.cause or "",
                )
        except ServiceError as err:
            log.warning("Could not report the parent task of execution %s: %s", ex.name, err.code)

    # ----------------------------------------------------------------------------- transitions
    def _begin(self, ex: Execution) -> None:
        flow = ex.parsed
        inp = json.loads(ex.input)
        if flow.input_mappings is not None:
            inp = apply_mappings(flow.input_mappings, {"input": inp, "context": self._context(ex, None)})
        ex.flow_input = inp
        if flow.timeout_seconds:
            self._timer(ex, "flow_timeout", ex.started + flow.timeout_seconds)
        self._start_scope(ex, "root", None, inp)

    def _start_scope(
        self, ex: Execution, list_id: str, parent: str | None, inp: dict[str, Any], branch: int = 0
    ) -> str:
        sid = self._new_frame(
            ex,
            {
                "kind": "scope",
                "list": list_id,
                "parent": parent,
                "input": inp,
                "local": {},
                "index": 0,
                "branch": branch,
            },
        )
        ex.todo.append((self._advance, (sid,)))
        return sid

    def _advance(self, ex: Execution, sid: str) -> None:
        scope = ex.frames.get(sid)
        if scope is None:
            return
        ids = ex.parsed.lists[scope["list"]]
        if scope["index"] >= len(ids):
            self._finish_scope(ex, sid)
            return
        self._enter(ex, sid, ex.parsed.steps[ids[scope["index"]]])

    def _step_input(
        self, ex: Execution, scope: dict[str, Any], step: Step, token: str | None = None
    ) -> dict[str, Any]:
        if step.input_mappings is None:
            return merged(scope["input"], scope["local"])
        roots = {"input": scope["input"], "local": scope["local"], "context": self._context(ex, step, token)}
        return apply_mappings(step.input_mappings, roots)

    def _enter(self, ex: Execution, sid: str, step: Step) -> None:
        scope = ex.frames[sid]
        sched_eid, token = 0, None
        entered = self._reserve(ex)
        if step.type == "task":
            sched_eid = self._reserve(ex)
            token = self._token(ex, step, sched_eid)
        inp = self._step_input(ex, scope, step, token)
        self._event(ex, "StepEntered", step.name, detail={"input": inp}, eid=entered)
        fid = self._new_frame(
            ex, {"kind": "step", "step": step.id, "scope": sid, "input": inp, "entered": entered}
        )
        frame = ex.frames[fid]
        ctx = self._context(ex, step)
        if step.type == "pass":
            ex.todo.append((self._complete, (fid, {})))
        elif step.type == "succeed":
            self._event(ex, "StepSucceeded", step.name, entered, {"output": {}})
            root = next((f for f in ex.frames.values() if f["kind"] == "scope" and f["parent"] is None), None)
            self._end(ex, SUCCEEDED, self._flow_output(ex, root["local"] if root else {}))
        elif step.type == "fail":
            self._event(ex, "StepFailed", step.name, entered, {"error": step.error, "cause": step.cause})
            self._end(ex, FAILED, error=step.error, cause=step.cause)
        elif step.type == "wait":
            due = self._clock() + step.duration if step.duration is not None else float(step.timestamp or 0)
            self._timer(ex, "wait", due, fid)
        elif step.type == "task":
            self._attempt(ex, fid, sched_eid, token)
        elif step.type == "choice":
            roots = {"input": inp, "local": {}, "context": ctx}
            chosen: tuple[str | None, str | None] | None = None
            for i, (cond, list_id, goto) in enumerate(step.choices):
                if cond.evaluate(roots):
                    chosen = (list_id, goto)
                    frame["choice"] = i
                    break
            else:
                chosen = step.default
                frame["choice"] = "default" if chosen else None
            if chosen is None:
                ex.todo.append((self._complete, (fid, {})))
            elif chosen[0] is None:
                ex.todo.append((self._complete, (fid, {}, chosen[1])))
            else:
                frame["goto"] = chosen[1]
                self._start_scope(ex, chosen[0], fid, inp)
        elif step.type == "parallel":
            frame.update(results=[None] * len(step.branches), pending=len(step.branches))
            for i, list_id in enumerate(step.branches):
                self._event(ex, "BranchEntered", step.name, entered, {"branch": i})
                self._start_scope(ex, list_id, fid, inp, i)
        elif step.type == "foreach":
            assert step.collection is not None and step.iteration is not None
            items = step.collection.get({"input": inp, "local": {}, "context": ctx})
            if not isinstance(items, list):
                what = "missing" if items is MISSING else f"a {type(items).__name__}"
                ex.todo.append(
                    (
                        self._fail_step,
                        (
                            fid,
                            INVALID_COLLECTION_ERROR,
                            f"foreach step {step.name}: {step.collection.text} is {what}, not an array",
                        ),
                    )
                )
                return
            frame.update(items=items, results=[None] * len(items), pending=len(items), next=0)
            if not items:
                ex.todo.append((self._complete, (fid, [])))
            for _ in range(min(len(items), limits.FNF_MAX_FOREACH_CONCURRENCY)):
                self._next_iteration(ex, fid)

    def _next_iteration(self, ex: Execution, fid: str) -> None:
        frame = ex.frames[fid]
        step = ex.parsed.steps[frame["step"]]
        i = frame["next"]
        frame["next"] = i + 1
        extra: dict[str, Any] = {step.item: frame["items"][i]}
        if step.index:
            extra[step.index] = i
        self._event(ex, "IterationEntered", step.name, frame["entered"], {"index": i})
        assert step.iteration is not None
        self._start_scope(ex, step.iteration, fid, merged(frame["input"], extra), i)

    def _token(self, ex: Execution, step: Step, eid: int) -> str | None:
        if step.pattern != "waitForCallback":
            return None
        return tokens.make_token(self.secret, ex.flow, ex.name, eid, ex.id)

    def _attempt(self, ex: Execution, fid: str, eid: int = 0, token: str | None = None) -> None:
        frame = ex.frames[fid]
        step = ex.parsed.steps[frame["step"]]
        if not eid:  # a retry: a fresh event id, token and input
            eid = self._reserve(ex)
            token = self._token(ex, step, eid)
            frame["input"] = self._step_input(ex, ex.frames[frame["scope"]], step, token)
        inp = frame["input"]
        frame["attempt"] = frame.get("attempt", 0) + 1
        self._event(
            ex,
            "TaskScheduled",
            step.name,
            frame["entered"],
            {"resourceArn": step.resource_arn, "pattern": step.pattern, "attempt": frame["attempt"]},
            eid=eid,
        )
        try:
            body, priority, delay = self._message(ex, step, inp, token)
            message_id = self._mns.send_message(step.queue_name, body, priority, delay)
        except ServiceError as err:
            # Error names of a failed MNS send are *unconfirmed*: "MNS.<code>".
            error, cause = f"MNS.{err.code}", err.message
        except (TypeError, ValueError) as err:
            error, cause = "FnF.InvalidServiceParams", str(err)
        else:
            self._event(ex, "TaskSubmitted", step.name, frame["entered"], {"MessageId": message_id})
            if step.pattern == "requestResponse":
                local = {"MessageId": message_id}  # $local of a sent message (*unconfirmed* shape)
                self._event(ex, "TaskSucceeded", step.name, frame["entered"], {"output": local})
                ex.todo.append((self._complete, (fid, local)))
            else:
                frame["waiting"] = eid
                if step.timeout_seconds:
                    self._timer(ex, "task_timeout", self._clock() + step.timeout_seconds, fid, eid)
            return
        self._event(ex, "TaskSubmitFailed", step.name, frame["entered"], {"error": error, "cause": cause})
        ex.todo.append((self._task_failed, (fid, error, cause)))

    def _message(
        self, ex: Execution, step: Step, inp: dict[str, Any], token: str | None
    ) -> tuple[str, int, int]:
        roots = {"input": inp, "local": {}, "context": self._context(ex, step, token)}

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
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"serviceParams.Priority of step {step.name} is not an integer: {priority!r}")
        if isinstance(delay, bool) or not isinstance(delay, int):
            raise ValueError(f"serviceParams.DelaySeconds of step {step.name} is not an integer: {delay!r}")
        return text, priority, delay

    @staticmethod
    def _matches(errors: tuple[str, ...], error: str) -> bool:
        return ALL_ERRORS in errors or error in errors

    def _task_failed(self, ex: Execution, fid: str, error: str, cause: str) -> None:
        # maxAttempts = retries after the first attempt, counted per rule (*unconfirmed*).
        frame = ex.frames.get(fid)
        if frame is None:
            return
        step = ex.parsed.steps[frame["step"]]
        retries = frame.setdefault("retries", {})
        for i, rule in enumerate(step.retry):
            if self._matches(rule.errors, error):
                done = retries.get(str(i), 0)
                if done < rule.max_attempts:
                    delay = min(rule.interval_seconds * rule.multiplier**done, rule.max_interval_seconds)
                    retries[str(i)] = done + 1
                    self._timer(ex, "retry", self._clock() + delay, fid)
                    return
                break  # the first matching rule decides
        self._fail_step(ex, fid, error, cause)

    def _fail_step(self, ex: Execution, fid: str, error: str, cause: str) -> None:
        frame = ex.frames.get(fid)
        if frame is None:
            return
        step = ex.parsed.steps[frame["step"]]
        self._event(ex, "StepFailed", step.name, frame["entered"], {"error": error, "cause": cause})
        self._drop_subtree(ex, fid)
        del ex.frames[fid]
        self._event(ex, "StepExited", step.name, frame["entered"])
        scope = ex.frames[frame["scope"]]
        for rule in step.catch:
            if self._matches(rule.errors, error):
                out: dict[str, Any] = {}
                if step.error_mappings:
                    out = apply_mappings(step.error_mappings, {"local": {"error": error, "cause": cause}})
                scope["local"].update(out)
                scope["index"] = ex.parsed.sibling_index(scope["list"], rule.goto)
                ex.todo.append((self._advance, (frame["scope"],)))
                return
        # Uncaught: the enclosing scope fails, and with it its parent step (or the execution).
        parent = scope["parent"]
        if parent is None:
            self._end(ex, FAILED, error=error, cause=cause)
        else:
            ex.todo.append((self._fail_step, (parent, error, cause)))

    def _drop_subtree(self, ex: Execution, fid: str) -> None:
        """Remove every frame below step frame ``fid`` (other branches, iterations) and their timers."""

        def under(key: str) -> bool:
            seen = 0
            while key and seen < 10_000:
                f = ex.frames.get(key)
                if f is None:
                    return False
                up = f["scope"] if f["kind"] == "step" else f["parent"]
                if up == fid:
                    return True
                key = up
                seen += 1
            return False

        doomed = [k for k in ex.frames if k != fid and under(k)]
        for k in doomed:
            del ex.frames[k]
        for tid in [t for t, v in ex.timers.items() if v["frame"] and v["frame"] not in ex.frames]:
            del ex.timers[tid]
        for tid in [t for t, v in ex.timers.items() if v["frame"] == fid]:
            del ex.timers[tid]

    def _complete(self, ex: Execution, fid: str, local: Any, goto: str | None = None) -> None:
        frame = ex.frames.get(fid)
        if frame is None:
            return
        step = ex.parsed.steps[frame["step"]]
        if step.output_mappings is not None:
            roots = {"input": frame["input"], "local": local, "context": self._context(ex, step)}
            out = apply_mappings(step.output_mappings, roots)
        elif step.type in ("parallel", "foreach"):
            out = {}
        else:
            out = local if isinstance(local, dict) else {}
        size = json_size(frame["input"], out, local)
        if size > limits.FNF_MAX_OUTPUT_BYTES:
            raise _Abort(
                DATA_LIMIT_ERROR,
                f"step {step.name}: input, output and local take {size} bytes, more than {limits.FNF_MAX_OUTPUT_BYTES}",
            )
        self._event(ex, "StepSucceeded", step.name, frame["entered"], {"output": out, "local": local})
        del ex.frames[fid]
        self._event(ex, "StepExited", step.name, frame["entered"])
        sid = frame["scope"]
        scope = ex.frames[sid]
        scope["local"].update(out)
        if goto:
            scope["index"] = ex.parsed.sibling_index(scope["list"], goto)
        elif step.end:
            scope["index"] = len(ex.parsed.lists[scope["list"]])
        else:
            scope["index"] += 1
        ex.todo.append((self._advance, (sid,)))

    def _flow_output(self, ex: Execution, local: dict[str, Any]) -> dict[str, Any]:
        flow = ex.parsed
        if flow.output_mappings is None:
            return local
        roots = {"input": ex.flow_input, "local": local, "context": self._context(ex, None)}
        return apply_mappings(flow.output_mappings, roots)

    def _finish_scope(self, ex: Execution, sid: str) -> None:
        scope = ex.frames.pop(sid)
        parent = scope["parent"]
        if parent is None:
            output = self._flow_output(ex, scope["local"])
            if json_size(output) > limits.FNF_MAX_OUTPUT_BYTES:
                raise _Abort(
                    DATA_LIMIT_ERROR, f"the flow output is larger than {limits.FNF_MAX_OUTPUT_BYTES} bytes"
                )
            self._end(ex, SUCCEEDED, output)
            return
        pframe = ex.frames.get(parent)
        if pframe is None:
            return
        pstep = ex.parsed.steps[pframe["step"]]
        if pstep.type == "choice":
            ex.todo.append((self._complete, (parent, scope["local"], pframe.get("goto"))))
            return
        kind = "BranchExited" if pstep.type == "parallel" else "IterationExited"
        key = "branch" if pstep.type == "parallel" else "index"
        self._event(ex, kind, pstep.name, pframe["entered"], {key: scope["branch"]})
        pframe["results"][scope["branch"]] = scope["local"]
        pframe["pending"] -= 1
        if pstep.type == "foreach" and pframe["next"] < len(pframe["items"]):
            self._next_iteration(ex, parent)
        elif pframe["pending"] == 0:
            ex.todo.append((self._complete, (parent, pframe["results"])))
