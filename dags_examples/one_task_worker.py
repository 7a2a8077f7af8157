"""A worker in one task: ``@task.fnf_callback`` does the work, reports the result and deletes the message.

Flow: ``dags_examples/flows/one_task_flow.yaml``. Its step ``Square`` (``waitForCallback``) sends
``{"task_token": "<token>", "n": <the execution's input n>}`` to the MNS queue ``fnf-one-task``.

``fnf_one_task_worker``
    Scheduled on the asset ``fnf_one_task_queue``, whose watcher is an :class:`MNSDispatchTrigger`:
    in the triggerer it receives the queue's messages and starts one run of this DAG per message
    through Airflow's REST API (connection ``airflow_api_default``, a user allowed to trigger the
    DAG), with the message as ``dag_run.conf``. No dispatcher run in between: the fastest way from
    a message to its worker (``reference_worker.py`` shows the dispatcher DAG, which needs no API
    connection). Pausing the DAG stops the watcher.

    One task. ``square`` receives the message and returns the step's Output; the decorator then
    reports it with ReportTaskSucceeded and deletes the message, in the same process. When
    ``square`` raises (on its last try), the decorator reports ReportTaskFailed with the error
    name mapped from the exception (``ValueError`` -> ``Square.InvalidInput``, which a flow's
    ``catch`` can match) and deletes the message. One task process per message instead of two
    (the work, then :class:`ServerlessWorkflowReportTaskOperator`).

The task token is in the body too (the flow maps it there): ``square`` gets the message with the
token replaced by ``***`` (the decorator keeps it to report with), so printing the body is safe.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_fnf.callbacks import report_task_failed_on_dag_failure
from airflow_provider_fnf.triggers.dispatch import MNSDispatchTrigger

QUEUE_NAME = "fnf-one-task"
WORKER_DAG_ID = "fnf_one_task_worker"

fnf_one_task_queue = Asset(
    "fnf_one_task_queue",
    watchers=[
        AssetWatcher(
            name="fnf_one_task_queue_dispatch",
            trigger=MNSDispatchTrigger(
                queue_name=QUEUE_NAME,
                mns_conn_id="mns_default",
                lease_seconds=300,
                trigger_dag_id=WORKER_DAG_ID,
                airflow_api_conn_id="airflow_api_default",
            ),
        )
    ],
)

with DAG(
    dag_id=WORKER_DAG_ID,
    description="Square the execution's n in one task that reports and deletes the message",
    schedule=[fnf_one_task_queue],  # its watcher starts one run per message
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=16,
    dagrun_timeout=timedelta(minutes=30),
    # Safety net: a run that dies before the task reports (timeout, killed) still tells the flow.
    on_failure_callback=report_task_failed_on_dag_failure,
    tags=["fnf", "example", "worker"],
):

    @task.fnf_callback(error_names={"ValueError": "Square.InvalidInput"})
    def square(message: dict[str, Any]) -> dict[str, Any]:
        """The job: the message's ``body`` is the step's mapped input; the return value its Output."""
        body = message["body"]
        print(f"Working on message {message['message_id']}: {body}")  # the token prints as ***
        n = body.get("n")
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"n must be an integer, got {n!r}")
        return {"n": n, "square": n * n}

    square()
