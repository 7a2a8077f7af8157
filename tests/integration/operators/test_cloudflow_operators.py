"""CloudFlow flows (``Type: StateMachine``) through the provider, against the emulator: reports
within CloudFlow's 64 KiB, Express flows run synchronously, Standard flows started and awaited
with their Fail state's code and detail, flow versions named by ``qualifier``."""

from __future__ import annotations

import json
import uuid

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_fnf import testing
from airflow_provider_fnf.exceptions import (
    FnFConfigurationError,
    ServerlessWorkflowExecutionFailedError,
    ServerlessWorkflowOutputError,
)
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.limits import CLOUDFLOW_MAX_EVENT_BYTES, SERVERLESS_WORKFLOW_MAX_EVENT_BYTES
from airflow_provider_fnf.messages import parse_message
from airflow_provider_fnf.operators.fnf import (
    ServerlessWorkflowReportTaskOperator,
    ServerlessWorkflowStartExecutionOperator,
    ServerlessWorkflowStartSyncExecutionOperator,
)
from tests.support import set_connection

pytestmark = pytest.mark.integration

CALLBACK_FLOW = """
Type: StateMachine
Name: {flow}
SpecVersion: v1
StartAt: Work
States:
  - Type: Task
    Name: Work
    Action: MNS:SendMessage
    TaskMode: WaitForCustomCallback
    Parameters:
      resourceArn: acs:mns:cn-hangzhou:123456789012:/queues/{queue}/messages
      message:
        TaskToken.$: $Context.Current.TaskToken
        order.$: $Input.order
    OutputConstructor:
      blob.$: $Output.blob
    End: true
"""

EXPRESS_FLOW = """
Type: StateMachine
Name: {flow}
SpecVersion: v1
StartAt: Check
States:
  - Type: Choice
    Name: Check
    Branches:
      - Condition: $Input.quantity > 0
        Next: Accept
    Default: Reject
  - Type: Pass
    Name: Accept
    OutputConstructor:
      order_id.$: $Input.order_id
      status: accepted
    End: true
  - Type: Fail
    Name: Reject
    Code: Order.Rejected
    Detail: the quantity must be positive
"""

FAILING_FLOW = """
Type: StateMachine
Name: {flow}
SpecVersion: v1
StartAt: Refuse
States:
  - Type: Fail
    Name: Refuse
    Code: Orders.OnHold
    Detail: the order is on hold
"""


def report_task(**kwargs) -> ServerlessWorkflowReportTaskOperator:
    return in_dag(ServerlessWorkflowReportTaskOperator, task_id="report", **kwargs)


def in_dag(operator_class, **kwargs):
    with DAG(f"cloudflow_{uuid.uuid4().hex[:8]}", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        return operator_class(**kwargs)


@pytest.fixture
def cloudflow_connection(connections, emulator, monkeypatch) -> str:
    """``fnf_cloudflow``: the emulator, with CloudFlow's limits (extra ``service``)."""
    return set_connection(
        monkeypatch, "fnf_cloudflow", **testing.fnf_connection(emulator.fnf_endpoint, service="cloudflow")
    )


@pytest.fixture
def names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {"flow": f"cf-{suffix}", "queue": f"cf-work-{suffix}"}


def _start_and_receive(names: dict[str, str], execution_name: str) -> dict:
    fnf, mns = ServerlessWorkflowHook(), MNSHook()
    mns.create_queue(names["queue"])
    fnf.create_or_update_flow(names["flow"], CALLBACK_FLOW.format(**names))
    fnf.start_execution(names["flow"], {"order": 7}, execution_name)
    [received] = mns.receive_messages(names["queue"], 1, wait_seconds=10)
    return parse_message(received, queue_name=names["queue"], mns_conn_id="mns_default")


def test_a_cloudflow_report_may_use_64_kib_on_a_cloudflow_connection(
    cloudflow_connection, names, make_context
):
    message = _start_and_receive(names, "big-output")
    assert message["body"]["order"] == 7 and message["task_token"] == message["body"]["TaskToken"]
    blob = {"blob": "x" * 40_000}  # between the two generations' limits
    fnf = ServerlessWorkflowHook()

    # fnf_default has Serverless Workflow's limit: the report operator refuses the Output and
    # says why; nothing reached the flow, whose token stays usable.
    with pytest.raises(ServerlessWorkflowOutputError) as refused:
        fnf.report_task_succeeded(message["task_token"], blob)
    text = str(refused.value)
    assert f"over Serverless Workflow's limit of {SERVERLESS_WORKFLOW_MAX_EVENT_BYTES:,} bytes" in text
    assert '"service": "cloudflow"' in text
    assert fnf.describe_execution(names["flow"], "big-output")["Status"] == "Running"

    task = report_task(output=blob, fnf_conn_id=cloudflow_connection)
    result = task.execute(make_context(task, message, run_id="mns__cf__1"))

    assert result["outcome"] == "succeeded" and result["deleted"] is True
    execution = fnf.describe_execution(names["flow"], "big-output", wait_time_seconds=10)
    assert execution["Status"] == "Succeeded"
    assert json.loads(execution["Output"]) == blob


def test_cloudflow_refuses_more_than_64_kib_before_calling(cloudflow_connection):
    hook = ServerlessWorkflowHook(cloudflow_connection)
    with pytest.raises(
        ServerlessWorkflowOutputError, match=f"over CloudFlow's limit of {CLOUDFLOW_MAX_EVENT_BYTES:,}"
    ):
        hook.report_task_succeeded("a-task-token-value", {"blob": "x" * CLOUDFLOW_MAX_EVENT_BYTES})


def test_an_express_flow_runs_synchronously_and_returns_its_output(
    cloudflow_connection, names, make_context, emulator
):
    hook = ServerlessWorkflowHook(cloudflow_connection)
    hook.create_or_update_flow(names["flow"], EXPRESS_FLOW.format(**names), execution_mode="Express")
    assert hook.describe_flow(names["flow"])["ExecutionMode"] == "Express"
    task = in_dag(
        ServerlessWorkflowStartSyncExecutionOperator,
        task_id="check",
        flow_name=names["flow"],
        execution_input={"order_id": "A-1", "quantity": 2},
        execution_name="check",
        fnf_conn_id=cloudflow_connection,
    )
    context = make_context(task, None)

    assert task.execute(context) == {"order_id": "A-1", "status": "accepted"}

    name = context["ti"].xcom["execution_name"]
    assert name.startswith("check:") and len(name) > len("check:")
    link = context["ti"].xcom[task.operator_extra_links[0].xcom_key]
    assert link == f"{emulator.fnf_endpoint}/console/flows/{names['flow']}"


def test_an_express_flow_that_fails_fails_the_task_with_its_code_and_detail(
    cloudflow_connection, names, make_context
):
    hook = ServerlessWorkflowHook(cloudflow_connection)
    hook.create_or_update_flow(names["flow"], EXPRESS_FLOW.format(**names), execution_mode="Express")
    task = in_dag(
        ServerlessWorkflowStartSyncExecutionOperator,
        task_id="check",
        flow_name=names["flow"],
        execution_input='{"order_id": "A-2", "quantity": 0}',
        fnf_conn_id=cloudflow_connection,
    )
    with pytest.raises(ServerlessWorkflowExecutionFailedError) as err:
        task.execute(make_context(task, None))
    assert err.value.code == "Order.Rejected"
    assert "ended Failed" in str(err.value) and "the quantity must be positive" in str(err.value)


def test_an_existing_flow_keeps_its_execution_mode(cloudflow_connection, names):
    hook = ServerlessWorkflowHook(cloudflow_connection)
    hook.create_or_update_flow(names["flow"], EXPRESS_FLOW.format(**names), execution_mode="Express")
    hook.create_or_update_flow(names["flow"], EXPRESS_FLOW.format(**names), execution_mode="Express")
    with pytest.raises(FnFConfigurationError, match="exists in Express mode, not Standard"):
        hook.create_or_update_flow(names["flow"], EXPRESS_FLOW.format(**names), execution_mode="Standard")


def test_a_standard_cloudflow_execution_fails_the_task_with_the_fail_states_code_and_detail(
    cloudflow_connection, names, make_context
):
    hook = ServerlessWorkflowHook(cloudflow_connection)
    hook.create_or_update_flow(names["flow"], FAILING_FLOW.format(**names))
    task = in_dag(
        ServerlessWorkflowStartExecutionOperator,
        task_id="start",
        flow_name=names["flow"],
        wait_for_completion=True,
        deferrable=False,
        wait_time_seconds=5,
        poll_interval=0.1,
        fnf_conn_id=cloudflow_connection,
    )
    with pytest.raises(ServerlessWorkflowExecutionFailedError) as err:
        task.execute(make_context(task, None))
    assert "ended Failed" in str(err.value)
    assert "Orders.OnHold" in str(err.value) and "the order is on hold" in str(err.value)


def test_start_execution_runs_the_flow_version_its_qualifier_names(cloudflow_connection, names, make_context):
    hook = ServerlessWorkflowHook(cloudflow_connection)
    hook.create_or_update_flow(names["flow"], FAILING_FLOW.format(**names))
    task = in_dag(
        ServerlessWorkflowStartExecutionOperator,
        task_id="start",
        flow_name=names["flow"],
        execution_name="with-alias",
        qualifier="{{ params.alias }}",
        params={"alias": "prod"},
        fnf_conn_id=cloudflow_connection,
    )
    context = make_context(task, None)
    task.render_template_fields({**context, "params": {"alias": "prod"}})
    assert task.qualifier == "prod"

    assert task.execute(context) == "with-alias"

    # The emulator records the Qualifier (it does not emulate versions): ListExecutions filters by it.
    assert [e["Name"] for e in hook.list_executions(names["flow"], qualifier="prod")] == ["with-alias"]
    assert hook.list_executions(names["flow"], qualifier="staging") == []
