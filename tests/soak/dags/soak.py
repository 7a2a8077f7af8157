"""DAGs of the fault-injection soak (``tests/soak/test_soak_faults.py``), one run per message.

``soak_dispatcher`` -> ``soak_worker``
    An AssetWatcher on the ``soak`` queue feeds ``MNSDispatchMessagesOperator``, which starts one
    ``soak_worker`` run per message (run id ``mns__soak__<message id>``). The worker records the
    id of its task process (the soak kills one with SIGKILL), works a moment, and reports.

Both DAGs retry their task: a killed task process, or an error injected more often than the
hooks' own retries absorb, is retried by Airflow, and each retry is safe (the run id de-duplicates
dispatching; a second report of a completed task answers TaskAlreadyCompleted).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

QUEUE = "soak"
DISPATCHER_DAG_ID = "soak_dispatcher"
WORKER_DAG_ID = "soak_worker"
DAG_IDS = (DISPATCHER_DAG_ID, WORKER_DAG_ID)
LEASE_SECONDS = 300
"""Longer than a message waits for its worker run while the soak keeps its executions in flight."""
WORK_SECONDS = 1.0
"""How long a worker "works" before it reports: the window in which the soak kills one."""
PID_DIR_VARIABLE = "FNF_SOAK_PID_DIR"
"""A folder where each worker task writes a file named by its process id, holding its run id."""
START = pendulum.datetime(2024, 1, 1, tz="UTC")

soak_queue = Asset(
    "soak_queue",
    watchers=[
        AssetWatcher(
            name="soak_watcher",
            trigger=MNSMessageTrigger(queue_name=QUEUE, wait_time_seconds=5, lease_seconds=LEASE_SECONDS),
        )
    ],
)

with DAG(
    dag_id=DISPATCHER_DAG_ID,
    schedule=[soak_queue],
    start_date=START,
    catchup=False,
    default_args={"retries": 3, "retry_delay": timedelta(seconds=2)},
):
    MNSDispatchMessagesOperator(task_id="dispatch", trigger_dag_id=WORKER_DAG_ID)


class SoakReportOperator(ServerlessWorkflowReportTaskOperator):
    """Records its process id, works ``WORK_SECONDS``, then reports as the provider's operator does."""

    def execute(self, context: Any) -> Any:
        pid_dir = os.environ.get(PID_DIR_VARIABLE)
        if pid_dir:
            Path(pid_dir, str(os.getpid())).write_text(context["run_id"], encoding="utf-8")
        time.sleep(WORK_SECONDS)
        return super().execute(context)


with DAG(
    dag_id=WORKER_DAG_ID,
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=32,
    default_args={"retries": 4, "retry_delay": timedelta(seconds=3)},
):
    SoakReportOperator(task_id="report", output={"n": "{{ dag_run.conf['body']['n'] }}"})
