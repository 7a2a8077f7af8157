"""A data pipeline step run by Airflow: process the date partition a flow names in its message.

Flows: ``dags_examples/flows/data_pipeline_flow.yaml`` (Serverless Workflow): its step
``ProcessPartition`` sends ``{"task_token", "dataset", "partition", "input_path", "output_dir"}``
to the MNS queue ``fnf-data-pipeline`` and waits. ``data_pipeline_cloudflow.yaml`` (CloudFlow):
a Map over the execution's partitions whose ``ProcessPartition`` state sends the same message
(its token under ``TaskToken``) for every partition at once, one burst of messages; it catches
``DataPipeline.InvalidPartition`` per partition and hands the gathered results to the next
state. ``input_path`` is a CSV file with the columns ``order_id,region,amount``.

``fnf_data_pipeline_dispatcher``
    A ``@continuous`` DAG: a deferrable :class:`MNSSensor` waits for messages in the triggerer,
    then :class:`MNSDispatchMessagesOperator` starts one ``fnf_data_pipeline_worker`` run per
    message (run id ``mns__fnf-data-pipeline__<message id>``, the message as ``dag_run.conf``),
    and the next dispatcher run starts waiting again. This feeding needs no AssetWatcher; see
    ``reference_worker.py`` for the watcher-fed dispatcher.

``fnf_data_pipeline_worker``
    ``validate_partition`` >> ``aggregate`` >> ``write_summary`` >> ``report``.

    - Success: ``report`` sends ``{"rows", "total_amount", "regions", "summary_path"}`` with
      ReportTaskSucceeded; the flow maps it into its next step, ``PublishSummary`` (CloudFlow:
      ``$Output`` in the state's OutputConstructor, gathered by the Map for ``PublishReport``).
    - A missing or malformed partition raises :class:`PartitionValidationError`;
      ``record_task_error`` records the exception type and ``report`` maps it, through
      ``error_names``, to the error ``DataPipeline.InvalidPartition`` with a Cause naming the
      file and the line. The flow catches that error and goes to ``QuarantinePartition``.
    - Any other failure is reported as ``Airflow.TaskFailed`` (a timeout as ``Airflow.Timeout``),
      which the flow retries once.

    In every case the message is deleted only after the report went through.
"""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_fnf.callbacks import record_task_error, report_task_failed_on_dag_failure
from airflow_provider_fnf.operators.dispatch import MNSDispatchMessagesOperator
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.sensors.mns import MNSSensor

QUEUE_NAME = "fnf-data-pipeline"
WORKER_DAG_ID = "fnf_data_pipeline_worker"
INVALID_PARTITION_ERROR = "DataPipeline.InvalidPartition"
COLUMNS = ("order_id", "region", "amount")


class PartitionValidationError(ValueError):
    """The partition named in the message cannot be processed; retrying will not help."""


with DAG(
    dag_id="fnf_data_pipeline_dispatcher",
    description="One fnf_data_pipeline_worker run per task message on the MNS queue fnf-data-pipeline",
    schedule="@continuous",
    max_active_runs=1,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["fnf", "example", "dispatch"],
):
    wait_for_messages = MNSSensor(
        task_id="wait_for_messages",
        queue_name=QUEUE_NAME,
        max_messages=16,
        deferrable=True,
        timeout=timedelta(days=7),
        # The processing lease: longer than a typical worker run (a message redelivered while
        # its run works starts no second run), and short, because it also bounds how late a
        # message is when Airflow fails this sensor although its trigger fired (a scheduler
        # race seen on 3.3 when a message arrives right after the deferral; docs/dispatch-modes.md).
        lease_seconds=60,
    )
    MNSDispatchMessagesOperator(
        task_id="dispatch", trigger_dag_id=WORKER_DAG_ID, messages=wait_for_messages.output
    )


def _rows(path: Path) -> list[dict[str, Any]]:
    """The partition's rows, checked: the columns, a non-empty region, a decimal amount."""
    if not path.is_file():
        raise PartitionValidationError(f"Partition file {path} does not exist")
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise PartitionValidationError(
                f"{path}: expected the columns {','.join(COLUMNS)}, found {','.join(reader.fieldnames or [])}"
            )
        for line, row in enumerate(reader, start=2):
            try:
                amount = Decimal(row["amount"])
            except (InvalidOperation, TypeError):
                raise PartitionValidationError(
                    f"{path}, line {line}: amount {row['amount']!r} is not a number"
                ) from None
            if not row["region"]:
                raise PartitionValidationError(f"{path}, line {line}: empty region")
            rows.append({"order_id": row["order_id"], "region": row["region"], "amount": amount})
    return rows


with DAG(
    dag_id=WORKER_DAG_ID,
    description="Validate, aggregate and summarise the partition a flow names; report the summary",
    schedule=None,  # runs are started by fnf_data_pipeline_dispatcher, one per message
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=8,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"on_failure_callback": record_task_error, "retries": 0},
    on_failure_callback=report_task_failed_on_dag_failure,
    tags=["fnf", "example", "worker", "data-pipeline"],
):

    @task
    def validate_partition(**context: Any) -> dict[str, Any]:
        """Check the message and the partition file; return what the next tasks need."""
        body = context["dag_run"].conf["body"]
        missing = [k for k in ("dataset", "partition", "input_path", "output_dir") if not body.get(k)]
        if missing:
            raise PartitionValidationError(f"The message has no {', '.join(missing)}")
        rows = _rows(Path(body["input_path"]))
        print(f"Partition {body['dataset']}/{body['partition']}: {len(rows)} valid rows")
        return {
            "dataset": body["dataset"],
            "partition": body["partition"],
            "input_path": body["input_path"],
            "output_dir": body["output_dir"],
            "rows": len(rows),
        }

    @task
    def aggregate(partition: dict[str, Any]) -> dict[str, Any]:
        """Total amount per region."""
        totals: dict[str, Decimal] = {}
        for row in _rows(Path(partition["input_path"])):
            totals[row["region"]] = totals.get(row["region"], Decimal(0)) + row["amount"]
        return {
            "regions": {region: str(total) for region, total in sorted(totals.items())},
            "total_amount": str(sum(totals.values(), Decimal(0))),
        }

    @task
    def write_summary(partition: dict[str, Any], totals: dict[str, Any]) -> dict[str, Any]:
        """Write the summary next to the other partitions' and return the step's output."""
        target = Path(partition["output_dir"]) / partition["dataset"] / f"{partition['partition']}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        summary = {"rows": partition["rows"], **totals, "summary_path": str(target)}
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({**partition, **summary}, indent=2), encoding="utf-8")
        tmp.replace(target)  # rerunning the same partition overwrites: idempotent
        return summary

    partition = validate_partition()
    summary = write_summary(partition, aggregate(partition))
    ServerlessWorkflowReportTaskOperator(
        task_id="report",
        output=summary,
        error_names={"PartitionValidationError": INVALID_PARTITION_ERROR},
    )
