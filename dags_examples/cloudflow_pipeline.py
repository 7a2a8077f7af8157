"""A DAG that hands a fan-out to CloudFlow and waits for it: the data pipeline, one Map item per partition.

``fnf_cloudflow_pipeline`` deploys ``dags_examples/flows/data_pipeline_cloudflow.yaml`` (creating
its MNS queue and the flow, both idempotent), starts an execution with
:class:`ServerlessWorkflowStartExecutionOperator` and waits for it in the triggerer
(``deferrable=True``: no worker slot is held while the flow runs). The flow's Map sends one
message per partition to the queue ``fnf-data-pipeline``, where ``fnf_data_pipeline_dispatcher``
starts one ``fnf_data_pipeline_worker`` run per message (``data_pipeline.py``); each run reports
its partition's summary, or ``DataPipeline.InvalidPartition``, which the flow catches. When every
partition is done the flow ends, and ``report`` here gets the flow's output: each partition's
status and summary.

Trigger it with a conf such as::

    {"dataset": "sales", "output_dir": "/data/summaries",
     "partitions": [{"partition": "2024-01-30", "input_path": "/data/sales/2024-01-30.csv"},
                    {"partition": "2024-01-31", "input_path": "/data/sales/2024-01-31.csv"}]}

The execution name is derived from the run id, so a retried task waits for the execution its
first try started. To run a published version or an alias of the flow, give ``qualifier``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowStartExecutionOperator

FLOW_FILE = Path(__file__).parent / "flows" / "data_pipeline_cloudflow.yaml"
FLOW_NAME = "fnf-data-pipeline-cloudflow"
QUEUE_NAME = "fnf-data-pipeline"

with DAG(
    dag_id="fnf_cloudflow_pipeline",
    description="Start the CloudFlow data pipeline (a Map over partitions) and wait for its report",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "dataset": Param("sales", type="string"),
        "output_dir": Param("/tmp/fnf-summaries", type="string", description="Where summaries go"),
        "partitions": Param(
            [{"partition": "2024-01-31", "input_path": "/tmp/fnf-partitions/2024-01-31.csv"}],
            type="array",
            description="One item per partition: partition and input_path (a CSV order_id,region,amount)",
        ),
    },
    render_template_as_native_obj=True,
    tags=["fnf", "cloudflow", "example", "start-execution", "data-pipeline"],
):

    @task
    def deploy_flow() -> str:
        """Create the queue the flow sends to, and create or update the flow from its YAML."""
        MNSHook().create_queue(QUEUE_NAME)
        ServerlessWorkflowHook().create_or_update_flow(
            FLOW_NAME, FLOW_FILE.read_text(encoding="utf-8"), description="fnf_cloudflow_pipeline example"
        )
        return FLOW_NAME

    run_pipeline = ServerlessWorkflowStartExecutionOperator(
        task_id="run_pipeline",
        flow_name=FLOW_NAME,
        execution_input={
            "dataset": "{{ params.dataset }}",
            "output_dir": "{{ params.output_dir }}",
            "partitions": "{{ params.partitions }}",
        },
        # letters, digits, _ and - only: derived from the run id, stable across task retries
        execution_name=("airflow-{{ run_id | replace(':', '-') | replace('+', '-') | replace('.', '-') }}"),
        wait_for_completion=True,
        deferrable=True,
        poll_interval=1.0,
    )

    @task
    def report(output: dict[str, Any]) -> dict[str, Any]:
        """Whatever comes next: here, count the partitions by status."""
        statuses: dict[str, int] = {}
        for partition in output["partitions"]:
            statuses[partition["status"]] = statuses.get(partition["status"], 0) + 1
        print(f"Dataset {output['dataset']}: {statuses}")
        return {"dataset": output["dataset"], "statuses": statuses}

    deploy_flow() >> run_pipeline
    report(run_pipeline.output)
