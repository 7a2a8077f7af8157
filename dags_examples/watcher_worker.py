"""A worker DAG scheduled straight on an MNS queue (the watcher mode).

Flow: ``dags_examples/flows/watcher_flow.yaml``; its step sends
``{"task_token": "<token>", "order_id": "..."}`` to the MNS queue ``fnf-watcher-demo``.

``fnf_watcher_worker`` is scheduled on an asset watched by :class:`MNSMessageTrigger`: each
event carries up to 256 leased messages (one batch of 16, or several while a backlog lasts:
``max_messages_per_event``), and Airflow may fold several events into one run. The run therefore handles **every** message of ``triggering_asset_events``
(:func:`messages_from_asset_events`), one mapped task instance per message, and reports each
token with a mapped :class:`ServerlessWorkflowReportTaskOperator` (same map index as the work).
Compare with ``reference_worker.py`` (one run per message, via a dispatcher): the watcher mode
has fewer moving parts and less latency; one run per message gives each task its own run,
retries and logs, and de-duplicates redeliveries by run id.

Processing must be idempotent: delivery is at least once. A message is deleted only after its
token was reported.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_fnf.callbacks import record_task_error, report_task_failed_on_dag_failure
from airflow_provider_fnf.messages import messages_from_asset_events
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

QUEUE_NAME = "fnf-watcher-demo"

fnf_watcher_demo_queue = Asset(
    "fnf_watcher_demo_queue",
    watchers=[
        AssetWatcher(
            name="fnf_watcher_demo_queue_watcher",
            # Equivalent: MessageQueueTrigger(scheme="mns", queue_name=QUEUE_NAME) from
            # apache-airflow-providers-common-messaging.
            # lease_seconds: longer than a run takes (a message redelivered while its run works is
            # handled again: the watcher mode is at least once), short enough to bound how late a
            # message can be if Airflow never attaches its asset event to a run (docs/dispatch-modes.md).
            trigger=MNSMessageTrigger(queue_name=QUEUE_NAME, mns_conn_id="mns_default", lease_seconds=600),
        )
    ],
)

with DAG(
    dag_id="fnf_watcher_worker",
    description="Handles every task message of the events that triggered the run (queue fnf-watcher-demo)",
    schedule=[fnf_watcher_demo_queue],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"on_failure_callback": record_task_error},
    on_failure_callback=report_task_failed_on_dag_failure,
    tags=["fnf", "example", "watcher"],
):

    @task(show_return_value_in_logs=False)  # the messages carry task tokens
    def received_messages(**context: Any) -> list[dict[str, Any]]:
        """Every message of this run's triggering asset events, de-duplicated by message id."""
        messages = messages_from_asset_events(context["triggering_asset_events"])
        print(f"This run handles {len(messages)} message(s): {[m['message_id'] for m in messages]}")
        return messages

    @task
    def process_order(message: dict[str, Any]) -> dict[str, Any]:
        """The job for one message: here, mark the order named in the body processed."""
        order_id = message["body"]["order_id"]
        return {"order_id": order_id, "status": "processed", "message_id": message["message_id"]}

    messages = received_messages()
    processed = process_order.expand(message=messages)
    report = ServerlessWorkflowReportTaskOperator.partial(
        task_id="report", output_task_id="process_order"
    ).expand(message=messages)
    processed >> report
