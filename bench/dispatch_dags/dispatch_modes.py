"""DAGs for ``bench/dispatch_modes.py``: three ways to turn MNS task messages into worker runs.

Each mode reads its own queue and feeds its own copy of the same worker DAG (report the task
succeeded, delete the message), so a run's number and conf can be checked per mode.

``operator``  listener (continuous): deferrable MNSSensor -> MNSDispatchMessagesOperator
``mapped``    listener (continuous): deferrable MNSSensor -> mapped TriggerDagRunOperator
``watcher``   listener scheduled on an AssetWatcher(MNSMessageTrigger) -> MNSDispatchMessagesOperator
``direct``    the worker DAG itself scheduled on an AssetWatcher(MNSMessageTrigger), one mapped
              report per message (no run per message)
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_fnf.messages import messages_from_asset_events, trigger_dag_run_kwargs
from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.sensors.mns import MNSSensor
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

MODES = ("operator", "mapped", "watcher")
START = pendulum.datetime(2024, 1, 1, tz="UTC")


def queue_of(mode: str) -> str:
    return f"bench-{mode}"


def worker_of(mode: str) -> str:
    return f"bench_worker_{mode}"


for mode in MODES:
    with DAG(dag_id=worker_of(mode), schedule=None, start_date=START, catchup=False, max_active_runs=64):
        ServerlessWorkflowReportTaskOperator(task_id="report", output={"mode": mode})

with DAG(
    dag_id="bench_listener_operator",
    schedule="@continuous",
    max_active_runs=1,
    start_date=START,
    catchup=False,
):
    wait = MNSSensor(task_id="wait", queue_name=queue_of("operator"), deferrable=True, wait_time_seconds=5)
    MNSDispatchMessagesOperator(
        task_id="dispatch", trigger_dag_id=worker_of("operator"), messages=wait.output
    )

with DAG(
    dag_id="bench_listener_mapped",
    schedule="@continuous",
    max_active_runs=1,
    start_date=START,
    catchup=False,
):
    wait = MNSSensor(task_id="wait", queue_name=queue_of("mapped"), deferrable=True, wait_time_seconds=5)
    TriggerDagRunOperator.partial(
        task_id="start_worker",
        trigger_dag_id=worker_of("mapped"),
        skip_when_already_exists=True,
        logical_date=None,
        openlineage_inject_parent_info=False,
    ).expand_kwargs(wait.output.map(trigger_dag_run_kwargs))

watched = Asset(
    "bench_watcher_queue",
    watchers=[
        AssetWatcher(
            name="bench_watcher_queue_watcher",
            trigger=MNSMessageTrigger(queue_name=queue_of("watcher"), wait_time_seconds=5),
        )
    ],
)
with DAG(dag_id="bench_listener_watcher", schedule=[watched], start_date=START, catchup=False):
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=worker_of("watcher"))

# ``direct``: no per-message runs; the worker DAG itself is scheduled on the watched queue and
# reports every message of its triggering asset events (one mapped report per message).
direct_queue = Asset(
    "bench_direct_queue",
    watchers=[
        AssetWatcher(
            name="bench_direct_queue_watcher",
            trigger=MNSMessageTrigger(queue_name=queue_of("direct"), wait_time_seconds=5),
        )
    ],
)
with DAG(dag_id="bench_worker_direct", schedule=[direct_queue], start_date=START, catchup=False):

    @task(show_return_value_in_logs=False)  # the messages carry task tokens
    def received(**context: Any) -> list[dict[str, Any]]:
        return messages_from_asset_events(context["triggering_asset_events"])

    ServerlessWorkflowReportTaskOperator.partial(task_id="report", output={"mode": "direct"}).expand(
        message=received()
    )
