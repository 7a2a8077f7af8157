"""ServerlessWorkflowExecutionTrigger: serialization round trip and argument checks."""

from __future__ import annotations

import importlib
import json

import pytest

from airflow_provider_fnf.triggers.fnf import ServerlessWorkflowExecutionTrigger, parse_execution_output


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
