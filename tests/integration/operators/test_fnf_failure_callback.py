"""The DAG-level safety net called directly with the context Airflow gives it, against the
emulator: a run timeout, a watcher-driven run with several messages, a context without a run.
(A real failed run calling it is in test_fnf_report_dag_runs.py.)"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from airflow_provider_fnf.callbacks import make_report_task_failed_callback, report_task_failed_on_dag_failure

pytestmark = pytest.mark.integration


def test_run_timeout_is_reported_with_the_timeout_error(callback_flow):
    name, conf = callback_flow.start_and_receive()
    context = {
        "run_id": "mns__work__slow",
        "reason": "timed_out",
        "dag_run": SimpleNamespace(run_id="mns__work__slow", conf=conf),
        "ti": SimpleNamespace(task_id="crunch"),
    }
    report_task_failed_on_dag_failure(context)
    detail = callback_flow.task_failure(name)
    assert detail["error"] == "Airflow.Timeout"
    assert "run mns__work__slow ended by timeout (dagrun_timeout); last task: crunch" in detail["cause"]
    # not caught by the flow (it catches Airflow.TaskFailed only)
    assert callback_flow.execution(name, wait=5)["Status"] == "Failed"
    assert callback_flow.messages_left() == 0


def test_every_message_of_a_watcher_driven_run_is_reported(callback_flow):
    first, m1 = callback_flow.start_and_receive(order=1)
    second, m2 = callback_flow.start_and_receive(order=2)
    events = [{"extra": {"from_trigger": True, "payload": {"messages": [m1, m2]}}}]
    callback = make_report_task_failed_callback(error="Worker.Died")
    callback(
        {
            "run_id": "asset_triggered__1",
            "reason": "task_failure",
            "dag_run": SimpleNamespace(run_id="asset_triggered__1", conf={}),
            "triggering_asset_events": events,
        }
    )
    for name in (first, second):
        assert callback_flow.task_failure(name)["error"] == "Worker.Died"
    assert callback_flow.messages_left() == 0


def test_already_completed_task_still_deletes(callback_flow):
    name, conf = callback_flow.start_and_receive()
    callback_flow.fnf.report_task_succeeded(conf["task_token"], {"done": True})
    report_task_failed_on_dag_failure(
        {"run_id": "r", "reason": "task_failure", "dag_run": SimpleNamespace(run_id="r", conf=conf)}
    )
    assert callback_flow.execution(name, wait=5)["Status"] == "Succeeded"
    assert callback_flow.messages_left() == 0


def test_failed_report_keeps_the_message(callback_flow, emulator_admin):
    name, conf = callback_flow.start_and_receive()
    emulator_admin("POST", "faults", {"service": "fnf", "operation": "ReportTaskFailed", "status": 500})
    report_task_failed_on_dag_failure(
        {"run_id": "r", "reason": "task_failure", "dag_run": SimpleNamespace(run_id="r", conf=conf)}
    )
    emulator_admin("DELETE", "faults")
    assert callback_flow.execution(name)["Status"] == "Running"
    assert callback_flow.messages_left() == 1


def test_without_a_dag_run_nothing_is_reported(callback_flow, caplog):
    name, _ = callback_flow.start_and_receive()
    with caplog.at_level(logging.ERROR, logger="airflow_provider_fnf.callbacks"):
        report_task_failed_on_dag_failure({"run_id": "r", "reason": "task_failure"})
    assert "cannot find its task token" in caplog.text
    assert callback_flow.execution(name)["Status"] == "Running"
    assert callback_flow.messages_left() == 1
