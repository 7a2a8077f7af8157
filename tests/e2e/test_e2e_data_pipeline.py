"""The data-pipeline example: a flow step asks Airflow to process a date partition; the worker
DAG's summary flows into the next flow step, and a bad partition takes the path the flow catches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

FLOW = "fnf-data-pipeline"
QUEUE = "fnf-data-pipeline"
WORKER = "fnf_data_pipeline_worker"
GOOD_CSV = "order_id,region,amount\n1,east,10.50\n2,west,4.25\n3,east,5.00\n"


@pytest.fixture(scope="module", autouse=True)
def _flow(flows) -> None:
    flows.deploy(FLOW, "data_pipeline_flow.yaml")


def _input(partition: str, source: Path, output: Path, csv_text: str | None) -> dict[str, str]:
    path = source / f"{partition}.csv"
    if csv_text is not None:
        path.write_text(csv_text, encoding="utf-8")
    return {"dataset": "sales", "partition": partition, "input_path": str(path), "output_dir": str(output)}


def _worker_run(stack: LocalStack, flows, name: str) -> tuple[str, dict[str, str]]:
    (message_id,) = flows.message_ids(FLOW, name)
    run_id = f"mns__{QUEUE}__{message_id}"
    run = stack.api.wait_for_dag_run(WORKER, run_id, timeout=60)
    return run["state"], {t["task_id"]: t["state"] for t in stack.api.task_instances(WORKER, run_id)}


def test_partition_is_processed_and_its_summary_feeds_the_next_step(
    stack: LocalStack, flows, data_dirs: tuple[Path, Path]
) -> None:
    source, output = data_dirs
    name = flows.start(FLOW, _input("2024-01-31", source, output, GOOD_CSV), prefix="pipeline")

    execution = flows.wait(FLOW, name)

    assert execution["Status"] == "Succeeded", flows.path(FLOW, name)
    assert flows.path(FLOW, name) == "Start -> ProcessPartition -> PublishSummary -> End"
    result = json.loads(execution["Output"])
    assert result["status"] == "published"
    assert result["rows"] == 3 and result["total_amount"] == "19.75"
    summary_path = Path(result["summary_path"])
    assert summary_path == output / "sales" / "2024-01-31.json"
    summary = json.loads(summary_path.read_text())
    assert summary["regions"] == {"east": "15.50", "west": "4.25"}
    # The worker's output is the next step's input.
    publish = flows.steps(FLOW, name)["PublishSummary"]
    assert publish["input"]["rows"] == 3 and publish["input"]["summary_path"] == str(summary_path)

    state, tasks = _worker_run(stack, flows, name)
    assert state == "success"
    assert tasks == dict.fromkeys(("validate_partition", "aggregate", "write_summary", "report"), "success")
    assert flows.wait_queue_empty(QUEUE) == 0


@pytest.mark.parametrize(
    ("csv_text", "cause_part"),
    [
        pytest.param("order_id,region,amount\n1,east,10\n2,west,ten\n", "line 3", id="bad-amount"),
        pytest.param(None, "does not exist", id="missing-file"),
    ],
)
def test_invalid_partition_takes_the_path_the_flow_catches(
    stack: LocalStack, flows, data_dirs: tuple[Path, Path], csv_text: str | None, cause_part: str
) -> None:
    source, output = data_dirs
    name = flows.start(FLOW, _input("2024-02-29", source, output, csv_text), prefix="pipeline-bad")

    execution = flows.wait(FLOW, name)

    # The flow caught the error: the execution ends normally through QuarantinePartition.
    assert execution["Status"] == "Succeeded", flows.path(FLOW, name)
    assert flows.path(FLOW, name) == "Start -> ProcessPartition -> QuarantinePartition -> End"
    result = json.loads(execution["Output"])
    assert result["status"] == "quarantined"
    assert result["error"] == "DataPipeline.InvalidPartition"
    assert cause_part in result["cause"] and "validate_partition" in result["cause"]
    assert not (output / "sales").exists(), "nothing is written for a rejected partition"

    state, tasks = _worker_run(stack, flows, name)
    assert state == "failed"
    assert tasks["validate_partition"] == "failed"
    assert tasks["aggregate"] == tasks["write_summary"] == "upstream_failed"
    assert tasks["report"] == "failed"  # it reported the failure, then failed the run
    assert flows.wait_queue_empty(QUEUE) == 0
