"""Unit tests of ServerlessWorkflowHook's own logic: settings, limits, retries, error mapping, masking.

Everything that talks to the service is in tests/integration/hooks/.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote, quote_plus

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
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
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook, is_retryable_fnf_error
from airflow_provider_fnf.limits import CLOUDFLOW_MAX_EVENT_BYTES, SERVERLESS_WORKFLOW_MAX_EVENT_BYTES
from airflow_provider_fnf.masking import mask_task_token, redact_text

CONN_ID = "fnf_unit"


def set_conn(monkeypatch, conn_id: str = CONN_ID, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "fnf", **fields}))


@pytest.fixture
def hook(monkeypatch) -> ServerlessWorkflowHook:
    set_conn(
        monkeypatch,
        login="unit-access-key-id",
        password="unit-access-key-secret",
        extra={"endpoint": "http://127.0.0.1:1"},
    )
    h = ServerlessWorkflowHook(CONN_ID, max_attempts=3)
    h.retry_base_delay = 0
    return h


def client_error(status: int, code: str, message: str = "no") -> ClientException:
    return ClientException(status_code=status, code=code, message=message, request_id="REQ-1", data={})


def network_error(text: str = "Connection refused") -> UnretryableException:
    return UnretryableException(RetryPolicyContext(retries_attempted=1, exception=RetryError(text)))


# --- settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "endpoint", "protocol"),
    [
        ({"endpoint": "http://127.0.0.1:9912"}, "127.0.0.1:9912", "http"),
        ({"endpoint": "127.0.0.1:9912", "protocol": "http"}, "127.0.0.1:9912", "http"),
        ({"endpoint": "fnf.vpc.example.internal"}, "fnf.vpc.example.internal", "https"),
        ({"region": "cn-hangzhou"}, "cn-hangzhou.fnf.aliyuncs.com", "https"),
        ({"region": "cn-shanghai", "endpoint": "https://e.example:8443/"}, "e.example:8443", "https"),
    ],
)
def test_endpoint_and_protocol(monkeypatch, extra, endpoint, protocol):
    set_conn(monkeypatch, login="id", password="secret-value", extra=extra)
    settings = ServerlessWorkflowHook(CONN_ID).settings
    assert (settings.endpoint, settings.protocol) == (endpoint, protocol)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "neither extra 'region' nor 'endpoint'"),
        ({"endpoint": "http://h:1", "protocol": "https"}, "says http but 'protocol' says https"),
        ({"endpoint": "ftp://h:1"}, "scheme 'ftp'"),
        ({"endpoint": "h:1/path"}, "no path"),
        ({"region": "r", "protocol": "gopher"}, "must be http or https"),
        (
            {"region": "r", "service": "fc"},
            "'service' must be one of serverless_workflow, cloudflow, got 'fc'",
        ),
    ],
)
def test_bad_settings_name_the_connection(monkeypatch, extra, message):
    set_conn(monkeypatch, login="id", password="secret-value", extra=extra)
    with pytest.raises(FnFConfigurationError, match=message) as info:
        _ = ServerlessWorkflowHook(CONN_ID).settings
    assert CONN_ID in str(info.value)


def test_constructor_touches_nothing():
    hook = ServerlessWorkflowHook("fnf_not_defined_anywhere")
    assert hook.fnf_conn_id == "fnf_not_defined_anywhere"


def test_clients_are_per_thread(hook):
    clients = []
    threads = [threading.Thread(target=lambda: clients.append(hook.get_conn())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in clients}) == 3
    assert hook.get_conn() is hook.get_conn()


# --- Output and Cause limits (the checks themselves: tests/unit/test_reporting.py) -------------
def test_report_task_succeeded_checks_output_without_calling(hook):
    with pytest.raises(ServerlessWorkflowOutputError, match="connection 'fnf_unit'"):
        hook.report_task_succeeded(
            "a-task-token-value", {"big": "x" * (SERVERLESS_WORKFLOW_MAX_EVENT_BYTES + 1)}
        )


@pytest.mark.parametrize(
    ("extra", "service", "max_bytes"),
    [
        ({}, "Serverless Workflow", SERVERLESS_WORKFLOW_MAX_EVENT_BYTES),
        ({"service": "serverless_workflow"}, "Serverless Workflow", SERVERLESS_WORKFLOW_MAX_EVENT_BYTES),
        ({"service": "CloudFlow"}, "CloudFlow", CLOUDFLOW_MAX_EVENT_BYTES),
    ],
)
def test_the_connection_says_which_generation_limits_apply(monkeypatch, extra, service, max_bytes):
    set_conn(monkeypatch, login="id", password="secret-value", extra={"region": "cn-hangzhou", **extra})
    limits = ServerlessWorkflowHook(CONN_ID).limits
    assert (limits.service, limits.max_event_bytes) == (service, max_bytes)


def test_cloudflow_connection_reports_up_to_64_kib_before_calling(monkeypatch):
    set_conn(
        monkeypatch,
        login="id",
        password="secret-value",
        extra={"endpoint": "http://127.0.0.1:1", "service": "cloudflow"},
    )
    hook = ServerlessWorkflowHook(CONN_ID)
    with pytest.raises(ServerlessWorkflowOutputError, match="1 bytes over CloudFlow's limit of 65,536"):
        hook.report_task_succeeded("a-task-token-value", {"k": "x" * (CLOUDFLOW_MAX_EVENT_BYTES - 7)})


@pytest.mark.parametrize(("error", "got"), [("", "an empty string"), ("E" * 129, "129 characters, 1 over")])
def test_report_task_failed_checks_the_error_name(hook, error, got):
    with pytest.raises(FnFConfigurationError, match="1..128 characters") as err:
        hook.report_task_failed("a-task-token-value", error, "cause")
    assert got in str(err.value)


@pytest.mark.parametrize("token", ["", "   ", None])
def test_empty_task_token_is_refused(hook, token):
    with pytest.raises(ServerlessWorkflowInvalidTaskTokenError):
        hook.report_task_succeeded(token, {})  # type: ignore[arg-type]


def test_describe_wait_is_bounded(hook):
    with pytest.raises(FnFConfigurationError, match="0..60"):
        hook.describe_execution("flow", "exec", wait_time_seconds=61)


# --- retries ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (client_error(429, "ResourceThrottled"), True),
        (ThrottlingException(status_code=429, code="ResourceThrottled", retry_after=100), True),
        (client_error(409, "TaskInvalidState"), True),
        (ServerException(status_code=500, code="InternalServerError", message="x"), True),
        (ServerException(status_code=503, code="ServiceUnavailable", message="x"), True),
        (network_error(), True),
        (client_error(400, "TaskAlreadyCompleted"), False),
        (client_error(400, "InvalidArgument"), False),
        (client_error(403, "SignatureNotMatch"), False),
        (client_error(404, "FlowNotExists"), False),
        (
            UnretryableException(RetryPolicyContext(retries_attempted=1, exception=ValueError("bad json"))),
            False,
        ),
    ],
)
def test_one_function_decides_what_is_retryable(exc, retryable):
    assert is_retryable_fnf_error(exc) is retryable


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (client_error(429, "ResourceThrottled"), True),
        (ServerException(status_code=500, code="InternalServerError", message="x"), False),
        (client_error(409, "TaskInvalidState"), False),
        (network_error(), False),
    ],
)
def test_a_call_that_is_not_idempotent_is_retried_only_when_throttled(exc, retryable):
    """StartSyncExecution runs an Express flow each time: only a refused call is safe to repeat."""
    assert is_retryable_fnf_error(exc, idempotent=False) is retryable


def test_start_sync_execution_is_not_repeated_after_a_server_error(hook):
    calls = []

    def answer(client, runtime):
        calls.append(1)
        raise ServerException(status_code=500, code="InternalServerError", message="boom")

    with pytest.raises(ServerlessWorkflowError, match="InternalServerError"):
        hook._call("StartSyncExecution", "flow 'f'", answer, idempotent=False)
    assert len(calls) == 1


def test_an_unknown_execution_mode_is_refused_before_any_call(hook):
    with pytest.raises(FnFConfigurationError, match="execution_mode must be one of Standard, Express"):
        hook.create_or_update_flow("f", "Type: StateMachine", execution_mode="Fast")


def test_throttling_is_retried_then_succeeds(hook):
    calls = []

    class Body:
        def to_map(self):
            return {"EventId": 7}

    def call(client, runtime):
        calls.append(runtime.read_timeout)
        if len(calls) < 3:
            raise client_error(429, "ResourceThrottled")
        return type("Resp", (), {"body": Body()})()

    assert hook._call("ReportTaskSucceeded", None, call) == {"EventId": 7}
    assert len(calls) == 3


def test_throttling_exhaustion_raises_throttled(hook):
    hook.throttle_retry_seconds = 0

    def call(client, runtime):
        raise client_error(429, "ResourceThrottled", "too many requests")

    with pytest.raises(ServerlessWorkflowThrottledError, match="after 3 attempts") as info:
        hook._call("ReportTaskSucceeded", None, call)
    assert isinstance(info.value.__cause__, ClientException)


def test_throttled_calls_outlast_max_attempts_but_other_errors_do_not(hook):
    hook.throttle_retry_seconds = 0.2
    throttled: list[int] = []
    failing: list[int] = []

    def throttle(client, runtime):
        throttled.append(1)
        raise client_error(429, "ResourceThrottled", "too many requests")

    def server_error(client, runtime):
        failing.append(1)
        raise client_error(500, "InternalServerError")

    with pytest.raises(ServerlessWorkflowThrottledError):
        hook._call("ReportTaskSucceeded", None, throttle)
    with pytest.raises(ServerlessWorkflowError):
        hook._call("ReportTaskSucceeded", None, server_error)
    assert len(throttled) > hook.max_attempts
    assert len(failing) == hook.max_attempts


def test_unreachable_endpoint_after_bounded_retries_hides_the_token(hook):
    token = "secret-task-token+/="
    calls = []

    def call(client, runtime):
        calls.append(1)
        raise network_error(
            "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: "
            f"/?Action=ReportTaskSucceeded&TaskToken={quote_plus(token)}&SecurityToken=sts-x&Signature=abc"
        )

    with pytest.raises(ServerlessWorkflowEndpointUnreachableError) as info:
        hook._call("ReportTaskSucceeded", None, call, secrets=(token,))
    message = str(info.value)
    assert len(calls) == 3
    assert "http://127.0.0.1:1" in message and CONN_ID in message and "after 3 attempts" in message
    assert quote_plus(token) not in message and "sts-x" not in message


@pytest.mark.parametrize(
    ("action", "exc", "error_class"),
    [
        (
            "ReportTaskSucceeded",
            client_error(400, "TaskAlreadyCompleted"),
            ServerlessWorkflowTaskAlreadyCompletedError,
        ),
        ("ReportTaskFailed", client_error(400, "InvalidArgument"), ServerlessWorkflowInvalidTaskTokenError),
        ("StartExecution", client_error(400, "InvalidArgument"), ServerlessWorkflowError),
        ("StartExecution", client_error(404, "FlowNotExists"), ServerlessWorkflowFlowNotFoundError),
        (
            "DescribeExecution",
            client_error(404, "ExecutionNotExists"),
            ServerlessWorkflowExecutionNotFoundError,
        ),
        ("ListFlows", client_error(403, "SignatureNotMatch"), ServerlessWorkflowAuthenticationError),
        (
            "ListFlows",
            client_error(403, "InvalidAccessKeyId.NotFound"),
            ServerlessWorkflowAuthenticationError,
        ),
        ("ListFlows", client_error(401, "Whatever"), ServerlessWorkflowAuthenticationError),
        ("StopExecution", client_error(400, "ExecutionAlreadyCompleted"), ServerlessWorkflowError),
    ],
)
def test_service_errors_map_to_our_exceptions(hook, action, exc, error_class):
    def call(client, runtime):
        raise exc

    with pytest.raises(error_class) as info:
        hook._call(action, "flow 'f'", call)
    assert type(info.value) is error_class
    assert info.value.code == exc.code
    assert info.value.conn_id == CONN_ID
    assert info.value.__cause__ is exc


def test_task_already_completed_message_never_repeats_the_token(hook):
    token = "djEjZmxvdyNleGVjIzEjc2ln-unit"

    def call(client, runtime):
        raise client_error(400, "TaskAlreadyCompleted", f"Task {token} has already completed.")

    with pytest.raises(ServerlessWorkflowTaskAlreadyCompletedError) as info:
        hook._call("ReportTaskSucceeded", None, call, secrets=(token,))
    assert token not in str(info.value)


# --- masking ----------------------------------------------------------------------------------
def test_task_token_is_masked_in_every_form():
    from airflow.sdk._shared.secrets_masker import redact

    token = "djEjZmxvdyNleGVjIzEj+c2ln/unit=="
    assert mask_task_token(token) == token
    line = f"raw {token} quoted {quote(token, safe='')} plus {quote_plus(token)}"
    redacted = redact(line)
    assert token not in redacted
    assert quote(token, safe="") not in redacted
    assert quote_plus(token) not in redacted


def test_redact_text_strips_tokens_from_urls():
    text = "url: /?Action=X&TaskToken=abc%2B&SecurityToken=sts&Signature=sig&FlowName=f"
    assert redact_text(text) == "url: /?Action=X&TaskToken=***&SecurityToken=***&Signature=***&FlowName=f"


def test_connection_can_be_loaded_from_an_event_loop(hook):
    import asyncio

    asyncio.run(hook.aload_connection())
    assert hook._settings is not None
    assert hook.settings.endpoint == "127.0.0.1:1"


# --- pagination -------------------------------------------------------------------------------
def paged(monkeypatch, hook, key: str, total: int, page_size: int) -> list:
    """Serve ``total`` items ``page_size`` at a time through NextToken; record the requests."""
    requests = []

    def fake_call(action, resource, fn, **kwargs):
        captured = {}

        class Client:
            def __getattr__(self, name):
                def method(request, runtime):
                    captured["request"] = request
                    raise _Stop

                return method

        try:
            fn(Client(), None)
        except _Stop:
            pass
        request = captured["request"]
        requests.append(request)
        start = int(request.next_token or 0)
        count = min(page_size, request.limit or page_size, total - start)
        body: dict[str, object] = {key: [{"N": i} for i in range(start, start + count)]}
        if start + count < total:
            body["NextToken"] = str(start + count)
        return body

    monkeypatch.setattr(hook, "_call", fake_call)
    return requests


class _Stop(Exception):
    pass


def test_history_reads_every_page(monkeypatch, hook):
    requests = paged(monkeypatch, hook, "Events", total=2500, page_size=1000)
    events = hook.get_execution_history("f", "e")
    assert [e["N"] for e in events] == list(range(2500))
    assert len(requests) == 3


def test_list_executions_stops_at_the_limit_across_pages(monkeypatch, hook):
    requests = paged(monkeypatch, hook, "Executions", total=500, page_size=100)
    assert len(hook.list_executions("f", limit=250)) == 250
    assert [r.limit for r in requests] == [100, 100, 50]
    requests.clear()
    assert len(hook.list_executions("f")) == 500
    assert len(requests) == 5
