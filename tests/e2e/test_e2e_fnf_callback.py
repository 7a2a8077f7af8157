"""``@task.fnf_callback`` on a real Airflow: the example ``dags_examples/one_task_worker.py``.

One task per message does the work, reports and deletes: a good input's Output reaches the flow,
a bad one is reported with the error name its exception maps to, and the task token, which the
function prints with the body, shows as ``***`` in the task's log.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

QUEUE = "fnf-one-task"
WORKER = "fnf_one_task_worker"


def _run_of(stack: LocalStack, flows, flow: str, name: str) -> dict:
    (message_id,) = flows.message_ids(flow, name)
    return stack.api.wait_for_dag_run(WORKER, f"mns__{QUEUE}__{message_id}", timeout=90)


def _task_log(stack: LocalStack, run_id: str) -> str:
    logs = [
        p for p in (stack.airflow_home / "logs").rglob("*") if p.is_file() and f"run_id={run_id}" in str(p)
    ]
    assert logs, f"no task log for run {run_id}"
    return "\n".join(p.read_text(errors="replace") for p in logs)


def test_one_task_reports_the_output_and_the_error_name(stack: LocalStack, flows) -> None:
    flow = f"e2e-one-task-{uuid.uuid4().hex[:6]}"
    flows.deploy(flow, "one_task_flow.yaml")
    good, bad = flows.start(flow, {"n": 12}), flows.start(flow, {"n": "twelve"})

    execution = flows.wait(flow, good)
    assert execution["Status"] == "Succeeded", flows.path(flow, good)
    assert json.loads(execution["Output"]) == {"n": 12, "square": 144}
    run = _run_of(stack, flows, flow, good)
    assert run["state"] == "success"
    assert {t["task_id"]: t["state"] for t in stack.api.task_instances(WORKER, run["dag_run_id"])} == {
        "square": "success"
    }
    summary = stack.api.xcom(WORKER, run["dag_run_id"], "square")
    assert summary["outcome"] == "succeeded" and summary["deleted"] is True

    failed = flows.wait(flow, bad)
    assert failed["Status"] == "Failed"
    [detail] = [json.loads(e["EventDetail"]) for e in flows.history(flow, bad) if e["Type"] == "TaskFailed"]
    assert detail["error"] == "Square.InvalidInput"
    assert "ValueError: n must be an integer, got 'twelve'" in detail["cause"]
    bad_run = _run_of(stack, flows, flow, bad)
    assert bad_run["state"] == "failed"
    assert {t["task_id"]: t["state"] for t in stack.api.task_instances(WORKER, bad_run["dag_run_id"])} == {
        "square": "failed"
    }

    assert flows.wait_queue_empty(QUEUE) == 0


def test_the_function_prints_the_body_but_the_token_never_reaches_the_log(stack: LocalStack, flows) -> None:
    flow = f"e2e-one-task-{uuid.uuid4().hex[:6]}"
    flows.deploy(flow, "one_task_flow.yaml")
    name = flows.start(flow, {"n": 3})
    assert flows.wait(flow, name)["Status"] == "Succeeded"
    run = _run_of(stack, flows, flow, name)
    token = run["conf"]["task_token"]
    assert token and token in json.dumps(run["conf"]["body"])  # the flow put the token in the body

    text = _task_log(stack, run["dag_run_id"])
    assert "Working on message" in text and "'task_token': '***'" in text, text[-3000:]
    assert token not in text
    component_logs = "\n".join(p.read_text(errors="replace") for p in stack.work_dir.glob("airflow-*.log"))
    assert token not in component_logs
