"""Hostile messages on the real stack (DAGs: ``tests/e2e/dags/e2e_hostile.py``): every message
settles, good ones complete.

Into one watched queue go the task messages of a running flow and, between them, bodies of every
kind a queue can carry: not JSON, JSON without a token, a forged token, a template-looking token,
a body at the 64 KiB limit, deeply nested JSON, XML special characters and non-ASCII text, a
CloudFlow-shaped body. The trigger runs with its defaults (no ``max_receive_count``) and a 60 s
lease. What a user would check:

- every good execution Succeeded with its note carried back verbatim (no template rendered);
- every hostile body is in the dead-letter queue once, byte for byte, within one lease period
  of its first receipt (printed per kind): a body nobody can use at once by the receiver, a
  token the service rejects as soon as the report operator learns it, never by a receive count;
- a hostile message with a token got a worker run that shows failed; the others got none;
- good executions started after the hostile messages complete (the trigger kept running), the
  queue is empty, and no task token (good, forged or template-looking) is in any Airflow log.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_fnf.limits import MNS_MAX_MESSAGE_SIZE
from airflow_provider_fnf.messages import extract_task_token, parse_body, run_id_for
from tests.e2e.dags import e2e_hostile
from tests.support import callback_flow_definition
from tools.local_stack.stack import AirflowAPIError, LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

QUEUE = e2e_hostile.QUEUE
LEASE = e2e_hostile.LEASE_SECONDS
TEMPLATE_TOKEN = "{{ dag_run.conf }}"
FLOW = callback_flow_definition(QUEUE, step="Task_1", input_key="note")
"""Task_1 sends ``{"task_token", "note"}`` to the watched queue and waits; the worker reports the note."""
GOOD_NOTES = ["plain", "{{ params }} {% raw %}x{% endraw %}", "<![CDATA[&]]> é 漢字 🎉"]
RECEIVED = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z).*?Received \d+ message\(s\) from MNS queue (\S+): ([0-9A-F, ]+)"
)


def forged(flow: str, kind: str) -> str:
    return base64.b64encode(f"v1#{flow}#forged-{kind}#2#{'A' * 32}".encode()).decode()


def hostile_bodies(flow: str, marker: str) -> dict[str, str]:
    nesting = 10_000  # far deeper than any JSON parser's recursion allows, within 64 KiB
    at_limit = json.dumps({"task_token": forged(flow, "64k"), "marker": marker, "pad": ""})
    at_limit = at_limit.replace(
        '"pad": ""', '"pad": "' + "x" * (MNS_MAX_MESSAGE_SIZE - len(at_limit.encode())) + '"'
    )
    bodies = {
        "not JSON": f"not JSON {marker} {{ at all <&>",
        "JSON without a token": json.dumps({"key": "value", "marker": marker}),
        "forged token": json.dumps({"task_token": forged(flow, "plain"), "marker": marker}),
        "template-looking token": json.dumps({"task_token": TEMPLATE_TOKEN, "marker": marker}),
        "64 KiB body": at_limit,
        "deeply nested JSON": '{"marker": "'
        + marker
        + '", "a":'
        + '{"a":' * nesting
        + "1"
        + "}" * (nesting + 1),
        "XML specials, non-ASCII": json.dumps(
            {
                "task_token": forged(flow, "xml"),
                "marker": marker,
                "note": "</MessageBody>&amp; <&>\"' é ü 漢字 🎉",
            },
            ensure_ascii=False,
        ),
        "CloudFlow-shaped": json.dumps({"TaskToken": forged(flow, "cloudflow"), "Input": {"marker": marker}}),
    }
    assert len(bodies["64 KiB body"].encode()) == MNS_MAX_MESSAGE_SIZE
    assert all(len(b.encode()) <= MNS_MAX_MESSAGE_SIZE for b in bodies.values())
    return bodies


def carries_token(body: str) -> bool:
    """Whether the provider, with its default token keys, finds a token to report in ``body``."""
    parsed = parse_body(body)
    return isinstance(parsed, dict) and extract_task_token(parsed) is not None


def first_receipts(stack: LocalStack, message_ids: set[str]) -> dict[str, float]:
    """When each message was first received, from the triggerer's log lines (epoch seconds)."""
    seen: dict[str, float] = {}
    for path in stack.work_dir.glob("airflow-*.log"):
        for match in RECEIVED.finditer(path.read_text(encoding="utf-8", errors="replace")):
            if match.group(2) != QUEUE:
                continue
            when = datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()
            for mid in (m.strip() for m in match.group(3).split(",")):
                if mid in message_ids:
                    seen[mid] = min(when, seen.get(mid, when))
    return seen


def dead_letters(flows: Any, expected: set[str], timeout: float) -> dict[str, list[float]]:
    """The dead-letter queue's copies of the ``expected`` bodies: body -> [enqueued at, epoch
    seconds], taken off the queue; gathered until every body was seen, then a little longer, so
    that a second copy would show."""
    found: dict[str, list[float]] = {}
    deadline = time.monotonic() + timeout
    quiet_until = None
    while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
        for message in flows.mns.receive_messages(e2e_hostile.DLQ, 16, wait_seconds=1):
            flows.mns.delete_message(e2e_hostile.DLQ, message.receipt_handle)
            found.setdefault(message.body, []).append(message.enqueue_time / 1000)
        if quiet_until is None and set(found) >= expected:
            quiet_until = time.monotonic() + 5
    return found


def final_run_state(stack: LocalStack, run_id: str, timeout: float = 60.0) -> str | None:
    """The worker run's state once it ended (its task fails only after it settled the message),
    or None when there is no such run."""
    try:
        return stack.api.wait_for_dag_run(e2e_hostile.WORKER_DAG_ID, run_id, timeout=timeout)["state"]
    except AirflowAPIError as error:
        if error.status == 404:
            return None
        raise


def airflow_log_text(stack: LocalStack) -> str:
    task_logs = (p for p in (stack.airflow_home / "logs").rglob("*") if p.is_file())
    paths = [*stack.work_dir.glob("airflow-*.log"), *task_logs]
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in paths)


def test_hostile_messages_settle_within_a_lease_and_good_ones_complete(stack: LocalStack, flows: Any) -> None:
    flow = f"e2e-hostile-{uuid.uuid4().hex[:6]}"
    flows.fnf.create_or_update_flow(flow, FLOW)
    marker = uuid.uuid4().hex  # in every hostile body of this test, told apart by the body itself
    bodies = hostile_bodies(flow, marker)

    # Good messages from a running flow, hostile ones between them, more good ones after.
    good: dict[str, str] = {}
    sent: dict[str, str] = {}  # kind -> message id

    def start_good(note: str) -> None:
        name = f"good-{uuid.uuid4().hex[:10]}"
        flows.fnf.start_execution(flow, {"note": note}, execution_name=name)
        good[name] = note

    for index, (kind, body) in enumerate(bodies.items()):
        if index < len(GOOD_NOTES):
            start_good(GOOD_NOTES[index])
        sent[kind] = flows.mns.send_message(QUEUE, body)
    for note in GOOD_NOTES:
        start_good(note)

    # Every good execution completes, its note back verbatim: nothing was rendered on the way.
    for name, note in good.items():
        execution = flows.wait(flow, name, timeout=240)
        assert execution["Status"] == "Succeeded", (name, flows.path(flow, name))
        assert json.loads(execution["Output"]) == {"note": note}

    # Every hostile body is in the dead-letter queue, once and byte for byte...
    found = dead_letters(flows, set(bodies.values()), timeout=3 * LEASE)
    for kind, body in bodies.items():
        assert len(found.get(body, [])) == 1, (
            f"{kind}: {len(found.get(body, []))} copies in the dead-letter queue"
        )
    ours = {body for body in found if marker in body}
    assert ours == set(bodies.values()), "a dead letter that is not one of the bodies sent"
    assert flows.wait_queue_empty(QUEUE) == 0

    # ... within one lease period of its first receipt.
    received = first_receipts(stack, set(sent.values()))
    timings = {}
    for kind, body in bodies.items():
        assert sent[kind] in received, f"{kind}: no receipt of message {sent[kind]} in the triggerer's log"
        timings[kind] = found[body][0] - received[sent[kind]]
    print("\nfirst receipt -> settled (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))
    slow = {kind: round(t, 1) for kind, t in timings.items() if t >= LEASE}
    assert not slow, f"settled later than one lease ({LEASE} s) after the first receipt: {slow}"

    # A hostile message with a token got a run that shows the failure; the others got none.
    for kind, body in bodies.items():
        state = final_run_state(stack, run_id_for(QUEUE, sent[kind]))
        if carries_token(body):
            assert state == "failed", f"{kind}: worker run is {state}"
        else:
            assert state is None, f"{kind}: a worker run was started ({state})"

    # No task token, good or hostile, in any log of Airflow.
    good_tokens = {
        stack.api.dag_run(e2e_hostile.WORKER_DAG_ID, run_id_for(QUEUE, mid))["conf"]["task_token"]
        for name in good
        for mid in flows.message_ids(flow, name)
    }
    hostile_tokens = {extract_task_token(parse_body(b)) for b in bodies.values() if carries_token(b)}
    text = airflow_log_text(stack)
    leaked = [t[:12] + "..." for t in {*good_tokens, *hostile_tokens} if t and t in text]
    assert not leaked, f"task tokens in Airflow's logs: {leaked}"
