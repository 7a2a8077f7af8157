"""The reference document's worker, as Airflow DAGs: one DAG run per task message.

Flows: ``dags_examples/flows/reference_flow.yaml`` (Serverless Workflow): its step ``Task_1``
(``waitForCallback``) sends ``{"task_token": "<token>", "key": "value"}`` to the MNS queue
``fnf-demo`` and pauses. Its CloudFlow twin, ``reference_flow_cloudflow.yaml``: the state
``Task_1`` (``MNS:SendMessage``, ``WaitForCustomCallback``) sends
``{"TaskToken": "<token>", "key": "value"}`` to the same queue. These DAGs serve both unchanged:
the token is read from ``task_token``, ``taskToken`` or ``TaskToken``, and the run's conf, run id
and report are the same for both generations.

Two DAGs do what the document's ``worker.py`` loop does:

``fnf_demo_dispatcher``
    Scheduled on an asset whose ``AssetWatcher`` runs :class:`MNSMessageTrigger` in the
    triggerer: a message on ``fnf-demo`` starts a dispatcher run at once (no worker slot is held
    while the queue is empty). The trigger leases each message (sets its visibility) instead of
    deleting it. :class:`MNSDispatchMessagesOperator` starts one run of the worker DAG per
    message, with the run id ``mns__fnf-demo__<message id>`` and the parsed message as
    ``dag_run.conf``. A redelivered message finds its run by that id: no duplicate runs.

``fnf_reference_worker``
    ``do_the_work`` reads the message body from ``dag_run.conf`` and returns ``{"key": "value"}``
    (the step's ``$local``; in CloudFlow, the state's ``$Output``);
    :class:`ServerlessWorkflowReportTaskOperator` reports it with ReportTaskSucceeded (or
    ReportTaskFailed when ``do_the_work`` failed) and only then deletes the message.
    ``TaskAlreadyCompleted`` counts as reported, so a redelivered message is deleted too.

Copy both, rename the queue and the DAG ids, and replace ``do_the_work`` with your job.
Connections: ``mns_default`` (MNS: AccessKey, endpoint or account id + region) and
``fnf_default`` (Serverless Workflow: AccessKey, region). The queue must exist before the
watcher starts (create it with the flow).
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

QUEUE_NAME = "fnf-demo"
WORKER_DAG_ID = "fnf_reference_worker"

fnf_demo_queue = Asset(
    "fnf_demo_queue",
    watchers=[
        AssetWatcher(
            name="fnf_demo_queue_watcher",
            # lease_seconds bounds how late a message can be if Airflow never attaches its asset
            # event to a run (a scheduler race, docs/dispatch-modes.md): it then comes back and
            # is dispatched; a redelivery whose run exists starts no second run.
            trigger=MNSMessageTrigger(queue_name=QUEUE_NAME, mns_conn_id="mns_default", lease_seconds=300),
        )
    ],
)

with DAG(
    dag_id="fnf_demo_dispatcher",
    description="One fnf_reference_worker run per task message on the MNS queue fnf-demo",
    schedule=[fnf_demo_queue],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["fnf", "example", "dispatch"],
):
    # messages=None: the messages carried by the run's triggering asset events (all of them:
    # Airflow may batch several events into one run).
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=WORKER_DAG_ID)


with DAG(
    dag_id=WORKER_DAG_ID,
    description="The reference document's worker: do the work, report {'key': 'value'}, delete the message",
    schedule=None,  # runs are started by fnf_demo_dispatcher, one per message
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=16,
    dagrun_timeout=timedelta(minutes=30),
    # Safety net: a run that fails before its report (timeout, a task marked failed) still tells
    # the flow, instead of letting the step wait for its timeout.
    default_args={"on_failure_callback": record_task_error},
    on_failure_callback=report_task_failed_on_dag_failure,
    tags=["fnf", "example", "worker"],
):

    @task
    def do_the_work(**context: Any) -> dict[str, Any]:
        """The job. The message (``dag_run.conf``) carries the step's mapped input as ``body``."""
        message = context["dag_run"].conf
        body = message["body"]
        print(f"Working on message {message['message_id']} of execution {message.get('execution_name')}")
        return {"key": body["key"]}

    ServerlessWorkflowReportTaskOperator(task_id="report", output=do_the_work())
