"""Queue behaviour through the SDK: long polls, visibility, receipt handles, priority, delay, retention.

The SDK is not thread-safe: every thread makes its own Account.
"""

from __future__ import annotations

import threading
import time

import pytest
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, ServiceError
from fnf_emulator.mns import service as mns_service
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, Queue
from mns_emulator_helpers import make_queue

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def new_queue(emulator: Emulator, name: str = "jobs") -> Queue:
    queue = Account(emulator.mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET).get_queue(name)
    queue.set_encoding(False)
    return queue


def error_type(call, *args) -> str:
    with pytest.raises(MNSServerException) as info:
        call(*args)
    return info.value.type


def send_later(emulator: Emulator, body: str, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        new_queue(emulator).send_message(Message(body))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_long_poll_returns_as_soon_as_another_thread_sends(emulator: Emulator, queue: Queue):
    sender = send_later(emulator, "wake up", 0.3)
    started = time.monotonic()
    message = queue.receive_message(20)
    elapsed = time.monotonic() - started
    sender.join()
    assert message.message_body == "wake up"
    assert elapsed < 10, "the long poll waited for its full 20 s instead of returning on the send"


def test_batch_long_poll_returns_on_send(emulator: Emulator, queue: Queue):
    sender = send_later(emulator, "batch wake", 0.3)
    started = time.monotonic()
    messages = queue.batch_receive_message(16, 20)
    assert time.monotonic() - started < 10
    sender.join()
    assert [m.message_body for m in messages] == ["batch wake"]


def test_long_poll_on_empty_queue_waits_then_answers_message_not_exist(queue: Queue):
    started = time.monotonic()
    assert error_type(queue.receive_message, 1) == "MessageNotExist"
    assert time.monotonic() - started >= 0.9


def test_queue_polling_wait_seconds_is_the_default_wait(emulator: Emulator, account: Account):
    queue = make_queue(account, "polling", polling_wait_seconds=1)
    started = time.monotonic()
    assert error_type(queue.receive_message) == "MessageNotExist"
    assert time.monotonic() - started >= 0.9


def test_message_reappears_with_dequeue_count_2_after_visibility_timeout(account: Account):
    queue = make_queue(account, "again", visibilitytimeout=1)
    queue.send_message(Message("again"))
    first = queue.receive_message(0)
    assert first.dequeue_count == 1
    assert error_type(queue.receive_message, 0) == "MessageNotExist"  # invisible while in flight

    second = queue.receive_message(5)  # the visibility timeout is 1 s; the long poll wakes for it
    assert second.message_id == first.message_id
    assert second.dequeue_count == 2
    assert second.first_dequeue_time == first.first_dequeue_time
    assert second.receipt_handle != first.receipt_handle
    assert error_type(queue.delete_message, first.receipt_handle) == "MessageNotExist"
    queue.delete_message(second.receipt_handle)


def test_expired_handle_is_rejected_even_before_the_next_receive(account: Account):
    queue = make_queue(account, "short", visibilitytimeout=1)
    queue.send_message(Message("late"))
    message = queue.receive_message(0)
    time.sleep(1.2)
    assert error_type(queue.delete_message, message.receipt_handle) == "MessageNotExist"
    assert queue.peek_message().message_body == "late"


def test_change_visibility_gives_a_new_handle_and_rejects_the_old(account: Account):
    queue = make_queue(account, "change", visibilitytimeout=1)
    queue.send_message(Message("x"))
    message = queue.receive_message(0)
    before = int(time.time() * 1000)
    changed = queue.change_message_visibility(message.receipt_handle, 30)
    assert changed.receipt_handle != message.receipt_handle
    assert int(changed.next_visible_time) >= before + 29_000

    assert error_type(queue.delete_message, message.receipt_handle) == "MessageNotExist"
    assert error_type(queue.change_message_visibility, message.receipt_handle, 5) == "MessageNotExist"
    time.sleep(1.2)  # past the queue's 1 s default: the change holds the message invisible
    assert error_type(queue.receive_message, 0) == "MessageNotExist"
    queue.delete_message(changed.receipt_handle)
    assert queue.get_attributes().inactive_messages == 0


def test_change_visibility_can_release_a_message_early(queue: Queue):
    queue.send_message(Message("release"))
    message = queue.receive_message(0)
    queue.change_message_visibility(message.receipt_handle, 1)
    again = queue.receive_message(5)
    assert (again.message_body, again.dequeue_count) == ("release", 2)


def test_priority_order_then_arrival(queue: Queue):
    for body, priority in [("p8-a", 8), ("p1-a", 1), ("p16", 16), ("p1-b", 1), ("p3", 3), ("default", None)]:
        queue.send_message(Message(body, priority=priority) if priority else Message(body))
    bodies = [m.message_body for m in queue.batch_receive_message(16, 0)]
    assert bodies == ["p1-a", "p1-b", "p3", "p8-a", "default", "p16"]


def test_priority_order_holds_across_redelivery(account: Account):
    queue = make_queue(account, "redelivery", visibilitytimeout=1)
    queue.send_message(Message("low", priority=10))
    first = queue.receive_message(0)
    queue.send_message(Message("high", priority=2))
    queue.send_message(Message("lower", priority=12))
    time.sleep(1.1)
    assert [m.message_body for m in queue.batch_receive_message(3, 0)] == ["high", "low", "lower"]
    assert first.message_body == "low"


def test_delay_seconds_per_message_and_queue_default(emulator: Emulator, account: Account):
    queue = make_queue(account, "delayed", delay_seconds=1)
    queue.send_message(Message("queue default delay"))
    queue.send_message(Message("no delay", delay_seconds=0))
    assert queue.receive_message(0).message_body == "no delay"
    assert error_type(queue.peek_message) == "MessageNotExist"
    assert queue.get_attributes().delay_messages == 1
    started = time.monotonic()
    message = queue.receive_message(5)
    assert message.message_body == "queue default delay"
    assert 0.5 <= time.monotonic() - started < 5
    assert message.dequeue_count == 1


def test_retention_drops_old_messages(account: Account, queue: Queue, monkeypatch: pytest.MonkeyPatch):
    queue.send_message(Message("old"))
    real_now = mns_service._now_ms
    monkeypatch.setattr(mns_service, "_now_ms", lambda: real_now() + 345_601_000)
    assert error_type(queue.receive_message, 0) == "MessageNotExist"
    assert queue.get_attributes().active_messages == 0
    queue.send_message(Message("new"))
    assert queue.receive_message(0).message_body == "new"


def test_each_message_goes_to_one_consumer_at_a_time(emulator: Emulator, queue: Queue):
    queue.batch_send_message([Message(f"m{i}") for i in range(16)])
    queue.batch_send_message([Message(f"m{i}") for i in range(16, 32)])
    seen: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        own = new_queue(emulator)
        while True:
            try:
                messages = own.batch_receive_message(3, 0)
            except MNSServerException:
                return
            with lock:
                seen.extend(m.message_id for m in messages)

    threads = [threading.Thread(target=consume) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 32
    assert len(set(seen)) == 32


def test_idle_long_polls_cost_no_cpu_and_all_wake(emulator: Emulator, queue: Queue):
    received: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        message = new_queue(emulator).receive_message(10)
        with lock:
            received.append(message.message_body)

    threads = [threading.Thread(target=poll) for _ in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # let every poll reach the server
    cpu_before = time.process_time()
    time.sleep(1.0)
    idle_cpu = time.process_time() - cpu_before
    queue.batch_send_message([Message(f"m{i}") for i in range(16)])
    queue.batch_send_message([Message(f"m{i}") for i in range(16, 20)])
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(received) == sorted(f"m{i}" for i in range(20))
    assert idle_cpu < 0.2, f"20 idle long polls used {idle_cpu:.2f} s of CPU in 1 s"


def test_deleting_the_queue_ends_its_long_polls(emulator: Emulator, queue: Queue):
    def delete_later() -> None:
        time.sleep(0.3)
        new_queue(emulator).delete()

    thread = threading.Thread(target=delete_later)
    thread.start()
    started = time.monotonic()
    assert error_type(queue.receive_message, 20) == "QueueNotExist"
    assert time.monotonic() - started < 10
    thread.join()


def test_in_process_sender_for_the_workflow_emulator(emulator: Emulator, queue: Queue):
    assert emulator.mns is not None
    message_id = emulator.mns.send_message("jobs", '{"task_token": "abc"}', 3, 0)
    received = queue.receive_message(0)
    assert (received.message_id, received.message_body, received.priority) == (
        message_id,
        '{"task_token": "abc"}',
        3,
    )

    with pytest.raises(ServiceError) as missing:
        emulator.mns.send_message("missing", "x", 8, 0)
    assert (missing.value.status, missing.value.code) == (404, "QueueNotExist")
    for body, priority, delay in [("x", 0, 0), ("x", 8, -1), ("", 8, 0), ("x" * 65_537, 8, 0)]:
        with pytest.raises(ServiceError) as bad:
            emulator.mns.send_message("jobs", body, priority, delay)
        assert (bad.value.status, bad.value.code) == (400, "InvalidArgument")
