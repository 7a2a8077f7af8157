"""Test-only DAGs (not examples) for ``tests/e2e/test_e2e_load_and_redelivery.py``: a burst of
messages through both ways messages become DAG runs, each on a queue of its own.

``e2e_load_dispatcher`` -> ``e2e_load_worker``
    One run per message: an AssetWatcher on ``e2e-load-dispatch`` feeds
    ``MNSDispatchMessagesOperator``, which starts one ``e2e_load_worker`` run per message. The
    worker only reports, echoing its message's ``n`` and id, so that a mixed-up conf shows in the
    flow's output.

``e2e_load_trigger_worker``
    One run per message without a dispatcher run: its watcher on ``e2e-load-trigger`` is an
    ``MNSDispatchTrigger``, which starts the runs through Airflow's REST API; the same worker.

``e2e_load_watcher_worker``
    The watcher mode: scheduled on ``e2e-load-watcher`` directly, one mapped report per message
    of the run's triggering asset events.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_fnf.messages import messages_from_asset_events
from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.dispatch import MNSDispatchTrigger
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

LEASE_SECONDS = 90
"""Short, so that a message whose asset event Airflow's scheduler never attached to a run (a
race in 3.3: an event stored between the scheduler's read and delete of its asset queue row)
comes back within the test's patience instead of after the default one-hour lease; a
redelivery whose run exists starts no second one (docs/dispatch-modes.md)."""

DISPATCH_QUEUE = "e2e-load-dispatch"
WATCHER_QUEUE = "e2e-load-watcher"
TRIGGER_QUEUE = "e2e-load-trigger"
QUEUES = (DISPATCH_QUEUE, WATCHER_QUEUE, TRIGGER_QUEUE)
DISPATCHER_DAG_ID = "e2e_load_dispatcher"
WORKER_DAG_ID = "e2e_load_worker"
TRIGGER_WORKER_DAG_ID = "e2e_load_trigger_worker"
WATCHER_DAG_ID = "e2e_load_watcher_worker"
DAG_IDS = (DISPATCHER_DAG_ID, WORKER_DAG_ID, TRIGGER_WORKER_DAG_ID, WATCHER_DAG_ID)
START = pendulum.datetime(2024, 1, 1, tz="UTC")

dispatch_queue = Asset(
    "e2e_load_dispatch_queue",
    watchers=[
        AssetWatcher(
            name="e2e_load_dispatch_watcher",
            trigger=MNSMessageTrigger(queue_name=DISPATCH_QUEUE, wait_time_seconds=5, lease_seconds=LEASE_SECONDS),
        )
    ],
)

with DAG(dag_id=DISPATCHER_DAG_ID, schedule=[dispatch_queue], start_date=START, catchup=False):
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=WORKER_DAG_ID)

ECHO = {"n": "{{ dag_run.conf['body']['n'] }}", "message_id": "{{ dag_run.conf['message_id'] }}"}
"""The worker's Output: its message's n and id, so that a mixed-up conf shows in the flow."""

with DAG(dag_id=WORKER_DAG_ID, schedule=None, start_date=START, catchup=False, max_active_runs=64):
    ServerlessWorkflowReportTaskOperator(task_id="report", output=ECHO)

trigger_queue = Asset(
    "e2e_load_trigger_queue",
    watchers=[
        AssetWatcher(
            name="e2e_load_trigger_dispatch",
            trigger=MNSDispatchTrigger(
                queue_name=TRIGGER_QUEUE,
                wait_time_seconds=5,
                lease_seconds=LEASE_SECONDS,
                trigger_dag_id=TRIGGER_WORKER_DAG_ID,
            ),
        )
    ],
)

with DAG(
    dag_id=TRIGGER_WORKER_DAG_ID, schedule=[trigger_queue], start_date=START, catchup=False, max_active_runs=64
):
    ServerlessWorkflowReportTaskOperator(task_id="report", output=ECHO)

watcher_queue = Asset(
    "e2e_load_watcher_queue",
    watchers=[
        AssetWatcher(
            name="e2e_load_watcher_watcher",
            trigger=MNSMessageTrigger(queue_name=WATCHER_QUEUE, wait_time_seconds=5, lease_seconds=LEASE_SECONDS),
        )
    ],
)

with DAG(dag_id=WATCHER_DAG_ID, schedule=[watcher_queue], start_date=START, catchup=False):

    @task(show_return_value_in_logs=False)  # the messages carry task tokens
    def received(**context: Any) -> list[dict[str, Any]]:
        """Every message of the run's triggering events (Airflow may batch several events)."""
        return messages_from_asset_events(context["triggering_asset_events"])

    ServerlessWorkflowReportTaskOperator.partial(task_id="report", output={"mode": "watcher"}).expand(
        message=received()
    )
