"""Worker DAGs that the report tests run with ``dag.test()`` (see test_fnf_report_dag_runs.py).

The flow's message carries ``order``: 1 succeeds, 2 and 5 fail with a ValueError (the flow
catches ``Airflow.TaskFailed``), 3 fails with a TimeoutError (mapped to ``Airflow.Timeout``, not
caught). ``fnf_report_mapped`` handles and reports each message of a run that carries several (as
a watcher-driven run does) with mapped tasks; order 7 fails there.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fnf.callbacks import record_task_error, report_task_failed_on_dag_failure
from airflow_provider_fnf.masking import mask_task_token
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@task
def work(**context):
    order = context["dag_run"].conf["body"]["order"]
    if order in (2, 5):
        raise ValueError(f"order {order} has no lines")
    if order == 3:
        raise TimeoutError("the warehouse did not answer")
    return {"order": order, "lines": 3}


with DAG(
    "fnf_report_worker",
    schedule=None,
    start_date=START,
    default_args={"on_failure_callback": record_task_error},
) as worker_dag:
    ServerlessWorkflowReportTaskOperator(
        task_id="report", output=work(), error_names={"TimeoutError": "Airflow.Timeout"}
    )

# The same worker with the DAG-level safety net: the report operator tells the flow, so the
# callback must find its record and not report again.
with DAG(
    "fnf_report_worker_with_safety_net",
    schedule=None,
    start_date=START,
    default_args={"on_failure_callback": record_task_error},
    on_failure_callback=report_task_failed_on_dag_failure,
) as worker_with_safety_net_dag:
    ServerlessWorkflowReportTaskOperator(task_id="report", output=work())


with DAG(
    "fnf_report_safety_net",
    schedule=None,
    start_date=START,
    default_args={"on_failure_callback": record_task_error},
    on_failure_callback=report_task_failed_on_dag_failure,
) as safety_net_dag:

    @task
    def crash():
        raise RuntimeError("disk full on worker 7")

    # all_success: the run fails before the report operator does anything
    ServerlessWorkflowReportTaskOperator(task_id="report", output=crash(), trigger_rule="all_success")


with DAG(
    "fnf_report_mapped",
    schedule=None,
    start_date=START,
    default_args={"on_failure_callback": record_task_error},
) as mapped_dag:

    @task
    def batch(**context):
        # A task that hands messages on masks their tokens first: its return value is logged.
        messages = context["dag_run"].conf["messages"]
        for message in messages:
            mask_task_token(message["task_token"])
        return messages

    @task
    def handle(message):
        order = message["body"]["order"]
        if order == 7:
            raise ValueError(f"order {order} is on hold")
        return {"order": order, "done": True}

    messages = batch()
    handled = handle.expand(message=messages)
    report = ServerlessWorkflowReportTaskOperator.partial(task_id="report", output_task_id="handle").expand(
        message=messages
    )
    handled >> report
