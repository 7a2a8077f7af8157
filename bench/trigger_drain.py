"""The trigger alone: how fast :class:`MNSMessageTrigger` drains a backlog, against a naive loop.

Every path runs the real SDK over HTTP against the emulator in this process, on its own queue
filled with the same backlog (Serverless Workflow's message shape, ``{"task_token": ..., "key":
...}``) just before it runs and deleted after it, so each path meets the same emulator state.
Every path hands out the same thing: messages that are leased (invisible for ``lease_seconds``)
when the caller gets them.

``naive loop``
    one message per request, as a worker written in a hurry does it:
    ``MNSHook.receive_messages(max_messages=1)`` then ``change_message_visibility`` (the lease).
    It is the baseline, and it runs twice, first and last: the machine is shared, so the ratios
    use the mean of both rates, and the two rows show how much the machine drifted meanwhile.
``trigger``
    ``MNSMessageTrigger.run()`` driven with asyncio as the triggerer drives it: the trigger is
    rebuilt from ``serialize()`` for every event (the triggerer restarts it after each one), its
    generator is advanced to its event (batch receives of 16 while they come back full, up to
    ``max_messages_per_event``; parse; lease each message) and closed. The process starts each
    trigger path with no idle worker, so the first event pays for the thread, the hook and the
    SDK connection, as the first event in a triggerer does.
``trigger, queue VisibilityTimeout = lease``
    the same trigger on a queue created with ``visibility_timeout=lease_seconds``: the receive
    itself is the lease, so the receiver skips the per-message ChangeMessageVisibility call
    (MNS has no batch form of it). This is the configuration to use for a high-volume queue.
``diagnostic: one batch per event``
    the previous path with ``max_messages_per_event=16``: what reusing the worker between runs
    gives without several batches per event.
``ceiling: batch receive only``
    ``receive_messages(max_messages=16)`` in a loop with no per-message work: what the trigger
    costs if receiving were all it did.
``diagnostic: naive loop, no lease call``
    the naive loop on a queue whose visibility timeout is the lease, so it skips the lease call
    too (1 request per message): the trigger on the same queue, compared with a loop that knows
    that trick.

A path still draining after the time budget is stopped; its rate is what it drained in that
time, with the rates over its first and last 10 events. No message may be received twice, and
every complete path must drain every message: the benchmark checks both. Requests are counted
on the emulator's side (its per-request DEBUG record). CPU seconds are the process's (client and
emulator), less sensitive to other load on the machine than the wall time.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, cast

from fnf_emulator.server import Emulator

from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.limits import MNS_MAX_BATCH_SIZE
from airflow_provider_fnf.receive_settings import DEFAULT_LEASE_SECONDS
from airflow_provider_fnf.triggers import mns as mns_trigger
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


def drain_naive(hook: MNSHook, queue: str, expected: int, *, lease: bool = True) -> tuple[list[str], float]:
    ids: list[str] = []
    started = time.perf_counter()
    while len(ids) < expected:
        batch = hook.receive_messages(queue, max_messages=1, wait_seconds=1)
        if not batch:
            break
        message = batch[0]
        assert message.receipt_handle is not None
        if lease:
            hook.change_message_visibility(queue, message.receipt_handle, DEFAULT_LEASE_SECONDS)
        ids.append(message.message_id)
    return ids, time.perf_counter() - started


async def _drain_trigger(
    queue: str, expected: int, budget: float, trigger_kwargs: dict[str, Any]
) -> tuple[list[str], float, list[tuple[float, int]]]:
    _, kwargs = MNSMessageTrigger(queue_name=queue, wait_time_seconds=1, **trigger_kwargs).serialize()
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


def drain_trigger(
    queue: str, expected: int, *, budget: float, **trigger_kwargs: Any
) -> tuple[list[str], float, list[tuple[float, int]]]:
    mns_trigger._WORKERS.clear()  # start cold, as a fresh triggerer process does
    return asyncio.run(_drain_trigger(queue, expected, budget, trigger_kwargs))


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
        messages_per_event=rounded(len(ids) / events if events else 0.0, 1),
        ms_per_16_messages=rounded(seconds / len(ids) * 16 * 1000 if ids else 0.0, 2),
        first_event_ms=rounded(timeline[0][0] * 1000 if timeline else None, 1),
        msg_per_s_first_10_events=first,
        msg_per_s_last_10_events=last,
        stopped_by_time_budget=len(set(ids)) < expected and seconds >= budget,
    )


class _Path:
    """Fill a queue, measure what draining it costs, delete the queue."""

    def __init__(self, hook: MNSHook, counter: RequestCounter, messages: int, tag: str) -> None:
        self.hook, self.counter, self.messages, self.tag = hook, counter, messages, tag
        self.requests: dict[str, int] = {}
        self.extra: dict[str, Any] = {}

    def __call__(
        self, name: str, leased_queue: bool, drain: Callable[[str], tuple[Any, ...]]
    ) -> tuple[Any, ...]:
        queue = f"bench-{name}-{self.tag}"
        _fill(
            self.hook,
            queue,
            self.messages,
            visibility_timeout=DEFAULT_LEASE_SECONDS if leased_queue else None,
        )
        gc.collect()
        self.counter.take()
        load, cpu = os.getloadavg()[0], time.process_time()
        outcome = drain(queue)
        self.extra = {
            "cpu_seconds": rounded(time.process_time() - cpu, 3),
            "load_average_1m": f"{load:.1f} -> {os.getloadavg()[0]:.1f}",
        }
        self.requests = self.counter.take()
        self.hook.delete_queue(queue)
        return outcome


def run(
    *, messages: int = 10_000, budget: float = 300.0, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Drain ``messages`` on each path; a path still draining after ``budget`` seconds is stopped
    and its rate is what it drained in that time."""
    counter = RequestCounter()
    server_log = logging.getLogger("fnf_emulator.server")
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
            path = _Path(hook, counter, messages, uuid.uuid4().hex[:8])

            def naive(label: str, name: str, *, lease: bool = True) -> dict[str, Any]:
                ids, seconds = path(name, not lease, lambda q: drain_naive(hook, q, messages, lease=lease))
                row = _result(label, ids, messages, seconds, path.requests, **path.extra)
                echo(f"    {row['messages_per_second']} msg/s")
                return row

            def trigger(label: str, name: str, *, leased_queue: bool, **kwargs: Any) -> dict[str, Any]:
                ids, seconds, timeline = path(
                    name, leased_queue, lambda q: drain_trigger(q, messages, budget=budget, **kwargs)
                )
                row = _trigger_row(label, ids, messages, seconds, timeline, path.requests, budget)
                row.update(path.extra)
                echo(
                    f"    {row['messages_per_second']} msg/s in {row['events']} events "
                    f"(first 10 events {row['msg_per_s_first_10_events']} msg/s, last 10 "
                    f"{row['msg_per_s_last_10_events']} msg/s)"
                )
                return row

            echo(f"  each path drains its own queue of {messages} messages")
            echo("  naive loop: receive 1 + lease 1, per message")
            naive_before = naive("naive loop (receive 1 + lease), first", "naive-a")

            echo("  MNSMessageTrigger on a queue whose VisibilityTimeout is the lease (no lease call)")
            leased = trigger(
                "MNSMessageTrigger, queue VisibilityTimeout = lease_seconds", "leased", leased_queue=True
            )
            echo("  the same, one batch per event (max_messages_per_event=16)")
            one_batch = trigger(
                "diagnostic: the same, one batch per event (max_messages_per_event=16)",
                "one-batch",
                leased_queue=True,
                max_messages_per_event=MNS_MAX_BATCH_SIZE,
            )
            echo(
                f"  MNSMessageTrigger on a default queue: batch receive + lease each (budget {budget:.0f} s)"
            )
            default = trigger(
                "MNSMessageTrigger, default queue (batch 16 + lease each)", "trigger", leased_queue=False
            )

            echo("  ceiling: batch receive only (the queue's visibility timeout as the lease)")
            ids, seconds = path("batch", True, lambda q: drain_batch_only(hook, q, messages))
            batch = _result(
                "ceiling: batch receive 16, lease = queue visibility",
                ids,
                messages,
                seconds,
                path.requests,
                **path.extra,
            )
            echo(f"    {batch['messages_per_second']} msg/s")

            echo("  diagnostic: naive loop on a queue whose visibility timeout is the lease (no lease call)")
            naive_no_lease = naive(
                "diagnostic: naive loop, receive 1, lease = queue visibility", "naive-no-lease", lease=False
            )
            echo("  naive loop again (the machine is shared: how much did it drift?)")
            naive_after = naive("naive loop (receive 1 + lease), last", "naive-b")
    finally:
        server_log.removeHandler(counter)
        server_log.setLevel(saved_level)
        server_log.propagate = True
        for q, level in zip(quiet, saved_quiet, strict=True):
            q.setLevel(level)

    baseline = (naive_before["messages_per_second"] + naive_after["messages_per_second"]) / 2

    def ratio(row: dict[str, Any]) -> float:
        return row["messages_per_second"] / baseline if baseline else 0.0

    def cpu_per_message(row: dict[str, Any]) -> float:
        return row["cpu_seconds"] / row["messages"] if row["messages"] else 0.0

    baseline_cpu = (cpu_per_message(naive_before) + cpu_per_message(naive_after)) / 2

    def cpu_ratio(row: dict[str, Any]) -> float:
        return baseline_cpu / cpu_per_message(row) if cpu_per_message(row) else 0.0

    rows = [naive_before, naive_after, default, leased, one_batch, batch, naive_no_lease]
    for row in rows:
        row["vs_naive"] = rounded(ratio(row), 2)
        row["vs_naive_cpu"] = rounded(cpu_ratio(row), 2)
    complete = [r for r in rows if not r.get("stopped_by_time_budget")]
    correct = all(r["duplicates"] == 0 and r["missing"] == 0 for r in complete) and all(
        r["duplicates"] == 0 for r in rows
    )
    drained = (
        ""
        if not default["stopped_by_time_budget"]
        else f", drained {default['messages']} of {messages} in the {budget:.0f} s budget"
    )
    best = max(ratio(default), ratio(leased))
    return {
        "benchmark": "trigger_drain",
        "backlog": messages,
        "naive_messages_per_second_mean": rounded(baseline, 1),
        "rows": rows,
        "goals": [
            {
                "goal": f"trigger drains a {messages}-message backlog >= {GOAL_RATIO:.0f}x the naive loop",
                "measured": f"queue visibility = lease {ratio(leased):.2f}x ({leased['messages_per_second']} vs "
                f"{baseline:.1f} msg/s, the mean of the naive runs); default queue {ratio(default):.2f}x"
                f"{drained}; ceiling without per-message work {ratio(batch):.1f}x; in CPU seconds per "
                f"message: {cpu_ratio(leased):.2f}x, {cpu_ratio(default):.2f}x, ceiling {cpu_ratio(batch):.1f}x; "
                f"{ratio(leased) / ratio(naive_no_lease) if ratio(naive_no_lease) else 0.0:.2f}x a naive "
                "loop on the same queue that skips the lease call too",
                "met": best >= GOAL_RATIO and correct,
            },
            {
                "goal": "no message received twice; every message drained on each complete path",
                "measured": "yes" if correct else "NO: see duplicates/missing",
                "met": correct,
            },
        ],
    }
