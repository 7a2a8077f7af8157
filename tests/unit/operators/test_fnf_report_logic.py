"""Unit tests of the report operator's own logic: its arguments, mapping over messages.

What a report does (Output checks, error names, the Cause, targets) is in tests/unit/test_reporting.py;
everything that talks to a service is in tests/integration/operators/."""

from __future__ import annotations

import base64
import json

import pendulum
import pytest
from airflow.sdk import DAG, TriggerRule

from airflow_provider_fnf.exceptions import FnFConfigurationError
from airflow_provider_fnf.operators.fnf import ServerlessWorkflowReportTaskOperator

TOKEN = base64.b64encode(b"v1#orders#exec-42#7#signature").decode()


def message(**overrides):
    base = {
        "message_id": "MSG-1",
        "receipt_handle": "RH-1",
        "queue_name": "work",
        "mns_conn_id": "mns_work",
        "task_token": TOKEN,
        "flow_name": None,
        "execution_name": None,
        "body": {"task_token": TOKEN},
        "raw_body": json.dumps({"task_token": TOKEN}),
    }
    base.update(overrides)
    return base


def test_operator_defaults_and_validation():
    op = ServerlessWorkflowReportTaskOperator(task_id="report", output={"ok": True})
    assert op.trigger_rule == TriggerRule.ALL_DONE
    assert op.report_output == {"ok": True}
    assert {"report_output", "message", "task_token", "queue_name", "receipt_handle"} <= set(
        op.template_fields
    )
    with pytest.raises(FnFConfigurationError, match="error name"):
        ServerlessWorkflowReportTaskOperator(task_id="r2", error="x" * 129)
    with pytest.raises(FnFConfigurationError, match="error_names"):
        ServerlessWorkflowReportTaskOperator(task_id="r3", error_names={"KeyError": ""})
    with pytest.raises(FnFConfigurationError, match="not both"):
        ServerlessWorkflowReportTaskOperator(task_id="r4", output={}, output_task_id="t")


def test_operator_maps_over_messages_and_takes_upstream_output():
    with DAG("unit_report_mapping", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        from airflow.sdk import task

        @task
        def work():
            return {"rows": 3}

        result = work()
        single = ServerlessWorkflowReportTaskOperator(task_id="report", output=result)
        mapped = ServerlessWorkflowReportTaskOperator.partial(task_id="report_each", output={}).expand(
            message=[message(), message(message_id="MSG-2")]
        )
    assert "work" in single.upstream_task_ids
    assert type(mapped).__name__ == "MappedOperator"
