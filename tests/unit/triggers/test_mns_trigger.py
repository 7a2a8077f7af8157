"""MNSMessageTrigger: serialization, one event per run (several batches while a backlog lasts),
backoff, never blocking the loop, one worker thread per running trigger."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import threading

import pytest
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_fnf.exceptions import MNSAuthenticationError, MNSEndpointUnreachableError
from airflow_provider_fnf.receiver import ReceiveResult
from airflow_provider_fnf.triggers import mns as trigger_module
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger

FULL_KWARGS = {
    "queue_name": "fnf-tasks",
    "mns_conn_id": "mns_other",
    "fnf_conn_id": "fnf_other",
    "max_messages": 8,
    "wait_time_seconds": 10,
    "lease_seconds": 7200,
    "delete_on_receipt": False,
    "token_keys": ["cb_token", "task_token"],
    "message_filtering": "$.kind",
    "message_filtering_match_values": ["resize"],
    "require_task_token": True,
    "max_receive_count": 5,
    "poison_policy": "dead_letter",
    "dead_letter_queue_name": "fnf-tasks-dlq",
    "report_poison_failures": False,
    "poison_error_name": "Worker.Poison",
    "body_encoding": "auto",
    "poll_interval": 2.5,
    "max_backoff_seconds": 30.0,
    "max_messages_per_event": 64,
    "max_bytes_per_event": 262_144,
}


def rebuild(trigger):
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    # Through JSON, as the metadata database stores it.
    return cls(**json.loads(json.dumps(kwargs)))


@pytest.mark.parametrize("kwargs", [{"queue_name": "q"}, FULL_KWARGS], ids=["defaults", "every-argument"])
def test_serialize_round_trip(kwargs):
    trigger = MNSMessageTrigger(**kwargs)
    classpath, serialized = trigger.serialize()

    assert classpath == "airflow_provider_fnf.triggers.mns.MNSMessageTrigger"
    assert rebuild(trigger).serialize() == (classpath, serialized)
    if kwargs is FULL_KWARGS:
        assert serialized == FULL_KWARGS


def test_it_is_an_event_trigger_for_asset_watchers_with_a_stable_hash():
    trigger = MNSMessageTrigger(**FULL_KWARGS)
    assert isinstance(trigger, BaseEventTrigger)
    classpath, kwargs = trigger.serialize()
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*rebuild(trigger).serialize())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"wait_time_seconds": 31}, "wait_time_seconds"),
        ({"max_messages": 17}, "max_messages"),
        ({"lease_seconds": 50_000}, "lease_seconds"),
        ({"message_filtering": lambda m: True}, "callable"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"max_messages_per_event": 0}, "max_messages_per_event"),
        ({"max_messages_per_event": True}, "max_messages_per_event"),
        ({"max_bytes_per_event": 0}, "max_bytes_per_event"),
        ({"max_bytes_per_event": 1.5}, "max_bytes_per_event"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        MNSMessageTrigger(queue_name="q", **kwargs)


class ScriptedReceiver:
    """Plays back results (or raises errors) one receive call at a time."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0
        self.threads: set[int] = set()
        self.stop_flags: list = []
        self.asked: list[tuple[int | None, int | None]] = []
        """(wait_seconds, max_messages) of each call."""
        self.released: list[str] = []

    def receive_batch(self, wait_seconds, max_messages=None, *, should_stop=None):
        self.calls += 1
        self.threads.add(threading.get_ident())
        self.stop_flags.append(should_stop)
        self.asked.append((wait_seconds, max_messages))
        step = self.script.pop(0) if self.script else ReceiveResult()
        if callable(step):
            step = step()
        if isinstance(step, BaseException):
            raise step
        return step

    def release(self, message, reason="it does not match the filter"):
        self.released.append(message["message_id"])
        return True


def run_trigger(trigger, receiver, monkeypatch, limit=5.0):
    monkeypatch.setattr(trigger, "_make_receiver", lambda: receiver)

    async def collect():
        events = []
        async for event in trigger.run():
            events.append(event)
        return events

    return asyncio.run(asyncio.wait_for(collect(), limit))


def leased(*ids, body_bytes=10):
    return ReceiveResult(
        messages=[
            {"message_id": i, "receipt_handle": f"h-{i}", "queue_name": "q", "raw_body": "x" * body_bytes}
            for i in ids
        ],
        received=len(ids),
    )


def batch(start, count, **kwargs):
    return leased(*(f"M{i}" for i in range(start, start + count)), **kwargs)


def ids_of(event):
    return [m["message_id"] for m in event.payload["messages"]]


def test_yields_one_event_with_the_batch_then_returns(monkeypatch):
    receiver = ScriptedReceiver([ReceiveResult(), leased("M1", "M2"), leased("M3")])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1)
    monkeypatch.setattr(asyncio, "sleep", _no_sleep)

    events = run_trigger(trigger, receiver, monkeypatch)

    assert len(events) == 1
    assert isinstance(events[0], TriggerEvent)
    payload = events[0].payload
    assert payload["status"] == "success"
    assert payload["queue_name"] == "q" and payload["mns_conn_id"] == "mns_default"
    assert [m["message_id"] for m in payload["messages"]] == ["M1", "M2"]
    json.dumps(payload)
    assert receiver.calls == 2  # M3 stays in the queue for the next run of the trigger


_real_sleep = asyncio.sleep


async def _no_sleep(delay, *args, **kwargs):
    await _real_sleep(0)


def logged(capsys, caplog) -> str:
    """Airflow routes a trigger's log through structlog (stdout) or logging, depending on setup."""
    captured = capsys.readouterr()
    return captured.out + captured.err + caplog.text


def record_sleeps(monkeypatch) -> list[float]:
    """Every asyncio.sleep's delay from now on, without waiting it."""
    sleeps: list[float] = []

    async def record_sleep(delay, *args, **kwargs):
        sleeps.append(delay)
        await _real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record_sleep)
    return sleeps


def test_transient_errors_back_off_and_are_logged(monkeypatch, caplog, capsys):
    sleeps = record_sleeps(monkeypatch)
    receiver = ScriptedReceiver(
        [MNSEndpointUnreachableError("no answer"), MNSEndpointUnreachableError("no answer"), leased("M1")]
    )
    trigger = MNSMessageTrigger(queue_name="q", max_backoff_seconds=8)

    with caplog.at_level(logging.INFO):
        events = run_trigger(trigger, receiver, monkeypatch)

    assert [m["message_id"] for m in events[0].payload["messages"]] == ["M1"]
    assert len(sleeps) == 2 and all(0 < s <= 8 for s in sleeps)
    text = logged(capsys, caplog)
    assert "retrying in" in text and "failure 2 in a row" in text
    assert "works again after 2 failure(s)" in text


def test_permanent_errors_fail_the_trigger(monkeypatch, caplog, capsys):
    receiver = ScriptedReceiver([MNSAuthenticationError("bad key", status=403)])
    trigger = MNSMessageTrigger(queue_name="q")
    with pytest.raises(MNSAuthenticationError), caplog.at_level(logging.ERROR):
        run_trigger(trigger, receiver, monkeypatch)
    assert "will not succeed on retry" in logged(capsys, caplog)


def test_sdk_calls_run_off_the_event_loop_in_one_thread(monkeypatch):
    """A receive that blocks until the event loop does something: it deadlocks (and the test
    times out) if the call ran on the loop's thread."""
    released = threading.Event()

    def blocking_receive():
        assert released.wait(5), "the event loop was blocked while the SDK call ran"
        return leased("M1")

    receiver = ScriptedReceiver([ReceiveResult(), blocking_receive])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1)
    monkeypatch.setattr(trigger, "_make_receiver", lambda: receiver)
    loop_thread: list[int] = []

    async def main():
        loop_thread.append(threading.get_ident())

        async def release_soon():
            while receiver.calls < 2:
                await _real_sleep(0.01)
            released.set()

        helper = asyncio.create_task(release_soon())
        events = [e async for e in trigger.run()]
        await helper
        return events

    events = asyncio.run(asyncio.wait_for(main(), 10))
    assert events[0].payload["messages"][0]["message_id"] == "M1"
    assert len(receiver.threads) == 1 and loop_thread[0] not in receiver.threads


def test_the_receiver_learns_when_the_trigger_stops(monkeypatch):
    receiver = ScriptedReceiver([leased("M1")])
    trigger = MNSMessageTrigger(queue_name="q")
    run_trigger(trigger, receiver, monkeypatch)
    should_stop = receiver.stop_flags[0]
    assert should_stop() is True  # a poll still in flight hands its messages back


def test_no_long_poll_pauses_between_empty_receives(monkeypatch):
    sleeps: list[float] = []

    async def record_sleep(delay, *args, **kwargs):
        sleeps.append(delay)
        await _real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record_sleep)
    receiver = ScriptedReceiver([ReceiveResult(), ReceiveResult(), leased("M1")])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=0, poll_interval=3.0)
    run_trigger(trigger, receiver, monkeypatch)
    assert sleeps == [3.0, 3.0]


# -- several batches per event ---------------------------------------------------------------


def test_full_batches_are_followed_at_once_and_a_partial_batch_ends_the_event(monkeypatch):
    receiver = ScriptedReceiver([batch(0, 16), batch(16, 16), batch(32, 3), batch(35, 16)])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=7)

    (event,) = run_trigger(trigger, receiver, monkeypatch)

    assert ids_of(event) == [f"M{i}" for i in range(35)]
    # Only the first receive long-polls; the following ones take what is there now.
    assert receiver.asked == [(7, 16), (0, 16), (0, 16)]
    json.dumps(event.payload)


def test_an_event_receives_at_most_max_messages_per_event(monkeypatch):
    receiver = ScriptedReceiver([batch(0, 16), batch(16, 4), batch(20, 16)])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1, max_messages_per_event=20)

    (event,) = run_trigger(trigger, receiver, monkeypatch)

    assert len(ids_of(event)) == 20
    assert receiver.asked == [(1, 16), (0, 4)]  # the last receive asks only for the room left


def test_max_messages_per_event_of_one_batch_gives_one_receive_per_event(monkeypatch):
    receiver = ScriptedReceiver([batch(0, 16), batch(16, 16)])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1, max_messages_per_event=16)

    (event,) = run_trigger(trigger, receiver, monkeypatch)

    assert len(ids_of(event)) == 16 and receiver.calls == 1


def test_poison_and_filtered_messages_count_against_max_messages_per_event(monkeypatch):
    """A backlog of messages the filter rejects (released, back in 1 s) cannot keep one event
    receiving forever."""
    rejected = ReceiveResult(released=[f"R{i}" for i in range(16)], received=16)
    receiver = ScriptedReceiver([rejected, rejected, batch(0, 16), batch(16, 16)])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1, max_messages_per_event=48)

    (event,) = run_trigger(trigger, receiver, monkeypatch)

    assert len(ids_of(event)) == 16 and receiver.calls == 3


def test_an_event_takes_no_further_batch_once_its_bodies_reach_max_bytes_per_event(monkeypatch):
    receiver = ScriptedReceiver(
        [batch(0, 16, body_bytes=1_000), batch(16, 16, body_bytes=1_000), batch(32, 16)]
    )
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1, max_bytes_per_event=20_000)

    (event,) = run_trigger(trigger, receiver, monkeypatch)

    # 16,000 bytes after the first batch: room for another; 32,000 after the second: the event
    # goes out (it can pass the bound by one batch, never by more).
    assert len(ids_of(event)) == 32 and receiver.calls == 2


def test_a_failing_further_batch_ends_the_event_with_what_was_leased(monkeypatch, caplog, capsys):
    receiver = ScriptedReceiver([batch(0, 16), MNSEndpointUnreachableError("no answer")])
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1)

    with caplog.at_level(logging.WARNING):
        (event,) = run_trigger(trigger, receiver, monkeypatch)

    assert len(ids_of(event)) == 16
    assert "the event goes out with the 16 message(s) received before" in logged(capsys, caplog)


def test_a_trigger_stopped_while_its_event_fills_hands_the_leased_messages_back():
    trigger = MNSMessageTrigger(queue_name="q", wait_time_seconds=1)
    stopped = threading.Event()

    def second_batch():
        stopped.set()  # the triggerer cancels the trigger during this receive
        return batch(16, 16)

    receiver = ScriptedReceiver([batch(0, 16), second_batch, batch(32, 16)])

    result = trigger._receive_event(receiver, stopped)

    assert result.messages == []
    assert receiver.released == [f"M{i}" for i in range(32)]
    assert receiver.calls == 2


# -- one worker per running trigger, kept between runs ------------------------------------------


def test_runs_one_after_another_share_a_worker_thread(monkeypatch):
    first, second = ScriptedReceiver([leased("M1")]), ScriptedReceiver([leased("M2")])
    run_trigger(MNSMessageTrigger(queue_name="q-reuse"), first, monkeypatch)
    run_trigger(MNSMessageTrigger(queue_name="q-reuse"), second, monkeypatch)
    assert first.threads == second.threads


def test_a_running_trigger_never_shares_its_thread_even_after_it_was_cancelled(monkeypatch):
    """A cancelled trigger's long poll goes on in its thread until it returns: a trigger that
    starts meanwhile must get another thread (the SDK client of a thread is not thread-safe)."""
    release = threading.Event()

    def long_poll():
        assert release.wait(5)
        return ReceiveResult()

    cancelled = ScriptedReceiver([long_poll])
    started_meanwhile = ScriptedReceiver([leased("M1")])
    after = ScriptedReceiver([leased("M2")])
    trigger = MNSMessageTrigger(queue_name="q-busy")
    monkeypatch.setattr(trigger, "_make_receiver", lambda: cancelled)

    async def main():
        task = asyncio.ensure_future(trigger.run().__anext__())
        while cancelled.calls == 0:
            await _real_sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    run_trigger(MNSMessageTrigger(queue_name="q-busy"), started_meanwhile, monkeypatch)
    assert started_meanwhile.threads.isdisjoint(cancelled.threads)

    idle_before = idle_workers()
    release.set()
    assert asyncio.run(_wait_for(lambda: idle_workers() == idle_before + 1)), (
        "the cancelled trigger's worker did not come back once its long poll returned"
    )
    run_trigger(MNSMessageTrigger(queue_name="q-busy"), after, monkeypatch)
    assert after.threads == cancelled.threads  # the worker given back last is taken first


def idle_workers() -> int:
    """Idle workers for the default connection, which these triggers use."""
    return len(trigger_module._WORKERS._idle.get(("mns_default", "raw"), []))


async def _wait_for(condition, limit: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if condition():
            return True
        await _real_sleep(0.01)
    return False


def test_idle_workers_are_shut_down_after_a_while(monkeypatch):
    pool = trigger_module._WorkerPool()
    worker = pool.take(("mns_default", "raw"))
    pool.give_back(("mns_default", "raw"), worker)
    assert pool.take(("mns_default", "raw")) is worker  # reused while fresh

    pool.give_back(("mns_default", "raw"), worker)
    monkeypatch.setattr(trigger_module, "_IDLE_WORKER_SECONDS", 0.0)
    other = pool.take(("mns_default", "raw"))

    assert other is not worker
    with pytest.raises(RuntimeError):  # its thread was told to stop
        worker.executor.submit(lambda: None)
    other.shutdown()


def test_idle_workers_beyond_the_limit_are_shut_down(monkeypatch):
    monkeypatch.setattr(trigger_module, "_MAX_IDLE_WORKERS", 1)
    pool = trigger_module._WorkerPool()
    a, b = pool.take(("c", "raw")), pool.take(("c", "raw"))
    pool.give_back(("c", "raw"), a)
    pool.give_back(("c", "raw"), b)
    with pytest.raises(RuntimeError):
        b.executor.submit(lambda: None)
    assert pool.take(("c", "raw")) is a
    a.shutdown()


def test_event_text_names_messages_but_never_shows_bodies_or_task_tokens():
    from airflow.jobs.triggerer_job_runner import TriggerEventEntry, messages

    from airflow_provider_fnf.triggers.mns import MNSMessagesTriggerEvent

    token = "djEj" + "c2VjcmV0LXRhc2stdG9rZW4tdmFsdWU=" * 2
    payload = {
        "status": "success",
        "queue_name": "jobs",
        "messages": [{"message_id": "M1", "task_token": token, "raw_body": f'{{"task_token": "{token}"}}'}],
    }
    event = MNSMessagesTriggerEvent(payload)
    for text in (repr(event), str(event), f"{event}", repr([event])):
        assert token not in text and "M1" in text and "'jobs'" in text
    # What the triggerer's supervisor receives (and stores) is the whole payload.
    sent = messages.TriggerStateChanges(
        events=[TriggerEventEntry(trigger_id=1, event=event, persist_seq=None)]
    )
    received = messages.TriggerStateChanges.model_validate_json(sent.model_dump_json())
    assert received.events[0].event.payload == payload
