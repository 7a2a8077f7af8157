"""ServerlessWorkflowReportTaskOperator against the emulator, through the real SDKs.

Each test drives a real flow: an execution sends its callback message to the queue, the test
receives it as the dispatch would (the parsed dict is the run's conf), and the operator runs with
a minimal context. What is checked is what a user sees: the execution's status and history, the
queue's contents, the operator's result and errors.
"""

from __future__ import annotations

import json
import urllib.request

import pendulum
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_fnf.exceptions import ServerlessWorkflowError
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator
from airflow_provider_fnf.reporting import REPORT_XCOM_KEY

pytestmark = pytest.mark.integration


def report_task(**kwargs) -> ServerlessWorkflowReportTaskOperator:
    with DAG(f"report_{id(kwargs)}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        return ServerlessWorkflowReportTaskOperator(task_id="report", **kwargs)


def test_success_reports_output_then_deletes(callback_flow, make_context):
    name, conf = callback_flow.start_and_receive(order=7)
    task = report_task(output={"rows": 3, "order": 7})
    context = make_context(task, conf, run_id="mns__work__1")

    result = task.execute(context)

    assert result["outcome"] == "succeeded"
    assert result["deleted"] is True
    assert result["message_id"] == conf["message_id"]
    execution = callback_flow.execution(name, wait=5)
    assert execution["Status"] == "Succeeded"
    assert json.loads(execution["Output"]) == {"rows": 3, "order": 7}
    assert callback_flow.messages_left() == 0
    assert context["ti"].xcom[REPORT_XCOM_KEY] == result
    assert conf["task_token"] not in json.dumps(result)


def test_message_dict_argument_wins_over_conf(callback_flow, make_context):
    name, message = callback_flow.start_and_receive()
    task = report_task(message=message, output='{"via": "message"}')
    result = task.execute(make_context(task, conf={"unrelated": True}))
    assert result["outcome"] == "succeeded"
    assert json.loads(callback_flow.execution(name, wait=5)["Output"]) == {"via": "message"}
    assert callback_flow.messages_left() == 0


def test_already_completed_counts_as_reported_and_deletes(callback_flow, make_context):
    name, conf = callback_flow.start_and_receive()
    # another worker reported first, but did not delete
    callback_flow.fnf.report_task_succeeded(conf["task_token"], {"by": "someone else"})
    task = report_task(output={"by": "airflow"})

    result = task.execute(make_context(task, conf))

    assert result["outcome"] == "already_completed"
    assert result["deleted"] is True
    assert callback_flow.messages_left() == 0
    assert json.loads(callback_flow.execution(name, wait=5)["Output"]) == {"by": "someone else"}


def test_report_failing_after_retries_keeps_message(callback_flow, emulator_admin, make_context):
    name, conf = callback_flow.start_and_receive()
    emulator_admin(
        "POST",
        "faults",
        {"service": "fnf", "operation": "ReportTaskSucceeded", "status": 500, "code": "InternalServerError"},
    )
    task = report_task(output={"ok": True})
    with pytest.raises(ServerlessWorkflowError) as err:
        task.execute(make_context(task, conf))
    emulator_admin("DELETE", "faults")
    assert "InternalServerError" in str(err.value)
    assert conf["task_token"] not in str(err.value)
    # nothing was reported: the flow still waits and the message is still in the queue
    assert callback_flow.execution(name)["Status"] == "Running"
    assert callback_flow.messages_left() == 1
    # Airflow's own retry then succeeds
    assert task.execute(make_context(task, conf))["outcome"] == "succeeded"
    assert callback_flow.messages_left() == 0


def test_oversized_output_tells_the_flow_and_fails(callback_flow, make_context):
    name, conf = callback_flow.start_and_receive()
    task = report_task(output={"blob": "x" * 40_000})

    with pytest.raises(AirflowFailException) as err:
        task.execute(make_context(task, conf, run_id="mns__work__big"))

    text = str(err.value)
    assert "run mns__work__big" in text and conf["message_id"] in text
    assert "over Serverless Workflow's limit of 32,768 bytes" in text and "Airflow.InvalidOutput" in text
    execution = callback_flow.execution(name, wait=5)
    # Airflow.InvalidOutput is not caught by the flow: the execution fails with it
    assert execution["Status"] == "Failed"
    assert callback_flow.task_failure(name)["error"] == "Airflow.InvalidOutput"
    # the token was reported (as failed), so the message is gone
    assert callback_flow.messages_left() == 0


def test_output_not_json_object(callback_flow, make_context):
    name, conf = callback_flow.start_and_receive()
    task = report_task(output="[1, 2, 3]")
    with pytest.raises(AirflowFailException, match="must be a JSON object"):
        task.execute(make_context(task, conf))
    assert callback_flow.task_failure(name)["error"] == "Airflow.InvalidOutput"


def test_missing_token_names_run_and_message_and_keeps_message(callback_flow, make_context):
    _, conf = callback_flow.start_and_receive()
    conf = {**conf, "task_token": None}
    task = report_task(output={})
    with pytest.raises(AirflowFailException) as err:
        task.execute(make_context(task, conf, run_id="mns__work__x"))
    assert "run mns__work__x" in str(err.value) and conf["message_id"] in str(err.value)
    assert "no task token" in str(err.value)
    assert callback_flow.messages_left() == 1


def test_rejected_token_keeps_message(callback_flow, make_context):
    name, conf = callback_flow.start_and_receive()
    task = report_task(output={}, task_token="bm90IGEgdG9rZW4=")
    with pytest.raises(AirflowFailException, match="rejected the task token") as err:
        task.execute(make_context(task, conf, run_id="mns__work__bad"))
    assert conf["message_id"] in str(err.value)
    assert callback_flow.messages_left() == 1
    assert callback_flow.execution(name)["Status"] == "Running"


def test_stale_receipt_handle_is_not_fatal(callback_flow, make_context):
    name, conf = callback_flow.start_and_receive()
    task = report_task(output={"ok": 1}, receipt_handle="1-stale-handle")
    result = task.execute(make_context(task, conf))
    assert result["outcome"] == "succeeded"
    assert result["deleted"] is False
    assert callback_flow.execution(name, wait=5)["Status"] == "Succeeded"


def test_console_link_points_at_the_emulator_page(callback_flow, emulator, make_context):
    name, conf = callback_flow.start_and_receive()
    task = report_task(output={})
    context = make_context(task, conf)
    task.execute(context)
    link_key = task.operator_extra_links[0].xcom_key
    url = context["ti"].xcom[link_key]
    assert url == f"{emulator.fnf_endpoint}/console/flows/{callback_flow.flow_name}/executions/{name}"
    with urllib.request.urlopen(url, timeout=10) as page:
        html = page.read().decode()
    assert name in html and "Succeeded" in html
