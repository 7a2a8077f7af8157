"""Test-only DAGs (not examples) for ``tests/e2e/test_e2e_poison_messages.py``: poison messages
through the real triggerer, one queue per poison policy.

``e2e-poison``         poison messages go to the dead-letter queue ``e2e-poison-dlq``
``e2e-poison-delete``  poison messages are deleted

Each queue has its own watcher and dispatcher DAG; both dispatch good messages to
``e2e_poison_worker``, which reports ``{"handled": true}``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

DEAD_LETTER_QUEUE = "e2e-poison"
DELETE_QUEUE = "e2e-poison-delete"
DLQ = "e2e-poison-dlq"
HOLD_QUEUE = "e2e-poison-hold"
"""Watched by no DAG: the test takes a real task message from here and breaks its body."""
QUEUES = (DEAD_LETTER_QUEUE, DELETE_QUEUE, DLQ, HOLD_QUEUE)
WORKER_DAG_ID = "e2e_poison_worker"
START = pendulum.datetime(2024, 1, 1, tz="UTC")

POLICIES: dict[str, dict[str, Any]] = {  # queue -> its poison policy
    DEAD_LETTER_QUEUE: {"dead_letter_queue_name": DLQ},
    DELETE_QUEUE: {"poison_policy": "delete"},
}


def dispatcher_of(queue_name: str) -> str:
    return f"{queue_name.replace('-', '_')}_dispatcher"


DAG_IDS = (*(dispatcher_of(q) for q in POLICIES), WORKER_DAG_ID)

for queue_name, policy in POLICIES.items():
    watched = Asset(
        f"{queue_name.replace('-', '_')}_queue",
        watchers=[
            AssetWatcher(
                name=f"{queue_name.replace('-', '_')}_watcher",
                trigger=MNSMessageTrigger(
                    queue_name=queue_name, wait_time_seconds=5, lease_seconds=60, **policy
                ),
            )
        ],
    )
    with DAG(dag_id=dispatcher_of(queue_name), schedule=[watched], start_date=START, catchup=False):
        MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=WORKER_DAG_ID)

with DAG(dag_id=WORKER_DAG_ID, schedule=None, start_date=START, catchup=False, max_active_runs=16):
    ServerlessWorkflowReportTaskOperator(task_id="report", output={"handled": True})
