"""With a data directory, a restarted emulator loses nothing: queues, messages, deadlines, handles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fnf_emulator.core import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from fnf_emulator.server import Emulator
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message
from mns_emulator_helpers import admin, make_queue

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def connect(emulator: Emulator) -> Account:
    return Account(emulator.mns_endpoint, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


def error_type(call, *args) -> str:
    with pytest.raises(MNSServerException) as info:
        call(*args)
    return info.value.type


def test_restart_with_data_dir_loses_nothing(tmp_path: Path):
    with Emulator(data_dir=str(tmp_path)) as first:
        queue = make_queue(connect(first), "durable", visibilitytimeout=30, polling_wait_seconds=2)
        queue.batch_send_message([Message(f"m{i}", priority=(i % 3) + 1) for i in range(10)])
        queue.send_message(Message("delayed", delay_seconds=2))
        in_flight = queue.receive_message(0)  # priority 1, arrival 0: "m0"
        released = queue.receive_message(0)  # "m3", released below after a short visibility
        queue.change_message_visibility(released.receipt_handle, 1)
        done = queue.receive_message(0)  # "m6"
        queue.delete_message(done.receipt_handle)
        active_ids = {m.message_id for m in queue.batch_peek_message(16)}
        assert len(active_ids) == 7

    assert (tmp_path / "mns.sqlite3").exists()
    with Emulator(data_dir=str(tmp_path)) as second:
        queue = connect(second).get_queue("durable")
        queue.set_encoding(False)
        attributes = queue.get_attributes()
        assert (attributes.visibility_timeout, attributes.polling_wait_seconds) == (30, 2)
        assert (attributes.active_messages, attributes.inactive_messages, attributes.delay_messages) == (
            7,
            2,
            1,
        )

        # the in-flight message is still invisible and its receipt handle still deletes it
        assert in_flight.message_body == "m0"
        queue.delete_message(in_flight.receipt_handle)

        time.sleep(1.1)  # the released message's 1 s deadline survived the restart
        received = queue.batch_receive_message(16, 0)
        assert [m.message_body for m in received] == ["m3", "m9", "m1", "m4", "m7", "m2", "m5", "m8"]
        assert [m.dequeue_count for m in received] == [2, 1, 1, 1, 1, 1, 1, 1]
        assert {m.message_id for m in received} == active_ids | {released.message_id}
        delayed = queue.receive_message(3)
        assert delayed.message_body == "delayed"
        got = {m.message_id for m in received} | {delayed.message_id, in_flight.message_id}

        new = queue.send_message(Message("after restart"))
        assert new.message_id not in got


def test_without_data_dir_state_is_in_memory_only():
    with Emulator() as first:
        make_queue(connect(first), "ephemeral").send_message(Message("gone"))
    with Emulator() as second:
        assert connect(second).list_queue()[0] == []


def test_queue_changes_and_reset_are_persisted(tmp_path: Path):
    with Emulator(data_dir=str(tmp_path)) as first:
        account = connect(first)
        make_queue(account, "deleted").send_message(Message("x"))
        account.get_queue("deleted").delete()
        make_queue(account, "kept", visibilitytimeout=9)
    with Emulator(data_dir=str(tmp_path)) as second:
        account = connect(second)
        assert [u.rsplit("/", 1)[1] for u in account.list_queue()[0]] == ["kept"]
        assert account.get_queue("kept").get_attributes().visibility_timeout == 9
        assert admin(second, "POST", "reset").status == 200
    with Emulator(data_dir=str(tmp_path)) as third:
        assert connect(third).list_queue()[0] == []


def test_two_emulators_cannot_share_a_data_dir(tmp_path: Path):
    with Emulator(data_dir=str(tmp_path)) as first:
        make_queue(connect(first), "owned").send_message(Message("x"))
        second = Emulator(data_dir=str(tmp_path))
        with pytest.raises(RuntimeError, match="another emulator"):
            second.start()
        assert connect(first).get_queue("owned").get_attributes().active_messages == 1
    with Emulator(data_dir=str(tmp_path)) as third:  # the lock went with the first emulator
        assert connect(third).get_queue("owned").get_attributes().active_messages == 1
