"""ServerlessWorkflowExecutionTrigger: serialization round trip, argument checks, and how an
ended execution of either generation becomes an event."""

from __future__ import annotations

import importlib
import json

import pytest

from airflow_provider_fnf.triggers.fnf import (
    ServerlessWorkflowExecutionTrigger,
    execution_event,
    parse_execution_output,
    unknown_status_message,
)


def test_serialize_round_trip():
    trigger = ServerlessWorkflowExecutionTrigger(
        flow_name="orders",
        execution_name="run-1",
        fnf_conn_id="fnf_x",
        wait_time_seconds=20,
        poll_interval=1.5,
    )
    classpath, kwargs = trigger.serialize()
    module_name, _, class_name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    assert cls is ServerlessWorkflowExecutionTrigger
    # JSON-safe, and rebuilding from it gives the same trigger
    rebuilt = cls(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "flow_name": "orders",
        "execution_name": "run-1",
        "fnf_conn_id": "fnf_x",
        "wait_time_seconds": 20,
        "poll_interval": 1.5,
    }


@pytest.mark.parametrize(
    ("field", "value"), [("wait_time_seconds", 61), ("wait_time_seconds", -1), ("poll_interval", -1)]
)
def test_bad_arguments(field, value):
    with pytest.raises(ValueError, match=field):
        ServerlessWorkflowExecutionTrigger(flow_name="f", execution_name="e", **{field: value})


@pytest.mark.parametrize(
    ("output", "parsed"),
    [('{"a": 1}', {"a": 1}), ("", None), (None, None), ("plain text", "plain text"), ("[1]", [1])],
)
def test_parse_execution_output(output, parsed):
    assert parse_execution_output(output) == parsed


class _History:
    """The one hook method execution_event reads: an execution's history (pure data here)."""

    def __init__(self, *events: dict):
        self.events = list(events)

    def get_execution_history(self, flow_name: str, execution_name: str) -> list[dict]:
        return self.events


@pytest.mark.parametrize(
    ("status", "event_type", "detail", "error", "cause"),
    [
        pytest.param(
            "Failed",
            "ExecutionFailed",
            {"error": "Airflow.TaskFailed", "cause": "extract failed"},
            "Airflow.TaskFailed",
            "extract failed",
            id="serverless-workflow",
        ),
        pytest.param(
            "Failed",
            "ExecutionFailed",
            {"Code": "Crunch.Failed", "Detail": "the partition job failed"},
            "Crunch.Failed",
            "the partition job failed",
            id="cloudflow-fail-state",
        ),
        pytest.param(
            "TimedOut",
            "ExecutionTimedOut",
            {"error": "FnF.Timeout", "cause": "the execution ran past its timeout"},
            "FnF.Timeout",
            "the execution ran past its timeout",
            id="cloudflow-timed-out",
        ),
        pytest.param("Stopped", "ExecutionStopped", {}, "", "", id="stopped-without-detail"),
    ],
)
def test_an_ended_execution_names_its_error_and_cause(status, event_type, detail, error, cause):
    execution = {"FlowName": "orders", "Name": "run-1", "Status": status, "Output": ""}
    hook = _History(
        {"Type": "StepFailed", "EventDetail": json.dumps({"error": "inner"})},
        {"Type": event_type, "EventDetail": json.dumps(detail)},
    )
    event = execution_event(hook, execution)  # type: ignore[arg-type]
    assert event["status"] == "failed" and event["execution_status"] == status
    assert (event["error"], event["cause"]) == (error, cause)


def test_a_succeeded_execution_carries_its_output():
    execution = {"FlowName": "orders", "Name": "run-1", "Status": "Succeeded", "Output": '{"n": 1}'}
    event = execution_event(_History(), execution)  # type: ignore[arg-type]
    assert event == {
        "status": "success",
        "flow_name": "orders",
        "execution_name": "run-1",
        "execution_status": "Succeeded",
        "output": '{"n": 1}',
        "error": "",
        "cause": "",
    }


@pytest.mark.parametrize("status", ["Starting", "Running", "", "Succeeded", "Failed", "TimedOut", "Stopped"])
def test_documented_statuses_are_known(status):
    assert unknown_status_message({"Status": status}) is None


def test_an_undocumented_status_is_named():
    message = unknown_status_message({"FlowName": "orders", "Name": "run-1", "Status": "Paused"})
    assert message is not None
    assert "'Paused'" in message and "run-1" in message and "TimedOut" in message
