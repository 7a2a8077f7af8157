"""ServerlessWorkflowExecutionSensor's validation of trigger events and of its arguments."""

from __future__ import annotations

import pytest

from airflow_provider_fnf.exceptions import ServerlessWorkflowError, ServerlessWorkflowExecutionFailedError
from airflow_provider_fnf.sensors.fnf import ServerlessWorkflowExecutionSensor, raise_for_execution_event


def test_success_event_gives_parsed_output():
    event = {"status": "success", "flow_name": "f", "execution_name": "e", "output": '{"n": 2}'}
    assert raise_for_execution_event(event, where="t") == {"n": 2}


def test_failed_event_names_execution_error_and_cause():
    event = {
        "status": "failed",
        "flow_name": "orders",
        "execution_name": "run-1",
        "execution_status": "Failed",
        "error": "Airflow.TaskFailed",
        "cause": "extract failed",
    }
    with pytest.raises(ServerlessWorkflowExecutionFailedError) as err:
        raise_for_execution_event(event, where="t")
    text = str(err.value)
    assert "run-1" in text and "orders" in text and "Failed" in text
    assert "Airflow.TaskFailed" in text and "extract failed" in text
    assert err.value.code == "Airflow.TaskFailed"


@pytest.mark.parametrize("event", [None, {}, {"status": "odd"}, "success"])
def test_malformed_event(event):
    with pytest.raises(ServerlessWorkflowError, match="unexpected trigger event"):
        raise_for_execution_event(event, where="task s")


def test_error_event_carries_message():
    with pytest.raises(ServerlessWorkflowError, match="could not reach"):
        raise_for_execution_event({"status": "error", "message": "could not reach"}, where="t")


def test_sensor_arguments():
    sensor = ServerlessWorkflowExecutionSensor(
        task_id="s", flow_name="f", execution_name="{{ ti.xcom_pull() }}"
    )
    assert set(sensor.template_fields) == {"flow_name", "execution_name", "fnf_conn_id"}
    with pytest.raises(ValueError, match="wait_time_seconds"):
        ServerlessWorkflowExecutionSensor(
            task_id="s2", flow_name="f", execution_name="e", wait_time_seconds=90
        )
