"""CloudFlow (``Type: StateMachine``) in the emulator: validation at CreateFlow and the engine's
data flow, with an in-memory stand-in for MNS (the SDK-level tests are in tests/integration)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from fnf_emulator.fnf.definitions import DefinitionError, parse_definition
from fnf_emulator.fnf.engine import Engine, Execution
from fnf_emulator.fnf.store import Store
from recording_mns import RecordingMNS

pytestmark = pytest.mark.timeout(30)

HEAD = "Type: StateMachine\nName: f\nSpecVersion: v1\n"


def machine(*states: str, start: str = "A") -> str:
    """A definition whose States are ``states`` (each a YAML list of states, indented as it likes)."""
    body = "\n".join(textwrap.dedent(part).strip("\n") for part in states)
    return HEAD + f"StartAt: {start}\nStates:\n" + textwrap.indent(body, "  ") + "\n"


@pytest.fixture
def mns() -> RecordingMNS:
    return RecordingMNS(missing=("missing-queue",))


@pytest.fixture
def engine(mns: RecordingMNS) -> Iterator[Engine]:
    eng = Engine(Store(None), mns)
    yield eng
    eng.close()


def run(engine: Engine, text: str, inp: dict[str, Any] | None = None, mode: str = "Standard") -> Execution:
    return engine.start(
        "flow",
        text,
        parse_definition(text, mode),
        "e1",
        json.dumps(inp or {}),
        None,
        role_arn="acs:ram::1:role/r",
        mode=mode,
    )


def finish(engine: Engine, ex: Execution, timeout: float = 10) -> Execution:
    engine.wait_until_done(ex, timeout)
    assert ex.status != "Running", "execution did not end"
    return ex


def output(ex: Execution) -> Any:
    return json.loads(ex.output or "null")


def callback(name: str = "A", nxt: str = "End: true", extra: str = "") -> str:
    """A WaitForCustomCallback task whose message carries ``job`` and the token (``extra``: more fields)."""
    more = textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ") + "\n" if extra else ""
    return (
        f"- Type: Task\n  Name: {name}\n  Action: MNS:SendMessage\n  TaskMode: WaitForCustomCallback\n"
        "  Parameters:\n    resourceArn: acs:mns:cn-hangzhou:123:/queues/jobs/messages\n"
        "    message:\n      job.$: $Input.job\n      TaskToken.$: $Context.Current.TaskToken\n"
        f"{more}  {nxt}\n"
    )


# ------------------------------------------------------------------------------------- front end
def test_shape_decides_the_language() -> None:
    assert parse_definition(machine("- {Type: Pass, Name: A, End: true}")).language == "cloudflow"
    fdl = "version: v1\ntype: flow\nsteps:\n  - {type: pass, name: a}\n"
    assert parse_definition(fdl).language == "fdl"


BAD = [
    ("{", "not valid YAML"),
    (HEAD + "StartAt: A\nStates: []", "field 'States' must be a non-empty list"),
    ("Type: StateMachine\nSpecVersion: v2\nStartAt: A\nStates: []", "field 'SpecVersion' must be one of v1"),
    (
        "Type: Statemachine\nSpecVersion: v1\nStartAt: A\nStates: [{Type: Pass, Name: A, End: true}]",
        "field 'Type' must be StateMachine",
    ),
    (machine("- {Type: Pass, Name: A, End: true}", start="B"), "field 'StartAt' names no state ('B')"),
    (
        machine("- {Type: Pass, Name: A, Next: Nowhere}"),
        "state 'A': field 'Next' names no state in its scope ('Nowhere')",
    ),
    (machine("- {Type: Pass, Name: A}"), "state 'A': field 'Next' (a state name) or 'End: true' is required"),
    (machine("- {Type: Pass, Name: A, Next: A, End: true}"), "state 'A': give either 'Next' or 'End: true'"),
    (
        machine("- {Type: Pass, Name: A, Next: B}\n- {Type: Pass, Name: B, Next: A}"),
        "loop with no way to an End",
    ),
    (machine("- {Type: Magic, Name: A}"), "state 'A': field 'Type' must be one of Pass, Task"),
    (machine("- {Type: Pass, Name: A, End: true, Nxt: B}"), "state 'A': unknown field(s) ['Nxt']"),
    (
        machine("- {Type: Pass, Name: A, End: true}\n- {Type: Pass, Name: A, End: true}"),
        "duplicate state name",
    ),
    (
        machine("- Type: Choice\n  Name: A\n  Branches: [{Condition: $Input.x == 1, Next: A}]"),
        "state 'A': field 'Default' is required",
    ),
    (
        machine(
            "- Type: Choice\n  Name: A\n  Branches: [{Condition: '$Input.x ==', Next: B}]\n  Default: B\n- {Type: Succeed, Name: B}"
        ),
        "state 'A': Branches[0].Condition: expression '$Input.x ==' ends too early",
    ),
    (
        machine("- Type: Pass\n  Name: A\n  End: true\n  InputConstructor: {x.$: 12}"),
        "state 'A': InputConstructor.x.$: a key ending in .$ holds an expression, not the literal 12",
    ),
    (
        machine("- Type: Pass\n  Name: A\n  End: true\n  InputConstructor: {x.$: $Output.y}"),
        "state 'A': InputConstructor: $Output exists only in an OutputConstructor",
    ),
    (
        machine("- Type: Pass\n  Name: A\n  End: true\n  OutputConstructor: {x.$: 'nope($Input)'}"),
        "unknown function 'nope'",
    ),
    (
        machine("- {Type: Wait, Name: A, Seconds: 301, End: true}"),
        "state 'A': field 'Seconds' (Standard mode) must be an integer 1..300",
    ),
    (machine("- {Type: Wait, Name: A, End: true}"), "needs exactly one of 'Seconds' or 'Seconds.$'"),
    (machine("- {Type: Fail, Name: A, Code: X}"), "state 'A': field 'Detail' is required"),
    (machine("- {Type: Task, Name: A, End: true}"), "state 'A': field 'Action' is required"),
    (
        machine("- {Type: Task, Name: A, Action: MNS:SendMessage, TaskMode: Later, End: true}"),
        "field 'TaskMode' must be one of",
    ),
    (
        machine("- {Type: Task, Name: A, Action: MNS:SendMessage, End: true}"),
        "state 'A': field 'Parameters' is required",
    ),
    (
        machine("- {Type: Task, Name: A, Action: MNS:SendMessage, End: true, Parameters: {message: hi}}"),
        "state 'A': field 'Parameters.resourceArn' is required",
    ),
    (
        machine(
            "- {Type: Task, Name: A, Action: MNS:SendMessage, End: true, Parameters: {resourceArn: 'acs:fc:::x', message: hi}}"
        ),
        "state 'A': field 'Parameters.resourceArn' must look like acs:mns:REGION:ACCOUNT:/queues/NAME/messages",
    ),
    (
        machine(
            "- {Type: Task, Name: A, Action: MNS:SendMessage, End: true, Parameters: {resourceArn: 'acs:mns:::/queues/q/messages', message: hi, priority: 17}}"
        ),
        "state 'A': field 'Parameters.priority' must be an integer 1..16",
    ),
    (
        machine(
            "- {Type: Task, Name: A, Action: MNS:SendMessage, End: true, Timeout: -1, Parameters: {resourceArn: 'acs:mns:::/queues/q/messages', message: hi}}"
        ),
        "state 'A': field 'Timeout' must be an integer 0..604800",
    ),
    (
        machine(
            "- {Type: Task, Name: A, Action: FC:InvokeFunction, End: true, Retry: [{Errors: [FnF.ALL], IntervalSeconds: 1}]}"
        ),
        "state 'A': Retry[0].MaxAttempts is required",
    ),
    (
        machine(
            "- {Type: Task, Name: A, Action: FC:InvokeFunction, End: true, Catch: [{Errors: [FnF.ALL], Next: Z}]}"
        ),
        "state 'A': field 'Catch[0].Next' names no state in its scope ('Z')",
    ),
    (
        machine(
            "- {Type: Map, Name: A, End: true, Processor: {StartAt: P, States: [{Type: Pass, Name: P, End: true}]}}"
        ),
        "state 'A': field 'ItemsPath' is required",
    ),
    (
        machine(
            "- {Type: Map, Name: A, End: true, ItemsPath: $Input.x, MaxConcurrency: 0, Processor: {StartAt: P, States: [{Type: Pass, Name: P, End: true}]}}"
        ),
        "state 'A': field 'MaxConcurrency' must be an integer 1..40",
    ),
    (
        machine(
            "- {Type: Map, Name: A, End: true, ItemsPath: $Input.x, ItemReader: {}, Processor: {StartAt: P, States: []}}"
        ),
        "a distributed Map (ItemReader) is not emulated",
    ),
    (
        machine(
            "- {Type: Parallel, Name: A, End: true, Branches: [{StartAt: P, States: [{Type: Pass, Name: P, Next: Q}]}]}"
        ),
        "state 'P': field 'Next' names no state in its scope ('Q')",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_invalid_definitions_name_state_and_field(text: str, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_definition(text)
    assert message in str(info.value)


def test_express_flows_take_request_complete_tasks_and_short_waits_only() -> None:
    with pytest.raises(
        DefinitionError,
        match="state 'A': field 'TaskMode' WaitForCustomCallback needs ExecutionMode Standard",
    ):
        parse_definition(machine(callback()), "Express")
    with pytest.raises(DefinitionError, match=r"field 'Seconds' \(Express mode\) must be an integer 1..20"):
        parse_definition(machine("- {Type: Wait, Name: A, Seconds: 21, End: true}"), "Express")
    parse_definition(machine("- {Type: Wait, Name: A, Seconds: 21, End: true}"), "Standard")


def test_other_actions_are_accepted_by_create_flow() -> None:
    flow = parse_definition(
        machine("- {Type: Task, Name: A, Action: FC:InvokeFunction, End: true, Parameters: {x: 1}}")
    )
    assert flow.steps["root/0"].action == "FC:InvokeFunction"


# ------------------------------------------------------------------------------------- engine
def test_pass_input_constructor_replaces_the_input(engine: Engine) -> None:
    ex = finish(
        engine,
        run(engine, machine("- {Type: Pass, Name: A, End: true, InputConstructor: {FieldA: 123}}"), {"x": 1}),
    )
    assert (ex.status, output(ex)) == ("Succeeded", {"FieldA": 123})


def test_choice_routes_and_states_pass_outputs_along(engine: Engine) -> None:
    text = machine(
        """
        - Type: Choice
          Name: A
          Branches:
            - Condition: $Input.n > 1 && $Input.kind == `batch`
              Next: Big
            - Condition: '"x" in $Input.tags || $Input.n == 0'
              Next: Small
          Default: Other
        - {Type: Pass, Name: Big, End: true, OutputConstructor: {route: big, n.$: $Input.n}}
        - {Type: Pass, Name: Small, End: true, OutputConstructor: {route: small}}
        - {Type: Pass, Name: Other, End: true, OutputConstructor: {route: other}}
        """
    )
    cases = [
        ({"n": 2, "kind": "batch", "tags": []}, {"route": "big", "n": 2}),
        ({"n": 1, "tags": ["x"]}, {"route": "small"}),
        ({"n": 1, "tags": []}, {"route": "other"}),
    ]
    for i, (inp, want) in enumerate(cases):
        ex = engine.start("flow", text, parse_definition(text), f"e{i}", json.dumps(inp), None)
        assert output(finish(engine, ex)) == want


def test_parallel_output_is_keyed_by_branch_and_map_results_are_items(engine: Engine) -> None:
    text = machine(
        """
        - Type: Parallel
          Name: A
          Branches:
            - StartAt: P
              States: [{Type: Pass, Name: P, End: true, OutputConstructor: {n.$: length($Input.items)}}]
            - StartAt: M
              States:
                - Type: Map
                  Name: M
                  ItemsPath: $Input.items
                  MaxConcuccency: 2
                  Processor:
                    StartAt: Double
                    States:
                      - Type: Pass
                        Name: Double
                        End: true
                        OutputConstructor:
                          v.$: intAdd($Input, $Input)
                  End: true
          End: true
        """
    )
    ex = finish(engine, run(engine, text, {"items": [1, 2, 3]}))
    assert output(ex) == {"Branch0": {"n": 3}, "Branch1": {"Items": [{"v": 2}, {"v": 4}, {"v": 6}]}}


def test_succeed_ends_its_scope_only_and_fail_ends_the_execution(engine: Engine) -> None:
    text = machine(
        """
        - Type: Parallel
          Name: A
          Next: B
          Branches:
            - StartAt: S
              States:
                - {Type: Succeed, Name: S, OutputConstructor: {early: true}}
                - {Type: Pass, Name: Never, End: true}
        - {Type: Pass, Name: B, Next: F}
        - {Type: Fail, Name: F, Code: My.Error, Detail: it had to fail}
        """
    )
    ex = finish(engine, run(engine, text))
    assert (ex.status, ex.error, ex.cause) == ("Failed", "My.Error", "it had to fail")
    names = [e["StepName"] for e in ex.events if e["Type"] == "StepEntered"]
    assert names == ["A", "S", "B", "F"]
    entered_b = next(e for e in ex.events if e["Type"] == "StepEntered" and e["StepName"] == "B")
    assert json.loads(entered_b["EventDetail"])["input"] == {"Branch0": {"early": True}}


def test_wait_seconds_from_an_expression(engine: Engine) -> None:
    ex = finish(
        engine, run(engine, machine("- {Type: Wait, Name: A, Seconds.$: $Input.s, End: true}"), {"s": 1})
    )
    assert ex.status == "Succeeded"
    assert ex.stopped is not None and ex.stopped - ex.started >= 1
    bad = finish(
        engine,
        engine.start(
            "flow",
            *(lambda t: (t, parse_definition(t)))(
                machine("- {Type: Wait, Name: A, Seconds.$: $Input.s, End: true}")
            ),
            "e2",
            '{"s": 0}',
            None,
        ),
    )
    assert (bad.status, bad.error) == ("Failed", "FnF.ExpressionEvaluationFailed")
    assert "not an integer 1..300" in (bad.cause or "")


def test_callback_task_token_output_globals_and_context(engine: Engine, mns: RecordingMNS) -> None:
    text = machine(
        callback(
            nxt="Next: B",
            extra="""
            OutputConstructor:
              rows.$: $Output.rows
              step.$: $Context.Current.Name
              role.$: $Context.Execution.RoleArn
            GlobalConstructor:
              raw.$: $Output.rows
            """,
        ),
        """
        - Type: Pass
          Name: B
          End: true
          OutputConstructor:
            rows.$: $Input.rows
            fromGlobal.$: $Global.raw
            execution.$: $Context.Execution.Name
            job.$: $Context.Execution.Input.job
        """,
    )
    ex = run(engine, text, {"job": "j1"})
    body = mns.body(0)
    assert body["job"] == "j1" and body["TaskToken"]
    engine.report(body["TaskToken"], output={"rows": 42})
    finish(engine, ex)
    assert output(ex) == {"rows": 42, "fromGlobal": 42, "execution": "e1", "job": "j1"}
    crunch = next(e for e in ex.events if e["Type"] == "StepSucceeded" and e["StepName"] == "A")
    assert json.loads(crunch["EventDetail"])["output"] == {
        "rows": 42,
        "step": "A",
        "role": "acs:ram::1:role/r",
    }


def test_report_failed_is_retried_then_caught_with_error_in_context(
    engine: Engine, mns: RecordingMNS
) -> None:
    text = machine(
        callback(
            nxt="Next: Done",
            extra="""
            Retry:
              - Errors: [Transient]
                MaxAttempts: 1
                IntervalSeconds: 0
            Catch:
              - Errors: [FnF.ALL]
                Next: Handle
                OutputConstructor:
                  code.$: $Context.Current.Error.Code
                  detail.$: $Context.Current.Error.Detail
                  retries.$: $Context.Current.RetryCount
                  job.$: $Input.job
            """,
        ),
        """
        - {Type: Succeed, Name: Done}
        - {Type: Pass, Name: Handle, End: true}
        """,
    )
    ex = run(engine, text, {"job": "j"})
    engine.report(mns.body(0)["TaskToken"], error="Transient", cause="try again")
    second = mns.body(1)
    assert second["TaskToken"] != mns.body(0)["TaskToken"]
    engine.report(second["TaskToken"], error="Airflow.TaskFailed", cause="the dag run failed")
    finish(engine, ex)
    assert output(ex) == {
        "code": "Airflow.TaskFailed",
        "detail": "the dag run failed",
        "retries": 1,
        "job": "j",
    }


def test_retry_backoff_and_an_uncaught_failure(engine: Engine, mns: RecordingMNS) -> None:
    text = machine(
        callback(
            extra="Retry: [{Errors: [FnF.ALL], MaxAttempts: 2, IntervalSeconds: 0.1, BackoffRate: 2, MaxBackoffSeconds: 0.15}]"
        )
    )
    ex = run(engine, text)
    for i in range(3):
        engine.report(mns.body(i)["TaskToken"], error="Boom", cause=f"attempt {i + 1}")
    finish(engine, ex)
    assert (ex.status, ex.error, ex.cause) == ("Failed", "Boom", "attempt 3")


def test_task_timeout_and_timeout_from_an_expression(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(
        engine,
        machine(
            callback(extra="Timeout.$: $Input.limit\nCatch: [{Errors: [FnF.TaskTimeout], Next: Late}]"),
            "- {Type: Pass, Name: Late, End: true, InputConstructor: {late: true}}",
        ),
        {"limit": 1},
    )
    mns.body(0)
    finish(engine, ex)
    assert (ex.status, output(ex)) == ("Succeeded", {"late": True})
    assert "TaskTimedOut" in [e["Type"] for e in ex.events]


def test_request_complete_output_is_the_message_id(engine: Engine, mns: RecordingMNS) -> None:
    text = machine(
        """
        - Type: Task
          Name: A
          Action: MNS:SendMessage
          Parameters:
            resourceArn: acs:mns:::/queues/jobs/messages
            message: [1, 2]
            priority.$: intAdd($Input.p, 1)
            delaySeconds: 5
          End: true
        """
    )
    ex = finish(engine, run(engine, text, {"p": 2}))
    assert mns.sent == [{"queue": "jobs", "body": "[1, 2]", "priority": 3, "delay": 5}]
    assert output(ex)["MessageId"] == "MSG1" and len(output(ex)["MessageBodyMD5"]) == 32


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("{Type: Task, Name: A, Action: FC:InvokeFunction, End: true}", "Emulator.ActionNotSupported"),
        (
            "{Type: Task, Name: A, Action: MNS:SendMessage, End: true, Parameters: {resourceArn: 'acs:mns:::/topics/t/messages', message: x}}",
            "Emulator.ActionNotSupported",
        ),
        (
            "{Type: Task, Name: A, Action: MNS:SendMessage, End: true, Parameters: {resourceArn: 'acs:mns:::/queues/missing-queue/messages', message: x}}",
            "MNS.QueueNotExist",
        ),
        (
            "{Type: Task, Name: A, Action: MNS:SendMessage, End: true, Parameters: {resourceArn: 'acs:mns:::/queues/q/messages', message: x, priority.$: $Input.p}}",
            "FnF.InvalidParameters",
        ),
        (
            "{Type: Map, Name: A, End: true, ItemsPath: $Input.p, Processor: {StartAt: P, States: [{Type: Pass, Name: P, End: true}]}}",
            "FnF.InvalidCollection",
        ),
        (
            "{Type: Pass, Name: A, End: true, OutputConstructor: {x.$: 'intAdd($Input.p, 1)'}}",
            "FnF.ExpressionEvaluationFailed",
        ),
    ],
)
def test_run_time_failures_have_error_names(engine: Engine, state: str, error: str) -> None:
    ex = finish(engine, run(engine, machine("- " + state), {"p": "not a number"}))
    assert (ex.status, ex.error) == ("Failed", error)
    assert ex.cause


def test_unsupported_action_can_be_caught(engine: Engine) -> None:
    text = machine(
        "- {Type: Task, Name: A, Action: HTTP:Request, Next: B, Catch: [{Errors: [Emulator.ActionNotSupported], Next: C}]}",
        "- {Type: Succeed, Name: B}",
        "- {Type: Pass, Name: C, End: true, InputConstructor: {caught: true}}",
    )
    ex = finish(engine, run(engine, text))
    assert (ex.status, output(ex)) == ("Succeeded", {"caught": True})


def test_retry_reruns_a_failing_parallel(engine: Engine, mns: RecordingMNS) -> None:
    branch = "StartAt: W\nStates:\n" + textwrap.indent(callback("W"), "  ")
    parallel = (
        "- Type: Parallel\n  Name: A\n  End: true\n"
        "  Retry: [{Errors: [Flaky], MaxAttempts: 1, IntervalSeconds: 0}]\n"
        "  Branches:\n" + textwrap.indent("- " + textwrap.indent(branch, "  ").lstrip(), "    ")
    )
    ex = run(engine, machine(parallel), {"job": "x"})
    engine.report(mns.body(0)["TaskToken"], error="Flaky", cause="once")
    engine.report(mns.body(1)["TaskToken"], output={"ok": 1})
    finish(engine, ex)
    assert (ex.status, output(ex)) == ("Succeeded", {"Branch0": {"ok": 1}})


def test_oversized_state_data_fails_the_execution(engine: Engine, mns: RecordingMNS) -> None:
    ex = run(engine, machine(callback()))
    engine.report(mns.body(0)["TaskToken"], output={"blob": "x" * 50_000})  # under 64 KiB: fine
    assert output(finish(engine, ex)) == {"blob": "x" * 50_000}
    big = finish(
        engine,
        engine.start(
            "flow",
            (
                t := machine(
                    "- {Type: Pass, Name: A, End: true, OutputConstructor: {b.$: $Input.b, c.$: $Input.b}}"
                )
            ),
            parse_definition(t),
            "e2",
            json.dumps({"b": "x" * 40_000}),
            None,
        ),
    )
    assert (big.status, big.error) == ("Failed", "FnF.DataSizeLimitExceeded")
    assert engine.report_limit(mns.body(0)["TaskToken"]) == 64 * 1024


def test_express_execution_times_out_after_five_minutes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fnf_emulator import limits

    monkeypatch.setattr(limits, "CLOUDFLOW_EXPRESS_MAX_SECONDS", 0.2)
    ex = finish(
        engine, run(engine, machine("- {Type: Wait, Name: A, Seconds: 5, End: true}"), mode="Express")
    )
    assert (ex.status, ex.error) == ("TimedOut", "FnF.Timeout")


def test_a_waiting_cloudflow_task_survives_a_restart(tmp_path: Any, mns: RecordingMNS) -> None:
    text = machine(
        callback(nxt="Next: B", extra="GlobalConstructor: {g.$: $Output.v}"),
        "- {Type: Pass, Name: B, End: true, OutputConstructor: {g.$: $Global.g, role.$: $Context.Execution.RoleArn}}",
    )
    first = Engine(Store(str(tmp_path)), mns)
    run(first, text)
    token = mns.body(0)["TaskToken"]
    first.close()
    second = Engine(Store(str(tmp_path)), mns)
    try:
        again = second.executions[("flow", "e1")]
        second.report(token, output={"v": "after restart"})
        finish(second, again)
        assert output(again) == {"g": "after restart", "role": "acs:ram::1:role/r"}
    finally:
        second.close()
