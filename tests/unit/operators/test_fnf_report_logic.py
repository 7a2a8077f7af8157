"""Unit tests of the report operator's own logic: Output checks, error names, the Cause, where the
token and the message come from. Everything that talks to a service is in tests/integration/operators/."""

from __future__ import annotations

import base64
import json

import pendulum
import pytest
from airflow.sdk import DAG, TriggerRule

from airflow_provider_fnf.exceptions import FnFConfigurationError, ServerlessWorkflowOutputError
from airflow_provider_fnf.limits import FNF_MAX_CAUSE_CHARS, FNF_MAX_OUTPUT_BYTES
from airflow_provider_fnf.operators.fnf import (
    DEFAULT_TASK_FAILED_ERROR,
    FailedTask,
    ReportTarget,
    ServerlessWorkflowReportTaskOperator,
    _state_key_owner,
    error_name_for,
    failure_cause,
    json_object_text,
    truncate_cause,
)

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


# --- Output ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1, "b": "é"}, '{"a":1,"b":"é"}'),
        ('{"a": [1, 2]}', '{"a":[1,2]}'),
        (None, "{}"),
        (b'{"x": true}', '{"x":true}'),
    ],
)
def test_output_accepted(value, expected):
    assert json_object_text(value, what="the Output", where="run r") == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("[1, 2]", "must be a JSON object, got JSON list"),
        ("not json", "is not valid JSON"),
        (["a"], "must be a JSON object (a dict), got list"),
        (42, "got int"),
        ({"when": pendulum.datetime(2024, 1, 1)}, "cannot be written as JSON"),
        ({"x": float("nan")}, "cannot be written as JSON"),
        ({"blob": "x" * FNF_MAX_OUTPUT_BYTES}, "more than the 32768 bytes"),
    ],
)
def test_output_rejected_names_where(value, fragment):
    with pytest.raises(ServerlessWorkflowOutputError) as err:
        json_object_text(value, what="the Output", where="run mns__q__M1, message M1")
    assert fragment in str(err.value)
    assert "run mns__q__M1, message M1" in str(err.value)


def test_output_limit_counts_utf8_bytes():
    # 3 bytes per character: fits in characters, not in bytes
    value = {"t": "€" * (FNF_MAX_OUTPUT_BYTES // 3)}
    with pytest.raises(ServerlessWorkflowOutputError):
        json_object_text(value, what="the Output", where="here")
    exact = {"t": "x" * (FNF_MAX_OUTPUT_BYTES - len('{"t":""}'))}
    assert len(json_object_text(exact, what="the Output", where="here")) == FNF_MAX_OUTPUT_BYTES


# --- error names and the Cause --------------------------------------------------------------
def test_error_name_default_and_mapping():
    plain = FailedTask("extract", error_types=["ValueError", "Exception"], error_message="bad row")
    timeout = FailedTask("load", error_types=["TimeoutError", "OSError", "Exception"])
    conn = FailedTask("load", error_types=["ConnectionResetError", "ConnectionError", "OSError"])
    assert error_name_for([plain], default=DEFAULT_TASK_FAILED_ERROR) == "Airflow.TaskFailed"
    mapping = {"TimeoutError": "Airflow.Timeout", "OSError": "Airflow.IO"}
    assert error_name_for([plain, timeout], default="D", error_names=mapping) == "Airflow.Timeout"
    # a base class matches too, the most specific type first
    assert error_name_for([conn], default="D", error_names=mapping) == "Airflow.IO"
    # Airflow's own task timeout is mapped by default
    airflow_timeout = FailedTask("t", error_types=["airflow.sdk.exceptions.AirflowTaskTimeout"])
    assert error_name_for([airflow_timeout], default="D") == "Airflow.Timeout"
    assert error_name_for([], default="D") == "D"


def test_cause_names_tasks_and_errors():
    failed = [
        FailedTask("transform", map_index=3, error_types=["KeyError"], error_message="'sku'"),
        FailedTask("load", state="upstream_failed"),
        FailedTask("cleanup", state="failed"),
    ]
    cause = failure_cause(failed, dag_id="orders", run_id="mns__work__M1")
    assert cause.splitlines() == [
        "Airflow DAG orders run mns__work__M1: 2 task(s) failed",
        "transform[3] failed: KeyError: 'sku'",
        "cleanup failed (no error recorded)",
        "load did not run (upstream_failed)",
    ]


def test_cause_is_cut_visibly_within_the_limit():
    failed = [FailedTask(f"task_{i}", error_types=["ValueError"], error_message="x" * 500) for i in range(20)]
    cause = failure_cause(failed, dag_id="d", run_id="r")
    assert len(cause) == FNF_MAX_CAUSE_CHARS
    assert cause.endswith("[truncated]")
    assert truncate_cause("") == "(no cause)"


@pytest.mark.parametrize(
    ("key", "owner"),
    [
        ("load", ("load", -1)),
        ("load_3", ("load", 3)),
        ("load_x", None),
        ("other", None),
        ("a_1", ("a_1", -1)),
    ],
)
def test_task_state_keys(key, owner):
    assert _state_key_owner(key, ["load", "a_1", "a"]) == owner


# --- where the token and the message come from ----------------------------------------------
def test_target_from_conf_with_overrides_and_token_names():
    target = ReportTarget.from_message(message(), queue_name="other-queue", receipt_handle=None)
    assert target.task_token == TOKEN
    assert target.queue_name == "other-queue"
    assert target.receipt_handle == "RH-1"
    assert target.mns_conn_id == "mns_work"
    # flow and execution decoded from the token when the message does not say
    assert (target.flow_name, target.execution_name) == ("orders", "exec-42")
    assert "message MSG-1" in target.where("run-1")
    assert TOKEN not in json.dumps(target.summary("succeeded", 5, True))


def test_target_defaults_mns_connection():
    assert ReportTarget.from_message({"task_token": "t"}).mns_conn_id == "mns_default"


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
