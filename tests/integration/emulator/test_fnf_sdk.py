"""The Serverless Workflow emulator through the unmodified SDKs (alibabacloud-fnf20190315, aliyun-mns-sdk)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from alibabacloud_fnf20190315 import models as fnf_models
from alibabacloud_tea_openapi.exceptions import ClientException
from fnf_emulator.server import Emulator
from fnf_emulator_helpers import FnF, fnf_client, mns_queue
from mns.mns_exception import MNSServerException
from mns.queue import Queue

from tests.support import REFERENCE_FLOW

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def fnf(emulator: Emulator) -> FnF:
    return FnF(fnf_client(emulator.fnf_endpoint))


@pytest.fixture
def demo_queue(emulator: Emulator) -> Queue:
    return mns_queue(emulator, "fnf-demo")


def callback_flow(extra: str = "", after: str = "") -> str:
    return REFERENCE_FLOW + extra + after


def receive(queue: Queue) -> tuple[dict, str]:
    message = queue.receive_message(5)
    return json.loads(message.message_body), message.receipt_handle


def test_reference_flow_runs_to_succeeded(fnf: FnF, demo_queue: Queue) -> None:
    fnf.create_flow("demo", REFERENCE_FLOW)
    started = fnf.start("demo", "exec-1", {"order": 1})
    assert started["Status"] == "Running" and started["Name"] == "exec-1"

    # The worker of the reference document: receive, report {"key": "value"}, delete.
    message = demo_queue.receive_message(5)
    body = json.loads(message.message_body)
    assert body["key"] == "value" and set(body) == {"task_token", "key"}
    event_id = fnf.succeed(body["task_token"], {"key": "value"})
    demo_queue.delete_message(message.receipt_handle)

    done = fnf.describe("demo", "exec-1", wait=5)
    assert done["Status"] == "Succeeded"
    assert json.loads(done["Output"]) == {"key": "value"}
    assert json.loads(done["Input"]) == {"order": 1}
    assert done["StoppedTime"] >= done["StartedTime"]

    events = fnf.history("demo", "exec-1")
    types = [e["Type"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.index("StepEntered") < types.index("TaskScheduled") < types.index("TaskSubmitted")
    assert types.index("TaskSubmitted") < types.index("TaskSucceeded") < types.index("StepSucceeded")
    assert [e["EventId"] for e in events] == sorted(e["EventId"] for e in events)
    assert next(e for e in events if e["EventId"] == event_id)["Type"] == "TaskSucceeded"
    assert {e["StepName"] for e in events if e["Type"].startswith(("Step", "Task"))} == {"Task_1"}

    # A second report (at-least-once delivery) answers TaskAlreadyCompleted.
    with pytest.raises(ClientException) as info:
        fnf.succeed(body["task_token"], {"key": "value"})
    assert (info.value.code, info.value.status_code) == ("TaskAlreadyCompleted", 400)
    with pytest.raises(MNSServerException):
        demo_queue.receive_message(0)  # the message was deleted


def test_report_failed_is_caught_by_catch(fnf: FnF, demo_queue: Queue) -> None:
    fnf.create_flow(
        "caught",
        callback_flow(
            "    errorMappings:\n      - {target: reason, source: $local.cause}\n"
            "    catch:\n      - errors: [AirflowDagFailed]\n        goto: Handle\n",
            "  - type: pass\n    name: Handle\n    outputMappings:\n      - {target: handled, source: $input.reason}\n",
        ),
    )
    fnf.start("caught", "e1")
    body, handle = receive(demo_queue)
    fnf.fail(body["task_token"], "AirflowDagFailed", "dag run failed")
    demo_queue.delete_message(handle)
    done = fnf.describe("caught", "e1", wait=5)
    assert done["Status"] == "Succeeded"
    assert json.loads(done["Output"]) == {"reason": "dag run failed", "handled": "dag run failed"}
    types = [e["Type"] for e in fnf.history("caught", "e1")]
    assert "TaskFailed" in types and "StepFailed" in types


def test_retry_after_reported_failure(fnf: FnF, demo_queue: Queue) -> None:
    fnf.create_flow(
        "retried",
        callback_flow(
            "    retry:\n      - errors: [FnF.ALL]\n        intervalSeconds: 1\n        maxAttempts: 2\n"
        ),
    )
    fnf.start("retried", "e1")
    first, handle = receive(demo_queue)
    fnf.fail(first["task_token"], "Transient", "first attempt failed")
    demo_queue.delete_message(handle)
    second, handle = receive(demo_queue)
    assert second["task_token"] != first["task_token"]
    fnf.succeed(second["task_token"], {"attempt": 2})
    demo_queue.delete_message(handle)
    done = fnf.describe("retried", "e1", wait=5)
    assert done["Status"] == "Succeeded" and json.loads(done["Output"]) == {"attempt": 2}


def test_timed_out_callback_step(fnf: FnF, demo_queue: Queue) -> None:
    fnf.create_flow("slow", callback_flow("    timeoutSeconds: 1\n"))
    fnf.start("slow", "e1")
    body, _ = receive(demo_queue)
    done = fnf.describe("slow", "e1", wait=10)
    assert done["Status"] == "Failed"
    events = fnf.history("slow", "e1")
    assert "TaskTimedOut" in [e["Type"] for e in events]
    assert json.loads(events[-1]["EventDetail"])["error"] == "FnF.TaskTimeout"
    with pytest.raises(ClientException) as info:
        fnf.succeed(body["task_token"], {})
    assert info.value.code == "TaskAlreadyCompleted"


CHOICE_PARALLEL_FOREACH = """version: v1
type: flow
steps:
  - type: choice
    name: route
    choices:
      - condition: $.kind == "batch" && $.size > 1
        steps:
          - type: foreach
            name: each
            iterationMapping: {collection: $.items, item: item}
            steps:
              - type: task
                name: Work
                resourceArn: acs:mns:::/queues/fnf-demo/messages
                pattern: waitForCallback
                inputMappings:
                  - {target: task_token, source: $context.task.token}
                  - {target: item, source: $input.item}
                serviceParams: {MessageBody: $, Priority: 1}
            outputMappings:
              - {target: results, source: "$local[*].result"}
    default:
      goto: Single
  - type: parallel
    name: finish
    branches:
      - steps: [{type: pass, name: audit, outputMappings: [{target: audited, source: true}]}]
      - steps: [{type: wait, name: settle, duration: 0.1}]
    outputMappings:
      - {target: audited, source: "$local[0].audited"}
    end: true
  - type: pass
    name: Single
    outputMappings: [{target: single, source: true}]
"""


def test_choice_foreach_and_parallel_with_callbacks(fnf: FnF, demo_queue: Queue) -> None:
    fnf.create_flow("batch", CHOICE_PARALLEL_FOREACH)
    fnf.start("batch", "big", {"kind": "batch", "size": 3, "items": ["a", "b", "c"]})
    fnf.start("batch", "small", {"kind": "single"})
    assert fnf.describe("batch", "small", wait=5)["Status"] == "Succeeded"
    assert json.loads(fnf.describe("batch", "small")["Output"]) == {"single": True}
    for _ in range(3):
        body, handle = receive(demo_queue)
        fnf.succeed(body["task_token"], {"result": body["item"].upper()})
        demo_queue.delete_message(handle)
    done = fnf.describe("batch", "big", wait=10)
    assert done["Status"] == "Succeeded"
    output = json.loads(done["Output"])
    assert sorted(output["results"]) == ["A", "B", "C"] and output["audited"] is True


def test_describe_execution_long_poll_returns_when_it_ends(fnf: FnF, demo_queue: Queue) -> None:
    fnf.create_flow("demo", REFERENCE_FLOW)
    fnf.start("demo", "e1")
    body, _ = receive(demo_queue)
    timer = threading.Timer(0.3, fnf.succeed, args=(body["task_token"], {"late": True}))
    timer.start()
    try:
        assert fnf.describe("demo", "e1", wait=20)["Status"] == "Succeeded"
    finally:
        timer.join()


@pytest.mark.parametrize(
    ("action", "code", "status"),
    [
        (
            lambda f: f.create_flow("demo", "version: v1\ntype: flow\nsteps:\n  - {type: nope, name: x}"),
            "InvalidArgument",
            400,
        ),
        (lambda f: f.create_flow("1bad", REFERENCE_FLOW), "InvalidArgument", 400),
        (lambda f: f.create_flow("demo", REFERENCE_FLOW), "FlowAlreadyExists", 409),
        (lambda f: f.start("nope", "e1"), "FlowNotExists", 404),
        (lambda f: f.describe("demo", "nope"), "ExecutionNotExists", 404),
        (
            lambda f: f.client.start_execution(
                fnf_models.StartExecutionRequest(flow_name="demo", input="[1]")
            ),
            "InvalidArgument",
            400,
        ),
        (lambda f: f.succeed("bm90LWEtdG9rZW4=", {}), "InvalidArgument", 400),
        (
            lambda f: f.client.report_task_succeeded(fnf_models.ReportTaskSucceededRequest(output="{}")),
            "MissingRequiredParams",
            400,
        ),
    ],
)
def test_errors_have_documented_codes(fnf: FnF, demo_queue: Queue, action, code: str, status: int) -> None:
    fnf.create_flow("demo", REFERENCE_FLOW)
    with pytest.raises(ClientException) as info:
        action(fnf)
    assert (info.value.code, info.value.status_code) == (code, status)


def test_invalid_definition_error_names_step_and_field(fnf: FnF) -> None:
    with pytest.raises(ClientException) as info:
        fnf.create_flow(
            "bad",
            REFERENCE_FLOW.replace("acs:mns:::/queues/fnf-demo/messages", "acs:fc:::services/s/functions/f"),
        )
    assert "Task_1" in info.value.message and "resourceArn" in info.value.message


def test_same_execution_name_running_returns_it_and_finished_is_rejected(fnf: FnF, demo_queue: Queue) -> None:
    fnf.create_flow("demo", REFERENCE_FLOW)
    fnf.start("demo", "once")
    assert fnf.start("demo", "once")["Status"] == "Running"
    body, _ = receive(demo_queue)
    fnf.succeed(body["task_token"], {})
    fnf.describe("demo", "once", wait=5)
    with pytest.raises(ClientException) as info:
        fnf.start("demo", "once")
    assert info.value.code == "ExecutionAlreadyExists"
    listed = fnf.client.list_executions(
        fnf_models.ListExecutionsRequest(flow_name="demo", limit=10)
    ).body.to_map()
    assert [e["Name"] for e in listed["Executions"]] == ["once"]


@pytest.mark.parametrize(
    ("key_id", "secret", "code"),
    [("emulator-access-key-id", "wrong", "SignatureNotMatch"), ("who", "x", "InvalidAccessKeyID")],
)
def test_bad_credentials_are_rejected(emulator: Emulator, key_id: str, secret: str, code: str) -> None:
    client = fnf_client(emulator.fnf_endpoint, key_id, secret)
    with pytest.raises(ClientException) as info:
        client.list_flows(fnf_models.ListFlowsRequest(limit=10))
    assert (info.value.code, info.value.status_code) == (code, 403)


def test_throttling_answers_429() -> None:
    with Emulator(fnf_throttle=True) as running:
        fnf = FnF(fnf_client(running.fnf_endpoint))
        codes = []
        for _ in range(15):
            try:
                fnf.succeed("bm90LWEtdG9rZW4=", {})
            except ClientException as err:
                codes.append((err.code, err.status_code))
        assert ("ResourceThrottled", 429) in codes
        assert codes.count(("InvalidArgument", 400)) >= 10


def test_restart_with_data_dir_in_the_middle_of_a_waiting_step(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    with Emulator(data_dir=data_dir) as first:
        queue = mns_queue(first, "fnf-demo")
        fnf = FnF(fnf_client(first.fnf_endpoint))
        fnf.create_flow("demo", REFERENCE_FLOW)
        fnf.start("demo", "survivor")
        body, _ = receive(queue)
        assert fnf.describe("demo", "survivor")["Status"] == "Running"
    with Emulator(data_dir=data_dir) as second:
        fnf = FnF(fnf_client(second.fnf_endpoint))
        assert fnf.describe("demo", "survivor")["Status"] == "Running"
        fnf.succeed(body["task_token"], {"after": "restart"})
        done = fnf.describe("demo", "survivor", wait=5)
        assert done["Status"] == "Succeeded" and json.loads(done["Output"]) == {"after": "restart"}
        with pytest.raises(ClientException) as info:
            fnf.succeed(body["task_token"], {})
        assert info.value.code == "TaskAlreadyCompleted"


def test_flow_crud_and_stop_execution(fnf: FnF, demo_queue: Queue) -> None:
    created = fnf.create_flow("crud", REFERENCE_FLOW)
    assert created["Type"] == "FDL" and created["ExecutionMode"] == "Standard" and created["Id"]
    updated = fnf.client.update_flow(
        fnf_models.UpdateFlowRequest(name="crud", description="changed", definition=REFERENCE_FLOW)
    ).body.to_map()
    assert updated["Description"] == "changed" and updated["Id"] == created["Id"]
    described = fnf.client.describe_flow(fnf_models.DescribeFlowRequest(name="crud")).body.to_map()
    assert described["Definition"] == REFERENCE_FLOW
    fnf.create_flow("crud-2", REFERENCE_FLOW)
    page = fnf.client.list_flows(fnf_models.ListFlowsRequest(limit=1)).body.to_map()
    assert [f["Name"] for f in page["Flows"]] == ["crud"] and page["NextToken"] == "crud-2"
    page = fnf.client.list_flows(
        fnf_models.ListFlowsRequest(limit=1, next_token=page["NextToken"])
    ).body.to_map()
    assert [f["Name"] for f in page["Flows"]] == ["crud-2"] and not page.get("NextToken")

    fnf.start("crud", "to-stop")
    body, handle = receive(demo_queue)
    stopped = fnf.client.stop_execution(
        fnf_models.StopExecutionRequest(
            flow_name="crud", execution_name="to-stop", error="Manual", cause="test"
        )
    ).body.to_map()
    assert stopped["Status"] == "Stopped"
    with pytest.raises(ClientException) as info:
        fnf.client.stop_execution(fnf_models.StopExecutionRequest(flow_name="crud", execution_name="to-stop"))
    assert info.value.code == "ExecutionAlreadyCompleted"
    # The worker's report for a stopped execution: TaskAlreadyCompleted, so it deletes the message.
    with pytest.raises(ClientException) as info:
        fnf.succeed(body["task_token"], {})
    assert info.value.code == "TaskAlreadyCompleted"
    demo_queue.delete_message(handle)
    assert fnf.history("crud", "to-stop")[-1]["Type"] == "ExecutionStopped"

    fnf.client.delete_flow(fnf_models.DeleteFlowRequest(name="crud"))
    with pytest.raises(ClientException) as info:
        fnf.client.describe_flow(fnf_models.DescribeFlowRequest(name="crud"))
    assert (info.value.code, info.value.status_code) == ("FlowNotExists", 404)


def test_list_executions_filters_and_pages(fnf: FnF) -> None:
    fnf.create_flow("quick", "version: v1\ntype: flow\nsteps:\n  - {type: wait, name: w, duration: 30}\n")
    for name in ("a-1", "a-2", "b-1"):
        fnf.start("quick", name)
    fnf.client.stop_execution(fnf_models.StopExecutionRequest(flow_name="quick", execution_name="a-2"))

    def names(**kwargs: object) -> tuple[list[str], str | None]:
        body = fnf.client.list_executions(fnf_models.ListExecutionsRequest(flow_name="quick", **kwargs)).body
        return [e.name for e in body.executions], body.next_token

    assert names() == (["a-1", "a-2", "b-1"], None)
    assert names(status="Running") == (["a-1", "b-1"], None)
    assert names(execution_name_prefix="a-") == (["a-1", "a-2"], None)
    first, token = names(limit=2)
    assert first == ["a-1", "a-2"] and token
    assert names(limit=2, next_token=token) == (["b-1"], None)


def test_injected_fault_answers_in_the_service_wire_format(
    emulator: Emulator, fnf: FnF, demo_queue: Queue
) -> None:
    import urllib.request

    fnf.create_flow("demo", REFERENCE_FLOW)
    fnf.start("demo", "e1")
    body, handle = receive(demo_queue)
    rule = {
        "service": "fnf",
        "operation": "ReportTaskSucceeded",
        "status": 409,
        "code": "TaskInvalidState",
        "times": 1,
    }
    request = urllib.request.Request(
        emulator.fnf_endpoint + "/_emulator/faults", data=json.dumps(rule).encode(), method="POST"
    )
    urllib.request.urlopen(request).read()
    with pytest.raises(ClientException) as info:
        fnf.succeed(body["task_token"], {"try": 1})
    assert (info.value.code, info.value.status_code) == ("TaskInvalidState", 409)
    fnf.succeed(body["task_token"], {"try": 2})  # the retry goes through
    demo_queue.delete_message(handle)
    assert json.loads(fnf.describe("demo", "e1", wait=5)["Output"]) == {"try": 2}


@pytest.mark.parametrize(("token", "ok"), [("sts-token-1", True), ("stolen", False)])
def test_sts_security_token(token: str, ok: bool) -> None:
    from alibabacloud_fnf20190315.client import Client
    from alibabacloud_tea_openapi.models import Config

    with Emulator(sts_tokens={"sts-token-1": "emulator-access-key-id"}) as running:
        client = Client(
            Config(
                endpoint=running.fnf_endpoint.split("://", 1)[1],
                protocol="http",
                access_key_id="emulator-access-key-id",
                access_key_secret="emulator-access-key-secret",
                security_token=token,
                region_id="cn-hangzhou",
            )
        )
        if ok:
            assert client.list_flows(fnf_models.ListFlowsRequest()).body.flows == []
        else:
            with pytest.raises(ClientException) as info:
                client.list_flows(fnf_models.ListFlowsRequest())
            assert (info.value.code, info.value.status_code) == ("InvalidSecurityToken", 403)
