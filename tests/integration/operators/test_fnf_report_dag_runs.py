"""Worker DAG runs (``dag.test()``, in a fresh Airflow home in a subprocess) against the emulator:
the report operator after a failed upstream task, and the DAG-level failure callback.

Four executions of one flow each send a callback message; each message becomes one run's conf,
as the dispatch would write it. One subprocess runs all four DAG runs (Airflow's warm-up is paid
once); the tests then check what Airflow and the flow show.
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
from tests.support import set_emulator_connections

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HERE = Path(__file__).parent
DAGS = HERE / "dags"
SCENARIOS = {
    # execution order -> (dag id, what the worker does)
    1: "fnf_report_worker",  # succeeds
    2: "fnf_report_worker",  # ValueError -> Airflow.TaskFailed, caught by the flow
    3: "fnf_report_worker",  # TimeoutError -> Airflow.Timeout, fails the flow
    4: "fnf_report_safety_net",  # dies before the report operator: the DAG callback reports
    5: "fnf_report_worker_with_safety_net",  # the report operator reports; the callback must not
    6: "fnf_report_mapped",  # orders 6 and 7 in one run, one mapped report task
    7: "fnf_report_mapped",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, emulator, callback_flow_definition):
    with pytest.MonkeyPatch.context() as mp:
        env = set_emulator_connections(mp, emulator)
        suffix = uuid.uuid4().hex[:8]
        queue_name, flow_name = f"work-{suffix}", f"orders-{suffix}"
        mns, fnf = MNSHook(), ServerlessWorkflowHook()
        mns.create_queue(queue_name, visibility_timeout=900)
        fnf.create_or_update_flow(flow_name, callback_flow_definition.format(queue=queue_name))
        executions = {order: f"e{order}-{suffix}" for order in SCENARIOS}
        for order, name in executions.items():
            fnf.start_execution(flow_name, {"order": order}, name)
        confs = {}
        while len(confs) < len(executions):
            received = mns.receive_messages(queue_name, 16, wait_seconds=5)
            assert received, "the flow's callback messages did not all arrive"
            for message in received:
                conf = parse_message(message, queue_name=queue_name, mns_conn_id="mns_default")
                confs[conf["body"]["order"]] = conf

        home = tmp_path_factory.mktemp("airflow-home")
        spec = {
            "home": str(home),
            "dags_folder": str(DAGS),
            "dag_file": str(DAGS / "fnf_report_worker_dags.py"),
            "runs": [{"dag_id": SCENARIOS[order], "conf": confs[order]} for order in range(1, 6)]
            + [{"dag_id": "fnf_report_mapped", "conf": {"messages": [confs[6], confs[7]]}}],
        }
        process = subprocess.run(
            [sys.executable, str(HERE / "dag_runner.py"), json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, **env},
        )
        log_text = process.stdout + process.stderr
        (home / "dag_runner.log").write_text(log_text)  # kept for debugging a failed run
        result_lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
        assert process.returncode == 0 and result_lines, log_text[-6000:]
        results = json.loads(result_lines[-1][len("RESULT ") :])
        yield {
            "results": dict(zip([1, 2, 3, 4, 5, 6], results, strict=True)),
            "executions": executions,
            "confs": confs,
            "flow_name": flow_name,
            "queue_name": queue_name,
            "fnf": fnf,
            "mns": mns,
            "log": log_text,
        }


def history(runs, order):
    return runs["fnf"].get_execution_history(runs["flow_name"], runs["executions"][order])


def execution(runs, order):
    return runs["fnf"].describe_execution(runs["flow_name"], runs["executions"][order], 5)


def task_failed_detail(runs, order):
    events = [e for e in history(runs, order) if e["Type"] == "TaskFailed"]
    assert len(events) == 1, events
    return json.loads(events[0]["EventDetail"])


def test_all_messages_were_deleted_after_their_reports(runs):
    attributes = runs["mns"].get_queue_attributes(runs["queue_name"])
    assert attributes["active_messages"] + attributes["inactive_messages"] == 0


def test_success_run(runs):
    result = runs["results"][1]
    assert result["state"] == "success"
    assert result["tasks"] == {"work": "success", "report": "success"}
    ex = execution(runs, 1)
    assert ex["Status"] == "Succeeded"
    assert json.loads(ex["Output"]) == {"order": 1, "lines": 3}


def test_upstream_failure_is_reported_and_caught_by_the_flow(runs):
    result = runs["results"][2]
    # Airflow shows what happened: the work failed, the report told the flow and failed the run
    assert result["state"] == "failed"
    assert result["tasks"] == {"work": "failed", "report": "failed"}
    detail = task_failed_detail(runs, 2)
    assert detail["error"] == "Airflow.TaskFailed"
    assert f"run {result['run_id']}" in detail["cause"]
    assert "work failed: ValueError: order 2 has no lines" in detail["cause"]
    # the flow's catch rule took it
    assert execution(runs, 2)["Status"] == "Succeeded"
    stepped = [e["StepName"] for e in history(runs, 2) if e["Type"] == "StepEntered"]
    assert stepped == ["Work", "Caught"]


def test_mapped_exception_type_gives_its_error_name(runs):
    result = runs["results"][3]
    assert result["state"] == "failed"
    detail = task_failed_detail(runs, 3)
    assert detail["error"] == "Airflow.Timeout"
    assert "TimeoutError: the warehouse did not answer" in detail["cause"]
    # not caught by the flow: the execution fails with it
    assert execution(runs, 3)["Status"] == "Failed"


def test_failure_callback_reports_a_run_that_died_before_the_report(runs):
    result = runs["results"][4]
    assert result["state"] == "failed"
    assert result["tasks"] == {"crash": "failed", "report": "upstream_failed"}
    detail = task_failed_detail(runs, 4)
    assert detail["error"] == "Airflow.TaskFailed"
    assert "crash failed: RuntimeError: disk full on worker 7" in detail["cause"]
    assert execution(runs, 4)["Status"] == "Succeeded"  # caught by the flow


def test_failure_callback_skips_a_run_already_reported(runs):
    result = runs["results"][5]
    assert result["state"] == "failed"
    assert result["tasks"] == {"work": "failed", "report": "failed"}
    # reported once, by the report operator (a second report would have been refused, not recorded)
    assert task_failed_detail(runs, 5)["error"] == "Airflow.TaskFailed"
    message_id = runs["confs"][5]["message_id"]
    assert f"Message {message_id} of run {result['run_id']} was already reported" in runs["log"]


def test_mapped_report_over_the_messages_of_one_run(runs):
    result = runs["results"][6]
    # one message failed: only its report fails, the other one reports its output
    assert result["state"] == "failed"
    assert result["tasks"]["handle[0]"] == "success" and result["tasks"]["handle[1]"] == "failed"
    assert result["tasks"]["report[0]"] == "success" and result["tasks"]["report[1]"] == "failed"
    ex = execution(runs, 6)
    assert ex["Status"] == "Succeeded"
    assert json.loads(ex["Output"]) == {"order": 6, "done": True}
    detail = task_failed_detail(runs, 7)
    assert detail["error"] == "Airflow.TaskFailed"
    assert "handle[1] failed: ValueError: order 7 is on hold" in detail["cause"]
    assert "handle[0]" not in detail["cause"]
    assert execution(runs, 7)["Status"] == "Succeeded"  # caught by the flow


def test_no_task_token_in_provider_logs_or_rendered_fields(runs):
    # dag.test() runs tasks in-process, where Airflow redacts nothing: a token in a line of the
    # provider's loggers means it was logged in clear (a real worker would also mask it).
    provider_lines = [line for line in runs["log"].splitlines() if "airflow_provider_fnf" in line]
    assert len(provider_lines) > 10
    for conf in runs["confs"].values():
        assert not [line for line in provider_lines if conf["task_token"] in line]
        for result in runs["results"].values():
            assert conf["task_token"] not in result["rendered"]
    # the rendered fields were stored (the check above is not vacuous)
    assert runs["confs"][6]["message_id"] in runs["results"][6]["rendered"]
