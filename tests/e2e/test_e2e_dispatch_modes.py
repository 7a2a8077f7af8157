"""Both ways messages become DAG runs, with several messages in flight at once.

- one run per message: ``fnf_demo_dispatcher`` (fed by an AssetWatcher) starts one
  ``fnf_reference_worker`` run per message, run id ``mns__fnf-demo__<message id>``;
- the watcher: ``fnf_watcher_worker`` is scheduled on the queue's asset and handles every
  message of its triggering events in mapped tasks.
"""

from __future__ import annotations

import json

import pytest

from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

MESSAGES = 3


def test_one_run_per_message(stack: LocalStack, flows) -> None:
    flows.deploy("fnf-demo", "reference_flow.yaml")
    names = [flows.start("fnf-demo", prefix="per-message") for _ in range(MESSAGES)]

    executions = {name: flows.wait("fnf-demo", name) for name in names}

    assert {n: e["Status"] for n, e in executions.items()} == dict.fromkeys(names, "Succeeded")
    for name in names:
        (message_id,) = flows.message_ids("fnf-demo", name)
        run = stack.api.wait_for_dag_run("fnf_reference_worker", f"mns__fnf-demo__{message_id}", timeout=60)
        assert run["state"] == "success"
        assert run["conf"]["execution_name"] == name
    runs = [
        r
        for r in stack.api.dag_runs("fnf_reference_worker")
        if (r.get("conf") or {}).get("execution_name") in names
    ]
    assert len(runs) == MESSAGES, "exactly one worker run per message"
    assert flows.wait_queue_empty("fnf-demo") == 0


def test_watcher_handles_every_message_of_its_events(stack: LocalStack, flows) -> None:
    flows.deploy("fnf-watcher-demo", "watcher_flow.yaml")
    orders = [f"W-{i}" for i in range(MESSAGES)]
    names = {
        flows.start("fnf-watcher-demo", {"order_id": order}, prefix="watcher"): order for order in orders
    }

    executions = {name: flows.wait("fnf-watcher-demo", name) for name in names}

    for name, order in names.items():
        execution = executions[name]
        assert execution["Status"] == "Succeeded", flows.path("fnf-watcher-demo", name)
        output = json.loads(execution["Output"])
        assert output["order_id"] == order and output["status"] == "processed"
        assert flows.path("fnf-watcher-demo", name) == "Start -> Task_1 -> End"
    # Runs of the watcher-scheduled DAG carry the messages in XCom; together they handled each
    # message exactly once, whatever way Airflow batched the events.
    handled: list[str] = []
    for run in stack.api.dag_runs("fnf_watcher_worker"):
        # The flow resumes on the report; the run is marked done a moment later.
        run = stack.api.wait_for_dag_run("fnf_watcher_worker", run["dag_run_id"], timeout=60)
        assert run["state"] == "success"
        for message in stack.api.xcom("fnf_watcher_worker", run["dag_run_id"], "received_messages") or []:
            if message["execution_name"] in names:
                handled.append(message["execution_name"])
    assert sorted(handled) == sorted(names)
    assert flows.wait_queue_empty("fnf-watcher-demo") == 0
