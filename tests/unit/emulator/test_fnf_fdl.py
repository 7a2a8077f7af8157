"""FDL parsing and validation of the Serverless Workflow emulator."""

from __future__ import annotations

import textwrap

import pytest
from fnf_emulator.fnf.fdl import FDLError, parse_flow

from tests.support import REFERENCE_FLOW


def test_reference_flow_parses() -> None:
    flow = parse_flow(REFERENCE_FLOW)
    (step,) = flow.steps.values()
    assert (step.name, step.type, step.queue_name, step.pattern) == (
        "Task_1",
        "task",
        "fnf-demo",
        "waitForCallback",
    )
    assert flow.lists["root"] == [step.id]


def test_v1beta1_and_nested_steps_parse() -> None:
    flow = parse_flow(
        textwrap.dedent(
            """
            version: v1beta1
            type: flow
            timeoutSeconds: 60
            steps:
              - type: choice
                name: c
                choices:
                  - condition: $.x > 1
                    steps:
                      - {type: pass, name: big}
                  - condition: $.x == 1
                    goto: done
                default:
                  steps:
                    - {type: pass, name: small}
              - type: parallel
                name: p
                branches:
                  - steps: [{type: pass, name: a}]
                  - steps: [{type: wait, name: w, duration: 1}]
              - type: foreach
                name: f
                iterationMapping: {collection: $.items, item: item, index: i}
                steps: [{type: pass, name: each}]
              - {type: pass, name: done}
            """
        )
    )
    names = sorted(s.name for s in flow.steps.values())
    assert names == ["a", "big", "c", "done", "each", "f", "p", "small", "w"]
    assert flow.timeout_seconds == 60


BAD = [
    ("steps: [", "not valid YAML"),
    ("- a\n- b", "must be a mapping"),
    ("version: v2\ntype: flow\nsteps: []", "field 'version'"),
    ("version: v1\ntype: flo\nsteps: []", "field 'type' must be 'flow'"),
    ("version: v1\ntype: flow", "field 'steps' is required"),
    (
        "version: v1\ntype: flow\nsteps:\n  - {type: magic, name: s1}",
        "step 's1': field 'type' must be one of",
    ),
    ("version: v1\ntype: flow\nsteps:\n  - {type: pass}", "field 'name' is required"),
    (
        "version: v1\ntype: flow\nsteps:\n  - {type: pass, name: a}\n  - {type: pass, name: a}",
        "duplicate step name",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - {type: pass, name: a, inputMapping: []}",
        "step 'a': unknown field",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: pass\n    name: a\n    inputMappings: [{target: x, source: $input..y}]",
        "step 'a': inputMappings[0].source",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: fc\n    resourceArn: acs:fc:::services/s/functions/f",
        "step 'fc': field 'resourceArn'",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n    resourceArn: acs:mns:::/topics/t/messages\n"
        "    serviceParams: {MessageBody: $, Priority: 1}",
        "MNS topics are not emulated",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n    resourceArn: acs:mns:::/queues/q/messages\n"
        "    serviceParams: {MessageBody: $}",
        "step 't': field 'serviceParams.Priority' is required",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n    resourceArn: acs:mns:::/queues/q/messages\n"
        "    serviceParams: {MessageBody: $, Priority: 17}",
        "serviceParams.Priority' must be an integer 1..16",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n    resourceArn: acs:mns:::/queues/q/messages\n"
        "    serviceParams: {MessageBody: $, Priority: 1}\n    catch: [{errors: [FnF.ALL], goto: nowhere}]",
        "step 't': goto 'nowhere' is not a step at the same level",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: choice\n    name: c\n    choices: [{condition: '$.a ==', goto: c}]",
        "step 'c': choices[0].condition",
    ),
    ("version: v1\ntype: flow\nsteps:\n  - {type: wait, name: w}", "step 'w': a wait step needs exactly one"),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: foreach\n    name: f\n    iterationMapping: {collection: $.items}\n"
        "    steps: []",
        "step 'f': iterationMapping.item is required",
    ),
    (
        "version: v1\ntype: flow\nsteps:\n  - type: task\n    name: t\n    resourceArn: acs:mns:::/queues/q/messages\n"
        "    serviceParams: {MessageBody: $, Priority: 1}\n    retry: [{errors: [], maxAttempts: 2}]",
        "step 't': retry[0].errors must be a non-empty list",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_invalid_definitions_name_step_and_field(text: str, message: str) -> None:
    with pytest.raises(FDLError, match=None) as info:
        parse_flow(text)
    assert message in str(info.value)
