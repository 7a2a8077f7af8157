"""Airflow's own central parts failing under load: the scheduler, the metadata database, a triggerer.

A stack of its own on the distributed topology (``AirflowTopology.distributed()``: api-server,
scheduler, dag-processor, two triggerers, two Celery workers, private PostgreSQL and Redis), with
a triggerer capacity of 1 and two watched queues (``tests/soak/failover_dags/failover.py``:
``failover-a`` dispatched by ``MNSDispatchTrigger`` from the triggerer, ``failover-b`` by the
dispatch operator after an asset event), so that each triggerer holds one watcher. ``EXECUTIONS`` executions, half on each queue, kept at
most ``IN_FLIGHT`` at a time; while they run:

1. the scheduler is killed with SIGKILL and started again (after ``SCHEDULER_KILL_AT`` ended);
2. the metadata PostgreSQL is restarted, every connection cut (after ``DATABASE_RESTART_AT``);
3. the triggerer holding the watcher of ``failover-a`` is killed with SIGKILL while the other
   keeps running (after ``TRIGGERER_KILL_AT``), then started again, as a supervisor would.

A component that exits on its own (a database restart can take one down) is started again, and
that is reported. Afterwards, as a user would check it: every execution Succeeded; every task
token was accepted exactly once (the emulator's ``stats``); both queues are empty; every message
had exactly one worker run; no log holds the secret or a task token. What each failure cost is
reported: from the failure to the next accepted report, and to the first report of a message
sent after it (for the triggerer: on its queue). Results go to ``failover-results.json`` in the
stack's work directory (``FNF_FAILOVER_RESULTS`` overrides).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bench import timeline
from tests.soak.failover_dags import failover
from tests.soak.support import admin, all_pages, scan_logs
from tools.local_stack.flows import callback_flow
from tools.local_stack.processes import session_members
from tools.local_stack.stack import ACCESS_KEY_SECRET, AirflowTopology, LocalStack, StackError

pytestmark = [pytest.mark.soak, pytest.mark.timeout(20 * 60)]

EXECUTIONS = int(os.environ.get("FNF_FAILOVER_EXECUTIONS", "200"))
IN_FLIGHT = 64
"""Executions started but not ended, at most: messages keep arriving across every failure."""
SCHEDULER_KILL_AT, DATABASE_RESTART_AT, TRIGGERER_KILL_AT = 0.1, 0.25, 0.4
"""Fractions of the executions ended: each failure while ``IN_FLIGHT`` are in flight, the last
early enough that messages a failure held for their lease are back before the others end."""
DATABASE_DOWN_SECONDS = 3.0
TRIGGERER_CAPACITY = 1
"""Two watchers, two triggerers: each triggerer holds one."""
PATIENCE_SECONDS = 12 * 60
"""For the executions to end: about 4 min are needed on 2 idle cores."""
FAULT_PATIENCE_SECONDS = 90
"""Longest a failure may wait for its precondition (each triggerer holding one watcher)."""
FINAL = ("Succeeded", "Failed", "TimedOut", "Stopped")
KILLED_QUEUE = failover.QUEUES[0]
_PHASES: dict[str, float] = {}
"""Seconds each phase took (stack start, the executions, each check), printed with the results."""


def _echo(line: str) -> None:
    print(f"[failover {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def _message_record(stack: LocalStack, started_epoch: float) -> dict[str, Any]:
    """From the emulator's record of each message: every message received more than once, when it
    was first received (seconds into the run: which failure it met) and the seconds between its
    receipts (its lease ran out, or it was received but never leased), and the longest waits from
    first receipt to deletion (what the lease must outlast)."""
    again: list[dict[str, Any]] = []
    waits: list[float] = []
    for queue in failover.QUEUES:
        received: dict[str, list[float]] = {}
        deleted: dict[str, float] = {}
        events = admin(stack.emulator.mns_endpoint, "GET", f"mns/message-events?queue={quote(queue)}")
        for event in events["events"]:
            if event["event"] == "received":
                received.setdefault(event["message_id"], []).append(event["time_ms"] / 1000)
            elif event["event"] == "deleted":
                deleted[event["message_id"]] = event["time_ms"] / 1000
        for message_id, times in received.items():
            if len(times) > 1:
                again.append(
                    {
                        "queue": queue,
                        "first_receipt_at_seconds": round(times[0] - started_epoch, 1),
                        "seconds_between_receipts": [
                            round(b - a, 1) for a, b in zip(times, times[1:], strict=False)
                        ],
                    }
                )
            if message_id in deleted:
                waits.append(round(deleted[message_id] - times[0], 1))
    return {
        "received_again": sorted(again, key=lambda m: m["first_receipt_at_seconds"]),
        "longest_receipt_to_delete_seconds": sorted(waits)[-5:],
    }


def _watchers_held(stack: LocalStack) -> dict[str, dict[str, int]]:
    """Per triggerer, the trigger events it fired for each queue since it last started (its log
    names the queue of each event): the watcher it holds now. A triggerer started again (after
    the database restart, say) may hold the other queue's watcher than before."""
    held = {}
    for name in stack.airflow_processes:
        if name.startswith("triggerer-"):
            text = stack.airflow_log(name).read_text(errors="replace")
            since_start = text.rsplit("Starting the triggerer", 1)[-1]
            held[name] = {
                q: len(
                    re.findall(
                        rf"Trigger fired event.*queue='{re.escape(q)}'"  # MNSMessageTrigger
                        rf"|Dispatched \d+ message\(s\) from MNS queue {re.escape(q)} ",  # MNSDispatchTrigger
                        since_start,
                    )
                )
                for q in failover.QUEUES
            }
    return held


class Failover:
    def __init__(self, stack: LocalStack):
        self.stack = stack
        self.fnf = stack.fnf_hook()
        tag = uuid.uuid4().hex[:6]
        self.flows = {queue: f"failover-{queue.rsplit('-', 1)[1]}-{tag}" for queue in failover.QUEUES}
        self.names: list[tuple[str, str]] = []  # (flow, execution name)
        self.status: dict[str, str] = {}
        self.events: list[str] = []
        self.faults: list[dict[str, Any]] = []
        self.supervised: list[str] = []
        self.started = time.monotonic()
        self.started_epoch = time.time()
        self.triggerers_before_kill: dict[str, dict[str, int]] | None = None
        self.waiting_for = ""
        """Why the failure due cannot be injected yet."""

    def note(self, line: str) -> None:
        line = f"{time.monotonic() - self.started:6.0f} s  {line}"
        self.events.append(line)
        _echo(line)

    def ended(self) -> int:
        return sum(1 for s in self.status.values() if s in FINAL)

    def refresh(self) -> None:
        self.status = {
            e["Name"]: e["Status"] for flow in self.flows.values() for e in self.fnf.list_executions(flow)
        }

    def start_more(self, pool: ThreadPoolExecutor) -> None:
        room = IN_FLIGHT - (len(self.names) - self.ended())
        flows = list(self.flows.values())
        batch = [
            (
                flows[(len(self.names) + i) % len(flows)],
                f"failover-{len(self.names) + i:03d}-{uuid.uuid4().hex[:6]}",
            )
            for i in range(min(room, EXECUTIONS - len(self.names)))
        ]
        if batch:
            first = len(self.names)
            list(
                pool.map(
                    lambda item: self.fnf.start_execution(
                        item[1][0], {"n": item[0]}, execution_name=item[1][1]
                    ),
                    enumerate(batch, start=first),
                )
            )
            self.names.extend(batch)

    def supervise(self) -> None:
        """Start again an Airflow process that exited on its own, as a supervisor would."""
        for _ in range(3):
            exited = [c for c, p in self.stack.airflow_processes.items() if not p.alive()]
            if not exited:
                return
            self.note(f"{', '.join(exited)} exited on its own: starting it again")
            self.supervised.extend(exited)
            try:
                self.stack.start_exited_components()
                return
            except StackError as error:
                self.note(f"Airflow not healthy yet: {str(error)[:200]}")
        pytest.fail(f"Airflow did not come back: {self.stack.work_dir}")

    def fault(self, name: str, action: Callable[[], None], queue: str | None = None) -> None:
        at = time.time()
        self.note(f"{name} ...")
        try:
            action()
        except StackError as error:
            self.note(f"{name}: Airflow was not healthy afterwards ({str(error)[:200]})")
            self.supervise()
        took = time.time() - at
        self.note(f"{name}: done in {took:.0f} s")
        self.faults.append({"fault": name, "at": at, "action_seconds": round(took, 1), "queue": queue})

    def kill_scheduler(self) -> None:
        self.fault("SIGKILL the scheduler", lambda: self.stack.restart_component("scheduler", kill=True))

    def restart_database(self) -> None:
        def restart() -> None:
            self.stack.restart_postgres(down_seconds=DATABASE_DOWN_SECONDS)
            time.sleep(5)  # a component that gives up on the database exits within seconds
            self.supervise()

        self.fault("restart the metadata PostgreSQL", restart)

    def kill_triggerer(self) -> bool:
        """Kill the triggerer that holds the watcher of ``KILLED_QUEUE`` while the other holds the
        other watcher. False (try again later) until each triggerer has fired events for its one
        queue since it last started."""
        holders = _watchers_held(self.stack)
        holding = [name for name, fired in holders.items() if fired[KILLED_QUEUE] > 0]
        others = [name for name in holders if name not in holding]
        if len(holding) != 1 or not all(
            sum(holders[o].values()) > 0 and holders[o][KILLED_QUEUE] == 0 for o in others
        ):
            self.waiting_for = f"the triggerers did not each hold one watcher: {holders}"
            return False
        holder = holding[0]
        self.note(f"trigger events per triggerer and queue since each last started: {holders}")
        self.fault(
            f"SIGKILL {holder} (holding the {KILLED_QUEUE} watcher; {', '.join(others)} keeps running)",
            lambda: self.stack.restart_component(holder, kill=True),
            queue=KILLED_QUEUE,
        )
        self.triggerers_before_kill = holders
        return True

    def run(self) -> None:
        for queue, flow in self.flows.items():
            self.fnf.create_or_update_flow(flow, callback_flow(queue, timeout_seconds=3600))
        self.note(f"{EXECUTIONS} executions over {list(self.flows)}, at most {IN_FLIGHT} in flight")
        plan: list[tuple[float, Callable[[], bool | None]]] = [
            (SCHEDULER_KILL_AT, self.kill_scheduler),
            (DATABASE_RESTART_AT, self.restart_database),
            (TRIGGERER_KILL_AT, self.kill_triggerer),
        ]
        deadline = time.monotonic() + PATIENCE_SECONDS
        last_report = due = 0.0
        with ThreadPoolExecutor(8) as pool:
            while True:
                self.supervise()
                try:
                    self.refresh()
                except Exception as error:  # the api of the emulator is not at fault here; retry
                    self.note(f"listing executions failed: {error}")
                    time.sleep(2)
                    continue
                ended = self.ended()
                if ended >= EXECUTIONS:
                    break
                while plan and ended >= plan[0][0] * EXECUTIONS:
                    due = due or time.monotonic()
                    if plan[0][1]() is False:  # not yet possible: again on the next round
                        if time.monotonic() - due > FAULT_PATIENCE_SECONDS:
                            pytest.fail(
                                f"{plan[0][1].__name__}: {self.waiting_for} for {FAULT_PATIENCE_SECONDS} s"
                            )
                        break
                    plan.pop(0)
                    due = 0.0
                self.start_more(pool)
                if time.monotonic() - last_report > 30:
                    self.note(f"started {len(self.names)}, {dict(Counter(self.status.values()))}")
                    last_report = time.monotonic()
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{EXECUTIONS - ended} of {EXECUTIONS} executions still running after "
                        f"{PATIENCE_SECONDS} s: {Counter(self.status.values())}; logs: {self.stack.work_dir}"
                    )
                time.sleep(2)
        self.note(f"all {EXECUTIONS} executions ended: {dict(Counter(self.status.values()))}")


def _costs(run: Failover, marks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per failure: seconds to the next accepted report, and to the first report of a message sent
    after it (on the failure's queue when it has one)."""
    costs = []
    for fault in run.faults:
        at = fault["at"]
        reports = [m["report"] for m in marks.values() if m.get("report") and m["report"] > at]
        fresh = [
            m["report"]
            for m in marks.values()
            if m.get("report") and m.get("sent") and m["sent"] > at and fault["queue"] in (None, m["queue"])
        ]
        costs.append(
            {
                "fault": fault["fault"],
                "at_seconds": round(at - run.started_epoch, 1),
                "action_seconds": fault["action_seconds"],
                "next_report_seconds": round(min(reports) - at, 1) if reports else None,
                "first_report_of_a_message_sent_after_seconds": round(min(fresh) - at, 1) if fresh else None,
            }
        )
    return costs


@pytest.fixture(scope="module")
def failover_stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work_dir = tmp_path_factory.mktemp("failover-stack")

    def create_queues(stack: LocalStack) -> None:
        for queue in failover.QUEUES:
            stack.mns_hook().create_queue(queue)

    stack = LocalStack(
        work_dir,
        dags_folder=Path(failover.__file__).parent,
        echo=_echo,
        prepare=create_queues,
        topology=AirflowTopology.distributed(),
        extra_env={"AIRFLOW__TRIGGERER__CAPACITY": str(TRIGGERER_CAPACITY)},
    )
    try:
        started = time.monotonic()
        stack.start()
        _PHASES["stack start"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        stack.api.wait_for_dags(failover.DAG_IDS, echo=_echo)
        _PHASES["DAGs parsed"] = round(time.monotonic() - started, 1)
        yield stack
    finally:
        started = time.monotonic()
        stack.stop()
        _echo(f"stack stopped in {time.monotonic() - started:.0f} s")
    left = {sid: session_members(sid) for sid in stack.started_sessions}
    assert not any(left.values()), f"processes left behind by the failover stack: {left}"


def test_scheduler_database_and_triggerer_failures_lose_nothing(failover_stack: LocalStack) -> None:
    stack = failover_stack
    run = Failover(stack)
    run.run()
    phase_started = time.monotonic()
    _PHASES["executions"] = round(phase_started - run.started, 1)

    def phase(name: str) -> None:
        nonlocal phase_started
        now = time.monotonic()
        _PHASES[name] = round(now - phase_started, 1)
        phase_started = now

    results: dict[str, Any] = {"executions": EXECUTIONS, "in_flight": IN_FLIGHT, "events": run.events}

    # When each message was sent and reported (the flows' histories), per queue; what each
    # failure cost, printed before anything is asserted.
    marks: dict[str, dict[str, Any]] = {}
    for queue, flow in run.flows.items():
        names = [name for f, name in run.names if f == flow]
        for name, mark in timeline.flow_marks(run.fnf, flow, names).items():
            marks[name] = {**mark, "queue": queue}
    results["costs"] = _costs(run, marks)
    results["last_reports_seconds"] = sorted(
        round(m["report"] - run.started_epoch, 1) for m in marks.values() if m.get("report")
    )[-10:]
    phase("histories")
    results["restarted_on_their_own"] = run.supervised
    _echo(f"what each failure cost:\n{json.dumps(results['costs'], indent=2)}")

    # Every execution Succeeded.
    statuses = Counter(run.status[name] for _, name in run.names)
    results["statuses"] = dict(statuses)
    failed = [(flow, name) for flow, name in run.names if run.status[name] != "Succeeded"]
    assert not failed, (
        f"{len(failed)} executions did not succeed, e.g. {[run.fnf.describe_execution(*f) for f in failed[:3]]}"
    )
    message_ids = {m["message_id"] for m in marks.values() if m.get("message_id")}
    assert len(message_ids) == EXECUTIONS, "each execution sent one task message"

    # Every message had exactly one worker run, which succeeded.
    worker = quote(failover.WORKER_DAG_ID, safe="")
    deadline = time.monotonic() + 180
    while True:
        runs = all_pages(stack, f"/api/v2/dags/{worker}/dagRuns", "dag_runs")
        if all(r["state"] in ("success", "failed") for r in runs) or time.monotonic() > deadline:
            break
        time.sleep(3)
    runs_per_message = Counter(r["conf"]["message_id"] for r in runs)
    results["worker_runs"] = len(runs)
    phase("worker runs ended")
    assert set(runs_per_message) == message_ids
    assert max(runs_per_message.values()) == 1, [m for m, n in runs_per_message.items() if n > 1]
    assert {r["state"] for r in runs} == {"success"}, Counter(r["state"] for r in runs)

    # Every task token accepted exactly once; repeats only as TaskAlreadyCompleted.
    stats = admin(stack.emulator.fnf_endpoint, "GET", "stats")
    reports = stats.get("fnf", {}).get("ReportTaskSucceeded", {})
    results["reports"] = reports
    assert reports.get("OK") == EXECUTIONS, reports
    assert set(reports) <= {"OK", "TaskAlreadyCompleted"}, reports
    assert stats.get("fnf", {}).get("ReportTaskFailed", {}).get("OK", 0) == 0

    # No message left in either queue.
    mns = stack.mns_hook()
    deadline = time.monotonic() + failover.LEASE_SECONDS + 60
    while True:
        left = {
            q: sum(int(a[k]) for k in ("active_messages", "inactive_messages", "delay_messages"))
            for q, a in ((q, mns.get_queue_attributes(q)) for q in failover.QUEUES)
        }
        if not any(left.values()) or time.monotonic() > deadline:
            break
        time.sleep(5)
    results["messages_left"] = left
    results["messages"] = _message_record(stack, run.started_epoch)
    phase("queues empty")
    assert not any(left.values()), f"messages left: {left}"

    # No secret and no task token in any log line of Airflow.
    tokens = {r["conf"]["task_token"] for r in runs}
    leaks = scan_logs(stack, {ACCESS_KEY_SECRET, *tokens})
    results["log_files_scanned"] = leaks.pop("__files__")
    phase("log scan")
    results["phases_seconds"] = _PHASES
    assert not leaks, f"secrets or task tokens in logs: {leaks}"

    results["triggerers_before_kill"] = run.triggerers_before_kill
    results["minutes"] = round((time.monotonic() - run.started) / 60, 1)
    path = Path(os.environ.get("FNF_FAILOVER_RESULTS") or stack.work_dir / "failover-results.json")
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    _echo(f"results ({path}):\n{json.dumps({k: v for k, v in results.items() if k != 'events'}, indent=2)}")
    assert len(run.faults) == 3, f"not every failure was injected: {run.faults}"
