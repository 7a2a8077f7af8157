"""The trigger alone: how fast :class:`MNSMessageTrigger` drains a backlog, against a naive loop.

Both sides run the real SDK over HTTP against the emulator in this process, on queues filled
with the same backlog (Serverless Workflow's message shape, ``{"task_token": ..., "key": ...}``):

``naive loop``
    one message per request, as a worker written in a hurry does it:
    ``MNSHook.receive_messages(max_messages=1)`` then ``change_message_visibility`` (the lease).
``trigger``
    ``MNSMessageTrigger.run()`` driven with asyncio as the triggerer drives it: the trigger is
    rebuilt from ``serialize()`` for every event (the triggerer restarts it after each one), its
    generator is advanced to its event (batch receive of 16, parse, lease each message) and
    closed.
``trigger, queue VisibilityTimeout = lease``
    the same trigger on a queue created with ``visibility_timeout=lease_seconds``: the receive
    itself is the lease, so the receiver skips the per-message ChangeMessageVisibility call
    (MNS has no batch form of it). This is the configuration to use for a high-volume queue.
``ceiling: batch receive only``
    ``receive_messages(max_messages=16)`` with no per-message call: what the trigger would cost
    if the queue's own visibility timeout were the lease (the ceiling of the design).

A path still draining after the time budget is stopped; its rate is what it drained in that
time, with the rates over its first and last 10 events. No message may be received twice, and
every complete path must drain every message: the benchmark checks both. Requests are counted
on the emulator's side (its per-request DEBUG record).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_fnf.emulator.server import Emulator
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.limits import MNS_MAX_BATCH_SIZE
from airflow_provider_fnf.receiver import DEFAULT_LEASE_SECONDS
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger
from bench._common import connections, rounded

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent

GOAL_RATIO = 10.0


class RequestCounter(logging.Handler):
    """Counts the emulator's one-line-per-request DEBUG records, by operation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("%s %s %s %s -> %d"):
            operation = str(record.args[1]) if isinstance(record.args, tuple) else "?"
            self.counts[operation] = self.counts.get(operation, 0) + 1

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


def _token(flow: str, execution: str, event_id: int) -> str:
    """A token of Serverless Workflow's shape (base64 text, like the emulator's and the service's)."""
    signature = base64.urlsafe_b64encode(hashlib.sha256(f"{execution}{event_id}".encode()).digest()).decode()[
        :32
    ]
    return base64.b64encode(f"v1#{flow}#{execution}#{event_id}#{signature}".encode()).decode()


def _body(i: int) -> str:
    return json.dumps(
        {"task_token": _token("bench-flow", f"exec-{i:06d}-{uuid.uuid4().hex[:8]}", 2), "key": "value"}
    )


def _fill(hook: MNSHook, queue: str, count: int, *, visibility_timeout: int | None = None) -> None:
    hook.create_queue(queue, visibility_timeout=visibility_timeout)
    bodies = [_body(i) for i in range(count)]
    for start in range(0, count, 256):
        hook.send_messages(queue, bodies[start : start + 256])


def _result(
    label: str, ids: list[str], expected: int, seconds: float, requests: dict[str, int], **extra: Any
) -> dict[str, Any]:
    unique = len(set(ids))
    total_requests = sum(requests.values())
    return {
        "path": label,
        "messages": len(ids),
        "duplicates": len(ids) - unique,
        "missing": expected - unique,
        "seconds": rounded(seconds, 3),
        "messages_per_second": rounded(unique / seconds if seconds else 0.0, 1),
        "requests": total_requests,
        "requests_per_message": rounded(total_requests / unique if unique else 0.0, 3),
        "requests_by_operation": requests,
        **extra,
    }


def drain_naive(hook: MNSHook, queue: str, expected: int) -> tuple[list[str], float]:
    ids: list[str] = []
    started = time.perf_counter()
    while len(ids) < expected:
        batch = hook.receive_messages(queue, max_messages=1, wait_seconds=1)
        if not batch:
            break
        message = batch[0]
        assert message.receipt_handle is not None
        hook.change_message_visibility(queue, message.receipt_handle, DEFAULT_LEASE_SECONDS)
        ids.append(message.message_id)
    return ids, time.perf_counter() - started


async def _drain_trigger(
    queue: str, expected: int, budget: float
) -> tuple[list[str], float, list[tuple[float, int]]]:
    _, kwargs = MNSMessageTrigger(queue_name=queue, wait_time_seconds=1).serialize()
    ids: list[str] = []
    timeline: list[tuple[float, int]] = []  # (seconds since start, messages drained) after each event
    started = time.perf_counter()
    while len(ids) < expected and time.perf_counter() - started < budget:
        trigger = MNSMessageTrigger(**kwargs)  # the triggerer rebuilds it after every event
        run = cast("AsyncGenerator[TriggerEvent, None]", trigger.run())
        try:
            event = await asyncio.wait_for(run.__anext__(), timeout=30)
        except (StopAsyncIteration, asyncio.TimeoutError):
            break
        finally:
            await run.aclose()
        ids.extend(m["message_id"] for m in event.payload["messages"])
        timeline.append((time.perf_counter() - started, len(ids)))
    return ids, time.perf_counter() - started, timeline


def drain_trigger(queue: str, expected: int, *, budget: float) -> tuple[list[str], float, list[tuple[float, int]]]:
    return asyncio.run(_drain_trigger(queue, expected, budget))


def _window_rates(timeline: list[tuple[float, int]], window: int = 10) -> tuple[float | None, float | None]:
    """Messages per second over the first and the last ``window`` events."""
    if len(timeline) < 2 * window:
        return None, None
    t0, n0 = 0.0, 0
    t1, n1 = timeline[window - 1]
    first = (n1 - n0) / (t1 - t0) if t1 > t0 else None
    ta, na = timeline[-window - 1]
    tb, nb = timeline[-1]
    last = (nb - na) / (tb - ta) if tb > ta else None
    return rounded(first, 1), rounded(last, 1)


def drain_batch_only(hook: MNSHook, queue: str, expected: int) -> tuple[list[str], float]:
    ids: list[str] = []
    started = time.perf_counter()
    while len(ids) < expected:
        batch = hook.receive_messages(queue, max_messages=MNS_MAX_BATCH_SIZE, wait_seconds=1)
        if not batch:
            break
        ids.extend(m.message_id for m in batch)
    return ids, time.perf_counter() - started


def _trigger_row(
    label: str,
    ids: list[str],
    expected: int,
    seconds: float,
    timeline: list[tuple[float, int]],
    requests: dict[str, int],
    budget: float,
) -> dict[str, Any]:
    first, last = _window_rates(timeline)
    events = len(timeline)
    return _result(
        label,
        ids,
        expected,
        seconds,
        requests,
        events=events,
        ms_per_event=rounded(seconds / events * 1000 if events else 0.0, 2),
        msg_per_s_first_10_events=first,
        msg_per_s_last_10_events=last,
        stopped_by_time_budget=len(set(ids)) < expected and seconds >= budget,
    )


def run(
    *, messages: int = 10_000, budget: float = 300.0, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Drain ``messages`` on each path; a path still draining after ``budget`` seconds is stopped
    and its rate is what it drained in that time."""
    counter = RequestCounter()
    server_log = logging.getLogger("airflow_provider_fnf.emulator.server")
    saved_level = server_log.level
    server_log.setLevel(logging.DEBUG)
    server_log.addHandler(counter)
    server_log.propagate = False
    # Per-batch INFO lines of the hook and the receiver are the same for every path; keep them
    # off the console so the terminal is not what is measured.
    quiet = [
        logging.getLogger(n)
        for n in ("airflow_provider_fnf.hooks.mns", "airflow_provider_fnf.receiver", "airflow.triggers")
    ]
    saved_quiet = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.WARNING)
    try:
        with Emulator() as emulator, connections(emulator.mns_endpoint, emulator.fnf_endpoint):
            hook = MNSHook()
            tag = uuid.uuid4().hex[:8]
            queues = {name: f"bench-{name}-{tag}" for name in ("naive", "trigger", "leased", "batch")}
            echo(f"  filling {len(queues)} queues with {messages} messages each")
            for name, queue in queues.items():
                _fill(
                    hook,
                    queue,
                    messages,
                    visibility_timeout=DEFAULT_LEASE_SECONDS if name in ("leased", "batch") else None,
                )
            counter.take()

            echo("  naive loop: receive 1 + lease 1, per message")
            ids, seconds = drain_naive(hook, queues["naive"], messages)
            naive = _result("naive loop (receive 1 + lease)", ids, messages, seconds, counter.take())
            echo(f"    {naive['messages_per_second']} msg/s")

            echo("  MNSMessageTrigger on a queue whose VisibilityTimeout is the lease (no lease call)")
            ids, seconds, timeline = drain_trigger(queues["leased"], messages, budget=budget)
            leased = _trigger_row(
                "MNSMessageTrigger, queue VisibilityTimeout = lease_seconds",
                ids,
                messages,
                seconds,
                timeline,
                counter.take(),
                budget,
            )
            echo(f"    {leased['messages_per_second']} msg/s in {leased['events']} events")

            echo(f"  MNSMessageTrigger as built: batch receive + lease each + event (budget {budget:.0f} s)")
            ids, seconds, timeline = drain_trigger(queues["trigger"], messages, budget=budget)
            trigger = _trigger_row(
                "MNSMessageTrigger (batch 16 + lease each + event)",
                ids,
                messages,
                seconds,
                timeline,
                counter.take(),
                budget,
            )
            echo(
                f"    {trigger['messages_per_second']} msg/s in {trigger['events']} events "
                f"(first 10 events {trigger['msg_per_s_first_10_events']} msg/s, last 10 "
                f"{trigger['msg_per_s_last_10_events']} msg/s)"
            )

            echo("  ceiling: batch receive only (the queue's visibility timeout as the lease)")
            ids, seconds = drain_batch_only(hook, queues["batch"], messages)
            batch = _result(
                "ceiling: batch receive 16, lease = queue visibility", ids, messages, seconds, counter.take()
            )
            echo(f"    {batch['messages_per_second']} msg/s")
    finally:
        server_log.removeHandler(counter)
        server_log.setLevel(saved_level)
        server_log.propagate = True
        for q, level in zip(quiet, saved_quiet, strict=True):
            q.setLevel(level)

    def ratio(row: dict[str, Any]) -> float:
        return (
            row["messages_per_second"] / naive["messages_per_second"] if naive["messages_per_second"] else 0.0
        )

    rows = [naive, trigger, leased, batch]
    for row in rows:
        row["vs_naive"] = rounded(ratio(row), 2)
    complete = [r for r in rows if not r.get("stopped_by_time_budget")]
    correct = all(r["duplicates"] == 0 and r["missing"] == 0 for r in complete) and all(
        r["duplicates"] == 0 for r in rows
    )
    drained = (
        ""
        if not trigger["stopped_by_time_budget"]
        else f", drained {trigger['messages']} of {messages} in the {budget:.0f} s budget"
    )
    return {
        "benchmark": "trigger_drain",
        "backlog": messages,
        "rows": rows,
        "goals": [
            {
                "goal": f"trigger drains a {messages}-message backlog >= {GOAL_RATIO:.0f}x the naive loop",
                "measured": f"{ratio(trigger):.2f}x ({trigger['messages_per_second']} vs "
                f"{naive['messages_per_second']} msg/s{drained}); queue visibility = lease {ratio(leased):.2f}x; "
                f"ceiling without per-message lease {ratio(batch):.1f}x",
                "met": max(ratio(trigger), ratio(leased)) >= GOAL_RATIO and correct,
            },
            {
                "goal": "no message received twice; every message drained on each complete path",
                "measured": "yes" if correct else "NO: see duplicates/missing",
                "met": correct,
            },
        ],
    }
