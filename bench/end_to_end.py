"""End to end: N executions of the reference flow started at once, through a real Airflow and without.

A local stack (``tools/local_stack/stack.py``: the emulator and Airflow with LocalExecutor
on a private PostgreSQL, each component a process of its own; or ``airflow standalone`` on SQLite
with ``--e2e-database sqlite``; the example DAGs of ``dags_examples/`` unchanged) per mode, one
mode after the other. Each mode deploys its own flow, starts N executions at once, and waits
until every one has ended; latency is the service's own ``StoppedTime - StartedTime`` of each
execution, throughput is N over the time from the first start to the last stop.

``worker``    baseline (a): the reference document's ``worker.py`` loop (receive one message with
              a 10 s long poll, ReportTaskSucceeded, delete), single-threaded, in this process,
              with the same SDKs (through the provider's hooks) and the same emulator.
``rest``      baseline (b), Airflow's floor: the worker DAG ``fnf_reference_worker`` triggered N
              times through Airflow's REST API, with the conf a dispatcher would give it (this
              process receives and leases each message, as the trigger does, and posts the run).
``dispatch``  one run per message: the watcher of ``fnf_demo_dispatcher`` (MNSMessageTrigger) ->
              MNSDispatchMessagesOperator -> one ``fnf_reference_worker`` run per message.
``onetask``   one run per message without a dispatcher run: the watcher of ``fnf_one_task_worker``
              (MNSDispatchTrigger) starts one run per message through Airflow's REST API, from
              the triggerer; the worker is one task (``@task.fnf_callback`` works, reports and
              deletes in one task process; flow ``one_task_flow.yaml``), against the two task
              processes of ``fnf_reference_worker``.
``restonetask`` the REST floor of the one-task worker: ``fnf_one_task_worker`` triggered through
              the REST API as ``rest`` does (its own queue), so ``onetask`` has its own floor.
``watcher``   runs from asset events: ``fnf_watcher_worker`` scheduled on its queue's watcher,
              one mapped task per message (flow ``watcher_flow.yaml``).

Each mode also reports where the time goes (:mod:`bench.timeline`: sent, received, event, run,
task, report, deleted, from the flow's history, the emulator's message events and Airflow's own
timestamps), and then runs ``sequential`` executions one after another on the idle stack: the
latency of one message when nothing else is in flight.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from airflow_provider_fnf.exceptions import FnFProviderError, ServerlessWorkflowTaskAlreadyCompletedError
from airflow_provider_fnf.messages import run_id_for
from bench import timeline
from bench._common import EmulatorProcess, connections, percentile, rounded
from tools.local_stack.stack import DAGS_FOLDER, AirflowAPIError, AirflowTopology, LocalStack

FLOWS = DAGS_FOLDER / "flows"
EXAMPLE_QUEUES = ("fnf-demo", "fnf-data-pipeline", "fnf-watcher-demo", "fnf-one-task")
DISPATCH_QUEUE, WATCHER_QUEUE, ONE_TASK_QUEUE = "fnf-demo", "fnf-watcher-demo", "fnf-one-task"
WORKER_DAG, DISPATCHER_DAG, WATCHER_DAG = "fnf_reference_worker", "fnf_demo_dispatcher", "fnf_watcher_worker"
ONE_TASK_WORKER_DAG = "fnf_one_task_worker"
WORKER_DAGS = {
    "rest": WORKER_DAG,
    "dispatch": WORKER_DAG,
    "onetask": ONE_TASK_WORKER_DAG,
    "restonetask": ONE_TASK_WORKER_DAG,
}
"""The worker DAG of each mode with one run per message."""
QUEUES = {"dispatch": DISPATCH_QUEUE, "watcher": WATCHER_QUEUE, "onetask": ONE_TASK_QUEUE}
"""The queue a mode's watcher receives; the other modes get a queue of their own."""
FINAL = ("Succeeded", "Failed", "TimedOut", "Stopped")
MODES = ("worker", "rest", "dispatch", "watcher", "restonetask", "onetask")
REST_MODES = ("rest", "restonetask")
ASSETS = {"dispatch": "fnf_demo_queue", "watcher": "fnf_watcher_demo_queue"}
"""The asset whose watcher's events carry each mode's messages (``onetask``'s watcher starts the
runs itself: it has no events)."""
SEQUENTIAL = 20
"""Executions one after another on the idle stack, after the concurrent ones."""
GOAL_LATENCY_RATIO = 1.1
TOPOLOGIES = {
    "sqlite": AirflowTopology(),
    "postgresql": AirflowTopology(standalone=False, database="postgresql"),
}
GOAL_THROUGHPUT_RATIO = 0.9

log = logging.getLogger(__name__)


def _time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def _flow_text(mode: str, queue: str) -> str:
    if mode == "watcher":
        return (FLOWS / "watcher_flow.yaml").read_text()
    if mode in ("onetask", "restonetask"):
        return (
            (FLOWS / "one_task_flow.yaml")
            .read_text()
            .replace(f"/queues/{ONE_TASK_QUEUE}/", f"/queues/{queue}/")
        )
    text = (FLOWS / "reference_flow.yaml").read_text()
    return text.replace(f"/queues/{DISPATCH_QUEUE}/", f"/queues/{queue}/")


class PlainWorker(threading.Thread):
    """The reference document's worker.py, with the same SDKs (via the hooks): one message at a
    time, long poll 10 s, report, delete; TaskAlreadyCompleted deletes too."""

    def __init__(self, stack: LocalStack, queue: str) -> None:
        super().__init__(name="plain-worker", daemon=True)
        self.mns = stack.mns_hook()
        self.fnf = stack.fnf_hook()
        self.queue = queue
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        import json

        while not self.stop.is_set():
            try:
                messages = self.mns.receive_messages(self.queue, 1, wait_seconds=10)
                if not messages:
                    continue
                message = messages[0]
                token = json.loads(message.body)["task_token"]
                try:
                    self.fnf.report_task_succeeded(token, {"key": "value"})
                except ServerlessWorkflowTaskAlreadyCompletedError:
                    pass
                assert message.receipt_handle is not None
                self.mns.delete_message(self.queue, message.receipt_handle)
            except FnFProviderError as error:
                self.errors.append(type(error).__name__)


class RestFeeder(threading.Thread):
    """Airflow's floor: receive and lease each message as the trigger does (same receiver), then
    start the worker DAG through the REST API with the dispatcher's run id and conf."""

    def __init__(self, stack: LocalStack, queue: str, worker_dag: str = WORKER_DAG) -> None:
        super().__init__(name="rest-feeder", daemon=True)
        from airflow_provider_fnf.receive_settings import MNSReceiveSettings
        from airflow_provider_fnf.receiver import MNSMessageReceiver

        self.stack = stack
        self.queue = queue
        self.worker_dag = worker_dag
        self.receiver = MNSMessageReceiver(MNSReceiveSettings(queue_name=queue), mns_hook=stack.mns_hook())
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.posted = 0
        self.posted_at: dict[str, float] = {}
        """message id -> when the run's creation was posted to Airflow's API (epoch seconds)."""

    def _post(self, message: dict[str, Any]) -> None:
        run_id = run_id_for(message["queue_name"], message["message_id"])
        for attempt in range(1, 6):
            try:
                posting = time.time()
                self.stack.api.trigger_dag_run(self.worker_dag, conf=message, run_id=run_id)
                self.posted += 1
                self.posted_at.setdefault(message["message_id"], posting)
                return
            except AirflowAPIError as error:
                if error.status == 409:  # created by an earlier attempt whose answer was lost
                    return
                self.errors.append(f"HTTP {error.status} (attempt {attempt})")
            except OSError as error:
                self.errors.append(f"{type(error).__name__} (attempt {attempt})")
            time.sleep(attempt)
        self.receiver.release(message, reason="Airflow's REST API did not create its run")

    def run(self) -> None:
        # One run at a time: the metadata database is SQLite, one writer at a time.
        while not self.stop.is_set():
            try:
                result = self.receiver.receive_batch(2)
            except FnFProviderError as error:
                self.errors.append(type(error).__name__)
                continue
            for message in result.messages:
                self._post(message)


@contextlib.contextmanager
def _background(thread: PlainWorker | RestFeeder | None) -> Iterator[None]:
    if thread is None:
        yield
        return
    thread.start()
    try:
        yield
    finally:
        thread.stop.set()
        thread.join(timeout=30)


def _payload(mode: str, index: int) -> dict[str, Any]:
    if mode == "watcher":
        return {"order_id": f"order-{index:04d}"}
    return {"n": index} if mode in ("onetask", "restonetask") else {}


def _start_all(fnf: Any, flow: str, mode: str, names: list[str]) -> None:
    def start(item: tuple[int, str]) -> None:
        index, name = item
        fnf.start_execution(flow, _payload(mode, index), name)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start, enumerate(names)))


class AirflowDown(RuntimeError):
    """A component of the embedded Airflow stopped: the mode cannot finish."""


def _airflow_problem(stack: LocalStack) -> str | None:
    stopped = [name for name, process in stack.airflow_processes.items() if not process.alive()]
    if stopped or not stack.airflow_processes:
        return f"airflow {', '.join(stopped) or 'processes'} exited"
    try:
        health = stack.api.health()
    except Exception as error:  # an api-server that does not answer is the problem reported
        return f"the api-server does not answer ({type(error).__name__})"
    down = [c for c in ("scheduler", "triggerer") if (health.get(c) or {}).get("status") != "healthy"]
    return f"{', '.join(down)} unhealthy" if down else None


def _wait_all(
    stack: LocalStack,
    fnf: Any,
    flow: str,
    count: int,
    timeout: float,
    echo: Callable[[str], None],
    *,
    airflow: bool,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    last_echo = 0.0
    unhealthy_since: float | None = None
    while True:
        executions = fnf.list_executions(flow)
        ended = [e for e in executions if e.get("Status") in FINAL]
        if len(ended) >= count or time.monotonic() > deadline:
            return executions
        if time.monotonic() - last_echo > 15:
            echo(f"    {len(ended)}/{count} ended")
            last_echo = time.monotonic()
            problem = _airflow_problem(stack) if airflow else None
            if problem is None:
                unhealthy_since = None
            elif unhealthy_since is None:
                unhealthy_since = time.monotonic()
            elif time.monotonic() - unhealthy_since > 60:
                raise AirflowDown(f"{problem} for over 60 s; logs: {stack.work_dir}/airflow-*.log")
        time.sleep(2)


def _runs_of(stack: LocalStack, dag_id: str, flow: str | None = None) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = stack.api.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=100, offset=offset)["dag_runs"]
        runs.extend(page)
        if len(page) < 100:
            break
        offset += 100
    if flow is not None:
        runs = [r for r in runs if (r.get("conf") or {}).get("flow_name") == flow]
    return runs


def _helper(stack: LocalStack, mode: str, queue: str) -> PlainWorker | RestFeeder | None:
    if mode == "worker":
        return PlainWorker(stack, queue)
    if mode in REST_MODES:
        return RestFeeder(stack, queue, WORKER_DAGS[mode])
    return None


def _setup(stack: LocalStack, mode: str) -> tuple[str, str, str]:
    """A flow of its own (and a queue of its own, for the modes with no watcher): queue, flow, tag."""
    fnf, mns = stack.fnf_hook(), stack.mns_hook()
    tag = uuid.uuid4().hex[:6]
    queue = QUEUES.get(mode, f"bench-{mode}-{tag}")
    mns.create_queue(queue)
    flow = f"bench-e2e-{mode}-{tag}"
    fnf.create_or_update_flow(flow, _flow_text(mode, queue))
    return queue, flow, tag


def _timelines(
    stack: LocalStack,
    mode: str,
    flow: str,
    queue: str,
    names: list[str],
    helper: PlainWorker | RestFeeder | None,
) -> list[dict[str, float | None]]:
    """One timeline per execution (:mod:`bench.timeline`), from the records of all three sides."""
    by_execution = timeline.flow_marks(stack.fnf_hook(), flow, names)
    message_ids = {m.get("message_id") for m in by_execution.values()} - {None}
    deadline = time.monotonic() + 30  # the delete follows the report by a moment
    while True:
        queued = timeline.queue_marks(stack.emulator.mns_endpoint, queue)
        deleted = {mid for mid in message_ids if "deleted" in queued.get(mid, {})}
        if deleted == message_ids or time.monotonic() > deadline:
            break
        time.sleep(1)
    events: dict[str, dict[str, Any]] = {}
    run_created: dict[str, float | None] = {}  # run id -> queued_at
    task_started: dict[str, float] = {}
    last_task_started: dict[str, float] = {}
    run_of: dict[str, str] = {}  # message id -> the run that worked on it
    if mode in ASSETS:
        events = timeline.asset_event_marks(stack.api, ASSETS[mode])
    if mode in WORKER_DAGS:
        runs = _runs_of(stack, WORKER_DAGS[mode], flow)
        run_of = {(r.get("conf") or {}).get("message_id", "?"): r["dag_run_id"] for r in runs}
        run_created = {r["dag_run_id"]: timeline.parse_time(r.get("queued_at")) for r in runs}
        task_started, last_task_started = timeline.task_starts(
            stack.api, WORKER_DAGS[mode], set(run_of.values())
        )
    elif mode == "watcher":
        run_of = {mid: mark["run_ids"][0] for mid, mark in events.items() if mark["run_ids"]}
        wanted = set(run_of.values())
        runs = [r for r in _runs_of(stack, WATCHER_DAG) if r["dag_run_id"] in wanted]
        run_created = {r["dag_run_id"]: timeline.parse_time(r.get("queued_at")) for r in runs}
        task_started, last_task_started = timeline.task_starts(stack.api, WATCHER_DAG, wanted)
    timelines: list[dict[str, float | None]] = []
    for marks in by_execution.values():
        mid = marks.get("message_id")
        if mid is None:
            continue
        run_id = run_of.get(mid)
        event: float | None = events.get(mid, {}).get("event")
        if isinstance(helper, RestFeeder):
            event = helper.posted_at.get(mid)
        timelines.append(
            {
                "sent": marks.get("sent"),
                "received": queued.get(mid, {}).get("received"),
                "event": event,
                "run": run_created.get(run_id) if run_id else None,
                "task": task_started.get(run_id) if run_id else None,
                "last_task": last_task_started.get(run_id) if run_id else None,
                "report": marks.get("report"),
                "deleted": queued.get(mid, {}).get("deleted"),
            }
        )
    return timelines


def measure(
    stack: LocalStack, mode: str, count: int, timeout: float, echo: Callable[[str], None]
) -> dict[str, Any]:
    fnf, mns = stack.fnf_hook(), stack.mns_hook()
    queue, flow, tag = _setup(stack, mode)
    names = [f"{mode}-{i:04d}-{tag}" for i in range(count)]
    watcher_runs_before = (
        {r["dag_run_id"] for r in _runs_of(stack, WATCHER_DAG)} if mode == "watcher" else set()
    )
    helper = _helper(stack, mode, queue)
    with _background(helper):
        started = time.monotonic()
        _start_all(fnf, flow, mode, names)
        echo(f"    started {count} executions in {time.monotonic() - started:.1f} s")
        executions = _wait_all(stack, fnf, flow, count, timeout, echo, airflow=mode != "worker")
        wall = time.monotonic() - started
        timelines = _timelines(stack, mode, flow, queue, names, helper)
    mine = [e for e in executions if e.get("Name") in set(names)]
    latencies: list[float] = []
    first_start: float | None = None
    last_stop: float | None = None
    statuses: dict[str, int] = {}
    for execution in mine:
        statuses[execution.get("Status", "?")] = statuses.get(execution.get("Status", "?"), 0) + 1
        begin, end = _time(execution.get("StartedTime")), _time(execution.get("StoppedTime"))
        if begin is None:
            continue
        first_start = begin if first_start is None else min(first_start, begin)
        if execution.get("Status") == "Succeeded" and end is not None:
            latencies.append(end - begin)
            last_stop = end if last_stop is None else max(last_stop, end)
    span = (last_stop - first_start) if first_start is not None and last_stop is not None else None
    attributes = mns.get_queue_attributes(queue)
    row: dict[str, Any] = {
        "mode": mode,
        "executions": count,
        "succeeded": statuses.get("Succeeded", 0),
        "statuses": statuses,
        "median_seconds": rounded(percentile(latencies, 0.5)),
        "p95_seconds": rounded(percentile(latencies, 0.95)),
        "max_seconds": rounded(max(latencies) if latencies else None),
        "span_seconds": rounded(span),
        "executions_per_minute": rounded(len(latencies) * 60 / span if span else None, 1),
        "wall_seconds": rounded(wall, 1),
        "left_in_queue": attributes.get("active_messages", 0) + attributes.get("inactive_messages", 0),
        "hops": timeline.hop_row(mode, timelines),
    }
    if helper is not None:
        row["helper_errors"] = helper.errors[:10]
    if mode in WORKER_DAGS:
        runs = _runs_of(stack, WORKER_DAGS[mode], flow)
        per_message: dict[str, int] = {}
        for run in runs:
            mid = (run.get("conf") or {}).get("message_id", "?")
            per_message[mid] = per_message.get(mid, 0) + 1
        row["worker_runs"] = len(runs)
        row["duplicate_runs"] = sum(n - 1 for n in per_message.values() if n > 1)
        row["failed_runs"] = sum(1 for r in runs if r.get("state") == "failed")
    if mode == "watcher":
        runs = [r for r in _runs_of(stack, WATCHER_DAG) if r["dag_run_id"] not in watcher_runs_before]
        row["worker_runs"] = len(runs)
        row["failed_runs"] = sum(1 for r in runs if r.get("state") == "failed")
    return row


def measure_sequential(
    stack: LocalStack, mode: str, count: int, timeout: float, echo: Callable[[str], None]
) -> dict[str, Any]:
    """``count`` executions one after another, each started when the previous one ended."""
    fnf = stack.fnf_hook()
    queue, flow, tag = _setup(stack, mode)
    names = [f"{mode}-seq-{i:03d}-{tag}" for i in range(count)]
    helper = _helper(stack, mode, queue)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    with _background(helper):
        for index, name in enumerate(names):
            fnf.start_execution(flow, _payload(mode, index), name)
            deadline = time.monotonic() + timeout
            while True:
                execution = fnf.describe_execution(flow, name, wait_time_seconds=10)
                if execution.get("Status") in FINAL or time.monotonic() > deadline:
                    break
            status = execution.get("Status", "?")
            statuses[status] = statuses.get(status, 0) + 1
            begin, end = _time(execution.get("StartedTime")), _time(execution.get("StoppedTime"))
            if status == "Succeeded" and begin is not None and end is not None:
                latencies.append(end - begin)
        timelines = _timelines(stack, mode, flow, queue, names, helper)
    row = {
        "mode": mode,
        "executions": count,
        "succeeded": statuses.get("Succeeded", 0),
        "p50_seconds": rounded(percentile(latencies, 0.5)),
        "p95_seconds": rounded(percentile(latencies, 0.95)),
        "max_seconds": rounded(max(latencies) if latencies else None),
        "hops": timeline.hop_row(mode, timelines),
    }
    echo(
        f"    one at a time: {row['succeeded']}/{count} succeeded, p50 {row['p50_seconds']} s, "
        f"p95 {row['p95_seconds']} s"
    )
    return row


def _prepare(stack: LocalStack) -> None:
    mns = stack.mns_hook()
    for queue in EXAMPLE_QUEUES:
        mns.create_queue(queue)


class EmulatorOnly:
    """What the plain worker needs of a stack: hooks on an emulator, no Airflow."""

    def __init__(self, emulator: EmulatorProcess) -> None:
        self.emulator = emulator

    def mns_hook(self) -> Any:
        from airflow_provider_fnf.hooks.mns import MNSHook

        with connections(self.emulator.mns_endpoint, self.emulator.fnf_endpoint):
            hook = MNSHook("mns_default")
            _ = hook.settings  # read while the connection variable is set
        return hook

    def fnf_hook(self) -> Any:
        from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook

        with connections(self.emulator.mns_endpoint, self.emulator.fnf_endpoint):
            hook = ServerlessWorkflowHook("fnf_default")
            _ = hook.settings
        return hook


def _measure_mode(
    mode: str,
    executions: int,
    timeout: float,
    warm_up: int,
    database: str,
    echo: Callable[[str], None],
    sequential: int = SEQUENTIAL,
) -> dict[str, Any]:
    """One mode on a stack of its own: a mode that brings Airflow down does not take the next
    one with it, and no mode inherits another's leftovers."""
    if mode == "worker":
        with EmulatorProcess() as emulator:
            echo(f"  {mode}: {executions} executions at once (emulator only, no Airflow)")
            only = EmulatorOnly(emulator)
            row = measure(only, mode, executions, timeout, echo)  # type: ignore[arg-type]
            if sequential:
                row["sequential"] = measure_sequential(only, mode, sequential, timeout, echo)  # type: ignore[arg-type]
            return row
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as work_dir:
        stack = LocalStack(
            Path(work_dir),
            echo=lambda line: echo(f"  [stack] {line}"),
            prepare=_prepare,
            topology=TOPOLOGIES[database],
        )
        with stack:
            stack.api.wait_for_dags(
                [DISPATCHER_DAG, WORKER_DAG, WATCHER_DAG, ONE_TASK_WORKER_DAG],
                echo=echo,
            )
            try:
                if warm_up:
                    echo(f"  {mode}: warm-up with {warm_up} executions (not counted)")
                    measure(stack, mode, warm_up, timeout, echo)
                echo(f"  {mode}: {executions} executions at once")
                row = measure(stack, mode, executions, timeout, echo)
                if sequential:
                    echo(f"  {mode}: {sequential} executions one after another")
                    row["sequential"] = measure_sequential(stack, mode, sequential, timeout, echo)
                return row
            except AirflowDown as error:
                echo(f"    ABORTED: {error}")
                log_tail = stack.airflow_log("scheduler" if database != "sqlite" else "").read_text(
                    errors="replace"
                )[-3000:]
                return {
                    "mode": mode,
                    "executions": executions,
                    "succeeded": 0,
                    "aborted": str(error),
                    "log_tail": log_tail,
                }


def run(
    *,
    executions: int = 100,
    modes: tuple[str, ...] = MODES,
    timeout: float = 900.0,
    warm_up: int = 2,
    database: str = "postgresql",
    sequential: int = SEQUENTIAL,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown e2e mode(s) {unknown}; choose from {', '.join(MODES)}")
    for name in ("airflow_provider_fnf", "airflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    rows: list[dict[str, Any]] = []
    for mode in modes:
        try:
            row = _measure_mode(mode, executions, timeout, warm_up, database, echo, sequential)
        except Exception as error:  # one broken mode does not cost the others' results
            log.exception("mode %s failed", mode)
            echo(f"    FAILED: {type(error).__name__}: {error}")
            row = {"mode": mode, "executions": executions, "succeeded": 0, "aborted": repr(error)[:500]}
        rows.append(row)
        if not row.get("aborted"):
            echo(
                f"    {row['succeeded']}/{executions} succeeded, median {row['median_seconds']} s, "
                f"p95 {row['p95_seconds']} s, {row['executions_per_minute']} executions/min"
            )
    return {
        "benchmark": "end_to_end",
        "airflow": TOPOLOGIES[database].describe(),
        "rows": rows,
        "hops": [r["hops"] for r in rows if r.get("hops")],
        "sequential": [r["sequential"] for r in rows if r.get("sequential")],
        "sequential_hops": [r["sequential"]["hops"] for r in rows if r.get("sequential")],
        "goals": _goals(rows, executions),
    }


def _goals(rows: list[dict[str, Any]], executions: int) -> list[dict[str, Any]]:
    by_mode = {r["mode"]: r for r in rows}
    goals: list[dict[str, Any]] = []
    for row in rows:
        clean = (
            row["succeeded"] == executions and row.get("left_in_queue") == 0 and not row.get("duplicate_runs")
        )
        goals.append(
            {
                "goal": f"{row['mode']}: every execution Succeeded, no message left, no duplicate run",
                "measured": row.get("aborted")
                or f"{row['succeeded']}/{executions} Succeeded, {row.get('left_in_queue')} left, "
                f"{row.get('duplicate_runs', 0)} duplicate runs",
                "met": clean,
            }
        )
    for floor_mode, candidates in (
        ("rest", ("dispatch", "onetask", "watcher")),
        ("restonetask", ("onetask",)),
    ):
        floor = by_mode.get(floor_mode)
        ours = [by_mode[m] for m in candidates if m in by_mode and by_mode[m].get("median_seconds")]
        if not (floor and ours and floor.get("median_seconds") and floor.get("executions_per_minute")):
            continue
        best = min(ours, key=lambda r: r.get("median_seconds") or float("inf"))
        latency_ratio = (best.get("median_seconds") or float("inf")) / floor["median_seconds"]
        goals.append(
            {
                "goal": f"best mode ({best['mode']}) median latency within {GOAL_LATENCY_RATIO}x of "
                f"the {floor_mode} floor",
                "measured": f"{latency_ratio:.2f}x ({best['median_seconds']} s vs {floor['median_seconds']} s)",
                "met": latency_ratio <= GOAL_LATENCY_RATIO,
            }
        )
        fastest = max(ours, key=lambda r: r.get("executions_per_minute") or 0.0)
        throughput_ratio = (fastest.get("executions_per_minute") or 0.0) / floor["executions_per_minute"]
        goals.append(
            {
                "goal": f"best mode ({fastest['mode']}) throughput >= {GOAL_THROUGHPUT_RATIO}x the {floor_mode} floor",
                "measured": f"{throughput_ratio:.2f}x ({fastest['executions_per_minute']} vs "
                f"{floor['executions_per_minute']} executions/min)",
                "met": throughput_ratio >= GOAL_THROUGHPUT_RATIO,
            }
        )
    return goals
