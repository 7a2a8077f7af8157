"""DAGs of the failover run (``tests/soak/test_failover.py``): two watched queues, one worker DAG,
both ways from a message to its worker run.

``failover-a`` -> ``failover_worker``
    The queue's AssetWatcher is an ``MNSDispatchTrigger``: the triggerer starts one
    ``failover_worker`` run per message through Airflow's REST API (the worker DAG is scheduled
    on that asset).
``failover-b`` -> ``failover_dispatcher_b`` -> ``failover_worker``
    The queue's AssetWatcher (``MNSMessageTrigger``) feeds ``MNSDispatchMessagesOperator``,
    which starts one ``failover_worker`` run per message.

With a triggerer capacity of 1 and two triggerers, each triggerer holds one watcher, so killing
one leaves the other running.

Every task retries: a task whose process died with the scheduler, the database or a worker is
retried, and each retry is safe (run ids de-duplicate dispatching; a second report of a completed
task answers TaskAlreadyCompleted).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.dispatch import MNSDispatchTrigger
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

QUEUES = ("failover-a", "failover-b")
TRIGGER_QUEUE, OPERATOR_QUEUE = QUEUES
WORKER_DAG_ID = "failover_worker"
DISPATCHER_DAG_ID = "failover_dispatcher_b"
DAG_IDS = (DISPATCHER_DAG_ID, WORKER_DAG_ID)
LEASE_SECONDS = 150
"""Longer than a message waits for its report (the backlog of ``IN_FLIGHT`` ahead of it, in
arrival order, see ``WORKER_ACTIVE_RUNS``, and a failure's pause: up to 118 s measured), yet
short: a message whose event a dying triggerer took with it comes back only when its lease
ends, and the run waits for it."""
WORKER_ACTIVE_RUNS = 6
"""The worker DAG's ``max_active_runs``: the executor's slots (``parallelism`` 8) less what the
dispatchers use. The scheduler starts queued runs oldest first, but picks among the tasks of
running runs in no order of arrival (runs without a logical date; by run id, as it happens):
with more tasks ready than slots, a message whose id sorts late waits until the backlog has
drained (up to 4 min measured with 32, past its lease). Runs held queued keep the order; while
dispatcher tasks fill the slots a late-sorting task still waits (75 s seen after the database
restart)."""
START = pendulum.datetime(2024, 1, 1, tz="UTC")
RETRIES = {"retries": 4, "retry_delay": timedelta(seconds=3)}


def _asset(queue: str, trigger: MNSMessageTrigger) -> Asset:
    name = queue.replace("-", "_")
    return Asset(f"{name}_queue", watchers=[AssetWatcher(name=f"{name}_watcher", trigger=trigger)])


trigger_queue = _asset(
    TRIGGER_QUEUE,
    MNSDispatchTrigger(
        queue_name=TRIGGER_QUEUE, wait_time_seconds=5, lease_seconds=LEASE_SECONDS, trigger_dag_id=WORKER_DAG_ID
    ),
)
operator_queue = _asset(
    OPERATOR_QUEUE,
    MNSMessageTrigger(queue_name=OPERATOR_QUEUE, wait_time_seconds=5, lease_seconds=LEASE_SECONDS),
)

with DAG(
    dag_id=DISPATCHER_DAG_ID, schedule=[operator_queue], start_date=START, catchup=False, default_args=RETRIES
):
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=WORKER_DAG_ID)

with DAG(
    dag_id=WORKER_DAG_ID,
    schedule=[trigger_queue],  # its runs: one per message, from either way
    start_date=START,
    catchup=False,
    max_active_runs=WORKER_ACTIVE_RUNS,
    default_args=RETRIES,
):
    ServerlessWorkflowReportTaskOperator(task_id="report", output={"n": "{{ dag_run.conf['body']['n'] }}"})
