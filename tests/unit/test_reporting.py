"""What a report does, without a service: Output checks, the Cause and its one truncation
marker, error names, where the token and the message come from. The report operator, the failure
callbacks and the hook all use these; against the emulator: tests/integration/operators/."""

from __future__ import annotations

import base64
import json

import pendulum
import pytest

from airflow_provider_fnf.exceptions import ServerlessWorkflowOutputError
from airflow_provider_fnf.limits import (
    CLOUDFLOW_LIMITS,
    CLOUDFLOW_MAX_EVENT_BYTES,
    FNF_MAX_CAUSE_CHARS,
    SERVERLESS_WORKFLOW_MAX_EVENT_BYTES,
)
from airflow_provider_fnf.reporting import (
    DEFAULT_TASK_FAILED_ERROR,
    FailedTask,
    ReportTarget,
    error_name_for,
    failure_cause,
    json_object_text,
    state_key_owner,
    truncate_cause,
)

TOKEN = base64.b64encode(b"v1#orders#exec-42#7#signature").decode()


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
def test_output_becomes_compact_json_of_an_object(value, expected):
    assert json_object_text(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("[1, 2]", "must be a JSON object (it becomes the step's $local), got JSON list"),
        ('"text"', "got JSON str"),
        ("not json", "is not valid JSON"),
        (["a"], "must be a JSON object (a dict or its JSON text), got list"),
        (42, "got int"),
        ({"when": pendulum.datetime(2024, 1, 1)}, "cannot be written as JSON"),
        ({"when": object()}, "cannot be written as JSON"),
        ({"x": float("nan")}, "cannot be written as JSON"),
        (
            {"blob": "x" * SERVERLESS_WORKFLOW_MAX_EVENT_BYTES},
            "11 bytes over Serverless Workflow's limit of 32,768 bytes",
        ),
    ],
)
def test_bad_output_is_refused_naming_what_and_where(value, fragment):
    with pytest.raises(ServerlessWorkflowOutputError) as err:
        json_object_text(value, what="the Output", where="run mns__q__M1, message M1")
    assert fragment in str(err.value)
    assert str(err.value).startswith("run mns__q__M1, message M1: the Output ")


def test_output_limit_counts_utf8_bytes():
    # 3 bytes per character: fits in characters, not in bytes
    with pytest.raises(ServerlessWorkflowOutputError):
        json_object_text({"t": "€" * (SERVERLESS_WORKFLOW_MAX_EVENT_BYTES // 3)})
    exact = {"t": "x" * (SERVERLESS_WORKFLOW_MAX_EVENT_BYTES - len('{"t":""}'))}
    assert len(json_object_text(exact).encode()) == SERVERLESS_WORKFLOW_MAX_EVENT_BYTES


@pytest.mark.parametrize(
    ("limits_kwargs", "size", "fragments", "absent"),
    [
        pytest.param(
            {},
            40_000,
            [
                "40,000 bytes of JSON",
                "7,232 bytes over Serverless Workflow's limit of 32,768 bytes",
                "CloudFlow accepts 65,536 bytes",
                '"service": "cloudflow"',
            ],
            [],
            id="serverless-workflow-hints-cloudflow",
        ),
        pytest.param(
            {},
            70_000,
            ["37,232 bytes over Serverless Workflow's limit of 32,768 bytes"],
            ["CloudFlow accepts"],
            id="too-large-for-both",
        ),
        pytest.param(
            {"limits": CLOUDFLOW_LIMITS},
            70_000,
            ["70,000 bytes of JSON", "4,464 bytes over CloudFlow's limit of 65,536 bytes"],
            ["CloudFlow accepts"],
            id="cloudflow",
        ),
    ],
)
def test_output_limit_names_the_service_and_the_excess(limits_kwargs, size, fragments, absent):
    value = {"k": "x" * (size - len('{"k":""}'))}
    with pytest.raises(ServerlessWorkflowOutputError) as err:
        json_object_text(value, conn_id="fnf_x", **limits_kwargs)
    assert all(f in str(err.value) for f in fragments), str(err.value)
    assert not any(a in str(err.value) for a in absent), str(err.value)
    assert "connection 'fnf_x'" in str(err.value)


def test_cloudflow_accepts_its_larger_output():
    value = {"k": "x" * (CLOUDFLOW_MAX_EVENT_BYTES - len('{"k":""}'))}
    assert len(json_object_text(value, limits=CLOUDFLOW_LIMITS)) == CLOUDFLOW_MAX_EVENT_BYTES


# --- the Cause --------------------------------------------------------------------------------
def test_short_cause_is_unchanged_and_never_empty():
    assert truncate_cause("short") == "short"
    exact = "c" * FNF_MAX_CAUSE_CHARS
    assert truncate_cause(exact) == exact
    assert truncate_cause("") == "(no cause)"
    assert truncate_cause(None) == "(no cause)"


@pytest.mark.parametrize("length", [FNF_MAX_CAUSE_CHARS + 1, FNF_MAX_CAUSE_CHARS + 95, 100_000])
def test_long_cause_is_cut_with_one_visible_marker_saying_how_much(length):
    cause = "".join(chr(ord("a") + i % 26) for i in range(length))
    cut = truncate_cause(cause)
    assert len(cut) == FNF_MAX_CAUSE_CHARS
    kept, _, marker = cut.rpartition("...[truncated ")
    assert cause.startswith(kept)
    assert len(kept) + int(marker.removesuffix(" chars]")) == length
    assert truncate_cause(cut) == cut  # cutting again changes nothing


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


def test_a_long_cause_of_many_tasks_is_cut_within_the_limit():
    failed = [FailedTask(f"task_{i}", error_types=["ValueError"], error_message="x" * 500) for i in range(20)]
    cause = failure_cause(failed, dag_id="d", run_id="r")
    assert len(cause) == FNF_MAX_CAUSE_CHARS
    assert cause.endswith(" chars]") and "...[truncated " in cause


# --- error names ------------------------------------------------------------------------------
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
    assert state_key_owner(key, ["load", "a_1", "a"]) == owner


# --- where the token and the message come from ----------------------------------------------
def test_target_from_conf_with_overrides_and_token_names():
    message = {
        "message_id": "MSG-1",
        "receipt_handle": "RH-1",
        "queue_name": "work",
        "mns_conn_id": "mns_work",
        "task_token": TOKEN,
        "raw_body": json.dumps({"task_token": TOKEN}),
    }
    target = ReportTarget.from_message(message, queue_name="other-queue", receipt_handle=None)
    assert target.task_token == TOKEN
    assert target.queue_name == "other-queue"
    assert target.receipt_handle == "RH-1"
    assert target.mns_conn_id == "mns_work"
    # flow and execution decoded from the token when the message does not say
    assert (target.flow_name, target.execution_name) == ("orders", "exec-42")
    assert "message MSG-1" in target.where("run-1")
    assert TOKEN not in json.dumps(target.summary("succeeded", 5, True))
    assert target.delivery() == {
        "message_id": "MSG-1",
        "queue_name": "other-queue",
        "receipt_handle": "RH-1",
        "raw_body": message["raw_body"],
    }
    # a message from before the poison policy travelled with it is left alone
    assert (target.poison_policy, target.dead_letter_queue_name) == ("leave", None)


def test_target_defaults_mns_connection():
    assert ReportTarget.from_message({"task_token": "t"}).mns_conn_id == "mns_default"
