"""ServerlessWorkflowHook through the real alibabacloud-fnf20190315 SDK, over HTTP, against the emulator.

The callback round trip is the real one: a flow's waitForCallback step sends a message with a task
token to an MNS queue, MNSHook receives it, ServerlessWorkflowHook reports the token.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
from urllib.parse import quote, quote_plus

import pytest
from hooks_it_support import STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET, STS_TOKEN

from airflow_provider_fnf.exceptions import (
    ServerlessWorkflowAuthenticationError,
    ServerlessWorkflowEndpointUnreachableError,
    ServerlessWorkflowError,
    ServerlessWorkflowExecutionNotFoundError,
    ServerlessWorkflowFlowNotFoundError,
    ServerlessWorkflowInvalidTaskTokenError,
    ServerlessWorkflowOutputError,
    ServerlessWorkflowTaskAlreadyCompletedError,
    ServerlessWorkflowThrottledError,
)
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.limits import FNF_MAX_CAUSE_CHARS, SERVERLESS_WORKFLOW_MAX_EVENT_BYTES
from tests.support import (
    ACCESS_KEY_ID,
    add_fault,
    admin,
    callback_flow_definition,
    closed_port,
    set_connection,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

QUEUE = "fnf-callbacks"
FLOW = "hooks-callback-flow"
DEFINITION = callback_flow_definition(QUEUE, step="WaitForAirflow")


@pytest.fixture
def mns(mns_conn_id: str) -> MNSHook:
    hook = MNSHook(mns_conn_id)
    hook.create_queue(QUEUE)
    return hook


@pytest.fixture
def fnf(fnf_conn_id: str, mns: MNSHook) -> ServerlessWorkflowHook:
    hook = ServerlessWorkflowHook(fnf_conn_id)
    hook.retry_base_delay = 0.01
    hook.create_or_update_flow(FLOW, DEFINITION, description="hooks integration test")
    return hook


def wait_for_token(mns: MNSHook, execution_name: str | None = None) -> tuple[str, str]:
    """Receive the flow's callback message; return (task token, receipt handle)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for message in mns.receive_messages(QUEUE, 16, wait_seconds=1):
            body = json.loads(message.body)
            token = body["task_token"]
            assert message.receipt_handle
            if execution_name is None or f"#{execution_name}#" in _decoded(token):
                return token, message.receipt_handle
            mns.change_message_visibility(QUEUE, message.receipt_handle, 1)
    raise AssertionError(f"no callback message for execution {execution_name}")


def _decoded(token: str) -> str:
    import base64

    return base64.b64decode(token).decode(errors="replace")


def start_and_wait(fnf: ServerlessWorkflowHook, mns: MNSHook, name: str, key: str = "value") -> str:
    fnf.start_execution(FLOW, {"key": key}, name)
    token, handle = wait_for_token(mns, name)
    mns.delete_message(QUEUE, handle)
    return token


# --- flows -----------------------------------------------------------------------------------
def test_flow_lifecycle(fnf):
    flow = fnf.describe_flow(FLOW)
    assert flow["Name"] == FLOW and flow["Type"] == "FDL" and "waitForCallback" in flow["Definition"]
    updated = fnf.create_or_update_flow(FLOW, DEFINITION, description="second version")
    assert updated["Description"] == "second version"
    assert fnf.describe_flow(FLOW)["Description"] == "second version"
    assert FLOW in [f["Name"] for f in fnf.list_flows()]
    fnf.delete_flow(FLOW)
    with pytest.raises(ServerlessWorkflowFlowNotFoundError) as info:
        fnf.describe_flow(FLOW)
    assert FLOW in str(info.value) and fnf.fnf_conn_id in str(info.value)


def test_test_connection(fnf):
    ok, message = fnf.test_connection()
    assert ok and fnf.settings.endpoint in message


# --- the callback round trip -------------------------------------------------------------------
def test_report_succeeded_then_again_is_task_already_completed(fnf, mns):
    started = fnf.start_execution(FLOW, {"key": "k1"}, "exec-success")
    assert started["Name"] == "exec-success" and started["Status"] == "Running"
    token, handle = wait_for_token(mns, "exec-success")
    event_id = fnf.report_task_succeeded(token, {"answer": 42, "key": "k1"})
    assert isinstance(event_id, int) and event_id > 0
    execution = fnf.describe_execution(FLOW, "exec-success", wait_time_seconds=10)
    assert execution["Status"] == "Succeeded"
    assert json.loads(execution["Output"])["answer"] == 42
    types = [e["Type"] for e in fnf.get_execution_history(FLOW, "exec-success")]
    assert "TaskSucceeded" in types and types[-1] == "ExecutionSucceeded"
    assert "exec-success" in [e["Name"] for e in fnf.list_executions(FLOW, status="Succeeded")]
    with pytest.raises(ServerlessWorkflowTaskAlreadyCompletedError) as info:
        fnf.report_task_succeeded(token, '{"answer": 43}')
    assert token not in str(info.value)
    mns.delete_message(QUEUE, handle)  # reported, so the message may go


def test_report_failed_truncates_a_long_cause(fnf, mns):
    token = start_and_wait(fnf, mns, "exec-failed")
    cause = "Traceback line\n" * 1000
    event_id = fnf.report_task_failed(token, "AirflowDagRunFailed", cause)
    assert event_id > 0
    assert fnf.describe_execution(FLOW, "exec-failed", wait_time_seconds=10)["Status"] == "Failed"
    [failed] = [e for e in fnf.get_execution_history(FLOW, "exec-failed") if e["Type"] == "TaskFailed"]
    detail = json.loads(failed["EventDetail"])
    assert detail["error"] == "AirflowDagRunFailed"
    assert len(detail["cause"]) == FNF_MAX_CAUSE_CHARS
    kept, _, marker = detail["cause"].rpartition("...[truncated ")
    assert cause.startswith(kept)
    assert len(kept) + int(marker.removesuffix(" chars]")) == len(cause)
    with pytest.raises(ServerlessWorkflowTaskAlreadyCompletedError):
        fnf.report_task_failed(token, "Again", "second report")


def test_oversized_output_is_refused_and_the_token_stays_usable(fnf, mns):
    token = start_and_wait(fnf, mns, "exec-big")
    with pytest.raises(ServerlessWorkflowOutputError, match="over Serverless Workflow's limit of 32,768 bytes"):
        fnf.report_task_succeeded(token, {"blob": "x" * SERVERLESS_WORKFLOW_MAX_EVENT_BYTES})
    with pytest.raises(ServerlessWorkflowOutputError, match="JSON object"):
        fnf.report_task_succeeded(token, "[1, 2, 3]")
    assert fnf.describe_execution(FLOW, "exec-big")["Status"] == "Running"
    fnf.report_task_succeeded(token, {"blob": "small"})
    assert fnf.describe_execution(FLOW, "exec-big", wait_time_seconds=10)["Status"] == "Succeeded"


def test_forged_token_is_an_invalid_task_token(fnf):
    import base64

    forged = base64.b64encode(f"v1#{FLOW}#nope#3#forgedsignature".encode()).decode()
    with pytest.raises(ServerlessWorkflowInvalidTaskTokenError) as info:
        fnf.report_task_succeeded(forged, {})
    assert info.value.code == "InvalidArgument"
    with pytest.raises(ServerlessWorkflowInvalidTaskTokenError):
        fnf.report_task_failed("not base64 at all!", "E", "c")


def test_describe_long_poll_returns_when_the_execution_ends(fnf, mns):
    token = start_and_wait(fnf, mns, "exec-poll")
    reporter = threading.Timer(0.5, fnf.report_task_succeeded, args=(token, {"late": True}))
    reporter.start()
    try:
        execution = fnf.describe_execution(FLOW, "exec-poll", wait_time_seconds=20)
    finally:
        reporter.join()
    assert execution["Status"] == "Succeeded"


def test_stop_execution_and_lists(fnf, mns):
    for name in ("exec-a", "exec-b", "exec-c"):
        fnf.start_execution(FLOW, {"key": name}, name)
    again = fnf.start_execution(FLOW, {"key": "exec-a"}, "exec-a")  # same name, still running
    assert again["Name"] == "exec-a"
    stopped = fnf.stop_execution(FLOW, "exec-b", error="Cancelled", cause="by the test")
    assert stopped["Status"] == "Stopped"
    with pytest.raises(ServerlessWorkflowError) as info:
        fnf.stop_execution(FLOW, "exec-b")
    assert info.value.code == "ExecutionAlreadyCompleted"
    assert {e["Name"] for e in fnf.list_executions(FLOW, status="Running")} == {"exec-a", "exec-c"}
    assert len(fnf.list_executions(FLOW, limit=2)) == 2
    assert len(fnf.list_executions(FLOW)) == 3
    generated = fnf.start_execution(FLOW, {"key": "unnamed"})
    assert generated["Name"].startswith("airflow-")


def test_missing_flow_and_execution(fnf):
    with pytest.raises(ServerlessWorkflowFlowNotFoundError):
        fnf.start_execution("no-such-flow", {})
    with pytest.raises(ServerlessWorkflowExecutionNotFoundError) as info:
        fnf.describe_execution(FLOW, "no-such-execution")
    assert "no-such-execution" in str(info.value)


# --- throttling and retries ---------------------------------------------------------------------
def test_throttling_is_retried_then_succeeds(fnf, mns, emu):
    token = start_and_wait(fnf, mns, "exec-throttled")
    add_fault(
        emu.fnf_endpoint, operation="ReportTaskSucceeded", status=429, code="ResourceThrottled", times=2
    )
    assert fnf.report_task_succeeded(token, {"ok": True}) > 0
    assert admin(emu.fnf_endpoint, "GET", "faults")["faults"] == []  # both 429s were answered
    assert fnf.describe_execution(FLOW, "exec-throttled", wait_time_seconds=10)["Status"] == "Succeeded"


def test_throttling_outlasting_max_attempts_is_retried_within_the_time_budget(fnf_conn_id, fnf, mns, emu):
    token = start_and_wait(fnf, mns, "exec-patient")
    add_fault(
        emu.fnf_endpoint, operation="ReportTaskSucceeded", status=429, code="ResourceThrottled", times=4
    )
    patient = ServerlessWorkflowHook(fnf_conn_id, max_attempts=2, throttle_retry_seconds=30)
    patient.retry_base_delay = 0.01
    assert patient.report_task_succeeded(token, {"ok": True}) > 0
    assert fnf.describe_execution(FLOW, "exec-patient", wait_time_seconds=10)["Status"] == "Succeeded"


def test_throttling_exhaustion_raises_throttled_and_loses_nothing(fnf_conn_id, fnf, mns, emu):
    token = start_and_wait(fnf, mns, "exec-exhausted")
    add_fault(
        emu.fnf_endpoint, operation="ReportTaskSucceeded", status=429, code="ResourceThrottled", times=3
    )
    impatient = ServerlessWorkflowHook(fnf_conn_id, max_attempts=3, throttle_retry_seconds=0)
    impatient.retry_base_delay = 0.01
    with pytest.raises(ServerlessWorkflowThrottledError) as info:
        impatient.report_task_succeeded(token, {"ok": True})
    assert "after 3 attempts" in str(info.value) and info.value.status == 429
    assert fnf.describe_execution(FLOW, "exec-exhausted")["Status"] == "Running"
    fnf.report_task_succeeded(token, {"ok": True})  # the token still works


@pytest.mark.parametrize(
    ("status", "code"), [(409, "TaskInvalidState"), (500, "InternalServerError"), (503, "ServiceUnavailable")]
)
def test_transient_errors_are_retried(fnf, mns, emu, status, code):
    token = start_and_wait(fnf, mns, f"exec-{status}")
    add_fault(emu.fnf_endpoint, operation="ReportTaskFailed", status=status, code=code, times=1)
    assert fnf.report_task_failed(token, "Boom", "transient error test") > 0


def test_dropped_connection_is_retried(fnf, mns, emu):
    token = start_and_wait(fnf, mns, "exec-dropped")
    add_fault(emu.fnf_endpoint, operation="ReportTaskSucceeded", drop_connection=True, times=1)
    assert fnf.report_task_succeeded(token, {}) > 0


# --- credentials and endpoints ------------------------------------------------------------------
def test_wrong_secret_is_an_authentication_error(monkeypatch, emu):
    conn_id = set_connection(
        monkeypatch,
        "fnf_wrong_secret",
        conn_type="fnf",
        login=ACCESS_KEY_ID,
        password="not-the-secret",
        extra={"endpoint": emu.fnf_endpoint},
    )
    hook = ServerlessWorkflowHook(conn_id)
    with pytest.raises(ServerlessWorkflowAuthenticationError) as info:
        hook.list_flows()
    assert "fnf_wrong_secret" in str(info.value)
    ok, message = hook.test_connection()
    assert not ok and "fnf_wrong_secret" in message


@pytest.mark.parametrize(("token", "works"), [(STS_TOKEN, True), ("forged-sts-token-value", False)])
def test_sts_security_token(monkeypatch, emu, token, works):
    conn_id = set_connection(
        monkeypatch,
        "fnf_sts",
        conn_type="fnf",
        login=STS_ACCESS_KEY_ID,
        password=STS_ACCESS_KEY_SECRET,
        extra={"endpoint": emu.fnf_endpoint, "security_token": token},
    )
    hook = ServerlessWorkflowHook(conn_id)
    if works:
        assert hook.test_connection()[0]
    else:
        with pytest.raises(ServerlessWorkflowAuthenticationError):
            hook.list_flows()


def test_unreachable_endpoint_after_bounded_retries(monkeypatch):
    port = closed_port()
    conn_id = set_connection(
        monkeypatch,
        "fnf_closed",
        conn_type="fnf",
        login=ACCESS_KEY_ID,
        password="emulator-access-key-secret",
        extra={"endpoint": f"127.0.0.1:{port}", "protocol": "http"},
    )
    hook = ServerlessWorkflowHook(conn_id, max_attempts=3)
    hook.retry_base_delay = 0.01
    token = "dW5yZWFjaGFibGUtdG9rZW4+/="
    with pytest.raises(ServerlessWorkflowEndpointUnreachableError) as info:
        hook.report_task_succeeded(token, {})
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "fnf_closed" in message and "after 3 attempts" in message
    assert token not in message and quote_plus(token) not in message
    # Airflow logs a failed task's whole exception chain: the SDK errors under ours (which quote
    # the request URL) must not hold the token, its encoded forms, the signature or the secret.
    chain = "".join(traceback.format_exception(info.value))
    assert "ConnectionError" in chain or "Connection refused" in chain  # the cause is still there
    for secret in (token, quote_plus(token), quote(token, safe=""), "emulator-access-key-secret"):
        assert secret not in chain
    assert re.search(r"Signature=[^*&\s]", chain) is None


# --- threads and masking ------------------------------------------------------------------------
def test_eight_threads_report_concurrently(fnf, mns):
    tokens = [start_and_wait(fnf, mns, f"exec-thread-{n}") for n in range(8)]
    errors: list[BaseException] = []

    def report(token: str) -> None:
        try:
            fnf.report_task_succeeded(token, {"thread": True})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=report, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    statuses = {fnf.describe_execution(FLOW, f"exec-thread-{n}", 10)["Status"] for n in range(8)}
    assert statuses == {"Succeeded"}


def test_no_log_line_shows_the_task_token(fnf, mns, caplog):
    from airflow.sdk._shared.secrets_masker import redact

    token = start_and_wait(fnf, mns, "exec-masked")
    with caplog.at_level(logging.DEBUG):
        fnf.report_task_succeeded(token, {"done": True})
        with pytest.raises(ServerlessWorkflowTaskAlreadyCompletedError):
            fnf.report_task_succeeded(token, {"done": True})
    forms = (token, quote(token, safe=""), quote_plus(token))
    raw = [record.getMessage() for record in caplog.records]
    # The HTTP library logs request URLs at DEBUG, token included: only the masker hides it.
    assert any(form in line for line in raw for form in forms)
    # What reaches a task log is the record after Airflow's secrets masker.
    lines = [str(redact(line)) for line in raw]
    for form in forms:
        assert not any(form in line for line in lines)
