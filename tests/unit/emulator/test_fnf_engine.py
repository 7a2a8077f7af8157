"""The Serverless Workflow emulator's execution engine, with an in-memory stand-in for MNS.

The stand-in only records what the engine sends (pure logic); the real MNS emulator is used by
the integration tests.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from fnf_emulator.core import ServiceError
from fnf_emulator.fnf.engine import Engine, Execution
from fnf_emulator.fnf.fdl import parse_flow
from fnf_emulator.fnf.store import Store
from recording_mns import RecordingMNS

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def mns() -> RecordingMNS:
    return RecordingMNS(missing=("missing-queue",))


@pytest.fixture
def engine(mns: RecordingMNS) -> Iterator[Engine]:
    eng = Engine(Store(None), mns)
    yield eng
    eng.close()


def run(engine: Engine, definition: str, inp: dict[str, Any] | None = None, name: str = "e1") -> Execution:
    text = textwrap.dedent(definition)
    return engine.start("flow", text, parse_flow(text), name, json.dumps(inp or {}), None)


def finish(engine: Engine, ex: Execution, timeout: float = 10) -> Execution:
    engine.wait_until_done(ex, timeout)
    assert ex.status != "Running", "execution did not end"
    return ex


def output(ex: Execution) -> Any:
    return json.loads(ex.output or "null")


def history(ex: Execution) -> list[str]:
    return [e["Type"] for e in ex.events]


CALLBACK_TASK = """
  - type: task
    name: work
    resourceArn: acs:mns:::/queues/jobs/messages
    pattern: waitForCallback
    inputMappings:
      - target: task_token
        source: $context.task.token
      - target: job
        source: $input.job
    serviceParams:
      MessageBody: $
      Priority: 2
"""


def test_pass_steps_and_mappings(engine: Engine) -> None:
    ex = run(
        engine,
        """
        version: v1
        type: flow
        inputMappings:
          - {target: n, source: $input.number}
          - {target: flow, source: $context.flow.name}
        steps:
          - type: pass
            name: first
            outputMappings:
              - {target: doubled, source: $input.n}
              - {target: constant, source: [A, B]}
          - type: pass
            name: second
            inputMappings:
              - {target: seen, source: $local.doubled}
              - {target: execution, source: $context.execution.name}
            outputMappings:
              - {target: seen, source: $input.seen}
              - {target: execution, source: $input.execution}
        outputMappings:
          - {target: result, source: $local}
          - {target: flow, source: $input.flow}
        """,
        {"number": 21},
    )
    finish(engine, ex)
    assert ex.status == "Succeeded"
    assert output(ex) == {
        "result": {"doubled": 21, "constant": ["A", "B"], "seen": 21, "execution": "e1"},
        "flow": "flow",
    }
    assert history(ex)[0] == "ExecutionStarted" and history(ex)[-1] == "ExecutionSucceeded"
    assert [e["EventId"] for e in ex.events] == list(range(1, len(ex.events) + 1))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        # no goto after the chosen steps: the next sibling runs too
        ("ready", {"path": "ready", "skipped": True, "final": True}),
        ("failed", {"final": True}),
        ("other", {"path": "default", "final": True}),
    ],
)
def test_choice_steps_goto_and_default(engine: Engine, status: str, expected: dict[str, Any]) -> None:
    ex = run(
        engine,
        """
        version: v1
        type: flow
        steps:
          - type: choice
            name: mychoice
            choices:
              - condition: $.status == "ready"
                steps:
                  - type: pass
                    name: pass1
                    outputMappings: [{target: path, source: ready}]
              - condition: $.status == "failed"
                goto: final
            default:
              steps:
                - type: pass
                  name: pass2
                  outputMappings: [{target: path, source: default}]
              goto: final
          - type: pass
            name: skipped-by-goto
            outputMappings: [{target: skipped, source: true}]
          - type: pass
            name: final
            outputMappings: [{target: final, source: true}]
        """,
        {"status": status},
    )
    finish(engine, ex)
    assert ex.status == "Succeeded"
    assert output(ex) == expected


def test_parallel_local_is_the_array_of_branch_locals(engine: Engine) -> None:
    ex = run(
        engine,
        """
        version: v1
        type: flow
        steps:
          - type: parallel
            name: fanout
            branches:
              - steps:
                  - {type: pass, name: a, outputMappings: [{target: status, source: one}]}
              - steps:
                  - {type: wait, name: pause, duration: 0.05}
                  - {type: pass, name: b, outputMappings: [{target: status, source: two}]}
            outputMappings:
              - {target: statuses, source: "$local[*].status"}
        """,
    )
    finish(engine, ex)
    assert ex.status == "Succeeded"
    assert output(ex) == {"statuses": ["one", "two"]}
    assert history(ex).count("BranchEntered") == 2 and history(ex).count("BranchExited") == 2


def test_foreach_runs_every_item_with_index(engine: Engine) -> None:
    ex = run(
        engine,
        """
        version: v1
        type: flow
        steps:
          - type: foreach
            name: each
            iterationMapping: {collection: $.names, item: name, index: i}
            steps:
              - type: pass
                name: upper
                outputMappings:
                  - {target: name, source: $input.name}
                  - {target: position, source: $input.i}
            outputMappings:
              - {target: names, source: "$local[*].name"}
              - {target: positions, source: "$local[*].position"}
        """,
        {"names": ["a", "b", "c"]},
    )
    finish(engine, ex)
    assert output(ex) == {"names": ["a", "b", "c"], "positions": [0, 1, 2]}
    assert history(ex).count("IterationEntered") == 3


def test_foreach_over_a_non_array_fails_with_a_clear_cause(engine: Engine) -> None:
    ex = run(
        engine,
        """
        version: v1
        type: flow
        steps:
          - type: foreach
            name: each
            iterationMapping: {collection: $.names, item: name}
            steps: [{type: pass, name: p}]
        """,
        {"names": "abc"},
    )
    finish(engine, ex)
    assert ex.status == "Failed"
    assert ex.error == "FnF.InvalidCollection" and "each" in (ex.cause or "")


def test_request_response_task_sends_mapped_input_and_gets_message_id(
    engine: Engine, mns: RecordingMNS
) -> None:
    ex = run(
        engine,
        """
        version: v1
        type: flow
        steps:
          - type: task
            name: notify
            resourceArn: acs:mns:::/queues/events/messages
            inputMappings: [{target: order, source: $input.order}]
            serviceParams: {MessageBody: $, Priority: 3, DelaySeconds: 0}
        """,
        {"order": 7},
    )
    finish(engine, ex)
    assert mns.sent == [{"queue": "events", "body": '{"order": 7}', "priority": 3, "delay": 0}]
    assert output(ex) == {"MessageId": "MSG1"}


def test_callback_task_resumes_on_report_and_second_report_is_rejected(
    engine: Engine, mns: RecordingMNS
) -> None:
    ex = run(engine, "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK, {"job": "j1"})
    token = mns.token(0)
    assert json.loads(mns.sent[0]["body"])["job"] == "j1"
    assert mns.sent[0]["priority"] == 2
    assert ex.status == "Running"
    event_id = engine.report(token, output={"done": True})
    finish(engine, ex)
    assert ex.status == "Succeeded" and output(ex) == {"done": True}
    assert ex.events[event_id - 1]["Type"] == "TaskSucceeded"
    with pytest.raises(ServiceError) as info:
        engine.report(token, output={})
    assert (info.value.status, info.value.code) == (400, "TaskAlreadyCompleted")


def test_reported_failure_caught_by_catch_with_error_mappings(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(
        engine,
        "version: v1\ntype: flow\nsteps:"
        + CALLBACK_TASK
        + """
    errorMappings:
      - {target: why, source: $local.cause}
      - {target: what, source: $local.error}
    catch:
      - errors: [Other.Error]
        goto: unreachable
      - errors: [AirflowDagFailed]
        goto: recover
  - {type: pass, name: unreachable, outputMappings: [{target: wrong, source: true}]}
  - {type: pass, name: recover, outputMappings: [{target: recovered, source: $input.why}]}
""",
    )
    engine.report(mns.token(0), error="AirflowDagFailed", cause="dag run failed")
    finish(engine, ex)
    assert ex.status == "Succeeded"
    assert output(ex) == {"why": "dag run failed", "what": "AirflowDagFailed", "recovered": "dag run failed"}
    assert "StepFailed" in history(ex)


def test_uncaught_reported_failure_fails_the_execution(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(engine, "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK)
    engine.report(mns.token(0), error="Boom", cause="it broke")
    finish(engine, ex)
    assert (ex.status, ex.error, ex.cause) == ("Failed", "Boom", "it broke")


def test_retry_after_reported_failure_sends_a_new_token(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(
        engine,
        "version: v1\ntype: flow\nsteps:"
        + CALLBACK_TASK
        + """
    retry:
      - errors: [FnF.ALL]
        intervalSeconds: 0.05
        maxAttempts: 1
""",
    )
    first = mns.token(0)
    engine.report(first, error="Flaky", cause="try again")
    second = mns.token(1)
    assert second != first
    with pytest.raises(ServiceError) as info:
        engine.report(first, output={})
    assert info.value.code == "TaskAlreadyCompleted"
    engine.report(second, output={"attempt": 2})
    finish(engine, ex)
    assert ex.status == "Succeeded" and output(ex) == {"attempt": 2}
    assert history(ex).count("TaskScheduled") == 2


def test_retries_run_out_then_the_error_stands(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(
        engine,
        "version: v1\ntype: flow\nsteps:"
        + CALLBACK_TASK
        + "    retry: [{errors: [Flaky], intervalSeconds: 0.01, maxAttempts: 2, multiplier: 1}]\n",
    )
    for i in range(3):
        engine.report(mns.token(i), error="Flaky", cause=f"attempt {i + 1}")
    finish(engine, ex)
    assert (ex.status, ex.error, ex.cause) == ("Failed", "Flaky", "attempt 3")
    assert len(mns.sent) == 3


def test_callback_timeout_fails_with_task_timeout(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(engine, "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK + "    timeoutSeconds: 0.2\n")
    token = mns.token(0)
    finish(engine, ex)
    assert (ex.status, ex.error) == ("Failed", "FnF.TaskTimeout")
    assert "TaskTimedOut" in history(ex)
    with pytest.raises(ServiceError) as info:
        engine.report(token, output={})
    assert info.value.code == "TaskAlreadyCompleted"


def test_flow_timeout_ends_timed_out(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(engine, "version: v1\ntype: flow\ntimeoutSeconds: 0.2\nsteps:" + CALLBACK_TASK)
    finish(engine, ex)
    assert ex.status == "TimedOut"
    assert history(ex)[-1] == "ExecutionTimedOut"


def test_fail_and_succeed_steps_end_early(engine: Engine) -> None:
    failed = run(
        engine,
        "version: v1\ntype: flow\nsteps:\n  - {type: fail, name: stop, error: Bad.Input, cause: no items}\n"
        "  - {type: pass, name: never}\n",
        name="f",
    )
    succeeded = run(
        engine,
        "version: v1\ntype: flow\nsteps:\n  - {type: pass, name: p, outputMappings: [{target: a, source: 1}]}\n"
        "  - {type: succeed, name: done}\n  - {type: fail, name: never}\n",
        name="s",
    )
    finish(engine, failed)
    finish(engine, succeeded)
    assert (failed.status, failed.error, failed.cause) == ("Failed", "Bad.Input", "no items")
    assert (succeeded.status, output(succeeded)) == ("Succeeded", {"a": 1})


def test_send_to_a_missing_queue_fails_the_step(engine: Engine) -> None:
    ex = run(
        engine,
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n"
        "    resourceArn: acs:mns:::/queues/missing-queue/messages\n    serviceParams: {MessageBody: $, Priority: 1}\n",
    )
    finish(engine, ex)
    assert (ex.status, ex.error) == ("Failed", "MNS.QueueNotExist")
    assert "TaskSubmitFailed" in history(ex)


def test_oversized_output_fails_the_execution(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(engine, "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK)
    engine.report(mns.token(0), output={"blob": "x" * 40_000})
    finish(engine, ex)
    assert (ex.status, ex.error) == ("Failed", "FnF.DataSizeLimitExceeded")


@pytest.mark.parametrize("token", ["garbage!", "djEjZmxvdyNlMSM1I2FiYw=="])
def test_unknown_or_forged_tokens_are_invalid_argument(engine: Engine, mns: RecordingMNS, token: str) -> None:
    run(engine, "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK)
    mns.token(0)
    with pytest.raises(ServiceError) as info:
        engine.report(token, output={})
    assert (info.value.status, info.value.code) == (400, "InvalidArgument")


def test_stop_cancels_a_waiting_step(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(engine, "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK)
    token = mns.token(0)
    engine.stop(ex, "Manual", "operator stopped it")
    assert (ex.status, ex.error) == ("Stopped", "Manual")
    with pytest.raises(ServiceError) as info:
        engine.report(token, output={})
    assert info.value.code == "TaskAlreadyCompleted"


def test_waiting_step_survives_a_restart(tmp_path: Any, mns: RecordingMNS) -> None:
    first = Engine(Store(str(tmp_path)), mns)
    run(
        first,
        "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK + "  - {type: wait, name: nap, duration: 0.1}\n",
    )
    token = mns.token(0)
    first.close()
    second = Engine(Store(str(tmp_path)), mns)
    try:
        again = second.executions[("flow", "e1")]
        assert again.status == "Running"
        second.report(token, output={"after": "restart"})
        finish(second, again)
        assert again.status == "Succeeded" and output(again) == {"after": "restart"}
        assert [e["EventId"] for e in again.events] == list(range(1, len(again.events) + 1))
    finally:
        second.close()


def test_timers_are_rearmed_after_a_restart(tmp_path: Any, mns: RecordingMNS) -> None:
    first = Engine(Store(str(tmp_path)), mns)
    run(first, "version: v1\ntype: flow\nsteps:" + CALLBACK_TASK + "    timeoutSeconds: 0.3\n")
    mns.token(0)
    first.close()
    second = Engine(Store(str(tmp_path)), mns)
    try:
        again = second.executions[("flow", "e1")]
        finish(second, again)
        assert (again.status, again.error) == ("Failed", "FnF.TaskTimeout")
    finally:
        second.close()


def test_event_limit_fails_the_execution(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from fnf_emulator import limits

    monkeypatch.setattr(limits, "FNF_MAX_EVENTS_PER_EXECUTION", 20)
    steps = "".join(f"  - {{type: pass, name: p{i}}}\n" for i in range(10))
    ex = run(engine, "version: v1\ntype: flow\nsteps:\n" + steps)
    finish(engine, ex)
    assert (ex.status, ex.error) == ("Failed", "FnF.EventLimitExceeded")
    assert ex.events[-1]["Type"] == "ExecutionFailed"


def test_a_long_flow_runs_without_deep_recursion(engine: Engine) -> None:
    steps = "".join(
        f"  - {{type: pass, name: p{i}, outputMappings: [{{target: last, source: {i}}}]}}\n"
        for i in range(1500)
    )
    ex = run(engine, "version: v1\ntype: flow\nsteps:\n" + steps)
    finish(engine, ex)
    assert (ex.status, output(ex)) == ("Succeeded", {"last": 1499})
