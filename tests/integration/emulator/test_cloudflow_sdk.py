"""CloudFlow (``Type: StateMachine``) flows on the emulator through the unmodified SDKs
(alibabacloud-fnf20190315, aliyun-mns-sdk): callback tasks, errors, timeouts, Express runs, API fields."""

from __future__ import annotations

import json
import textwrap
import uuid

import pytest
from alibabacloud_fnf20190315 import models as fnf_models
from alibabacloud_tea_openapi.exceptions import ClientException
from fnf_emulator.server import Emulator
from fnf_emulator_helpers import FnF, fnf_client, mns_queue
from mns.mns_exception import MNSServerException
from mns.queue import Queue

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NIGHTLY = """\
Type: StateMachine
Name: nightly-partition
SpecVersion: v1
StartAt: Crunch
States:
  - Type: Task
    Name: Crunch
    Action: MNS:SendMessage
    TaskMode: WaitForCustomCallback
    Timeout: 3600
    Parameters:
      resourceArn: acs:mns:cn-hangzhou:123456789:/queues/airflow-jobs/messages
      message:
        partition.$: $Input.partition
        TaskToken.$: $Context.Current.TaskToken
      priority: 8
    OutputConstructor:
      rows.$: $Output.rows
    Catch:
      - Errors: [FnF.ALL]
        Next: Failed
    Next: Done
  - Type: Succeed
    Name: Done
  - Type: Fail
    Name: Failed
    Code: Crunch.Failed
    Detail: the partition job failed
"""
"""The reference's CloudFlow callback step that hands a partition to Airflow."""


def state_machine(states: str, name: str = "f") -> str:
    body = textwrap.indent(textwrap.dedent(states).strip("\n"), "  ")
    return f"Type: StateMachine\nName: {name}\nSpecVersion: v1\nStartAt: A\nStates:\n{body}\n"


@pytest.fixture
def fnf(emulator: Emulator) -> FnF:
    return FnF(fnf_client(emulator.fnf_endpoint))


@pytest.fixture
def jobs(emulator: Emulator) -> Queue:
    return mns_queue(emulator, "airflow-jobs")


def receive(queue: Queue) -> tuple[dict, str]:
    message = queue.receive_message(5)
    return json.loads(message.message_body), message.receipt_handle


def test_callback_task_runs_to_succeeded(fnf: FnF, jobs: Queue) -> None:
    created = fnf.create_flow("nightly-partition", NIGHTLY)
    assert created["ExecutionMode"] == "Standard"
    assert fnf.describe_flow("nightly-partition")["ExecutionMode"] == "Standard"
    started = fnf.start("nightly-partition", "run-1", {"partition": "2026-12-01"}, qualifier="v1")
    assert started["Status"] == "Running"

    body, handle = receive(jobs)
    assert body["partition"] == "2026-12-01" and set(body) == {"partition", "TaskToken"}
    fnf.succeed(body["TaskToken"], {"rows": 1200, "ignored": True})
    jobs.delete_message(handle)

    done = fnf.describe("nightly-partition", "run-1", wait=5)
    assert done["Status"] == "Succeeded" and json.loads(done["Output"]) == {"rows": 1200}
    types = [e["Type"] for e in fnf.history("nightly-partition", "run-1")]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.index("TaskSubmitted") < types.index("TaskSucceeded") < types.index("StepSucceeded")
    with pytest.raises(ClientException) as info:
        fnf.succeed(body["TaskToken"], {"rows": 1})
    assert (info.value.code, info.value.status_code) == ("TaskAlreadyCompleted", 400)


def test_report_task_failed_is_caught_and_the_fail_state_ends_it(fnf: FnF, jobs: Queue) -> None:
    fnf.create_flow("nightly-partition", NIGHTLY)
    fnf.start("nightly-partition", "run-1", {"partition": "p"})
    body, handle = receive(jobs)
    fnf.fail(body["TaskToken"], "Airflow.TaskFailed", "the dag run failed")
    jobs.delete_message(handle)
    done = fnf.describe("nightly-partition", "run-1", wait=5)
    assert done["Status"] == "Failed"
    events = fnf.history("nightly-partition", "run-1")
    assert json.loads(events[-1]["EventDetail"]) == {
        "error": "Crunch.Failed",
        "cause": "the partition job failed",
    }
    assert [e["StepName"] for e in events if e["Type"] == "StepEntered"] == ["Crunch", "Failed"]


CAUGHT = state_machine(
    """
    - Type: Task
      Name: A
      Action: MNS:SendMessage
      TaskMode: WaitForCustomCallback
      Parameters:
        resourceArn: acs:mns:::/queues/airflow-jobs/messages
        message:
          TaskToken.$: $Context.Current.TaskToken
          attempt.$: $Context.Current.RetryCount
      Retry:
        - Errors: [Airflow.Transient]
          MaxAttempts: 1
          IntervalSeconds: 1
      Catch:
        - Errors: [FnF.ALL]
          Next: Handle
          OutputConstructor:
            code.$: $Context.Current.Error.Code
            detail.$: $Context.Current.Error.Detail
      Next: Done
    - {Type: Succeed, Name: Done}
    - {Type: Pass, Name: Handle, End: true}
    """
)


def test_retry_then_catch_sees_the_reported_error(fnf: FnF, jobs: Queue) -> None:
    fnf.create_flow("caught", CAUGHT)
    fnf.start("caught", "e1")
    first, handle = receive(jobs)
    assert first["attempt"] == 0
    fnf.fail(first["TaskToken"], "Airflow.Transient", "worker restarted")
    jobs.delete_message(handle)
    second, handle = receive(jobs)
    assert second["attempt"] == 1 and second["TaskToken"] != first["TaskToken"]
    fnf.fail(second["TaskToken"], "Airflow.TaskFailed", "task extract failed")
    jobs.delete_message(handle)
    done = fnf.describe("caught", "e1", wait=5)
    assert done["Status"] == "Succeeded"
    assert json.loads(done["Output"]) == {"code": "Airflow.TaskFailed", "detail": "task extract failed"}


def test_task_timeout_fails_the_task(fnf: FnF, jobs: Queue) -> None:
    fnf.create_flow("slow", NIGHTLY.replace("Timeout: 3600", "Timeout: 1").replace("FnF.ALL", "Other.Error"))
    fnf.start("slow", "e1")
    body, _ = receive(jobs)
    done = fnf.describe("slow", "e1", wait=10)
    assert done["Status"] == "Failed"
    events = fnf.history("slow", "e1")
    assert "TaskTimedOut" in [e["Type"] for e in events]
    assert json.loads(events[-1]["EventDetail"])["error"] == "FnF.TaskTimeout"
    with pytest.raises(ClientException) as info:
        fnf.succeed(body["TaskToken"], {})
    assert info.value.code == "TaskAlreadyCompleted"


def test_request_complete_task_outputs_the_message_id(fnf: FnF, jobs: Queue) -> None:
    fnf.create_flow(
        "notify",
        state_machine(
            """
            - Type: Task
              Name: A
              Action: MNS:SendMessage
              Parameters:
                resourceArn: acs:mns:/queues/airflow-jobs/messages
                message.$: format("partition {} is ready", $Input.partition)
                priority.$: intAdd(1, 2)
              End: true
            """
        ).replace("acs:mns:/queues", "acs:mns:::/queues"),
    )
    fnf.start("notify", "e1", {"partition": "p7"})
    message = jobs.receive_message(5)
    assert (message.message_body, message.priority) == ("partition p7 is ready", 3)
    done = fnf.describe("notify", "e1", wait=5)
    assert json.loads(done["Output"])["MessageId"] == message.message_id


def test_report_output_is_held_to_cloudflow_state_limit(fnf: FnF, jobs: Queue) -> None:
    fnf.create_flow("big", NIGHTLY.replace("rows.$: $Output.rows", "blob.$: $Output.blob"))
    fnf.start("big", "e1")
    body, _ = receive(jobs)
    with pytest.raises(ClientException) as info:
        fnf.succeed(body["TaskToken"], {"blob": "x" * 70_000})
    assert (info.value.code, info.value.status_code) == ("EntityTooLarge", 400)
    fnf.succeed(body["TaskToken"], {"blob": "x" * 50_000})  # over the previous service's 32 KiB
    assert fnf.describe("big", "e1", wait=5)["Status"] == "Succeeded"


EVERYTHING = state_machine(
    """
    - Type: Pass
      Name: A
      InputConstructor:
        literal: $Input.name
        name.$: $Input.name
        words.$: split($Input.csv, ",")
      GlobalConstructor:
        seen.$: length($Input.words)
      Next: B
    - Type: Pass
      Name: B
      OutputConstructor:
        greeting.$: format("hello {}", $Input.name)
        count.$: length($Input.words)
        hasB.$: arrayContains($Input.words, "b")
        unique.$: arrayUnique($Input.words)
        isName.$: regexMatchString("^[a-z]+$", $Input.name)
        first.$: get($Input.words, 0)
        next.$: intAdd($Global.seen, 1)
        dice.$: randomInt(1, 7)
        state.$: $Context.Current.Name
        execution.$: $Context.Execution.Input.name
        same.$: $Output.literal
      End: true
    """
)


def test_express_sync_execution_with_every_built_in(fnf: FnF) -> None:
    fnf.create_flow("express", EVERYTHING, execution_mode="Express")
    assert fnf.describe_flow("express")["ExecutionMode"] == "Express"
    result = fnf.start_sync("express", "sync-1", {"name": "tom", "csv": "a,b,a"})
    assert result["Status"] == "Succeeded"
    name, _, suffix = result["Name"].partition(":")
    assert name == "sync-1" and uuid.UUID(suffix)
    out = json.loads(result["Output"])
    dice = out.pop("dice")
    assert 1 <= dice < 7
    assert out == {
        "greeting": "hello tom",
        "count": 3,
        "hasB": True,
        "unique": ["a", "b"],
        "isName": True,
        "first": "a",
        "next": 4,
        "state": "B",
        "execution": "tom",
        "same": "$Input.name",
    }
    assert fnf.describe("express", result["Name"])["Status"] == "Succeeded"
    assert fnf.start_sync("express", "sync-1", {"name": "x", "csv": ""})["Name"] != result["Name"]


def test_express_sync_execution_that_fails_reports_error_code(fnf: FnF) -> None:
    fnf.create_flow(
        "express-fail",
        state_machine("- {Type: Fail, Name: A, Code: Bad.Input, Detail: the input was refused}"),
        execution_mode="Express",
    )
    result = fnf.start_sync("express-fail")
    assert (result["Status"], result["ErrorCode"], result["ErrorMessage"]) == (
        "Failed",
        "Bad.Input",
        "the input was refused",
    )


@pytest.mark.parametrize(
    ("definition", "mode", "message"),
    [
        (
            NIGHTLY,
            "Express",
            "state 'Crunch': field 'TaskMode' WaitForCustomCallback needs ExecutionMode Standard",
        ),
        (
            state_machine("- {Type: Wait, Name: A, Seconds: 30, End: true}"),
            "Express",
            "state 'A': field 'Seconds'",
        ),
        (
            NIGHTLY.replace("Next: Done", "Next: Dne"),
            "Standard",
            "state 'Crunch': field 'Next' names no state",
        ),
        (
            state_machine("- {Type: Choice, Name: A, Branches: [{Condition: $Input.x, Next: A}]}"),
            "Standard",
            "state 'A': field 'Default' is required",
        ),
        (state_machine("- {Type: Loop, Name: A}"), "Standard", "state 'A': field 'Type' must be one of"),
        (
            state_machine("- {Type: Pass, Name: A, End: true, OutputConstructor: {x.$: 1}}"),
            "Standard",
            "state 'A': OutputConstructor.x.$: a key ending in .$ holds an expression",
        ),
        (
            state_machine("- {Type: Pass, Name: A, End: true, OutputConstructor: {x.$: '$Input.a &&'}}"),
            "Standard",
            "state 'A': OutputConstructor.x.$: expression '$Input.a &&' ends too early",
        ),
        ("Type: StateMachine\nStates: [", "Standard", "not valid YAML"),
    ],
)
def test_invalid_definitions_answer_400_naming_state_and_field(
    fnf: FnF, definition: str, mode: str, message: str
) -> None:
    with pytest.raises(ClientException) as info:
        fnf.create_flow("bad", definition, execution_mode=mode)
    assert (info.value.code, info.value.status_code) == ("InvalidArgument", 400)
    assert message in info.value.message
    fnf.create_flow("good", NIGHTLY, execution_mode=mode if mode == "Standard" else "Standard")
    if mode == "Standard":  # UpdateFlow validates the same way, and keeps the flow as it was
        with pytest.raises(ClientException) as info:
            fnf.client.update_flow(fnf_models.UpdateFlowRequest(name="good", definition=definition))
        assert message in info.value.message
    assert fnf.describe_flow("good")["Definition"] == NIGHTLY


def test_start_calls_match_the_execution_mode(fnf: FnF) -> None:
    fnf.create_flow("standard", NIGHTLY)
    fnf.create_flow("express", EVERYTHING, execution_mode="Express")
    with pytest.raises(ClientException) as info:
        fnf.start_sync("standard", "e1")
    assert (info.value.code, info.value.status_code) == ("InvalidArgument", 400)
    with pytest.raises(ClientException) as info:
        fnf.start("express", "e1")
    assert (info.value.code, info.value.status_code) == ("InvalidArgument", 400)


def test_run_time_failures_fail_only_their_execution(fnf: FnF, jobs: Queue) -> None:
    fnf.create_flow("nightly-partition", NIGHTLY)
    fnf.create_flow(
        "fc",
        state_machine(
            "- {Type: Task, Name: A, Action: FC:InvokeFunction, Parameters: {functionName: f}, End: true}"
        ),
    )
    fnf.create_flow(
        "map",
        state_machine(
            "- {Type: Map, Name: A, ItemsPath: $Input.items, End: true, "
            "Processor: {StartAt: P, States: [{Type: Pass, Name: P, End: true}]}}"
        ),
    )
    fnf.start("nightly-partition", "keeps-running", {"partition": "p"})
    fnf.start("fc", "e1")
    fnf.start("map", "e1", {"items": "not an array"})
    fc = fnf.describe("fc", "e1", wait=5)
    events = fnf.history("fc", "e1")
    assert fc["Status"] == "Failed"
    assert json.loads(events[-1]["EventDetail"])["error"] == "Emulator.ActionNotSupported"
    assert "does not run action FC:InvokeFunction" in json.loads(events[-1]["EventDetail"])["cause"]
    assert fnf.describe("map", "e1", wait=5)["Status"] == "Failed"
    assert json.loads(fnf.history("map", "e1")[-1]["EventDetail"])["error"] == "FnF.InvalidCollection"
    assert fnf.describe("nightly-partition", "keeps-running")["Status"] == "Running"
    body, _ = receive(jobs)
    fnf.succeed(body["TaskToken"], {"rows": 1})
    assert fnf.describe("nightly-partition", "keeps-running", wait=5)["Status"] == "Succeeded"


def test_list_executions_filters(fnf: FnF) -> None:
    fnf.create_flow("waits", state_machine("- {Type: Wait, Name: A, Seconds: 60, End: true}"))
    fnf.start("waits", "a-1", qualifier="prod")
    fnf.start("waits", "a-2")
    fnf.start("waits", "b-1", qualifier="prod")
    fnf.client.stop_execution(fnf_models.StopExecutionRequest(flow_name="waits", execution_name="b-1"))

    def listed(**kwargs: object) -> list[dict]:
        request = fnf_models.ListExecutionsRequest(flow_name="waits", **kwargs)
        return fnf.client.list_executions(request).body.to_map()["Executions"]

    assert [e["Name"] for e in listed(qualifier="prod")] == ["a-1", "b-1"]
    assert [e["Name"] for e in listed(qualifier="prod", status="Running")] == ["a-1"]
    assert [e["Name"] for e in listed(execution_name_prefix="a-")] == ["a-1", "a-2"]
    assert listed(map_run_name="no-such-run") == []
    slim = listed(metadata_only=True)
    assert [e["Name"] for e in slim] == ["a-1", "a-2", "b-1"]
    assert all("Input" not in e and "FlowDefinition" not in e for e in slim)
    assert "FlowDefinition" in listed()[0]


def test_mns_message_is_delayed(fnf: FnF, jobs: Queue) -> None:
    fnf.create_flow(
        "delayed",
        state_machine(
            """
            - Type: Task
              Name: A
              Action: MNS:SendMessage
              Parameters:
                resourceArn: acs:mns:cn-hangzhou:123:/queues/airflow-jobs/messages
                message: {hello: world}
                delaySeconds: 30
              End: true
            """
        ),
    )
    fnf.start("delayed", "e1")
    assert fnf.describe("delayed", "e1", wait=5)["Status"] == "Succeeded"
    with pytest.raises(MNSServerException):
        jobs.receive_message(0)
