"""MNSMessageTrigger: serialization, one event per batch, backoff, never blocking the loop."""

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

    def receive_batch(self, wait_seconds, max_messages=None, *, should_stop=None):
        self.calls += 1
        self.threads.add(threading.get_ident())
        self.stop_flags.append(should_stop)
        step = self.script.pop(0) if self.script else ReceiveResult()
        if callable(step):
            step = step()
        if isinstance(step, BaseException):
            raise step
        return step


def run_trigger(trigger, receiver, monkeypatch, limit=5.0):
    monkeypatch.setattr(trigger, "_make_receiver", lambda: receiver)

    async def collect():
        events = []
        async for event in trigger.run():
            events.append(event)
        return events

    return asyncio.run(asyncio.wait_for(collect(), limit))


def leased(*ids):
    return ReceiveResult(
        messages=[{"message_id": i, "receipt_handle": f"h-{i}", "queue_name": "q"} for i in ids],
        received=len(ids),
    )


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


def test_transient_errors_back_off_and_are_logged(monkeypatch, caplog, capsys):
    sleeps: list[float] = []

    async def record_sleep(delay, *args, **kwargs):
        sleeps.append(delay)
        await _real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record_sleep)
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
