"""Poison messages through the real triggerer (DAGs: ``tests/e2e/dags/e2e_poison.py``).

- A body that is not JSON, and a JSON body without a task token, start no run: on
  ``e2e-poison`` they are moved to the dead-letter queue ``e2e-poison-dlq``, on
  ``e2e-poison-delete`` they are deleted. The watcher's trigger keeps running: a good message
  sent afterwards is processed.
- A broken JSON body whose task token can still be read: the task is reported failed as
  ``Airflow.PoisonMessage`` and the flow's ``catch`` takes over, instead of the step waiting for
  its timeout.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.e2e.dags import e2e_poison
from tools.local_stack.stack import AirflowAPIError, LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

# Task_1 sends {"task_token", "key": "value"} to the queue; a poison report is caught.
FLOW = """
version: v1
type: flow
steps:
  - type: task
    name: Task_1
    resourceArn: acs:mns:::/queues/{queue}/messages
    pattern: waitForCallback
    timeoutSeconds: 300
    inputMappings:
      - target: task_token
        source: $context.task.token
      - target: key
        source: value
    serviceParams:
      MessageBody: $
      Priority: 1
    errorMappings:
      - target: error
        source: $local.error
      - target: cause
        source: $local.cause
    catch:
      - errors:
          - Airflow.PoisonMessage
        goto: Quarantine
  - type: pass
    name: Done
    end: true
  - type: pass
    name: Quarantine
    inputMappings:
      - target: error
        source: $local.error
      - target: cause
        source: $local.cause
    outputMappings:
      - target: status
        source: quarantined
      - target: error
        source: $input.error
      - target: cause
        source: $input.cause
"""


def deploy(flows: Any, queue: str) -> str:
    flow = f"{queue}-{uuid.uuid4().hex[:6]}"
    flows.fnf.create_or_update_flow(flow, FLOW.format(queue=queue))
    return flow


def no_run(stack: LocalStack, queue: str, message_id: str) -> bool:
    try:
        stack.api.dag_run(e2e_poison.WORKER_DAG_ID, f"mns__{queue}__{message_id}")
    except AirflowAPIError as error:
        return error.status == 404
    return False


def dead_letters(flows: Any, marker: str, expected: int, timeout: float = 30.0) -> list[str]:
    """Bodies containing ``marker`` taken (and deleted) from the dead-letter queue."""
    found: list[str] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        for message in flows.mns.receive_messages(e2e_poison.DLQ, 16, wait_seconds=1):
            if marker in message.body:
                found.append(message.body)
                flows.mns.delete_message(e2e_poison.DLQ, message.receipt_handle)
    return found


@pytest.mark.parametrize(
    "queue", [e2e_poison.DEAD_LETTER_QUEUE, e2e_poison.DELETE_QUEUE], ids=["dead_letter", "delete"]
)
def test_unusable_messages_follow_the_policy_and_the_trigger_keeps_running(
    stack: LocalStack, flows: Any, queue: str
) -> None:
    marker = uuid.uuid4().hex
    bodies = [f"not JSON {marker}", json.dumps({"key": "value", "marker": marker})]
    poison_ids = [flows.mns.send_message(queue, body) for body in bodies]

    # The trigger took both off the queue (moved or deleted), without starting any run.
    assert flows.wait_queue_empty(queue, timeout=60) == 0
    assert all(no_run(stack, queue, mid) for mid in poison_ids)
    if queue == e2e_poison.DEAD_LETTER_QUEUE:
        assert sorted(dead_letters(flows, marker, len(bodies))) == sorted(bodies)

    # The watcher still works: a good message sent afterwards is processed.
    flow = deploy(flows, queue)
    name = f"good-{marker[:12]}"
    flows.fnf.start_execution(flow, {}, execution_name=name)
    execution = flows.wait(flow, name)

    assert execution["Status"] == "Succeeded", flows.path(flow, name)
    assert flows.path(flow, name) == "Start -> Task_1 -> Done -> End"
    assert json.loads(execution["Output"]) == {"handled": True}
    (message_id,) = flows.message_ids(flow, name)
    run = stack.api.wait_for_dag_run(e2e_poison.WORKER_DAG_ID, f"mns__{queue}__{message_id}", timeout=60)
    assert run["state"] == "success"
    assert flows.wait_queue_empty(queue) == 0
    assert all(no_run(stack, queue, mid) for mid in poison_ids)


def test_broken_json_with_a_readable_token_is_reported_for_the_flow_to_catch(
    stack: LocalStack, flows: Any
) -> None:
    # A real task message (token included), taken from a queue no DAG watches...
    flow = deploy(flows, e2e_poison.HOLD_QUEUE)
    name = f"broken-{uuid.uuid4().hex[:12]}"
    flows.fnf.start_execution(flow, {}, execution_name=name)
    deadline = time.monotonic() + 30
    received: list[Any] = []
    while not received and time.monotonic() < deadline:
        received = flows.mns.receive_messages(e2e_poison.HOLD_QUEUE, 1, wait_seconds=5)
    (held,) = received
    flows.mns.delete_message(e2e_poison.HOLD_QUEUE, held.receipt_handle)
    token = json.loads(held.body)["task_token"]
    # ...cut short (the closing brace is lost) and put on the watched queue.
    broken = held.body.rstrip()[:-1]
    queue = e2e_poison.DEAD_LETTER_QUEUE
    broken_id = flows.mns.send_message(queue, broken)

    execution = flows.wait(flow, name)

    # The flow was told at once, with an error its catch matches.
    assert execution["Status"] == "Succeeded", flows.path(flow, name)
    assert flows.path(flow, name) == "Start -> Task_1 -> Quarantine -> End"
    output = json.loads(execution["Output"])
    assert output["status"] == "quarantined" and output["error"] == "Airflow.PoisonMessage"
    assert broken_id in output["cause"] and "not valid JSON" in output["cause"]
    # The message itself followed the queue's policy: moved to the dead-letter queue, no run.
    assert flows.wait_queue_empty(queue) == 0
    assert dead_letters(flows, token, 1) == [broken]
    assert no_run(stack, queue, broken_id)
