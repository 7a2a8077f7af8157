"""MNSHook through the real aliyun-mns-sdk, over HTTP, against the local emulator."""

from __future__ import annotations

import base64
import collections
import json
import threading

import pytest
from hooks_it_support import STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET, STS_TOKEN

from airflow_provider_fnf.exceptions import (
    MNSAuthenticationError,
    MNSEndpointUnreachableError,
    MNSError,
    MNSQueueNotFoundError,
    MNSReceiptHandleError,
)
from airflow_provider_fnf.hooks.mns import MNSHook, MNSMessage
from tests.support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    add_fault,
    admin,
    closed_port,
    set_connection,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

QUEUE = "hooks-it"


@pytest.fixture
def hook(mns_conn_id: str) -> MNSHook:
    h = MNSHook(mns_conn_id)
    h.retry_base_delay = 0.01
    h.create_queue(QUEUE)
    return h


# --- queues ----------------------------------------------------------------------------------
def test_create_queue_is_idempotent_and_attributes_are_snake_case(mns_conn_id):
    hook = MNSHook(mns_conn_id)
    hook.create_queue("attrs-q", visibility_timeout=60, polling_wait_seconds=5, maximum_message_size=2048)
    hook.create_queue("attrs-q", visibility_timeout=60, polling_wait_seconds=5, maximum_message_size=2048)
    attributes = hook.get_queue_attributes("attrs-q")
    assert attributes["queue_name"] == "attrs-q"
    assert attributes["visibility_timeout"] == 60
    assert attributes["polling_wait_seconds"] == 5
    assert attributes["maximum_message_size"] == 2048
    assert attributes["active_messages"] == 0
    assert attributes["create_time"] > 0


def test_create_queue_with_other_attributes_says_what_differs(mns_conn_id):
    hook = MNSHook(mns_conn_id)
    hook.create_queue("diff-q", visibility_timeout=60)
    with pytest.raises(MNSError, match=r"visibility_timeout is 60 \(wanted 120\)") as info:
        hook.create_queue("diff-q", visibility_timeout=120)
    assert info.value.code == "QueueAlreadyExist"


def test_get_queue_attributes_raises_no_deprecation_warning(hook):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hook.get_queue_attributes(QUEUE)


def test_delete_queue_then_it_is_missing(hook):
    hook.delete_queue(QUEUE)
    with pytest.raises(MNSQueueNotFoundError):
        hook.get_queue_attributes(QUEUE)
    hook.delete_queue(QUEUE)  # deleting a missing queue is fine


# --- messages --------------------------------------------------------------------------------
def test_send_receive_delete_round_trip_keeps_the_body_exact(hook):
    body = json.dumps({"task_token": "djEjZmxvdyNleGVj", "text": "<a & b> é ✓"}, ensure_ascii=False)
    message_id = hook.send_message(QUEUE, body)
    [message] = hook.receive_messages(QUEUE, wait_seconds=1)
    assert message.message_id == message_id
    assert message.body == body
    assert message.dequeue_count == 1
    assert message.receipt_handle
    assert message.next_visible_time and message.next_visible_time > message.enqueue_time
    assert message.first_dequeue_time is not None
    assert message.decode_error is None
    assert MNSMessage.from_dict(json.loads(json.dumps(message.to_dict()))) == message
    hook.delete_message(QUEUE, message.receipt_handle)
    assert hook.get_queue_attributes(QUEUE)["inactive_messages"] == 0
    assert hook.receive_messages(QUEUE, wait_seconds=0) == []


def test_empty_queue_long_poll_returns_an_empty_list(hook):
    assert hook.receive_messages(QUEUE, 16, wait_seconds=1) == []
    assert hook.peek_messages(QUEUE, 16) == []


def test_batch_send_receive_delete_in_chunks_of_16(hook):
    bodies = [f"message {i}" for i in range(20)]
    ids = hook.send_messages(QUEUE, bodies)
    assert len(ids) == len(set(ids)) == 20
    received: list[MNSMessage] = []
    while len(received) < 20:
        batch = hook.receive_messages(QUEUE, 16, wait_seconds=1)
        assert batch, "messages went missing"
        assert len(batch) <= 16
        received.extend(batch)
    assert sorted(m.body for m in received) == sorted(bodies)
    assert {m.message_id for m in received} == set(ids)
    assert hook.delete_messages(QUEUE, [m.receipt_handle for m in received if m.receipt_handle]) == {}
    assert hook.peek_messages(QUEUE) == []


def test_priority_and_delay(hook):
    hook.send_message(QUEUE, "later", delay_seconds=600)
    hook.send_message(QUEUE, "low", priority=16)
    hook.send_message(QUEUE, "urgent", priority=1)
    messages = hook.receive_messages(QUEUE, 16, wait_seconds=1)
    assert [m.body for m in messages][0] == "urgent"
    assert {m.body for m in messages} == {"urgent", "low"}  # the delayed one is not visible yet
    assert {m.body: m.priority for m in messages} == {"urgent": 1, "low": 16}
    assert hook.get_queue_attributes(QUEUE)["delay_messages"] == 1


def test_peek_leaves_the_message_and_has_no_handle(hook):
    hook.send_message(QUEUE, "look at me")
    [peeked] = hook.peek_messages(QUEUE)
    assert peeked.receipt_handle is None and peeked.body == "look at me"
    [received] = hook.receive_messages(QUEUE)
    assert received.message_id == peeked.message_id


def test_change_visibility_returns_a_new_handle_and_the_old_one_goes_stale(hook):
    hook.send_message(QUEUE, "extend me")
    [message] = hook.receive_messages(QUEUE)
    new_handle, next_visible = hook.change_message_visibility(QUEUE, message.receipt_handle, 120)
    assert new_handle != message.receipt_handle
    assert next_visible > message.next_visible_time
    with pytest.raises(MNSReceiptHandleError) as info:
        hook.delete_message(QUEUE, message.receipt_handle)
    assert QUEUE in str(info.value) and info.value.conn_id == hook.mns_conn_id
    hook.delete_message(QUEUE, new_handle)


def test_stale_receipt_handle(hook):
    hook.send_message(QUEUE, "once")
    [message] = hook.receive_messages(QUEUE)
    hook.delete_message(QUEUE, message.receipt_handle)
    with pytest.raises(MNSReceiptHandleError):
        hook.delete_message(QUEUE, message.receipt_handle)
    with pytest.raises(MNSReceiptHandleError):
        hook.change_message_visibility(QUEUE, message.receipt_handle, 10)
    hook.send_message(QUEUE, "twice")
    [fresh] = hook.receive_messages(QUEUE)
    failed = hook.delete_messages(QUEUE, [message.receipt_handle, fresh.receipt_handle])
    assert failed == {message.receipt_handle: "MessageNotExist"}
    assert hook.peek_messages(QUEUE) == []


# --- body encodings --------------------------------------------------------------------------
def test_base64_hook_round_trip_and_raw_view_of_it(mns_conn_id, hook):
    encoded_hook = MNSHook(mns_conn_id, body_encoding="base64")
    encoded_hook.send_message(QUEUE, '{"k": "välue"}')
    [raw_view] = hook.peek_messages(QUEUE)
    assert base64.b64decode(raw_view.body).decode() == '{"k": "välue"}'
    [message] = encoded_hook.receive_messages(QUEUE)
    assert message.body == '{"k": "välue"}' and message.decode_error is None


def test_undecodable_body_keeps_its_receipt_handle(mns_conn_id, hook):
    hook.send_message(QUEUE, '{"task_token": "raw json, not base64"}')
    encoded_hook = MNSHook(mns_conn_id, body_encoding="base64")
    [message] = encoded_hook.receive_messages(QUEUE)
    assert message.decode_error and "base64" in message.decode_error
    assert message.body == '{"task_token": "raw json, not base64"}'
    assert message.receipt_handle
    encoded_hook.delete_message(QUEUE, message.receipt_handle)  # the handle still works
    assert hook.peek_messages(QUEUE) == []


def test_auto_decoding_takes_both(mns_conn_id, hook):
    auto_hook = MNSHook(mns_conn_id, body_encoding="auto")
    hook.send_message(QUEUE, base64.b64encode(b'{"from": "base64"}').decode())
    hook.send_message(QUEUE, '{"from": "raw"}')
    bodies = {m.body for m in auto_hook.receive_messages(QUEUE, 2, wait_seconds=1)}
    assert bodies == {'{"from": "base64"}', '{"from": "raw"}'}


# --- failures --------------------------------------------------------------------------------
def test_missing_queue_names_queue_and_connection(mns_conn_id):
    hook = MNSHook(mns_conn_id)
    for call in (
        lambda: hook.send_message("no-such-queue", "x"),
        lambda: hook.receive_messages("no-such-queue", wait_seconds=0),
        lambda: hook.get_queue_attributes("no-such-queue"),
    ):
        with pytest.raises(MNSQueueNotFoundError) as info:
            call()
        assert "'no-such-queue'" in str(info.value) and mns_conn_id in str(info.value)
        assert info.value.resource == "no-such-queue"


def test_wrong_secret_is_an_authentication_error(monkeypatch, emu):
    conn_id = set_connection(
        monkeypatch,
        "mns_wrong_secret",
        conn_type="mns",
        login=ACCESS_KEY_ID,
        password="not-the-secret",
        extra={"endpoint": emu.mns_endpoint},
    )
    hook = MNSHook(conn_id)
    with pytest.raises(MNSAuthenticationError) as info:
        hook.send_message(QUEUE, "x")
    assert "mns_wrong_secret" in str(info.value) and "AccessKey Secret" in str(info.value)
    ok, message = hook.test_connection()
    assert not ok and "mns_wrong_secret" in message


@pytest.mark.parametrize(("token", "works"), [(STS_TOKEN, True), ("forged-sts-token-value", False)])
def test_sts_security_token(monkeypatch, emu, token, works):
    conn_id = set_connection(
        monkeypatch,
        "mns_sts",
        conn_type="mns",
        login=STS_ACCESS_KEY_ID,
        password=STS_ACCESS_KEY_SECRET,
        extra={"endpoint": emu.mns_endpoint, "security_token": token},
    )
    hook = MNSHook(conn_id)
    if works:
        hook.create_queue("sts-q")
        hook.send_message("sts-q", "with sts")
        assert [m.body for m in hook.receive_messages("sts-q")] == ["with sts"]
    else:
        with pytest.raises(MNSAuthenticationError):
            hook.create_queue("sts-q")


def test_default_credentials_chain_from_the_environment(monkeypatch, emu):
    from alibabacloud_credentials.utils import auth_util

    from airflow_provider_fnf import credentials

    monkeypatch.setattr(credentials, "_default_provider", None)
    monkeypatch.setattr(credentials, "_sources", collections.OrderedDict())
    monkeypatch.setattr(auth_util, "environment_ecs_metadata_disabled", "true")
    monkeypatch.setattr(auth_util, "environment_access_key_id", ACCESS_KEY_ID)
    monkeypatch.setattr(auth_util, "environment_access_key_secret", ACCESS_KEY_SECRET)
    monkeypatch.setattr(auth_util, "environment_security_token", None)
    conn_id = set_connection(monkeypatch, "mns_chain", conn_type="mns", extra={"endpoint": emu.mns_endpoint})
    hook = MNSHook(conn_id)
    assert hook.settings.credentials is None
    hook.create_queue("chain-q")
    hook.send_message("chain-q", "from the chain")
    assert [m.body for m in hook.receive_messages("chain-q")] == ["from the chain"]
    ok, message = hook.test_connection()
    assert ok and "default credentials chain" in message


def test_unreachable_endpoint_after_bounded_retries(monkeypatch):
    port = closed_port()
    conn_id = set_connection(
        monkeypatch,
        "mns_closed",
        conn_type="mns",
        login=ACCESS_KEY_ID,
        password=ACCESS_KEY_SECRET,
        extra={"endpoint": f"http://127.0.0.1:{port}"},
    )
    hook = MNSHook(conn_id, max_attempts=3)
    hook.retry_base_delay = 0.01
    with pytest.raises(MNSEndpointUnreachableError) as info:
        hook.send_message(QUEUE, "x")
    message = str(info.value)
    assert f"http://127.0.0.1:{port}" in message and "mns_closed" in message and "3 attempt(s)" in message
    ok, _ = hook.test_connection()
    assert not ok


def test_server_errors_are_retried_then_succeed(hook, emu):
    add_fault(emu.mns_endpoint, operation="SendMessage", status=500, code="InternalError", times=2)
    assert hook.send_message(QUEUE, "after two failures")
    assert admin(emu.mns_endpoint, "GET", "faults")["faults"] == []  # both 500s were answered
    assert [m.body for m in hook.receive_messages(QUEUE)] == ["after two failures"]


def test_server_errors_beyond_the_attempts_fail_clearly(hook, emu):
    add_fault(emu.mns_endpoint, operation="ReceiveMessage", status=500, code="InternalError", times=5)
    with pytest.raises(MNSError, match="InternalError") as info:
        hook.receive_messages(QUEUE)
    assert "after 3 attempts" in str(info.value)


def test_dropped_connection_is_retried(hook, emu):
    add_fault(emu.mns_endpoint, operation="SendMessage", drop_connection=True, times=1)
    hook.send_message(QUEUE, "survived a dropped connection")
    bodies = [m.body for m in hook.receive_messages(QUEUE, 16, wait_seconds=1)]
    assert "survived a dropped connection" in bodies


def test_test_connection(hook):
    ok, message = hook.test_connection()
    assert ok and hook.endpoint in message


# --- threads ---------------------------------------------------------------------------------
def test_eight_threads_share_one_hook(hook):
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(30):
                message_id = hook.send_message(QUEUE, f"thread {n} message {i}")
                with lock:
                    ids.append(message_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 240
    assert hook.get_queue_attributes(QUEUE)["active_messages"] == 240
