"""MNSSensor: poke mode, deferring, resuming, filtering with a callable (pure logic).

The receive pipeline is replaced by a scripted fake here; tests/integration runs the sensor
against the emulator with the real SDK.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_fnf.exceptions import FnFProviderError
from airflow_provider_fnf.receiver import ReceiveResult
from airflow_provider_fnf.sensors.mns import MNSSensor
from airflow_provider_fnf.triggers.mns import MNSMessageTrigger


class FakeReceiver:
    def __init__(self, script=()):
        self.script = list(script)
        self.waits: list[int | None] = []
        self.released: list[str] = []

    def receive_batch(self, wait_seconds, max_messages=None, *, should_stop=None):
        self.waits.append(wait_seconds)
        return self.script.pop(0) if self.script else ReceiveResult()

    def release(self, message, reason="it does not match the filter"):
        self.released.append(message["message_id"])
        return True


def msgs(*ids, **body):
    return [
        {
            "message_id": i,
            "receipt_handle": f"h-{i}",
            "queue_name": "q",
            "body": dict(body),
            "task_token": "t",
        }
        for i in ids
    ]


def result(*ids, received=None, **body):
    messages = msgs(*ids, **body)
    return ReceiveResult(messages=messages, received=len(ids) if received is None else received)


def sensor(receiver=None, **kwargs):
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("queue_name", "q")
    s = MNSSensor(**kwargs)
    if receiver is not None:
        s.__dict__["receiver"] = receiver
    return s


def test_poke_returns_the_messages_as_xcom():
    s = sensor(FakeReceiver([result("M1", "M2")]), wait_time_seconds=7)
    value = s.poke({})
    assert isinstance(value, PokeReturnValue) and value.is_done
    assert [m["message_id"] for m in value.xcom_value] == ["M1", "M2"]


def test_poke_with_nothing_keeps_waiting():
    assert sensor(FakeReceiver([ReceiveResult()])).poke({}) is False


def test_num_batches_gathers_more_while_the_queue_has_more():
    receiver = FakeReceiver([result("M1", "M2", received=2), result("M3", received=1)])
    value = sensor(receiver, max_messages=2, num_batches=3).poke({})
    assert [m["message_id"] for m in value.xcom_value] == ["M1", "M2", "M3"]
    assert len(receiver.waits) == 2  # the second batch was short: the queue is drained


def test_deferrable_checks_once_then_defers_to_the_trigger():
    receiver = FakeReceiver([ReceiveResult()])
    s = sensor(
        receiver,
        deferrable=True,
        timeout=600,
        message_filtering="$.kind",
        message_filtering_match_values=["a"],
        lease_seconds=120,
    )
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    assert receiver.waits == [0]
    trigger = deferred.value.trigger
    assert isinstance(trigger, MNSMessageTrigger)
    kwargs = trigger.serialize()[1]
    assert (kwargs["queue_name"], kwargs["message_filtering"], kwargs["lease_seconds"]) == (
        "q",
        "$.kind",
        120,
    )
    assert kwargs["message_filtering_match_values"] == ["a"]
    assert kwargs["max_messages_per_event"] == 16  # what one poke receives: max_messages x num_batches
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=600)


def test_deferrable_returns_at_once_when_a_message_is_waiting():
    s = sensor(FakeReceiver([result("M1")]), deferrable=True)
    assert [m["message_id"] for m in s.execute({})] == ["M1"]


def test_a_callable_filter_stays_in_the_worker():
    s = sensor(FakeReceiver([ReceiveResult()]), deferrable=True, message_filtering=lambda m: True)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute({})
    assert deferred.value.trigger.serialize()[1]["message_filtering"] is None


def test_execute_complete_applies_the_callable_filter_and_releases_the_rest():
    receiver = FakeReceiver()
    s = sensor(receiver, deferrable=True, message_filtering=lambda m: m["message_id"] != "M2")
    event = {"status": "success", "queue_name": "q", "messages": msgs("M1", "M2", "M3")}
    kept = s.execute_complete({}, event)
    assert [m["message_id"] for m in kept] == ["M1", "M3"]
    assert receiver.released == ["M2"]


def test_execute_complete_defers_again_when_everything_was_filtered_out():
    s = sensor(FakeReceiver(), deferrable=True, message_filtering=lambda m: False)
    with pytest.raises(TaskDeferred):
        s.execute_complete({}, {"status": "success", "messages": msgs("M1")})


@pytest.mark.parametrize(
    "event",
    [
        None,
        "x",
        {"status": "error", "message": "boom"},
        {"status": "success"},
        {"status": "success", "messages": {}},
    ],
)
def test_execute_complete_validates_the_event(event):
    with pytest.raises(FnFProviderError, match="unexpected event"):
        sensor(FakeReceiver()).execute_complete({}, event)


def test_the_error_never_echoes_message_contents():
    with pytest.raises(FnFProviderError) as error:
        sensor(FakeReceiver()).execute_complete({}, {"status": "nope", "messages": "secret-token-value"})
    assert "secret-token-value" not in str(error.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"num_batches": 0}, "num_batches"),
        ({"wait_time_seconds": 45}, "wait_time_seconds"),
        ({"max_messages": 20}, "max_messages"),
        ({"poison_policy": "dead_letter"}, "dead_letter_queue_name"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        sensor(**kwargs)


def test_queue_name_is_templated():
    assert "queue_name" in MNSSensor.template_fields
