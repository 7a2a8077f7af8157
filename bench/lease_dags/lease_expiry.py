"""DAGs for ``bench/lease_expiry.py``: a run that outlives its message's processing lease.

The watcher leases each message for only 5 s while the worker takes 25 s, so the message is
delivered again four or five times while its run works. Each delivery reaches the dispatcher,
which must find the run by its id and start nothing; after the worker reported (its own delete
fails: the handle changed with every redelivery), the next delivery finds the run succeeded and
deletes the message.
"""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

QUEUE = "lease-expiry"
LEASE_SECONDS = 5
WORK_SECONDS = 25
START = pendulum.datetime(2024, 1, 1, tz="UTC")

queue = Asset(
    "lease_expiry_queue",
    watchers=[
        AssetWatcher(
            name="lease_expiry_watcher",
            trigger=MNSMessageTrigger(queue_name=QUEUE, lease_seconds=LEASE_SECONDS, wait_time_seconds=2),
        )
    ],
)

with DAG(dag_id="lease_expiry_listener", schedule=[queue], start_date=START, catchup=False):
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id="lease_expiry_worker")

with DAG(dag_id="lease_expiry_worker", schedule=None, start_date=START, catchup=False):

    @task
    def slow_work() -> dict[str, int]:
        time.sleep(WORK_SECONDS)
        return {"slept": WORK_SECONDS}

    ServerlessWorkflowReportTaskOperator(task_id="report", output=slow_work())
