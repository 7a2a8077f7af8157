"""CloudFlow's Express mode: a DAG runs a flow synchronously and gets its output in the same call.

``fnf_express_order_check`` deploys ``dags_examples/flows/express_flow.yaml`` as an Express flow
(``execution_mode="Express"``; creating it is idempotent), then
:class:`ServerlessWorkflowStartSyncExecutionOperator` runs it with StartSyncExecution: the call
returns when the execution has ended (an Express execution runs at most 5 minutes, only
RequestComplete tasks), and the task returns the flow's output as its XCom. An execution that
ends Failed or TimedOut fails the task with the flow's error code and message (here
``Order.Rejected`` for a quantity outside 1..100). The task links to the flow's console page.

A standard flow runs with :class:`ServerlessWorkflowStartExecutionOperator` instead (see
``start_flow_and_wait.py`` and ``cloudflow_pipeline.py``). An Express execution has no unique
name to attach to, so a retried task runs the flow again: keep ``retries`` at 0 unless the flow
is safe to repeat, as this one is.

Trigger it with a conf such as ``{"order_id": "A-1001", "quantity": 3}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowStartSyncExecutionOperator

FLOW_FILE = Path(__file__).parent / "flows" / "express_flow.yaml"
FLOW_NAME = "fnf-express-order-check"

with DAG(
    dag_id="fnf_express_order_check",
    description="Run a CloudFlow Express flow synchronously and use its output",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "order_id": Param("A-1001", type="string", description="The order to check"),
        "quantity": Param(3, type="integer", description="Accepted when 1..100"),
    },
    render_template_as_native_obj=True,  # the quantity reaches the flow as a number
    default_args={"retries": 0},
    tags=["fnf", "cloudflow", "example", "express"],
):

    @task
    def deploy_flow() -> str:
        """Create the Express flow, or update its definition."""
        ServerlessWorkflowHook().create_or_update_flow(
            FLOW_NAME,
            FLOW_FILE.read_text(encoding="utf-8"),
            description="fnf_express_order_check example",
            execution_mode="Express",
        )
        return FLOW_NAME

    check_order = ServerlessWorkflowStartSyncExecutionOperator(
        task_id="check_order",
        flow_name=FLOW_NAME,
        execution_input={"order_id": "{{ params.order_id }}", "quantity": "{{ params.quantity }}"},
        # the service names the execution "{this}:{UUID}"
        execution_name="{{ dag.dag_id }}",
    )

    @task
    def use_output(output: dict[str, Any]) -> dict[str, Any]:
        """Whatever comes next: here, show the flow's answer."""
        print(f"The order check answered {output}")
        return output

    deploy_flow() >> check_order
    use_output(check_order.output)
