"""Test-only DAGs (not examples) for ``tests/e2e/test_e2e_load_and_redelivery.py``: a run that
outlives its message's processing lease (the scenario of ``bench/lease_expiry.py``).

The watcher on ``e2e-lease`` leases each message for only 5 s while the worker takes 15 s, so
the message is delivered again while its run works. Each delivery reaches the dispatcher, which
must find the run by its id and start nothing; once the worker reported (its own delete fails:
the receipt handle changed with the redeliveries), the next delivery finds the run succeeded and
deletes the message. ``e2e_lease_trigger_worker`` is the same worker fed by an
``MNSDispatchTrigger`` on ``e2e-lease-trigger``: the trigger reconciles the deliveries itself.
"""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.dispatch import MNSDispatchTrigger
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

QUEUE = "e2e-lease"
TRIGGER_QUEUE = "e2e-lease-trigger"
QUEUES = (QUEUE, TRIGGER_QUEUE)
LISTENER_DAG_ID = "e2e_lease_listener"
WORKER_DAG_ID = "e2e_lease_worker"
TRIGGER_WORKER_DAG_ID = "e2e_lease_trigger_worker"
DAG_IDS = (LISTENER_DAG_ID, WORKER_DAG_ID, TRIGGER_WORKER_DAG_ID)
LEASE_SECONDS = 5
WORK_SECONDS = 15
START = pendulum.datetime(2024, 1, 1, tz="UTC")

lease_queue = Asset(
    "e2e_lease_queue",
    watchers=[
        AssetWatcher(
            name="e2e_lease_watcher",
            trigger=MNSMessageTrigger(queue_name=QUEUE, lease_seconds=LEASE_SECONDS, wait_time_seconds=2),
        )
    ],
)

with DAG(dag_id=LISTENER_DAG_ID, schedule=[lease_queue], start_date=START, catchup=False):
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=WORKER_DAG_ID)



@task
def slow_work() -> dict[str, int]:
    time.sleep(WORK_SECONDS)
    return {"slept": WORK_SECONDS}


with DAG(dag_id=WORKER_DAG_ID, schedule=None, start_date=START, catchup=False):
    ServerlessWorkflowReportTaskOperator(task_id="report", output=slow_work())

trigger_queue = Asset(
    "e2e_lease_trigger_queue",
    watchers=[
        AssetWatcher(
            name="e2e_lease_trigger_dispatch",
            trigger=MNSDispatchTrigger(
                queue_name=TRIGGER_QUEUE,
                lease_seconds=LEASE_SECONDS,
                wait_time_seconds=2,
                trigger_dag_id=TRIGGER_WORKER_DAG_ID,
            ),
        )
    ],
)

with DAG(dag_id=TRIGGER_WORKER_DAG_ID, schedule=[trigger_queue], start_date=START, catchup=False):
    ServerlessWorkflowReportTaskOperator(task_id="report", output=slow_work())
