"""A burst of task messages and a lease that expires mid-run, through the real scheduler and
triggerer of the shared stack (DAGs: ``tests/e2e/dags/e2e_load.py`` and ``e2e_lease.py``).

- one run per message: 50 flow executions started at once (each sends one message) end as
  exactly 50 worker runs, one per message, with the message as their conf;
- the watcher: 50 messages, every one handled exactly once whatever way Airflow batched them;
- a message whose processing lease expires while its run still works starts no second run, and
  is deleted once the run reported;
- both again with ``MNSDispatchTrigger``, which starts the runs from the triggerer through
  Airflow's REST API (its outcomes are read from the triggerer's log: it has no task).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.dags import e2e_lease, e2e_load
from tools.local_stack.flows import callback_flow
from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

BURST = 50
TRIGGER_BURST = BURST if os.environ.get("FNF_E2E_TOPOLOGY") == "distributed" else 16
"""The dispatch trigger's burst: 50 on PostgreSQL; 16 on ``airflow standalone``'s SQLite, whose
scheduler exited twice on ``database is locked`` (past a 25 s busy timeout, on 2 loaded cores)
while 50 runs posted through the API server ran: SQLite takes one writer at a time."""
FINAL = ("Succeeded", "Failed", "TimedOut", "Stopped")
CONF_KEYS = {"body", "task_token", "message_id", "queue_name", "receipt_handle"}


def deploy(flows: Any, queue: str) -> str:
    flow = f"{queue}-{uuid.uuid4().hex[:6]}"
    flows.fnf.create_or_update_flow(flow, callback_flow(queue, timeout_seconds=900))
    return flow


def start_burst(flows: Any, flow: str, count: int) -> dict[str, int]:
    """Start ``count`` executions at once, input ``{"n": i}``; returns execution name -> n."""
    names = {f"burst-{i:02d}-{uuid.uuid4().hex[:6]}": i for i in range(count)}
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda item: flows.fnf.start_execution(flow, {"n": item[1]}, execution_name=item[0]),
                names.items(),
            )
        )
    return names


def wait_all(
    stack: LocalStack, flows: Any, flow: str, names: dict[str, int], timeout: float = 240.0
) -> dict[str, dict]:
    """Every execution in a final state; returns name -> execution (ListExecutions)."""
    deadline = time.monotonic() + timeout
    while True:
        executions = {e["Name"]: e for e in flows.fnf.list_executions(flow)}
        pending = [n for n in names if executions.get(n, {}).get("Status") not in FINAL]
        if not pending:
            return {n: executions[n] for n in names}
        if time.monotonic() > deadline:
            stuck = {n: flows.message_ids(flow, n) for n in pending[:5]}
            pytest.fail(
                f"{len(pending)} of {len(names)} executions of {flow} are not done after {timeout:.0f} s; "
                f"their messages (first 5): {stuck}; asset events no run consumed: "
                f"{orphaned_asset_events(stack)}"
            )
        time.sleep(2)


def orphaned_asset_events(stack: LocalStack) -> list[dict[str, Any]]:
    """Asset events (watcher batches) that no DAG run consumed: their messages wait, leased."""
    events = stack.api.get("/api/v2/assets/events", limit=500)["asset_events"]
    return [
        {"asset": e.get("name") or e.get("uri"), "timestamp": e["timestamp"]}
        for e in events
        if not e.get("created_dagruns")
    ]


def history_counts(flows: Any, flow: str, name: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in flows.history(flow, name):
        counts[event["Type"]] = counts.get(event["Type"], 0) + 1
    return counts


def triggerer_log(stack: LocalStack) -> str:
    """Every Airflow process's log of the stack (the trigger logs in the triggerer's)."""
    return "\n".join(p.read_text(errors="replace") for p in sorted(stack.work_dir.glob("airflow-*.log")))


def runs_of(stack: LocalStack, dag_id: str) -> list[dict[str, Any]]:
    return stack.api.get(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", limit=500)["dag_runs"]


def task_instances(stack: LocalStack, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run, each map index included."""
    path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    return stack.api.get(path, limit=500)["task_instances"]


def finished_runs(stack: LocalStack, dag_id: str, expected: int, timeout: float = 60.0) -> list[dict]:
    """The DAG's runs once ``expected`` of them exist and all are done (a run is marked done a
    moment after its report resumed the flow)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_of(stack, dag_id)
        if len(runs) >= expected and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        if time.monotonic() > deadline:
            states = sorted(r["state"] for r in runs)
            pytest.fail(
                f"{dag_id}: {len(runs)} run(s) ({states}) after {timeout:.0f} s, expected {expected} done"
            )
        time.sleep(1)


def burst_with_one_run_each(
    stack: LocalStack, flows: Any, queue: str, worker_dag_id: str, run_type: str, count: int = BURST
) -> dict[str, str]:
    """``count`` executions at once on ``queue``; checks that each Succeeded with the output of its
    own worker run, one run (of ``run_type``) per message with the message as its conf. Returns
    run id -> execution name."""
    flow = deploy(flows, queue)
    names = start_burst(flows, flow, count)

    executions = wait_all(stack, flows, flow, names)

    assert {n: e["Status"] for n, e in executions.items()} == dict.fromkeys(names, "Succeeded")
    message_of: dict[str, str] = {}
    for name, n in names.items():
        (message_id,) = flows.message_ids(flow, name)  # each execution sent exactly one message
        message_of[name] = message_id
        # Its own worker run reported it, once: the output echoes this message's n and id.
        assert json.loads(executions[name]["Output"]) == {"n": str(n), "message_id": message_id}
        assert history_counts(flows, flow, name).get("TaskSucceeded") == 1
    assert len(set(message_of.values())) == count

    runs = finished_runs(stack, worker_dag_id, count)
    expected_ids = {f"mns__{queue}__{mid}": name for name, mid in message_of.items()}
    assert sorted(r["dag_run_id"] for r in runs) == sorted(expected_ids), "exactly one run per message"
    for run in runs:
        assert run["state"] == "success", run["dag_run_id"]
        assert run["run_type"] == run_type, run["dag_run_id"]
        conf = run["conf"]
        name = expected_ids[run["dag_run_id"]]
        assert CONF_KEYS <= set(conf), sorted(conf)
        assert conf["message_id"] == message_of[name] and conf["queue_name"] == queue
        assert conf["body"]["n"] == names[name] and conf["body"]["task_token"] == conf["task_token"]
        assert conf["execution_name"] == name and conf["receipt_handle"]
    return expected_ids


def test_burst_of_messages_makes_one_worker_run_each(stack: LocalStack, flows: Any) -> None:
    queue = e2e_load.DISPATCH_QUEUE
    # Started from the dispatcher's task through the Task SDK.
    expected_ids = burst_with_one_run_each(stack, flows, queue, e2e_load.WORKER_DAG_ID, "operator_triggered")

    # The dispatcher started each run once, however the messages were batched into its runs.
    started: list[str] = []
    for run in finished_runs(stack, e2e_load.DISPATCHER_DAG_ID, 1):
        assert run["state"] == "success", run["dag_run_id"]
        summary = stack.api.xcom(e2e_load.DISPATCHER_DAG_ID, run["dag_run_id"], "dispatch")
        started.extend(summary["started"])
    assert sorted(started) == sorted(expected_ids), "no run started twice, none missed"
    # A message redelivered after its lease while its run worked is deleted by the next delivery.
    assert flows.wait_queue_empty(queue, timeout=e2e_load.LEASE_SECONDS + 60) == 0


def test_dispatch_trigger_starts_one_worker_run_per_message_of_a_burst(stack: LocalStack, flows: Any) -> None:
    queue = e2e_load.TRIGGER_QUEUE
    # Started from the triggerer through the REST API, not by an asset event.
    expected_ids = burst_with_one_run_each(
        stack, flows, queue, e2e_load.TRIGGER_WORKER_DAG_ID, "manual", TRIGGER_BURST
    )

    log = triggerer_log(stack)
    for run_id in expected_ids:
        assert log.count(f"Started run {run_id} of DAG {e2e_load.TRIGGER_WORKER_DAG_ID}") == 1, run_id
    assert flows.wait_queue_empty(queue, timeout=60) == 0


def test_watcher_handles_every_message_of_a_burst_once(stack: LocalStack, flows: Any) -> None:
    queue = e2e_load.WATCHER_QUEUE
    flow = deploy(flows, queue)
    names = start_burst(flows, flow, BURST)

    executions = wait_all(stack, flows, flow, names)

    assert {n: e["Status"] for n, e in executions.items()} == dict.fromkeys(names, "Succeeded")
    for name in names:
        assert json.loads(executions[name]["Output"]) == {"mode": "watcher"}
        counts = history_counts(flows, flow, name)
        assert counts.get("TaskSubmitted") == 1 and counts.get("TaskSucceeded") == 1, counts
    # Every message was handled (one run per batch of asset events here). The watcher mode is at
    # least once: a message redelivered after its lease may be handled by a second run, which the
    # flow answers with TaskAlreadyCompleted; the flow saw exactly one report (checked above).
    handled: list[str] = []
    for run in finished_runs(stack, e2e_load.WATCHER_DAG_ID, 1):
        assert run["state"] == "success", run["dag_run_id"]
        messages = stack.api.xcom(e2e_load.WATCHER_DAG_ID, run["dag_run_id"], "received")
        handled.extend(m["execution_name"] for m in messages)
        reports = task_instances(stack, e2e_load.WATCHER_DAG_ID, run["dag_run_id"])
        assert sorted(t["state"] for t in reports if t["task_id"] == "report") == ["success"] * len(messages)
    assert set(handled) == set(names)
    assert flows.wait_queue_empty(queue, timeout=e2e_load.LEASE_SECONDS + 60) == 0


def run_past_its_lease(stack: LocalStack, flows: Any, queue: str, worker_dag_id: str) -> tuple[str, str]:
    """One execution whose worker outlives its message's lease; returns (message id, run id) once
    the flow succeeded, the queue is empty and the one worker run succeeded."""
    flow = deploy(flows, queue)
    (name,) = start_burst(flows, flow, 1)

    execution = flows.wait(flow, name, timeout=180)

    assert execution["Status"] == "Succeeded", flows.path(flow, name)
    assert json.loads(execution["Output"]) == {"slept": e2e_lease.WORK_SECONDS}
    (message_id,) = flows.message_ids(flow, name)
    run_id = f"mns__{queue}__{message_id}"
    # Deleted in the end: by the dispatcher, once a later delivery found the run succeeded.
    assert flows.wait_queue_empty(queue, timeout=60) == 0
    (worker_run,) = finished_runs(stack, worker_dag_id, 1)
    assert worker_run["dag_run_id"] == run_id and worker_run["state"] == "success"
    return message_id, run_id


def test_lease_expiring_during_a_run_starts_no_second_run(stack: LocalStack, flows: Any) -> None:
    _, run_id = run_past_its_lease(stack, flows, e2e_lease.QUEUE, e2e_lease.WORKER_DAG_ID)

    outcomes: dict[str, list[str]] = {}
    for run in finished_runs(stack, e2e_lease.LISTENER_DAG_ID, 2):
        summary = stack.api.xcom(e2e_lease.LISTENER_DAG_ID, run["dag_run_id"], "dispatch")
        for outcome, run_ids in summary.items():
            outcomes.setdefault(outcome, []).extend(run_ids)
    assert outcomes["started"] == [run_id], outcomes
    # The lease (5 s) expired while the run worked (15 s): the message came back and found its run.
    assert run_id in outcomes["running"], outcomes
    assert outcomes["deleted"] == [run_id], outcomes


def test_dispatch_trigger_reconciles_a_message_whose_lease_expired(stack: LocalStack, flows: Any) -> None:
    message_id, run_id = run_past_its_lease(
        stack, flows, e2e_lease.TRIGGER_QUEUE, e2e_lease.TRIGGER_WORKER_DAG_ID
    )

    log = triggerer_log(stack)
    assert log.count(f"Started run {run_id} of DAG") == 1
    # The deliveries found the run running, then succeeded, and the trigger deleted the message.
    assert f"Message {message_id} was delivered again" in log and f"while its run {run_id} is running" in log
    assert f"Run {run_id} of message {message_id} succeeded before: deleting the message" in log
