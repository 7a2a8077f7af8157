"""The reference document's loop on a real Airflow: the flow starts, its message reaches Airflow,
a DAG run does the work and reports, the flow resumes and ends, the message is gone."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tools.local_stack.demo import Demo, build_parser
from tools.local_stack.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

FLOW = "fnf-demo"
QUEUE = "fnf-demo"
WORKER = "fnf_reference_worker"


def test_reference_flow_runs_through_airflow(stack: LocalStack, flows) -> None:
    flows.deploy(FLOW, "reference_flow.yaml")
    name = flows.start(FLOW)

    execution = flows.wait(FLOW, name)

    assert execution["Status"] == "Succeeded", flows.path(FLOW, name)
    assert json.loads(execution["Output"]) == {"key": "value"}
    assert flows.path(FLOW, name) == "Start -> Task_1 -> End"
    task_1 = flows.steps(FLOW, name)["Task_1"]
    assert task_1["input"]["key"] == "value" and task_1["input"]["task_token"]
    assert task_1["output"] == {"key": "value"}

    # The run that did the work: one per message, named after it, all tasks green.
    (message_id,) = flows.message_ids(FLOW, name)
    run_id = f"mns__{QUEUE}__{message_id}"
    run = stack.api.wait_for_dag_run(WORKER, run_id, timeout=60)
    assert run["state"] == "success"
    assert run["conf"]["execution_name"] == name and run["conf"]["flow_name"] == FLOW
    states = {t["task_id"]: t["state"] for t in stack.api.task_instances(WORKER, run_id)}
    assert states == {"do_the_work": "success", "report": "success"}
    report = stack.api.xcom(WORKER, run_id, "report")
    assert report["outcome"] == "succeeded" and report["deleted"] is True

    assert flows.wait_queue_empty(QUEUE) == 0


def test_demo_prints_what_the_reference_document_shows(
    stack: LocalStack, flows, capsys: pytest.CaptureFixture[str]
) -> None:
    """``make demo``'s scenario on the shared stack: both generations' reference flows, through the
    same queue and worker DAG; the printed results and their links."""
    demo = Demo(build_parser().parse_args([]))

    demo.reference_scenario(stack)

    printed = capsys.readouterr().out
    assert "of flow fnf-demo (Serverless Workflow)" in printed
    assert "of flow fnf-demo-cloudflow (CloudFlow)" in printed
    assert printed.count("Status:      Succeeded") == 2
    assert printed.count("Path:        Start -> Task_1 -> End") == 2
    assert printed.count('Output:      {"key": "value"}') == 2
    assert printed.count("Tasks:       do_the_work success, report success") == 2
    assert f"MNS queue {QUEUE}: 0 message(s) left" in printed
    token_lines = [
        line for line in printed.splitlines() if re.search(r"task_token|taskToken|TaskToken", line)
    ]
    assert token_lines and all("<task token, " in line for line in token_lines), "tokens are hidden"
    links = re.findall(r"(http://\S+/(?:console|dags)/\S+)", printed)
    assert len(links) == 4, printed  # per execution: the Airflow run's page, the console's page
    for link in links:
        with urllib.request.urlopen(link, timeout=10) as page:
            assert page.status == 200, link
