"""The reverse direction: a DAG starts a flow and waits for it (deferred, in the triggerer).
The flow's step is in turn worked on by Airflow (the watcher DAG), so the output makes a full
round trip: Airflow -> Serverless Workflow -> MNS -> Airflow -> Serverless Workflow -> Airflow."""

from __future__ import annotations

import pytest

from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

DAG_ID = "fnf_start_flow_and_wait"


def test_dag_starts_a_flow_and_gets_its_output(stack: LocalStack, flows) -> None:
    run = stack.api.trigger_dag_run(DAG_ID, conf={"order_id": "R-42"})

    run = stack.api.wait_for_dag_run(DAG_ID, run["dag_run_id"], timeout=180)

    states = {t["task_id"]: t["state"] for t in stack.api.task_instances(DAG_ID, run["dag_run_id"])}
    assert run["state"] == "success", states
    assert states == dict.fromkeys(("deploy_flow", "run_flow", "use_output"), "success")
    output = stack.api.xcom(DAG_ID, run["dag_run_id"], "use_output")
    assert output["order_id"] == "R-42" and output["status"] == "processed"
    execution_name = stack.api.xcom(DAG_ID, run["dag_run_id"], "run_flow", key="execution_name")
    execution = flows.fnf.describe_execution("fnf-watcher-demo", execution_name)
    assert execution["Status"] == "Succeeded"
    assert flows.path("fnf-watcher-demo", execution_name) == "Start -> Task_1 -> End"
