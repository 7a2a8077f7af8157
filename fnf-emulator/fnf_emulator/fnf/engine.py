"""The execution engine: runs flows of both languages, one small state machine per execution.

A flow is a :class:`~.program.Flow`, compiled from FDL or from CloudFlow's language; the engine
knows steps by their behaviour (task, pass, choice, parallel, foreach, wait, succeed, fail) and
leaves how data moves between them to the flow's :class:`~.program.Semantics`. State lives in
*frames* (plain JSON, persisted after every change): a **scope** frame runs one list of steps,
from its start step along each step's successor (the flow's steps, a chosen choice branch, a
parallel branch, an iteration) and holds that level's ``input`` and ``local``; a **step** frame is
a step in progress. Compound steps start child scopes and finish when they end. Work inside an execution is
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
from fnf_emulator.fnf.definitions import parse_definition
from fnf_emulator.fnf.program import (
    TASK_TIMEOUT_ERROR,
    Abort,
    Flow,
    StateError,
    Step,
    matches,
)
from fnf_emulator.fnf.store import Store

log = logging.getLogger(__name__)

RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
STOPPED = "Stopped"
TIMED_OUT = "TimedOut"

FLOW_TIMEOUT_ERROR = "FnF.Timeout"
"""Error of an execution past the flow's timeoutSeconds, or an Express execution past 5 minutes
(*unconfirmed* name)."""
EXPRESS = "Express"


def format_time(ts: float | None) -> str | None:
    """``2019-01-01T01:01:01.001Z``."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


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
    role_arn: str = ""
    mode: str = "Standard"
    qualifier: str = ""
    globals: dict[str, Any] = field(default_factory=dict)
    """CloudFlow's ``$Global``."""
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
        "role_arn",
        "mode",
        "qualifier",
        "globals",
    )

    def record(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._PERSISTED}

    @classmethod
    def from_record(cls, rec: dict[str, Any], events: list[dict[str, Any]]) -> Execution:
        parsed = parse_definition(rec["definition"], rec.get("mode", "Standard"))
        ex = cls(parsed=parsed, **{k: rec[k] for k in cls._PERSISTED if k in rec})
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
            # Not in DescribeExecution's response model (the SDK ignores them), but in
            # StartSyncExecution's; shown for people reading raw JSON.
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
        self,
        flow: str,
        definition: str,
        parsed: Flow,
        name: str,
        input_text: str,
        callback_token: str | None,
        *,
        role_arn: str = "",
        mode: str = "Standard",
        qualifier: str = "",
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
                role_arn=role_arn,
                mode=mode,
                qualifier=qualifier,
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
            frame.pop("token", None)
            for tid in [t for t, v in ex.timers.items() if v["frame"] == fid]:
                del ex.timers[tid]
            if error is None:
                eid = self._event(ex, "TaskSucceeded", step.name, frame["entered"], {"output": output})
                ex.todo.append((self._complete, (fid, output or {})))
            else:
                eid = self._event(
                    ex, "TaskFailed", step.name, frame["entered"], {"error": error, "cause": cause or ""}
                )
                ex.todo.append((self._step_failed, (fid, error, cause or "")))
            self._drive(ex)
            return eid

    def report_limit(self, token: str) -> int:
        """The largest ReportTaskSucceeded Output for ``token``: its flow's language decides (32 KiB
        for FDL, 64 KiB for CloudFlow); the previous service's for a token of no known execution."""
        try:
            parts = tokens.parse_token(token)
        except tokens.TokenError:
            return limits.FNF_MAX_OUTPUT_BYTES
        with self._lock:
            ex = self.executions.get((parts.flow_name, parts.execution_name))
            return ex.parsed.sem.max_report_bytes if ex is not None else limits.FNF_MAX_OUTPUT_BYTES

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
            raise Abort(
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
                ex.todo.append((self._complete, (fid, None)))
            elif kind == "retry":
                ex.todo.append((self._retry, (fid,)))
            elif kind == "task_timeout" and ex.frames[fid].get("waiting") == timer["eid"]:
                frame = ex.frames[fid]
                frame["waiting"] = None
                frame.pop("token", None)
                step = ex.parsed.steps[frame["step"]]
                self._event(ex, "TaskTimedOut", step.name, frame["entered"], {"error": TASK_TIMEOUT_ERROR})
                ex.todo.append(
                    (self._step_failed, (fid, TASK_TIMEOUT_ERROR, f"The task of step {step.name} timed out."))
                )
            self._drive(ex)

    def _drive(self, ex: Execution) -> None:
        try:
            while ex.todo and ex.status == RUNNING:
                fn, args = ex.todo.popleft()
                fn(ex, *args)
        except Abort as abort:
            self._end(ex, FAILED, error=abort.error, cause=abort.cause)
        except Exception as err:
            log.exception("Execution %s of flow %s failed inside the emulator", ex.name, ex.flow)
            self._end(ex, FAILED, error="FnF.InternalError", cause=f"emulator error: {err!r}")
        ex.todo.clear()
        self._persist(ex)

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
        inp = flow.sem.begin(ex)
        ex.flow_input = inp
        timeout = flow.timeout_seconds
        if ex.mode == EXPRESS:  # an Express execution lasts at most 5 minutes
            timeout = min(timeout or limits.CLOUDFLOW_EXPRESS_MAX_SECONDS, limits.CLOUDFLOW_EXPRESS_MAX_SECONDS)
        if timeout:
            self._timer(ex, "flow_timeout", ex.started + timeout)
        self._start_scope(ex, "root", None, inp)

    def _start_scope(self, ex: Execution, list_id: str, parent: str | None, inp: Any, branch: int = 0) -> str:
        sid = self._new_frame(
            ex,
            {
                "kind": "scope",
                "list": list_id,
                "parent": parent,
                "input": inp,
                "local": ex.parsed.sem.scope_local(inp),
                "at": ex.parsed.start_of(list_id),
                "branch": branch,
            },
        )
        ex.todo.append((self._advance, (sid,)))
        return sid

    def _advance(self, ex: Execution, sid: str) -> None:
        scope = ex.frames.get(sid)
        if scope is None:
            return
        if scope["at"] is None:
            self._finish_scope(ex, sid)
            return
        self._enter(ex, sid, ex.parsed.steps[scope["at"]])

    def _enter(self, ex: Execution, sid: str, step: Step) -> None:
        scope = ex.frames[sid]
        sched_eid, token = 0, None
        entered = self._reserve(ex)
        if step.kind == "task":
            sched_eid = self._reserve(ex)
            token = self._token(ex, step, sched_eid)
        failure: StateError | None = None
        try:
            inp = ex.parsed.sem.step_input(ex, scope, step, token)
        except StateError as err:  # an input that cannot be built fails the step
            inp, failure = scope["local"], err
        detail: dict[str, Any] = {"input": inp}
        if scope["parent"] is not None:  # where the step runs: a branch or an iteration of a step
            pstep = ex.parsed.steps[ex.frames[scope["parent"]]["step"]]
            role = {"parallel": "branch", "foreach": "iteration"}.get(pstep.kind, "choice")
            detail["in"] = {"step": pstep.name, role: scope["branch"]}
        self._event(ex, "StepEntered", step.name, detail=detail, eid=entered)
        fid = self._new_frame(
            ex, {"kind": "step", "step": step.id, "scope": sid, "input": inp, "entered": entered}
        )
        if failure is not None:
            ex.todo.append((self._step_failed, (fid, failure.error, failure.cause)))
        elif step.kind == "task":
            self._attempt(ex, fid, sched_eid, token)
        else:
            self._run(ex, fid)

    def _run(self, ex: Execution, fid: str) -> None:
        """Do what a (non-task) step does with its input; a retry of a compound step runs it again."""
        frame = ex.frames[fid]
        step = ex.parsed.steps[frame["step"]]
        sem = ex.parsed.sem
        try:
            if step.kind == "pass":
                ex.todo.append((self._complete, (fid, None)))
            elif step.kind == "succeed":
                self._event(ex, "StepSucceeded", step.name, frame["entered"], {"output": {}})
                root = next(
                    (f for f in ex.frames.values() if f["kind"] == "scope" and f["parent"] is None), None
                )
                self._end(ex, SUCCEEDED, sem.flow_output(ex, root["local"] if root else {}))
            elif step.kind == "fail":
                error, cause = sem.fail_info(ex, step, frame)
                self._event(ex, "StepFailed", step.name, frame["entered"], {"error": error, "cause": cause})
                self._end(ex, FAILED, error=error, cause=cause)
            elif step.kind == "wait":
                self._timer(ex, "wait", sem.wait_until(ex, step, frame, self._clock()), fid)
            elif step.kind == "choice":
                self._choose(ex, fid, step)
            elif step.kind == "parallel":
                frame.update(results=[None] * len(step.branches), pending=len(step.branches))
                for i, list_id in enumerate(step.branches):
                    self._event(ex, "BranchEntered", step.name, frame["entered"], {"branch": i})
                    self._start_scope(ex, list_id, fid, frame["input"], i)
            elif step.kind == "foreach":
                items = sem.items(ex, step, frame)
                frame.update(items=items, results=[None] * len(items), pending=len(items), next=0)
                if not items:
                    ex.todo.append((self._complete, (fid, sem.combine(step, []))))
                width = step.max_concurrency or limits.FNF_MAX_FOREACH_CONCURRENCY
                for _ in range(min(len(items), width)):
                    self._next_iteration(ex, fid)
        except StateError as err:
            ex.todo.append((self._step_failed, (fid, err.error, err.cause)))

    def _choose(self, ex: Execution, fid: str, step: Step) -> None:
        frame = ex.frames[fid]
        i = ex.parsed.sem.chosen(ex, step, frame)
        chosen: tuple[str | None, str | None] | None
        if i is not None:
            chosen = step.choices[i][1:]
            frame["choice"] = i
        else:
            chosen = step.default
            frame["choice"] = "default" if chosen else None
        if chosen is None:
            ex.todo.append((self._complete, (fid, None)))
        elif chosen[0] is None:
            ex.todo.append((self._complete, (fid, None, chosen[1])))
        else:
            frame["goto"] = chosen[1]
            self._start_scope(ex, chosen[0], fid, frame["input"])

    def _next_iteration(self, ex: Execution, fid: str) -> None:
        frame = ex.frames[fid]
        step = ex.parsed.steps[frame["step"]]
        i = frame["next"]
        frame["next"] = i + 1
        self._event(ex, "IterationEntered", step.name, frame["entered"], {"index": i})
        assert step.iteration is not None
        inp = ex.parsed.sem.iteration_input(step, frame["input"], frame["items"][i], i)
        self._start_scope(ex, step.iteration, fid, inp, i)

    def _token(self, ex: Execution, step: Step, eid: int) -> str | None:
        if not step.waits:
            return None
        return tokens.make_token(self.secret, ex.flow, ex.name, eid, ex.id)

    def _attempt(self, ex: Execution, fid: str, eid: int = 0, token: str | None = None) -> None:
        frame = ex.frames[fid]
        step = ex.parsed.steps[frame["step"]]
        sem = ex.parsed.sem
        if not eid:  # a retry: a fresh event id, token and input
            eid = self._reserve(ex)
            token = self._token(ex, step, eid)
            try:
                frame["input"] = sem.step_input(ex, ex.frames[frame["scope"]], step, token)
            except StateError as err:
                ex.todo.append((self._step_failed, (fid, err.error, err.cause)))
                return
        frame["attempt"] = frame.get("attempt", 0) + 1
        self._event(
            ex,
            "TaskScheduled",
            step.name,
            frame["entered"],
            {
                "resourceArn": step.resource_arn,
                "pattern": step.pattern,
                "attempt": frame["attempt"],
                **({"action": step.action} if step.action else {}),
            },
            eid=eid,
        )
        if token:
            frame["token"] = token  # $Context.Current.TaskToken while the task waits
        try:
            queue, body, priority, delay = sem.message(ex, step, frame, token)
            message_id = self._mns.send_message(queue, body, priority, delay)
            timeout = sem.task_timeout(ex, step, frame) if step.waits else None
        except ServiceError as err:
            # Error names of a failed MNS send are *unconfirmed*: "MNS.<code>".
            error, cause = f"MNS.{err.code}", err.message
        except StateError as err:
            error, cause = err.error, err.cause
        else:
            self._event(ex, "TaskSubmitted", step.name, frame["entered"], {"MessageId": message_id})
            if not step.waits:
                result = sem.sent(message_id, body)
                self._event(ex, "TaskSucceeded", step.name, frame["entered"], {"output": result})
                ex.todo.append((self._complete, (fid, result)))
            else:
                frame["waiting"] = eid
                if timeout:
                    self._timer(ex, "task_timeout", self._clock() + timeout, fid, eid)
            return
        frame.pop("token", None)
        self._event(ex, "TaskSubmitFailed", step.name, frame["entered"], {"error": error, "cause": cause})
        ex.todo.append((self._step_failed, (fid, error, cause)))

    def _retry(self, ex: Execution, fid: str) -> None:
        frame = ex.frames.get(fid)
        if frame is None:
            return
        step = ex.parsed.steps[frame["step"]]
        if step.kind == "task":
            self._attempt(ex, fid)
            return
        # A compound step (CloudFlow Parallel or Map) runs again from its input.
        self._drop_subtree(ex, fid)
        for key in ("results", "pending", "items", "next", "choice", "goto"):
            frame.pop(key, None)
        self._run(ex, fid)

    def _step_failed(self, ex: Execution, fid: str, error: str, cause: str) -> None:
        """A step failed: retry it if a rule says so, else fail it (and let catch rules decide)."""
        # maxAttempts = retries after the first attempt, counted per rule (*unconfirmed*).
        frame = ex.frames.get(fid)
        if frame is None:
            return
        step = ex.parsed.steps[frame["step"]]
        frame["error"] = {"Code": error, "Detail": cause}  # $Context.Current.Error
        retries = frame.setdefault("retries", {})
        for i, rule in enumerate(step.retry):
            if matches(rule.errors, error):
                done = retries.get(str(i), 0)
                if done < rule.max_attempts:
                    retries[str(i)] = done + 1
                    self._timer(ex, "retry", self._clock() + rule.delay(done), fid)
                    return
                break  # the first matching rule decides
        self._fail_step(ex, fid, error, cause)

    def _fail_step(self, ex: Execution, fid: str, error: str, cause: str) -> None:
        frame = ex.frames.get(fid)
        if frame is None:
            return
        step = ex.parsed.steps[frame["step"]]
        frame["error"] = {"Code": error, "Detail": cause}
        self._event(ex, "StepFailed", step.name, frame["entered"], {"error": error, "cause": cause})
        self._drop_subtree(ex, fid)
        del ex.frames[fid]
        self._event(ex, "StepExited", step.name, frame["entered"])
        scope = ex.frames[frame["scope"]]
        for rule in step.catch:
            if matches(rule.errors, error):
                ex.parsed.sem.caught(ex, step, frame, rule, scope)
                scope["at"] = ex.parsed.sibling(scope["list"], rule.goto)
                ex.todo.append((self._advance, (frame["scope"],)))
                return
        # Uncaught: the enclosing scope fails, and with it its parent step (or the execution).
        parent = scope["parent"]
        if parent is None:
            self._end(ex, FAILED, error=error, cause=cause)
        else:
            ex.todo.append((self._step_failed, (parent, error, cause)))

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

    def _complete(self, ex: Execution, fid: str, result: Any, goto: str | None = None) -> None:
        frame = ex.frames.get(fid)
        if frame is None:
            return
        step = ex.parsed.steps[frame["step"]]
        sem = ex.parsed.sem
        try:
            out = sem.output(ex, step, frame, result)
        except StateError as err:
            self._step_failed(ex, fid, err.error, err.cause)
            return
        detail: dict[str, Any] = {"output": out}
        if sem.records_local:
            detail["local"] = frame.get("local", result)
        self._event(ex, "StepSucceeded", step.name, frame["entered"], detail)
        del ex.frames[fid]
        self._event(ex, "StepExited", step.name, frame["entered"])
        sid = frame["scope"]
        scope = ex.frames[sid]
        sem.absorb(scope, out)
        scope["at"] = ex.parsed.sibling(scope["list"], goto) if goto else step.next
        ex.todo.append((self._advance, (sid,)))

    def _finish_scope(self, ex: Execution, sid: str) -> None:
        scope = ex.frames.pop(sid)
        parent = scope["parent"]
        sem = ex.parsed.sem
        if parent is None:
            self._end(ex, SUCCEEDED, sem.flow_output(ex, scope["local"]))
            return
        pframe = ex.frames.get(parent)
        if pframe is None:
            return
        pstep = ex.parsed.steps[pframe["step"]]
        if pstep.kind == "choice":
            ex.todo.append((self._complete, (parent, scope["local"], pframe.get("goto"))))
            return
        kind = "BranchExited" if pstep.kind == "parallel" else "IterationExited"
        key = "branch" if pstep.kind == "parallel" else "index"
        self._event(ex, kind, pstep.name, pframe["entered"], {key: scope["branch"]})
        pframe["results"][scope["branch"]] = scope["local"]
        pframe["pending"] -= 1
        if pstep.kind == "foreach" and pframe["next"] < len(pframe["items"]):
            self._next_iteration(ex, parent)
        elif pframe["pending"] == 0:
            ex.todo.append((self._complete, (parent, sem.combine(pstep, pframe["results"]))))
