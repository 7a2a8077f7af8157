"""The soak: 500 flow executions through a real Airflow while everything around it misbehaves.

A stack of its own (``make test-soak``): the emulator, PostgreSQL, and Airflow as separate
processes (api-server, scheduler, dag-processor, triggerer; LocalExecutor), running the DAGs of
``tests/soak/dags/soak.py`` (one worker run per message). While the executions run, kept at most
``IN_FLIGHT`` at a time:

- the emulators answer 10 % of ReceiveMessage, BatchReceiveMessage, DeleteMessage,
  ChangeMessageVisibility, ReportTaskSucceeded and ReportTaskFailed with an injected
  InternalError, and 3 % of every other request arrives 1.5 s late;
- one worker task process is killed with SIGKILL (after ``KILL_AT`` of the executions ended);
- the emulator is stopped and started again on its ``--data-dir`` (after ``EMULATOR_RESTART_AT``);
- the triggerer is restarted (after ``TRIGGERER_RESTART_AT``).

Afterwards, as a user would check it: every execution Succeeded; every task token was accepted
exactly once (the emulator counts each answer; duplicates only as TaskAlreadyCompleted); the
queue is empty; every message had exactly one worker run; and no log line of Airflow (component
logs and task logs) holds the access key secret or a task token. The numbers are printed and
written to ``soak-results.json`` in the stack's work directory (``FNF_SOAK_RESULTS`` overrides).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.soak.dags import soak
from tests.soak.support import admin as _admin
from tests.soak.support import all_pages, scan_logs
from tools.local_stack.flows import callback_flow
from tools.local_stack.processes import session_members
from tools.local_stack.stack import ACCESS_KEY_SECRET, AirflowTopology, LocalStack

pytestmark = [pytest.mark.soak, pytest.mark.timeout(60 * 60)]

EXECUTIONS = int(os.environ.get("FNF_SOAK_EXECUTIONS", "500"))
IN_FLIGHT = 64
"""Executions started but not ended, at most: a steady load rather than one burst."""
ERROR_RATE = 0.10
LATENCY_RATE = 0.03
LATENCY_MS = 1500
KILL_AT, EMULATOR_RESTART_AT, TRIGGERER_RESTART_AT = 0.25, 0.45, 0.65
PATIENCE_SECONDS = 45 * 60
"""For all executions to end; far above the ~15-25 min a soak takes on two cores."""
FAULTS = {
    "mns": [
        *(
            {"operation": op, "status": 500, "code": "InternalError", "probability": ERROR_RATE}
            for op in ("ReceiveMessage", "BatchReceiveMessage", "DeleteMessage", "ChangeMessageVisibility")
        ),
        {"operation": "*", "latency_ms": LATENCY_MS, "probability": LATENCY_RATE},
    ],
    "fnf": [
        *(
            {"operation": op, "status": 500, "code": "InternalError", "probability": ERROR_RATE}
            for op in ("ReportTaskSucceeded", "ReportTaskFailed")
        ),
        {"operation": "*", "latency_ms": LATENCY_MS, "probability": LATENCY_RATE},
    ],
}
FINAL = ("Succeeded", "Failed", "TimedOut", "Stopped")


def _echo(line: str) -> None:
    print(f"[soak] {line}", file=sys.stderr, flush=True)


def _endpoints(stack: LocalStack) -> dict[str, str]:
    return {"mns": stack.emulator.mns_endpoint, "fnf": stack.emulator.fnf_endpoint}


def install_faults(stack: LocalStack) -> None:
    for service, rules in FAULTS.items():
        _admin(_endpoints(stack)[service], "POST", "faults", rules)


def remove_faults(stack: LocalStack) -> None:
    for endpoint in _endpoints(stack).values():
        _admin(endpoint, "DELETE", "faults")


class Soak:
    def __init__(self, stack: LocalStack, pid_dir: Path):
        self.stack = stack
        self.pid_dir = pid_dir
        self.fnf = stack.fnf_hook()
        self.mns = stack.mns_hook()
        self.flow = f"soak-{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []
        self.status: dict[str, str] = {}
        self.events: list[str] = []
        self.killed_run_id: str | None = None
        self.started = time.monotonic()

    def note(self, line: str) -> None:
        line = f"{time.monotonic() - self.started:6.0f} s  {line}"
        self.events.append(line)
        _echo(line)

    def ended(self) -> int:
        return sum(1 for s in self.status.values() if s in FINAL)

    def refresh(self) -> None:
        self.status = {e["Name"]: e["Status"] for e in self.fnf.list_executions(self.flow)}

    def start_more(self, pool: ThreadPoolExecutor) -> None:
        room = IN_FLIGHT - (len(self.names) - self.ended())
        batch = [
            f"soak-{len(self.names) + i:03d}-{uuid.uuid4().hex[:6]}"
            for i in range(min(room, EXECUTIONS - len(self.names)))
        ]
        if not batch:
            return
        first = len(self.names)
        list(
            pool.map(
                lambda item: self.fnf.start_execution(self.flow, {"n": item[0]}, execution_name=item[1]),
                enumerate(batch, start=first),
            )
        )
        self.names.extend(batch)

    def kill_a_task(self) -> None:
        """SIGKILL the newest worker task process that is still alive."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            files = sorted(self.pid_dir.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
            for pid_file in files:
                pid = int(pid_file.name)
                if Path(f"/proc/{pid}").exists():
                    run_id = pid_file.read_text(encoding="utf-8")
                    os.kill(pid, signal.SIGKILL)
                    self.killed_run_id = run_id
                    self.note(f"killed worker task process {pid} (run {run_id}) with SIGKILL")
                    return
            time.sleep(0.1)
        pytest.fail("no live worker task process to kill within 120 s")

    def restart_emulator(self) -> None:
        self.note("restarting the emulator (same ports, same --data-dir)")
        self.stack.restart_emulator(down_seconds=3)
        install_faults(self.stack)  # rules live in memory only
        self.note("emulator back, faults installed again")

    def restart_triggerer(self) -> None:
        self.note("restarting the triggerer")
        self.stack.restart_component("triggerer-1")
        self.note("triggerer back")

    def run(self) -> None:
        self.fnf.create_or_update_flow(self.flow, callback_flow(soak.QUEUE, timeout_seconds=7200))
        install_faults(self.stack)
        self.note(f"{EXECUTIONS} executions of {self.flow}, at most {IN_FLIGHT} in flight, faults on")
        faults = [
            (KILL_AT, self.kill_a_task),
            (EMULATOR_RESTART_AT, self.restart_emulator),
            (TRIGGERER_RESTART_AT, self.restart_triggerer),
        ]
        deadline = time.monotonic() + PATIENCE_SECONDS
        last_report = 0.0
        with ThreadPoolExecutor(8) as pool:
            while True:
                self.refresh()
                ended = self.ended()
                if ended >= EXECUTIONS:
                    break
                while faults and ended >= faults[0][0] * EXECUTIONS:
                    faults.pop(0)[1]()
                self.start_more(pool)
                if time.monotonic() - last_report > 30:
                    counts = Counter(self.status.values())
                    self.note(f"started {len(self.names)}, {dict(counts)}")
                    last_report = time.monotonic()
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{EXECUTIONS - ended} of {EXECUTIONS} executions still running after "
                        f"{PATIENCE_SECONDS} s: {Counter(self.status.values())}; logs: {self.stack.work_dir}"
                    )
                time.sleep(2)
        self.note(f"all {EXECUTIONS} executions ended: {dict(Counter(self.status.values()))}")


@pytest.fixture(scope="module")
def soak_stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work_dir = tmp_path_factory.mktemp("soak-stack")
    pid_dir = work_dir / "task-pids"
    pid_dir.mkdir()

    def create_queue(stack: LocalStack) -> None:
        stack.mns_hook().create_queue(soak.QUEUE)

    stack = LocalStack(
        work_dir,
        dags_folder=Path(soak.__file__).parent,
        echo=_echo,
        prepare=create_queue,
        topology=AirflowTopology(standalone=False, database="postgresql"),
        extra_env={soak.PID_DIR_VARIABLE: str(pid_dir)},
    )
    try:
        stack.start()
        stack.api.wait_for_dags(soak.DAG_IDS, echo=_echo)
        yield stack, pid_dir
    finally:
        stack.stop()
    left = {sid: session_members(sid) for sid in stack.started_sessions}
    assert not any(left.values()), f"processes left behind by the soak stack: {left}"


def test_soak_with_faults(soak_stack: tuple[LocalStack, Path]) -> None:
    stack, pid_dir = soak_stack
    soak_run = Soak(stack, pid_dir)
    soak_run.run()
    remove_faults(stack)
    results: dict[str, Any] = {"executions": EXECUTIONS, "events": soak_run.events}

    # Every execution Succeeded.
    statuses = Counter(soak_run.status[name] for name in soak_run.names)
    results["statuses"] = dict(statuses)
    failed = [name for name in soak_run.names if soak_run.status[name] != "Succeeded"]
    details = {name: soak_run.fnf.describe_execution(soak_run.flow, name) for name in failed[:3]}
    assert not failed, f"{len(failed)} executions did not succeed, e.g. {details}"

    # Every message (one per execution) had exactly one worker run, which succeeded.
    message_of = {}
    for name in soak_run.names:
        submitted = [
            json.loads(e["EventDetail"])["MessageId"]
            for e in soak_run.fnf.get_execution_history(soak_run.flow, name)
            if e["Type"] == "TaskSubmitted"
        ]
        assert len(submitted) == 1, f"execution {name} sent {len(submitted)} task messages"
        message_of[name] = submitted[0]
    worker = quote(soak.WORKER_DAG_ID, safe="")
    deadline = time.monotonic() + 180  # a run ends a moment after its report resumed the flow
    while True:
        runs = all_pages(stack, f"/api/v2/dags/{worker}/dagRuns", "dag_runs")
        if all(run["state"] in ("success", "failed") for run in runs) or time.monotonic() > deadline:
            break
        time.sleep(3)
    runs_per_message = Counter(run["conf"]["message_id"] for run in runs)
    results["worker_runs"] = len(runs)
    assert set(runs_per_message) == set(message_of.values())
    assert max(runs_per_message.values()) == 1, [m for m, n in runs_per_message.items() if n > 1]
    assert {run["state"] for run in runs} == {"success"}, Counter(run["state"] for run in runs)

    # The killed task was retried, and its run succeeded like every other.
    instances = all_pages(stack, f"/api/v2/dags/{worker}/dagRuns/~/taskInstances", "task_instances")
    tries = Counter(ti["try_number"] for ti in instances)
    results["worker_task_tries"] = {str(k): v for k, v in sorted(tries.items())}
    killed = [ti for ti in instances if ti["dag_run_id"] == soak_run.killed_run_id]
    assert killed and killed[0]["try_number"] >= 2, f"the killed task was not retried: {killed}"

    # Every task token accepted exactly once; duplicates answered TaskAlreadyCompleted only.
    stats = _admin(stack.emulator.fnf_endpoint, "GET", "stats")
    reports = stats.get("fnf", {}).get("ReportTaskSucceeded", {})
    results["emulator_stats"] = stats
    assert reports.get("OK") == EXECUTIONS, reports
    unexpected = {
        k: v
        for k, v in reports.items()
        if k not in ("OK", "TaskAlreadyCompleted", "delayed") and not k.startswith("injected:")
    }
    assert not unexpected, f"reports answered otherwise: {unexpected}"
    assert stats.get("fnf", {}).get("ReportTaskFailed", {}).get("OK", 0) == 0
    for execution in soak_run.names[:50]:  # and the flows saw one completion each
        events = Counter(e["Type"] for e in soak_run.fnf.get_execution_history(soak_run.flow, execution))
        assert events["TaskSucceeded"] == 1, (execution, events)

    # No message left in the queue (a leased one would come back within the lease).
    deadline = time.monotonic() + soak.LEASE_SECONDS + 60
    while True:
        attributes = soak_run.mns.get_queue_attributes(soak.QUEUE)
        left = sum(int(attributes[k]) for k in ("active_messages", "inactive_messages", "delay_messages"))
        if not left or time.monotonic() > deadline:
            break
        time.sleep(5)
    results["messages_left"] = left
    assert left == 0, f"{left} messages left in queue {soak.QUEUE}"

    # No secret and no task token in any log line of Airflow.
    tokens = {run["conf"]["task_token"] for run in runs}
    leaks = scan_logs(stack, {ACCESS_KEY_SECRET, *tokens})
    results["log_files_scanned"] = leaks.pop("__files__")
    assert not leaks, f"secrets or task tokens in logs: {leaks}"

    results["minutes"] = round((time.monotonic() - soak_run.started) / 60, 1)
    results["injected"] = {
        service: {
            op: {k: v for k, v in outcomes.items() if k.startswith("injected") or k in ("dropped", "delayed")}
            for op, outcomes in operations.items()
        }
        for service, operations in stats.items()
    }
    path = Path(os.environ.get("FNF_SOAK_RESULTS") or stack.work_dir / "soak-results.json")
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    _echo(f"results ({path}):\n{json.dumps({k: v for k, v in results.items() if k != 'events'}, indent=2)}")
