"""CloudFlow flows (``Type: StateMachine``) on the real stack, worked on by the same example DAGs as
their Serverless Workflow twins: the reference flow's twin, the data pipeline's Map burst (one
message per partition at once, a caught failure, the gathered output in the next state), a DAG
that starts a CloudFlow flow and waits for it, and an Express flow run synchronously from a DAG."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fnf.reporting import REPORT_XCOM_KEY
from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

REFERENCE_FLOW = "fnf-demo-cloudflow"
REFERENCE_QUEUE = "fnf-demo"
REFERENCE_WORKER = "fnf_reference_worker"
PIPELINE_FLOW = "fnf-data-pipeline-cloudflow"
PIPELINE_QUEUE = "fnf-data-pipeline"
PIPELINE_WORKER = "fnf_data_pipeline_worker"
PIPELINE_DAG = "fnf_cloudflow_pipeline"
EXPRESS_DAG = "fnf_express_order_check"
BURST_PARTITIONS = 16
"""Partitions of the Map burst: one MNS batch, every message in flight at once."""
WORKER_TASKS = ("validate_partition", "aggregate", "write_summary", "report")


def _csv(rows: int, seed: int) -> str:
    lines = ["order_id,region,amount"]
    lines += [f"{seed}-{i},{('east', 'west')[i % 2]},{i + 1}.25" for i in range(rows)]
    return "\n".join(lines) + "\n"


def _partitions(source: Path, count: int, *, bad: int | None = None) -> list[dict[str, str]]:
    """``count`` partition files (the ``bad``-th has a non-numeric amount on line 3)."""
    partitions = []
    for i in range(count):
        name = f"2024-03-{i + 1:02d}"
        text = "order_id,region,amount\n1,east,10\n2,west,ten\n" if i == bad else _csv(i + 1, i)
        path = source / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        partitions.append({"partition": name, "input_path": str(path)})
    return partitions


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _runs_of(stack: LocalStack, dag_id: str, execution_name: str) -> list[dict[str, Any]]:
    return [
        r for r in stack.api.dag_runs(dag_id) if (r.get("conf") or {}).get("execution_name") == execution_name
    ]


def test_the_cloudflow_twin_of_the_reference_flow_runs_through_the_same_worker(
    stack: LocalStack, flows
) -> None:
    flows.deploy(REFERENCE_FLOW, "reference_flow_cloudflow.yaml")
    name = flows.start(REFERENCE_FLOW, prefix="e2e-cloudflow")

    execution = flows.wait(REFERENCE_FLOW, name)

    assert execution["Status"] == "Succeeded", flows.path(REFERENCE_FLOW, name)
    assert json.loads(execution["Output"]) == {"key": "value"}
    assert flows.path(REFERENCE_FLOW, name) == "Start -> Task_1 -> End"
    assert flows.steps(REFERENCE_FLOW, name)["Task_1"]["output"] == {"key": "value"}
    # The same worker DAG as for reference_flow.yaml: one run per message, named after it.
    (message_id,) = flows.message_ids(REFERENCE_FLOW, name)
    run_id = f"mns__{REFERENCE_QUEUE}__{message_id}"
    run = stack.api.wait_for_dag_run(REFERENCE_WORKER, run_id, timeout=60)
    assert run["state"] == "success"
    assert (
        run["conf"]["body"]["key"] == "value"
        and run["conf"]["task_token"] == run["conf"]["body"]["TaskToken"]
    )
    assert run["conf"]["execution_name"] == name and run["conf"]["flow_name"] == REFERENCE_FLOW
    states = {t["task_id"]: t["state"] for t in stack.api.task_instances(REFERENCE_WORKER, run_id)}
    assert states == {"do_the_work": "success", "report": "success"}
    report = stack.api.xcom(REFERENCE_WORKER, run_id, "report")
    assert report["outcome"] == "succeeded" and report["deleted"] is True
    assert flows.wait_queue_empty(REFERENCE_QUEUE) == 0


def test_the_cloudflow_pipelines_map_burst_gets_one_worker_run_per_partition(
    stack: LocalStack, flows, data_dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = data_dirs
    bad = 5
    partitions = _partitions(source, BURST_PARTITIONS, bad=bad)
    flows.deploy(PIPELINE_FLOW, "data_pipeline_cloudflow.yaml")
    name = flows.start(
        PIPELINE_FLOW,
        {"dataset": "sales", "output_dir": str(output), "partitions": partitions},
        prefix="e2e-burst",
    )

    execution = flows.wait(PIPELINE_FLOW, name)

    assert execution["Status"] == "Succeeded", flows.path(PIPELINE_FLOW, name)
    history = flows.history(PIPELINE_FLOW, name)
    entered = [e["StepName"] for e in history if e["Type"] == "StepEntered"]
    assert entered[0] == "ProcessPartitions" and entered[-1] == "PublishReport", entered
    assert entered.count("ProcessPartition") == BURST_PARTITIONS
    assert entered.count("QuarantinePartition") == 1

    # The result: every partition in order; the rejected one caught with the reported error.
    result = json.loads(execution["Output"])
    assert result["status"] == "published" and result["dataset"] == "sales"
    assert [p["partition"] for p in result["partitions"]] == [p["partition"] for p in partitions]
    for i, item in enumerate(result["partitions"]):
        if i == bad:
            assert item["status"] == "quarantined", item
            assert item["error"] == "DataPipeline.InvalidPartition"
            assert "line 3" in item["cause"] and "validate_partition" in item["cause"]
        else:
            assert item["status"] == "processed", item
            assert item["rows"] == i + 1
            summary = Path(item["summary_path"])
            assert summary == output / "sales" / f"{item['partition']}.json" and summary.is_file()
    assert not (output / "sales" / f"{partitions[bad]['partition']}.json").exists()
    # The Map's output ($Output.Items) is the next state's input.
    assert flows.steps(PIPELINE_FLOW, name)["PublishReport"]["input"]["partitions"] == result["partitions"]

    # Every partition got exactly one worker run (one per message), every token one report.
    message_ids = flows.message_ids(PIPELINE_FLOW, name)
    reported = [e for e in history if e["Type"] in ("TaskSucceeded", "TaskFailed")]
    runs = _runs_of(stack, PIPELINE_WORKER, name)
    submitted = [_time(e["Time"]) for e in history if e["Type"] == "TaskSubmitted"]
    seconds = (max(_time(e["Time"]) for e in reported) - min(submitted)).total_seconds()
    with capsys.disabled():
        print(
            f"\n[map burst] {len(message_ids)} messages (sent within "
            f"{(max(submitted) - min(submitted)).total_seconds():.2f} s), {len(runs)} worker runs, "
            f"{len(reported)} reports, {seconds:.1f} s from the first message to the last report",
            file=sys.stderr,
        )
    assert len(message_ids) == len(set(message_ids)) == BURST_PARTITIONS
    assert sorted(r["dag_run_id"] for r in runs) == sorted(f"mns__{PIPELINE_QUEUE}__{m}" for m in message_ids)
    assert sorted(r["conf"]["body"]["partition"] for r in runs) == sorted(p["partition"] for p in partitions)
    assert len(reported) == BURST_PARTITIONS
    assert sum(e["Type"] == "TaskFailed" for e in reported) == 1
    outcomes: dict[str, int] = {}
    deleted_by_their_run = 0
    for run in runs:
        final = stack.api.wait_for_dag_run(PIPELINE_WORKER, run["dag_run_id"], timeout=60)
        is_bad = run["conf"]["body"]["partition"] == partitions[bad]["partition"]
        assert final["state"] == ("failed" if is_bad else "success"), final
        states = {
            t["task_id"]: t["state"] for t in stack.api.task_instances(PIPELINE_WORKER, run["dag_run_id"])
        }
        if not is_bad:
            assert states == dict.fromkeys(WORKER_TASKS, "success")
        report = stack.api.xcom(PIPELINE_WORKER, run["dag_run_id"], "report", key=REPORT_XCOM_KEY)
        outcomes[report["outcome"]] = outcomes.get(report["outcome"], 0) + 1
        deleted_by_their_run += bool(report["deleted"])
    assert outcomes == {"succeeded": BURST_PARTITIONS - 1, "failed": 1}, "no token reported twice"
    # A run that waited for a worker slot past the dispatcher's 60 s lease finds its receipt handle
    # changed by the redelivery: the dispatcher deletes that message when it comes back, its run done.
    assert flows.wait_queue_empty(PIPELINE_QUEUE, timeout=150) == 0
    with capsys.disabled():
        print(
            f"[map burst] {deleted_by_their_run} messages deleted by their run, "
            f"{BURST_PARTITIONS - deleted_by_their_run} by the dispatcher after a redelivery",
            file=sys.stderr,
        )


def test_a_dag_starts_the_cloudflow_pipeline_and_waits_for_its_report(
    stack: LocalStack, flows, data_dirs: tuple[Path, Path]
) -> None:
    source, output = data_dirs
    partitions = _partitions(source, 2)
    run = stack.api.trigger_dag_run(
        PIPELINE_DAG, conf={"dataset": "sales", "output_dir": str(output), "partitions": partitions}
    )

    run = stack.api.wait_for_dag_run(PIPELINE_DAG, run["dag_run_id"], timeout=240)

    states = {t["task_id"]: t["state"] for t in stack.api.task_instances(PIPELINE_DAG, run["dag_run_id"])}
    assert run["state"] == "success", states
    assert states == dict.fromkeys(("deploy_flow", "run_pipeline", "report"), "success")
    assert stack.api.xcom(PIPELINE_DAG, run["dag_run_id"], "report") == {
        "dataset": "sales",
        "statuses": {"processed": 2},
    }
    execution_name = stack.api.xcom(PIPELINE_DAG, run["dag_run_id"], "run_pipeline", key="execution_name")
    assert flows.fnf.describe_execution(PIPELINE_FLOW, execution_name)["Status"] == "Succeeded"
    assert len(_runs_of(stack, PIPELINE_WORKER, execution_name)) == 2
    assert sorted(p.name for p in (output / "sales").iterdir()) == [
        f"{p['partition']}.json" for p in partitions
    ]


def test_a_dag_runs_an_express_flow_synchronously(stack: LocalStack) -> None:
    accepted = stack.api.trigger_dag_run(EXPRESS_DAG, conf={"order_id": "E-1", "quantity": 3})
    rejected = stack.api.trigger_dag_run(EXPRESS_DAG, conf={"order_id": "E-2", "quantity": 0})

    accepted = stack.api.wait_for_dag_run(EXPRESS_DAG, accepted["dag_run_id"], timeout=180)
    rejected = stack.api.wait_for_dag_run(EXPRESS_DAG, rejected["dag_run_id"], timeout=180)

    states = {t["task_id"]: t["state"] for t in stack.api.task_instances(EXPRESS_DAG, accepted["dag_run_id"])}
    assert accepted["state"] == "success", states
    assert stack.api.xcom(EXPRESS_DAG, accepted["dag_run_id"], "check_order") == {
        "order_id": "E-1",
        "quantity": 3,
        "status": "accepted",
    }
    assert stack.api.xcom(EXPRESS_DAG, accepted["dag_run_id"], "use_output")["status"] == "accepted"
    execution_name = stack.api.xcom(EXPRESS_DAG, accepted["dag_run_id"], "check_order", key="execution_name")
    assert execution_name.startswith(f"{EXPRESS_DAG}:")

    states = {t["task_id"]: t["state"] for t in stack.api.task_instances(EXPRESS_DAG, rejected["dag_run_id"])}
    assert rejected["state"] == "failed"
    assert states == {"deploy_flow": "success", "check_order": "failed", "use_output": "upstream_failed"}
