"""MNSMessageTrigger with the real MNS SDK over HTTP against the emulator: real task tokens from
real flow executions, leases, poison messages, transient faults, a free event loop, events of
several batches, a client kept between runs that follows changes of its connection."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading

import pytest
from dispatch_it_support import FNF_CONN_ID, MNS_CONN_ID
from fnf_emulator.server import Emulator

from airflow_provider_fnf.exceptions import MNSAuthenticationError
from airflow_provider_fnf.hooks.mns import MNSHook
from airflow_provider_fnf.testing import mns_connection
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger
from tests.support import admin, set_connection

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def trigger_for(flow, **kwargs) -> MNSMessageTrigger:
    kwargs.setdefault("wait_time_seconds", 2)
    return MNSMessageTrigger(
        queue_name=flow.queue_name, mns_conn_id=MNS_CONN_ID, fnf_conn_id=FNF_CONN_ID, **kwargs
    )


def rebuilt(trigger: MNSMessageTrigger) -> MNSMessageTrigger:
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


async def events_of(trigger, limit: float):
    async def collect():
        return [event async for event in trigger.run()]

    return await asyncio.wait_for(collect(), limit)


def first_event(trigger, limit: float = 30):
    events = asyncio.run(events_of(trigger, limit))
    assert len(events) == 1
    return events[0].payload


def test_a_batch_of_task_messages_becomes_one_event_of_leased_parsed_messages(flow):
    executions = {flow.start() for _ in range(3)}
    flow.wait_visible(3)

    payload = first_event(rebuilt(trigger_for(flow, lease_seconds=600)))

    json.dumps(payload)
    assert payload["status"] == "success" and payload["queue_name"] == flow.queue_name
    messages = payload["messages"]
    assert len(messages) == 3
    assert {m["execution_name"] for m in messages} == executions
    assert {m["flow_name"] for m in messages} == {flow.flow_name}
    for message in messages:
        assert message["task_token"] and message["body"]["task_token"] == message["task_token"]
        assert message["body"]["kind"] == "resize"
        assert message["mns_conn_id"] == MNS_CONN_ID and message["dequeue_count"] == 1
    # Leased, not deleted: all three are in flight, none visible, so no second delivery.
    assert flow.counts() == (0, 3)
    # The lease's new receipt handle is the one that works: deleting with it empties the queue.
    for message in messages:
        flow.mns.delete_message(flow.queue_name, message["receipt_handle"])
    assert flow.counts() == (0, 0)


def test_leased_messages_are_not_delivered_again_to_a_second_trigger(flow):
    flow.start()
    first_event(trigger_for(flow, lease_seconds=600))

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(events_of(trigger_for(flow, wait_time_seconds=1), limit=3))


def send_tokens(flow, count: int, pad: int = 0) -> None:
    flow.mns.send_messages(
        flow.queue_name,
        [json.dumps({"task_token": f"token-{i:04d}", "pad": "x" * pad}) for i in range(count)],
    )


def test_a_backlog_comes_in_one_event_of_several_batches_every_message_leased(flow):
    send_tokens(flow, 40)

    payload = first_event(rebuilt(trigger_for(flow, lease_seconds=600)))

    messages = payload["messages"]
    assert len(messages) == 40 and len({m["message_id"] for m in messages}) == 40
    json.dumps(payload)
    assert flow.counts() == (0, 40)  # all leased before the event fired
    # Every handle in the event is the lease's newest one: deleting with them empties the queue.
    failed = flow.mns.delete_messages(flow.queue_name, [m["receipt_handle"] for m in messages])
    assert failed == {} and flow.counts() == (0, 0)


def test_max_messages_per_event_bounds_an_event(flow):
    send_tokens(flow, 20)
    first = first_event(trigger_for(flow, max_messages_per_event=16))
    second = first_event(trigger_for(flow, max_messages_per_event=16))
    assert len(first["messages"]) == 16 and len(second["messages"]) == 4
    assert len({m["message_id"] for m in first["messages"] + second["messages"]}) == 20


def test_max_bytes_per_event_bounds_an_event(flow):
    send_tokens(flow, 40, pad=2_100)  # over 2 KiB a body: 16 of them pass 32 KiB

    sizes = [len(first_event(trigger_for(flow, max_bytes_per_event=32_768))["messages"]) for _ in range(3)]

    assert sizes == [16, 16, 8]


def test_poison_messages_go_to_the_dead_letter_queue_and_good_ones_still_arrive(flow):
    flow.mns.send_message(flow.queue_name, "this is not JSON")
    flow.mns.send_message(flow.queue_name, json.dumps({"no": "token"}))
    flow.start()

    payload = first_event(trigger_for(flow, dead_letter_queue_name=flow.dead_letter_queue_name))

    assert len(payload["messages"]) == 1 and payload["messages"][0]["task_token"]
    assert flow.counts() == (0, 1)  # the good one, leased; the poison ones are gone from here
    dead = flow.mns.receive_messages(flow.dead_letter_queue_name, 16, wait_seconds=1)
    assert sorted(m.body for m in dead) == sorted(["this is not JSON", json.dumps({"no": "token"})])


def test_a_message_received_too_often_is_reported_failed_and_its_flow_learns_it(flow):
    execution = flow.start()
    # A worker took it and gave it back twice (as a crashed run would).
    for _ in range(2):
        (msg,) = flow.mns.receive_messages(flow.queue_name, 1, wait_seconds=5)
        flow.mns.change_message_visibility(flow.queue_name, msg.receipt_handle, 1)
        asyncio.run(asyncio.sleep(1.2))

    with pytest.raises(asyncio.TimeoutError):  # nothing usable arrives: the poison one is settled
        asyncio.run(
            events_of(trigger_for(flow, max_receive_count=2, poison_policy="delete", wait_time_seconds=1), 4)
        )

    status = flow.status(execution, wait=10)
    assert status["Status"] == "Failed"
    history = flow.fnf.get_execution_history(flow.flow_name, execution)
    failed = [json.loads(e["EventDetail"]) for e in history if e["Type"] == "TaskFailed"]
    assert failed and "Airflow.PoisonMessage" in json.dumps(failed)
    assert flow.counts() == (0, 0)


def test_messages_the_filter_rejects_are_released_at_once(flow):
    flow.start(kind="crop")
    flow.start(kind="resize")

    payload = first_event(
        trigger_for(flow, message_filtering="$.kind", message_filtering_match_values=["resize"])
    )

    assert [m["body"]["kind"] for m in payload["messages"]] == ["resize"]
    # The crop message is visible again (within the 1 s minimum), not held for the lease.
    again = flow.mns.receive_messages(flow.queue_name, 16, wait_seconds=5)
    assert [json.loads(m.body)["kind"] for m in again] == ["crop"]


def test_transient_faults_are_retried_with_backoff(flow, emulator, capsys):
    admin(
        emulator.mns_endpoint,
        "POST",
        "faults",
        {
            "service": "mns",
            "operation": "BatchReceiveMessage",
            "status": 500,
            "code": "InternalError",
            "times": 12,
        },
    )
    flow.start()

    payload = first_event(trigger_for(flow, max_backoff_seconds=0.2), limit=60)

    assert len(payload["messages"]) == 1
    out = capsys.readouterr()
    assert "retrying in" in out.out + out.err


def test_wrong_credentials_fail_the_trigger_with_a_clear_error(flow, monkeypatch, emulator):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{MNS_CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "mns",
                "login": "nobody",
                "password": "wrong",
                "extra": {"endpoint": emulator.mns_endpoint},
            }
        ),
    )
    from airflow_provider_fnf.exceptions import MNSAuthenticationError

    with pytest.raises(MNSAuthenticationError, match=MNS_CONN_ID):
        asyncio.run(events_of(trigger_for(flow), 20))


def test_the_event_loop_keeps_running_during_a_long_poll(flow):
    trigger = trigger_for(flow, wait_time_seconds=5)
    ticks_during_poll = 0

    async def main():
        nonlocal ticks_during_poll
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.05)

        ticking = asyncio.create_task(ticker())
        task = asyncio.create_task(events_of(trigger, 30))
        await asyncio.sleep(1.0)  # the trigger's long poll waits on an empty queue meanwhile
        ticks_during_poll = ticks
        assert not task.done()
        await asyncio.to_thread(flow.start)  # arrives while the long poll waits
        events = await task
        stop.set()
        await ticking
        return events

    events = asyncio.run(main())
    assert len(events) == 1 and len(events[0].payload["messages"]) == 1
    assert ticks_during_poll >= 10, "the event loop was blocked while the SDK long-polled"


def test_message_queue_trigger_scheme_mns_reads_the_queue(flow):
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    flow.start()
    trigger = MessageQueueTrigger(
        scheme="mns",
        queue_name=flow.queue_name,
        mns_conn_id=MNS_CONN_ID,
        fnf_conn_id=FNF_CONN_ID,
        wait_time_seconds=2,
    )
    payload = first_event(trigger)
    assert len(payload["messages"]) == 1 and payload["messages"][0]["flow_name"] == flow.flow_name


# -- the SDK client kept between runs -------------------------------------------------------------


def test_runs_one_after_another_reuse_one_sdk_client(flow, monkeypatch):
    seen: list[tuple[int, object]] = []
    receive = MNSHook.receive_messages

    def recording(hook, *args, **kwargs):
        seen.append((threading.get_ident(), hook.get_conn()))
        return receive(hook, *args, **kwargs)

    monkeypatch.setattr(MNSHook, "receive_messages", recording)
    send_tokens(flow, 2)

    for _ in range(2):
        assert len(first_event(trigger_for(flow, max_messages=1, max_messages_per_event=1))["messages"]) == 1

    # The same thread and the same SDK client (with its open connection) served both runs.
    assert len(seen) == 2 and seen[0][0] == seen[1][0] and seen[0][1] is seen[1][1]


def test_a_changed_connection_takes_effect_on_the_next_run(flow, monkeypatch):
    send_tokens(flow, 1)
    assert len(first_event(trigger_for(flow))["messages"]) == 1  # a client for this connection

    # The connection now points at another MNS endpoint: the next run reads that one.
    with Emulator() as other:
        other_hook = MNSHook(
            set_connection(monkeypatch, "mns_other_endpoint", **mns_connection(other.mns_endpoint))
        )
        other_hook.create_queue(flow.queue_name)
        other_hook.send_message(flow.queue_name, json.dumps({"task_token": "token-elsewhere"}))
        set_connection(monkeypatch, MNS_CONN_ID, **mns_connection(other.mns_endpoint))

        payload = first_event(trigger_for(flow))

        assert [m["task_token"] for m in payload["messages"]] == ["token-elsewhere"]

    # Its secret changed and is now wrong: the next run fails on it instead of using the old client.
    set_connection(monkeypatch, MNS_CONN_ID, **{**mns_connection(flow.mns.endpoint), "password": "rotated"})
    with pytest.raises(MNSAuthenticationError, match=MNS_CONN_ID):
        asyncio.run(events_of(trigger_for(flow), 20))
