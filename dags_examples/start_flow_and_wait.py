"""The reverse direction: a DAG that starts a Serverless Workflow execution and waits for it.

``fnf_start_flow_and_wait`` deploys ``dags_examples/flows/watcher_flow.yaml`` (creating its MNS
queue and the flow, both idempotent), starts an execution with
:class:`ServerlessWorkflowStartExecutionOperator` and waits for it in the triggerer
(``deferrable=True``: no worker slot is held while the flow runs). The task returns the
execution's Output; an execution that ends Failed, TimedOut or Stopped fails it with the flow's
error and cause. The task also gets a "Serverless Workflow execution" link.

That flow's step is worked on by ``fnf_watcher_worker`` (``watcher_worker.py``), so a run of
this DAG goes all the way round: Airflow starts the flow, the flow sends a message, Airflow
works on it and reports, the flow ends, and this DAG resumes with the output.

Trigger it with a conf such as ``{"order_id": "A-1001"}``. The execution name is derived from
the run id, so a retried task waits for the execution its first try started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowStartExecutionOperator

FLOW_FILE = Path(__file__).parent / "flows" / "watcher_flow.yaml"
QUEUE_NAME = "fnf-watcher-demo"

with DAG(
    dag_id="fnf_start_flow_and_wait",
    description="Start a Serverless Workflow execution and wait for its output",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "flow_name": Param("fnf-watcher-demo", type="string", description="The flow to deploy and start"),
        "order_id": Param("A-1001", type="string", description="Passed to the flow as its input"),
    },
    render_template_as_native_obj=True,
    tags=["fnf", "example", "start-execution"],
):

    @task
    def deploy_flow(**context: Any) -> str:
        """Create the queue the flow sends to, and create or update the flow from its YAML."""
        flow_name = context["params"]["flow_name"]
        MNSHook().create_queue(QUEUE_NAME)
        ServerlessWorkflowHook().create_or_update_flow(
            flow_name, FLOW_FILE.read_text(encoding="utf-8"), description="fnf_start_flow_and_wait example"
        )
        return flow_name

    run_flow = ServerlessWorkflowStartExecutionOperator(
        task_id="run_flow",
        flow_name="{{ params.flow_name }}",
        execution_input={"order_id": "{{ params.order_id }}"},
        # letters, digits, _ and - only: derived from the run id, stable across task retries
        execution_name=("airflow-{{ run_id | replace(':', '-') | replace('+', '-') | replace('.', '-') }}"),
        wait_for_completion=True,
        deferrable=True,
        poll_interval=1.0,
    )

    @task
    def use_output(output: dict[str, Any]) -> dict[str, Any]:
        """Whatever comes next: here, show the flow's output."""
        print(f"The flow answered {output}")
        return output

    deploy_flow() >> run_flow
    use_output(run_flow.output)
