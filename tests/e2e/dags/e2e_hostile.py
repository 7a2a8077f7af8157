"""Test-only DAGs for ``tests/e2e/test_e2e_hostile_messages.py``: the provider's documented DAG
shape (a watcher on the queue, ``MNSDispatchMessagesOperator``, a worker ending in
``ServerlessWorkflowReportTaskOperator``, the failure callbacks, a dead-letter queue) with the
trigger's defaults except a short lease, so that the test sees several lease periods in a minute.

The worker reports ``{"note": <the message's note>}``: a good message's note comes back to its
flow verbatim, whatever it looks like.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_fnf.callbacks import record_task_error, report_task_failed_on_dag_failure
from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

QUEUE = "e2e-hostile"
DLQ = "e2e-hostile-dlq"
QUEUES = (QUEUE, DLQ)
LEASE_SECONDS = 60
DISPATCHER_DAG_ID = "e2e_hostile_dispatcher"
WORKER_DAG_ID = "e2e_hostile_worker"
DAG_IDS = (DISPATCHER_DAG_ID, WORKER_DAG_ID)
START = pendulum.datetime(2024, 1, 1, tz="UTC")

hostile_queue = Asset(
    "e2e_hostile_queue",
    watchers=[
        AssetWatcher(
            name="e2e_hostile_watcher",
            trigger=MNSMessageTrigger(
                queue_name=QUEUE, dead_letter_queue_name=DLQ, lease_seconds=LEASE_SECONDS, wait_time_seconds=5
            ),
        )
    ],
)

with DAG(dag_id=DISPATCHER_DAG_ID, schedule=[hostile_queue], start_date=START, catchup=False):
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=WORKER_DAG_ID)

with DAG(
    dag_id=WORKER_DAG_ID,
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=16,
    dagrun_timeout=timedelta(minutes=5),
    default_args={"on_failure_callback": record_task_error},
    on_failure_callback=report_task_failed_on_dag_failure,
):

    @task(show_return_value_in_logs=False)
    def work(**context: Any) -> dict[str, Any]:
        body = context["dag_run"].conf["body"]
        return {"note": body.get("note")}

    ServerlessWorkflowReportTaskOperator(task_id="report", output=work())
