"""``@task.fnf_callback`` runs (``dag.test()`` in a fresh Airflow home, in a subprocess) against the
emulator: the example worker ``dags_examples/one_task_worker.py``, one task per message.

Two executions of the example's flow each send a message; each message becomes one run's conf,
as the dispatch writes it: ``n`` = 7 (reported as its square) and ``n`` = "seven" (the function
raises ValueError, reported as ``Square.InvalidInput``). A third run
(``dags/fnf_callback_dags.py``) fails its first try and succeeds on its retry: only the retry
reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.messages import parse_message
from tests.support import callback_flow_definition, set_emulator_connections
from tools.local_stack.stack import DAGS_FOLDER

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HERE = Path(__file__).parent
EXAMPLE = DAGS_FOLDER / "one_task_worker.py"
INPUTS = {"good": 7, "bad": "seven"}
RETRIED_DAG_FILE = HERE / "dags" / "fnf_callback_dags.py"


def _run_dags(home: Path, dag_file: Path, runs: list[dict], env: dict[str, str]) -> tuple[list[dict], str]:
    spec = {"home": str(home), "dags_folder": str(dag_file.parent), "dag_file": str(dag_file), "runs": runs}
    process = subprocess.run(
        [sys.executable, str(HERE / "dag_runner.py"), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **env},
    )
    log_text = process.stdout + process.stderr
    result_lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and result_lines, log_text[-6000:]
    return json.loads(result_lines[-1][len("RESULT ") :]), log_text


@pytest.fixture(scope="module")
def runs(tmp_path_factory, emulator):
    with pytest.MonkeyPatch.context() as mp:
        env = set_emulator_connections(mp, emulator)
        suffix = uuid.uuid4().hex[:8]
        queue_name, flow_name = f"one-task-{suffix}", f"square-{suffix}"
        mns, fnf = MNSHook(), ServerlessWorkflowHook()
        mns.create_queue(queue_name, visibility_timeout=900)
        flow = (DAGS_FOLDER / "flows" / "one_task_flow.yaml").read_text().replace("fnf-one-task", queue_name)
        fnf.create_or_update_flow(flow_name, flow)
        executions = {case: f"{case}-{suffix}" for case in INPUTS}
        for case, name in executions.items():
            fnf.start_execution(flow_name, {"n": INPUTS[case]}, name)
        retried_flow = f"retried-{suffix}"
        fnf.create_or_update_flow(retried_flow, callback_flow_definition(queue_name, input_key="order"))
        executions["retried"] = f"retried-{suffix}"
        fnf.start_execution(retried_flow, {"order": 3}, executions["retried"])
        confs = {}
        while len(confs) < len(executions):
            received = mns.receive_messages(queue_name, 16, wait_seconds=5)
            assert received, "the flow's callback messages did not all arrive"
            for message in received:
                conf = parse_message(message, queue_name=queue_name, mns_conn_id="mns_default")
                body = conf["body"]
                confs["retried" if "order" in body else "good" if body["n"] == INPUTS["good"] else "bad"] = (
                    conf
                )
        home = tmp_path_factory.mktemp("airflow-home")
        results, log_text = _run_dags(
            home, EXAMPLE, [{"dag_id": "fnf_one_task_worker", "conf": confs[case]} for case in INPUTS], env
        )
        retried, retried_log = _run_dags(
            tmp_path_factory.mktemp("airflow-home"),
            RETRIED_DAG_FILE,
            [{"dag_id": "fnf_callback_retried", "conf": confs["retried"]}],
            env,
        )
        yield {
            "retried": retried[0],
            "retried_flow": retried_flow,
            "results": dict(zip(INPUTS, results, strict=True)),
            "executions": executions,
            "confs": confs,
            "flow_name": flow_name,
            "queue_name": queue_name,
            "fnf": fnf,
            "mns": mns,
            "log": log_text + retried_log,
        }


def test_the_returned_output_is_reported_by_the_one_task(runs):
    result = runs["results"]["good"]
    assert result["state"] == "success"
    assert result["tasks"] == {"square": "success"}
    execution = runs["fnf"].describe_execution(runs["flow_name"], runs["executions"]["good"], 5)
    assert execution["Status"] == "Succeeded"
    assert json.loads(execution["Output"]) == {"n": 7, "square": 49}


def test_an_exception_is_reported_with_its_mapped_error_name(runs):
    result = runs["results"]["bad"]
    assert result["state"] == "failed"
    assert result["tasks"] == {"square": "failed"}
    history = runs["fnf"].get_execution_history(runs["flow_name"], runs["executions"]["bad"])
    [failed] = [json.loads(e["EventDetail"]) for e in history if e["Type"] == "TaskFailed"]
    assert failed["error"] == "Square.InvalidInput"
    assert "ValueError: n must be an integer, got 'seven'" in failed["cause"]
    assert f"run {result['run_id']}" in failed["cause"]
    assert (
        runs["fnf"].describe_execution(runs["flow_name"], runs["executions"]["bad"], 5)["Status"] == "Failed"
    )
    # the DAG-level safety net saw the task's report and did not report a second time
    message_id = runs["confs"]["bad"]["message_id"]
    assert f"Message {message_id} of run {result['run_id']} was already reported" in runs["log"]


def test_both_messages_were_deleted_after_their_reports(runs):
    attributes = runs["mns"].get_queue_attributes(runs["queue_name"])
    assert attributes["active_messages"] + attributes["inactive_messages"] == 0


def test_the_task_token_is_in_no_provider_log_line_and_no_rendered_field(runs):
    provider_lines = [line for line in runs["log"].splitlines() if "airflow_provider_fnf" in line]
    assert any("Reported task succeeded" in line for line in provider_lines), provider_lines[-20:]
    for conf in runs["confs"].values():
        assert not [line for line in provider_lines if conf["task_token"] in line]
        for result in runs["results"].values():
            assert conf["task_token"] not in result["rendered"]


def test_a_failed_try_with_retries_left_is_not_reported_and_the_retry_reports(runs, emulator):
    assert runs["retried"]["state"] == "success"
    assert runs["retried"]["tasks"] == {"flaky": "success"}
    name = runs["executions"]["retried"]
    execution = runs["fnf"].describe_execution(runs["retried_flow"], name, 5)
    assert execution["Status"] == "Succeeded"
    assert json.loads(execution["Output"]) == {"order": 3, "try": 2}
    history = runs["fnf"].get_execution_history(runs["retried_flow"], name)
    assert [e["Type"] for e in history if e["Type"].startswith("Task")] == [
        "TaskScheduled",
        "TaskSubmitted",
        "TaskSucceeded",
    ]
    assert "try 1 of 2 failed; not reported, the next try reports" in runs["log"]


def test_the_function_gets_the_message_with_the_token_replaced(runs):
    # dag.test() masks nothing: what the function printed is what it was given.
    printed = [line for line in runs["log"].splitlines() if "Working on message" in line]
    assert len(printed) == 2, printed
    assert all("'task_token': '***'" in line for line in printed), printed
    for conf in runs["confs"].values():
        assert not [line for line in printed if conf["task_token"] in line]
