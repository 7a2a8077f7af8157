"""Bad input sweep: hostile and broken task messages mixed with good ones, through MNSMessageTrigger.

Real flow executions put good task messages on a queue; the test adds a catalogue of bad ones
(not JSON, no token, a forged token, a 64 KiB body, deeply nested JSON, control characters,
Jinja-looking text, a base64 body where raw text is expected). The trigger is driven as the
triggerer drives it (rebuilt from ``serialize()`` for every event); each event's messages are
worked on as a worker run would (report, then delete; a failed report keeps the message).

What a user would notice, checked at the end: every good execution Succeeded with its input
carried verbatim (a Jinja-looking string is never rendered), every bad message is in the
dead-letter queue byte for byte, the work queue is empty, no bad message was handed out except
the forged token (it cannot be told apart before the service rejects it), and the trigger kept
firing events through it all.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import pytest
from fnf_emulator.server import Emulator

from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.hooks.fnf import ServerlessWorkflowHook
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.limits import MNS_MAX_BATCH_SIZE, MNS_MAX_MESSAGE_SIZE
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger
from tests.support import callback_flow_definition, set_emulator_connections

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

MNS_CONN_ID = "mns_sweep"
FNF_CONN_ID = "fnf_sweep"
JINJA = "{{ var.value.secret }}"
CONTROL = "tab\there, cr\rthere, nul \u0000, bell \u0007, del \u007f, ls \u2028, bom \ufeff"
"""Control characters inside JSON strings (escaped there, as JSON requires)."""
CONTROL_RAW = "tab\there, nel \u0085, del \u007f, ls \u2028, bom \ufeff, not JSON"
"""A raw body with the control characters an XML message body can carry (MNS speaks XML: NUL and
most C0 characters cannot be sent at all, and a carriage return arrives as a line feed)."""

FLOW = callback_flow_definition("{queue}")
"""Template (``.format(queue=...)``) of a flow whose task step sends ``{task_token, key}``."""


@pytest.fixture
def hooks(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> tuple[MNSHook, ServerlessWorkflowHook]:
    set_emulator_connections(monkeypatch, emulator, mns_conn_id=MNS_CONN_ID, fnf_conn_id=FNF_CONN_ID)
    return MNSHook(MNS_CONN_ID), ServerlessWorkflowHook(FNF_CONN_ID)


def _forged_token(flow_name: str) -> str:
    return base64.b64encode(f"v1#{flow_name}#e-forged#2#{'A' * 32}".encode()).decode()


def _real_token_elsewhere(mns: MNSHook, fnf: ServerlessWorkflowHook, suffix: str) -> tuple[str, str]:
    """A real waiting execution whose task message is taken off a staging queue: (execution, body)."""
    staging = f"sweep-staging-{suffix}"
    mns.create_queue(staging)
    flow = f"sweep-staging-{suffix}"
    fnf.create_or_update_flow(flow, FLOW.format(queue=staging))
    execution = f"e-b64-{suffix}"
    fnf.start_execution(flow, {"key": "base64"}, execution)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for message in mns.receive_messages(staging, 1, wait_seconds=1):
            assert message.receipt_handle is not None
            mns.delete_message(staging, message.receipt_handle)
            return execution, message.body
    raise AssertionError(f"the staging flow {flow} sent no task message")


def _bad_bodies(flow_name: str, base64_of_real: str) -> dict[str, str]:
    nesting = (MNS_MAX_MESSAGE_SIZE - 64) // 6
    nested = '{"a":' * nesting + "1" + "}" * nesting
    assert len(nested.encode()) <= MNS_MAX_MESSAGE_SIZE
    return {
        "not JSON": "this is not JSON { at all",
        "JSON without a token": json.dumps({"key": "value", "order": 7}),
        "a JSON array": json.dumps([{"task_token": "in-an-array"}]),
        "64 KiB body": "x" * MNS_MAX_MESSAGE_SIZE,
        "deeply nested JSON": nested,
        "control characters, not JSON": CONTROL_RAW,
        "control characters in JSON, no token": json.dumps({"key": CONTROL}),
        "Jinja-looking, no token": json.dumps(
            {"key": JINJA, "task": "{% for x in range(9**9) %}{% endfor %}"}
        ),
        "base64 body where raw is expected": base64_of_real,
        "forged token": json.dumps({"task_token": _forged_token(flow_name), "key": "value"}),
    }


def _drive_trigger(
    trigger: MNSMessageTrigger, mns: MNSHook, fnf: ServerlessWorkflowHook, done: Any, limit: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rebuild the trigger and take its next event, as the triggerer does, until ``done()``; work on
    each message as a worker run would. Returns every message handed out and the report errors."""
    handed_out: list[dict[str, Any]] = []
    report_errors: list[str] = []
    _, kwargs = trigger.serialize()
    deadline = time.monotonic() + limit

    async def next_event() -> Any:
        run = MNSMessageTrigger(**json.loads(json.dumps(kwargs))).run()
        try:
            return await asyncio.wait_for(run.__anext__(), timeout=4)
        except asyncio.TimeoutError:
            return None
        finally:
            await run.aclose()

    while not done() and time.monotonic() < deadline:  # what did not settle shows in the checks
        event = asyncio.run(next_event())
        if event is None:
            continue
        assert event.payload["status"] == "success"
        json.dumps(event.payload)  # what the triggerer stores must be JSON
        for message in event.payload["messages"]:
            handed_out.append(message)
            try:
                fnf.report_task_succeeded(message["task_token"], {"key": message["body"]["key"]})
            except FnFProviderError as error:
                report_errors.append(type(error).__name__)
                continue  # not reported: the message is kept, as the report operator keeps it
            mns.delete_message(message["queue_name"], message["receipt_handle"])
    return handed_out, report_errors


def test_hostile_messages_get_their_policy_and_good_ones_complete(
    hooks: tuple[MNSHook, ServerlessWorkflowHook],
):
    mns, fnf = hooks
    suffix = uuid.uuid4().hex[:8]
    queue, dead_letters = f"sweep-{suffix}", f"sweep-{suffix}-dlq"
    mns.create_queue(queue)
    mns.create_queue(dead_letters)
    flow = f"sweep-{suffix}"
    fnf.create_or_update_flow(flow, FLOW.format(queue=queue))
    b64_execution, real_body = _real_token_elsewhere(mns, fnf, suffix)
    bad = _bad_bodies(flow, base64.b64encode(real_body.encode()).decode())

    # Good and bad interleaved on the queue.
    good_inputs = {f"e-good-{i}-{suffix}": f"value {i}" for i in range(6)}
    good_inputs[f"e-jinja-{suffix}"] = JINJA
    good_inputs[f"e-control-{suffix}"] = CONTROL
    pending_bad = list(bad.values())
    for execution, value in good_inputs.items():
        fnf.start_execution(flow, {"key": value}, execution)
        if pending_bad:
            mns.send_message(queue, pending_bad.pop(0))
    for body in pending_bad:
        mns.send_message(queue, body)

    trigger = MNSMessageTrigger(
        queue_name=queue,
        mns_conn_id=MNS_CONN_ID,
        fnf_conn_id=FNF_CONN_ID,
        max_messages=MNS_MAX_BATCH_SIZE,
        wait_time_seconds=1,
        lease_seconds=3,
        max_receive_count=2,
        dead_letter_queue_name=dead_letters,
    )

    def settled() -> bool:
        attributes = mns.get_queue_attributes(queue)
        in_queue = (
            attributes["active_messages"] + attributes["inactive_messages"] + attributes["delay_messages"]
        )
        statuses = {fnf.describe_execution(flow, name)["Status"] for name in good_inputs}
        return in_queue == 0 and statuses == {"Succeeded"}

    handed_out, report_errors = _drive_trigger(trigger, mns, fnf, settled, limit=60)

    # Every good execution succeeded, its input carried verbatim: nothing was rendered or mangled.
    for execution, value in good_inputs.items():
        described = fnf.describe_execution(flow, execution)
        assert described["Status"] == "Succeeded", (execution, described)
        assert json.loads(described["Output"])["key"] == value

    # Only the forged token can pass for a good message; the service refused its report.
    bad_handed_out = {m["raw_body"] for m in handed_out if m.get("execution_name") not in good_inputs}
    assert bad_handed_out <= {bad["forged token"]}
    assert report_errors and all(e != "ServerlessWorkflowThrottledError" for e in report_errors)

    # Nothing is left on the work queue: every message was worked on or dead-lettered.
    attributes = mns.get_queue_attributes(queue)
    assert attributes["active_messages"] + attributes["inactive_messages"] == 0, attributes

    # Every bad message is in the dead-letter queue, byte for byte, once.
    dead: list[str] = []
    while True:
        batch = mns.receive_messages(dead_letters, MNS_MAX_BATCH_SIZE, wait_seconds=1)
        if not batch:
            break
        dead.extend(m.body for m in batch)
    missing = {name for name, body in bad.items() if body not in dead}
    assert not missing, f"not dead-lettered: {sorted(missing)}"
    assert sorted(dead) == sorted(bad.values())

    # A raw body with NUL cannot even enter the queue: the service refuses it, naming the queue.
    with pytest.raises(FnFProviderError, match=queue):
        mns.send_message(queue, "nul \u0000 and bell \u0007")

    # The execution whose message arrived base64-encoded was not reported as done by mistake.
    assert fnf.describe_execution(f"sweep-staging-{suffix}", b64_execution)["Status"] != "Succeeded"
