"""The admin API: health, reset, and fault injection seen through the SDK."""

from __future__ import annotations

import time

import pytest
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.mns_exception import MNSClientNetworkException, MNSServerException
from mns.queue import Message, Queue, QueueMeta
from mns_emulator_helpers import admin, raw_request

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_health(emulator: Emulator):
    response = admin(emulator, "GET", "health")
    assert response.status == 200
    health = response.json()
    assert isinstance(health, dict)
    assert (health["status"], health["service"], health["mns_endpoint"]) == (
        "ok",
        "mns",
        emulator.mns_endpoint,
    )


def test_admin_paths_need_no_signature_and_unknown_ones_are_404(emulator: Emulator):
    assert admin(emulator, "GET", "nothing").status == 404
    assert admin(emulator, "PUT", "faults").status == 404


def test_error_injected_n_times_for_one_operation(emulator: Emulator, queue: Queue):
    queue.send_message(Message("survivor"))
    created = admin(
        emulator,
        "POST",
        "faults",
        {"operation": "ReceiveMessage", "status": 503, "code": "ServiceBusy", "times": 2},
    )
    assert created.status == 201
    for _ in range(2):
        with pytest.raises(MNSServerException) as info:
            queue.receive_message(0)
        assert info.value.type == "ServiceBusy"
        assert queue.peek_message().message_body == "survivor"  # other operations are untouched
    assert admin(emulator, "GET", "faults").json() == {"faults": []}  # used up
    assert queue.receive_message(0).message_body == "survivor"


def test_error_with_probability(emulator: Emulator, queue: Queue):
    queue.send_message(Message("x"))
    admin(emulator, "POST", "faults", {"operation": "PeekMessage", "status": 500, "probability": 1.0})
    with pytest.raises(MNSServerException) as info:
        queue.peek_message()
    assert info.value.type == "InternalError"
    assert admin(emulator, "DELETE", "faults").json() == {"deleted": 1}
    admin(emulator, "POST", "faults", {"operation": "PeekMessage", "status": 500, "probability": 0.0})
    for _ in range(5):
        assert queue.peek_message().message_body == "x"


def test_injected_latency(emulator: Emulator, queue: Queue):
    rule = admin(emulator, "POST", "faults", {"operation": "SendMessage", "latency_ms": 400}).json()
    assert isinstance(rule, dict)
    started = time.monotonic()
    queue.send_message(Message("slow"))
    assert time.monotonic() - started >= 0.4
    rule_id = rule["faults"][0]["id"]
    assert admin(emulator, "DELETE", f"faults/{rule_id}").status == 200
    assert admin(emulator, "DELETE", f"faults/{rule_id}").status == 404
    assert queue.receive_message(0).message_body == "slow"


def test_dropped_connection(emulator: Emulator, queue: Queue):
    queue.send_message(Message("kept"))
    # the SDK retries once on a new connection when the server closes one, so drop twice
    admin(emulator, "POST", "faults", {"operation": "ReceiveMessage", "drop_connection": True, "times": 2})
    with pytest.raises(MNSClientNetworkException):
        queue.receive_message(0)
    assert queue.receive_message(0).message_body == "kept"


def test_rule_for_the_other_service_does_not_touch_mns(emulator: Emulator, queue: Queue):
    admin(emulator, "POST", "faults", {"service": "fnf", "status": 500})
    queue.send_message(Message("fine"))
    assert queue.receive_message(0).message_body == "fine"


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"status": 500, "times": 0}, "times"),
        ({"status": 500, "probability": 2}, "probability"),
        ({"status": 200}, "status"),
        ({"service": "sqs", "status": 500}, "service"),
        ({"status": 500, "colour": "red"}, "colour"),
        ({"operation": "ReceiveMessage"}, "status"),
        ({"status": 500, "drop_connection": True}, "drop"),
        ({"status": 500, "times": 1, "probability": 0.5}, "times"),
        ("not an object", "object"),
    ],
)
def test_invalid_rules_are_refused_with_a_clear_error(emulator: Emulator, rule: object, named: str):
    response = admin(emulator, "POST", "faults", rule)
    assert response.status == 400
    error = response.json()
    assert isinstance(error, dict) and named in error["error"]
    assert admin(emulator, "GET", "faults").json() == {"faults": []}


def test_reset_drops_queues_and_faults(emulator: Emulator, account: Account, queue: Queue):
    queue.send_message(Message("x"))
    admin(emulator, "POST", "faults", {"operation": "CreateQueue", "status": 500})
    assert admin(emulator, "POST", "reset").json() == {"reset": True}
    assert account.list_queue()[0] == []
    assert admin(emulator, "GET", "faults").json() == {"faults": []}


def test_admin_api_is_not_reachable_through_queue_paths(emulator: Emulator, queue: Queue):
    response = raw_request(emulator.mns_endpoint, "GET", "/queues/_emulator/health", sign=False)
    assert (response.status, response.xml_text("Code")) == (400, "MissingAuthorizationHeader")


def test_stats_count_answers_by_operation_and_outcome(emulator: Emulator, queue: Queue):
    admin(emulator, "DELETE", "stats")
    queue.send_message(Message("x"))
    admin(emulator, "POST", "faults", {"operation": "ReceiveMessage", "status": 500, "times": 1})
    with pytest.raises(MNSServerException):
        queue.receive_message(0)
    admin(emulator, "POST", "faults", {"operation": "ReceiveMessage", "latency_ms": 1, "times": 1})
    received = queue.receive_message(0)
    queue.delete_message(received.receipt_handle)
    with pytest.raises(MNSServerException):
        queue.delete_message(received.receipt_handle)  # the handle is spent
    stats = admin(emulator, "GET", "stats").json()["mns"]
    assert stats["SendMessage"] == {"OK": 1}
    assert stats["ReceiveMessage"] == {"injected:InternalError": 1, "delayed": 1, "OK": 1}
    assert stats["DeleteMessage"] == {"OK": 1, "MessageNotExist": 1}
    assert admin(emulator, "DELETE", "stats").json() == {"cleared": True}
    assert admin(emulator, "GET", "stats").json() == {}


def test_stats_survive_a_restart_with_a_data_dir(tmp_path):
    with Emulator(data_dir=str(tmp_path)) as first:
        admin(first, "GET", "health")
        account = Account(first.mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
        account.get_queue("kept").create(QueueMeta())
    with Emulator(data_dir=str(tmp_path)) as second:
        account = Account(second.mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)
        account.get_queue("kept").get_attributes()
        assert admin(second, "GET", "stats").json()["mns"] == {
            "CreateQueue": {"OK": 1},
            "GetQueueAttributes": {"OK": 1},
        }


def test_message_events_record_each_step_of_a_message_in_order(emulator: Emulator, queue: Queue):
    sent = queue.send_message(Message("job")).message_id
    other = queue.send_message(Message("other")).message_id
    received = queue.receive_message(0)
    assert received.message_id == sent
    changed = queue.change_message_visibility(received.receipt_handle, 1)
    time.sleep(1.2)  # visible again: the next receive is the second dequeue
    again = queue.receive_message(0)
    assert again.message_id == sent and again.dequeue_count == 2
    queue.delete_message(again.receipt_handle)
    assert changed.receipt_handle != again.receipt_handle

    events = admin(emulator, "GET", f"mns/message-events?queue={queue.queue_name}&message_id={sent}").json()
    steps = [(e["event"], e["dequeue_count"]) for e in events["events"]]
    assert steps == [("sent", 0), ("received", 1), ("visibility_changed", 1), ("received", 2), ("deleted", 2)]
    times = [e["time_ms"] for e in events["events"]]
    assert times == sorted(times) and time.time() * 1000 - times[0] < 10_000

    everything = admin(emulator, "GET", "mns/message-events").json()["events"]
    assert {e["message_id"] for e in everything} == {sent, other}
    assert admin(emulator, "GET", "mns/message-events?queue=elsewhere").json() == {"events": []}
    assert admin(emulator, "DELETE", "mns/message-events").json() == {"cleared": True}
    assert admin(emulator, "GET", "mns/message-events").json() == {"events": []}
    queue.send_message(Message("after"))
    admin(emulator, "POST", "reset")
    assert admin(emulator, "GET", "mns/message-events").json() == {"events": []}
